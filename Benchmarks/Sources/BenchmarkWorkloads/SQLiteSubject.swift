public import AggregateStoreDemo
import Foundation
import GRDB

/// SQLite through GRDB, as a Swift server engineer would store the same aggregates: a
/// `DatabasePool` in WAL mode with `synchronous = FULL`, one row per order with the aggregate
/// as JSON (GRDB's encoding of a nested `Codable`), the customer as an indexed column, and an
/// outbox table written in the same transaction.
public final class SQLiteSubject: OrderStore {
    public let name = "SQLite (GRDB)"
    private let pool: DatabasePool
    private let path: String

    /// One order: its id (the primary key), its customer (indexed), the aggregate as JSON.
    struct OrderRow: Codable, FetchableRecord, PersistableRecord {
        static let databaseTableName = "salesOrder"
        var id: String
        var customerId: String
        var body: SalesOrder
    }

    /// One outbox event, numbered by SQLite.
    struct OutboxRow: Codable, PersistableRecord {
        static let databaseTableName = "outbox"
        var eventId: String
        var type: String
        var aggregateTable: String
        var aggregateId: String
        var occurredAt: Int64
        var payload: Data
    }

    /// Opens (creating) a database in the directory `path`; with `durable` false,
    /// `synchronous = OFF`. Checks that the writer connection took the setting.
    public init(path: String, durable: Bool = true) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        pool = try DatabasePool(path: path + "/orders.sqlite")
        self.path = path
        // Set on the writer connection after the pool has set up WAL mode, which sets NORMAL
        // (an fsync only at checkpoints): FULL syncs the WAL at every commit.
        let level = durable ? 2 : 0
        try pool.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA synchronous = \(level)")
            guard try Int.fetchOne(db, sql: "PRAGMA synchronous") == level else {
                throw BenchmarkError("SQLite did not take synchronous = \(level)")
            }
        }
        try pool.write { db in
            try db.create(table: "salesOrder", ifNotExists: true) { table in
                table.primaryKey("id", .text)
                table.column("customerId", .text).notNull().indexed()
                table.column("body", .jsonText).notNull()
            }
            try db.create(table: "outbox", ifNotExists: true) { table in
                table.autoIncrementedPrimaryKey("position")
                table.column("eventId", .text).notNull().unique()
                table.column("type", .text).notNull()
                table.column("aggregateTable", .text).notNull()
                table.column("aggregateId", .text).notNull()
                table.column("occurredAt", .integer).notNull()
                table.column("payload", .blob).notNull()
            }
        }
    }

    private static let eventEncoder = JSONEncoder()

    private static func rows(_ order: SalesOrder) throws -> (OrderRow, OutboxRow) {
        let event = OrderBook.placed(order)
        let outbox = OutboxRow(eventId: UUID().uuidString, type: OrderPlaced.eventType, aggregateTable: SalesOrder.table,
                               aggregateId: order.id, occurredAt: Int64(Date().timeIntervalSince1970 * 1e6),
                               payload: try eventEncoder.encode(event))
        return (OrderRow(id: order.id, customerId: order.customerId, body: order), outbox)
    }

    public func place(_ order: SalesOrder) throws {
        let (row, event) = try Self.rows(order)
        try pool.write { db in
            try row.insert(db)
            try event.insert(db)
        }
    }

    public func placeConcurrently(_ order: SalesOrder) async throws {
        let (row, event) = try Self.rows(order)
        try await pool.write { db in
            try row.insert(db)
            try event.insert(db)
        }
    }

    public func bulkLoad(_ orders: [SalesOrder], perTransaction: Int) throws {
        for start in stride(from: 0, to: orders.count, by: perTransaction) {
            try pool.write { db in
                for order in orders[start..<min(start + perTransaction, orders.count)] {
                    try OrderRow(id: order.id, customerId: order.customerId, body: order).insert(db)
                }
            }
        }
    }

    public func timeLoads(ids: [String]) throws -> Samples {
        try pool.read { db in
            var samples = Samples()
            for id in ids {
                let started = monotonicSeconds()
                guard try OrderRow.fetchOne(db, key: id) != nil else { throw BenchmarkError("\(id) not found") }
                samples.append(monotonicSeconds() - started)
            }
            return samples
        }
    }

    public func timeLoads(idLists: [[String]]) throws -> Samples {
        try pool.read { db in
            var samples = Samples()
            for ids in idLists {
                let started = monotonicSeconds()
                let found = try OrderRow.fetchAll(db, keys: ids)
                samples.append(monotonicSeconds() - started)
                guard found.count == Set(ids).count else { throw BenchmarkError("found \(found.count) of \(ids.count)") }
            }
            return samples
        }
    }

    public func timeCustomerLookups(_ customerIds: [String], expected: Int) throws -> Samples {
        try pool.read { db in
            var samples = Samples()
            for customerId in customerIds {
                let started = monotonicSeconds()
                let found = try OrderRow.filter(Column("customerId") == customerId).fetchAll(db)
                samples.append(monotonicSeconds() - started)
                guard found.count == expected else { throw BenchmarkError("\(customerId): \(found.count) orders, expected \(expected)") }
            }
            return samples
        }
    }

    public func timePaidCount(times: Int) throws -> (samples: Samples, count: Int) {
        try pool.read { db in
            var samples = Samples()
            var count = 0
            let request = OrderRow.filter(sql: "json_extract(body, '$.status') = 'paid' AND json_extract(body, '$.currency') = 'EUR'")
            for _ in 0..<times {
                let started = monotonicSeconds()
                count = try request.fetchCount(db)
                samples.append(monotonicSeconds() - started)
            }
            return (samples, count)
        }
    }

    public func diskBytes() throws -> Int { try directoryBytes(path) }

    public func close() throws { try pool.close() }
}
