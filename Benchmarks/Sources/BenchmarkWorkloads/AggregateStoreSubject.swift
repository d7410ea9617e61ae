public import AggregateStore
public import AggregateStoreDemo
import Foundation
import Logging

/// AggregateStore, through its public DataStore and UnitOfWork API.
public final class AggregateStoreSubject: OrderStore {
    public let name = "AggregateStore"
    /// The store.
    public let store: DataStore
    private let path: String

    /// Opens (creating) a store at `path`; with `durable` false, commits skip the fsync.
    public init(path: String, durable: Bool = true) throws {
        var configuration = DataStore.Configuration()
        configuration.engine.durability = durable ? .synchronous : .unsafeNoSync
        configuration.engine.compaction.isAutomatic = false
        var logger = Logger(label: "benchmark")
        logger.logLevel = .warning
        store = try DataStore.open(at: path, configuration: configuration, logger: logger)
        self.path = path
    }

    public func place(_ order: SalesOrder) throws {
        try UnitOfWork.run(on: store) { tx in
            try store.create(order, in: tx)
            try tx.emit(OrderBook.placed(order), about: order)
        }
    }

    public func placeConcurrently(_ order: SalesOrder) async throws {
        try await UnitOfWork.run(on: store) { tx in
            try store.create(order, in: tx)
            try tx.emit(OrderBook.placed(order), about: order)
        }
    }

    public func bulkLoad(_ orders: [SalesOrder], perTransaction: Int) throws {
        for start in stride(from: 0, to: orders.count, by: perTransaction) {
            try UnitOfWork.run(on: store) { tx in
                for order in orders[start..<min(start + perTransaction, orders.count)] { try store.create(order, in: tx) }
            }
        }
    }

    public func timeLoads(ids: [String]) throws -> Samples {
        try UnitOfWork.run(on: store) { tx in
            var samples = Samples()
            for id in ids {
                let started = monotonicSeconds()
                guard try store.load(SalesOrder.self, id: id, in: tx) != nil else { throw BenchmarkError("\(id) not found") }
                samples.append(monotonicSeconds() - started)
            }
            return samples
        }
    }

    public func timeLoads(idLists: [[String]]) throws -> Samples {
        try UnitOfWork.run(on: store) { tx in
            var samples = Samples()
            for ids in idLists {
                let started = monotonicSeconds()
                let found = try store.load(SalesOrder.self, ids: ids, in: tx)
                samples.append(monotonicSeconds() - started)
                guard found.count == Set(ids).count else { throw BenchmarkError("found \(found.count) of \(ids.count)") }
            }
            return samples
        }
    }

    public func timeCustomerLookups(_ customerIds: [String], expected: Int) throws -> Samples {
        try UnitOfWork.run(on: store) { tx in
            var samples = Samples()
            for customerId in customerIds {
                let started = monotonicSeconds()
                let found = try store.find(SalesOrder.self, where: \.customerId, equals: customerId, in: tx)
                samples.append(monotonicSeconds() - started)
                guard found.count == expected else { throw BenchmarkError("\(customerId): \(found.count) orders, expected \(expected)") }
            }
            return samples
        }
    }

    public func timePaidCount(times: Int) throws -> (samples: Samples, count: Int) {
        let query = SalesOrder.query.filter(\.status == "paid" && \.currency == "EUR")
        return try UnitOfWork.run(on: store) { tx in
            var samples = Samples()
            var count = 0
            for _ in 0..<times {
                let started = monotonicSeconds()
                count = try store.count(query, in: tx)
                samples.append(monotonicSeconds() - started)
            }
            return (samples, count)
        }
    }

    public func diskBytes() throws -> Int { try directoryBytes(path) }

    public func close() throws { try store.close() }
}
