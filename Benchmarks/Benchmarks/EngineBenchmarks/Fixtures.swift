import AggregateStore
import AggregateStoreDemo
import BenchmarkWorkloads
import Foundation
import Logging

/// A store in a temporary directory, removed when the fixture closes.
func temporaryStorePath(_ name: String) -> String {
    NSTemporaryDirectory() + "aggstore-benchmark-\(getpid())-\(name)"
}

func quietLogger() -> Logger {
    var logger = Logger(label: "benchmark")
    logger.logLevel = .warning
    return logger
}

/// A durable store that takes new orders, one writer or many.
final class WriteFixture: @unchecked Sendable {
    private var subject: AggregateStoreSubject?
    private var path = ""
    private var next = 0
    private let book = OrderBook(count: 1_000_000)

    func open(_ name: String) throws {
        path = temporaryStorePath(name)
        try? FileManager.default.removeItem(atPath: path)
        subject = try AggregateStoreSubject(path: path)
        next = 0
    }

    func placeNext() throws {
        next += 1
        try subject!.place(book.orders(next...next)[0])
    }

    func placeConcurrently(_ count: Int, committers: Int) async throws {
        let orders = book.orders(next + 1...next + count)
        next += count
        let subject = subject!
        let perCommitter = count / committers
        try await withThrowingTaskGroup(of: Void.self) { group in
            for committer in 0..<committers {
                let mine = orders[committer * perCommitter..<(committer + 1) * perCommitter]
                group.addTask { for order in mine { try await subject.placeConcurrently(order) } }
            }
            try await group.waitForAll()
        }
    }

    func close() throws {
        try subject?.close()
        subject = nil
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A store whose orders are overwritten again and again, for compaction.
final class CompactionFixture: @unchecked Sendable {
    let orders: Int
    private var store: DataStore?
    private let path = temporaryStorePath("compaction")
    private var round = 0

    init(orders: Int) { self.orders = orders }

    func open() throws {
        try? FileManager.default.removeItem(atPath: path)
        var configuration = DataStore.Configuration()
        configuration.engine.durability = .unsafeNoSync
        configuration.engine.segmentSize = 1 << 20
        configuration.engine.compaction.isAutomatic = false
        store = try DataStore.open(at: path, configuration: configuration, logger: quietLogger())
    }

    /// Writes every order once more, 100 to a unit of work (a frame stays within the 1 MiB
    /// segments' batch limit).
    func overwrite() throws {
        round += 1
        let store = store!
        for start in stride(from: 1, through: orders, by: 100) {
            var orders = OrderBook(count: self.orders).orders(start...min(start + 99, self.orders))
            for index in orders.indices { orders[index].status = "round \(round)" }
            try UnitOfWork.run(on: store) { tx in for order in orders { try store.save(order, in: tx) } }
        }
    }

    func compact() throws -> CompactionReport { try store!.engine.compact(minimumDeadRatio: 0.5) }

    func close() throws {
        try store?.close()
        store = nil
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A store of `orders` orders, built once (without fsync), reopened by the benchmarks.
final class LifecycleFixture: @unchecked Sendable {
    let orders: Int
    private let path: String
    private var built = false

    init(orders: Int) {
        self.orders = orders
        path = temporaryStorePath("open-\(orders)")
    }

    private var configuration: DataStore.Configuration {
        var configuration = DataStore.Configuration()
        configuration.engine.durability = .unsafeNoSync
        configuration.engine.compaction.isAutomatic = false
        return configuration
    }

    func build() throws {
        guard !built else { return }
        try? FileManager.default.removeItem(atPath: path)
        let subject = try AggregateStoreSubject(path: path, durable: false)
        let book = OrderBook(count: orders)
        for start in stride(from: 1, through: orders, by: 10_000) {
            try subject.bulkLoad(book.orders(start...min(start + 9_999, orders)), perTransaction: 1)
        }
        try subject.close()
        built = true
    }

    func open() throws -> DataStore { try DataStore.open(at: path, configuration: configuration, logger: quietLogger()) }

    func remove() throws {
        try? FileManager.default.removeItem(atPath: path)
        built = false
    }

    func removeSnapshot() throws {
        let snapshot = path + "/SNAPSHOT"
        if FileManager.default.fileExists(atPath: snapshot) { try FileManager.default.removeItem(atPath: snapshot) }
    }
}
