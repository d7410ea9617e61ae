import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging

/// `aggstore demo`: writes sales orders with their items and one event each, reopens the store,
/// and looks orders up by id, by customer and by a list of ids.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write demo sales orders, reopen the store and look them up.",
        discussion: """
        Each order (1-8 items, a customer foreign key) is committed with one SalesOrderPlaced \
        event as one durable batch. The store is then closed, reopened (recovering it from the \
        log), and queried by primary key, by foreign key and by a list of ids. Running the demo \
        again on the same directory adds more orders.
        """
    )

    @Option(help: "The store directory (created if missing).")
    var path: String

    @Option(help: "How many orders to write.")
    var orders: Int = 1000

    func validate() throws {
        guard orders > 0 else { throw ValidationError("--orders must be positive") }
    }

    func run() throws {
        let logger = Logger(label: "aggstore.demo")
        let engine = try openOrExit(path, configuration: EngineConfiguration(), logger: logger)
        let first = Int(engine.lastSequence) + 1
        let customers = max(1, orders / 5)
        var generator = DemoOrders(seed: UInt64(first), customers: customers)
        let encoder = demoEncoder()
        print("Writing \(orders) orders to \(path) (\(customers) customers), one durable commit each...")
        var latencies: [Double] = []
        latencies.reserveCapacity(orders)
        var sampleIds: [String] = []
        var sampleCustomer = ""
        var recordBytes = 0
        let writeStart = monotonicSeconds()
        for number in first..<(first + orders) {
            let order = generator.order(number: number)
            let record = [UInt8](try encoder.encode(order))
            recordBytes += record.count
            let batch = order.placementBatch(unitOfWorkId: "uow-demo-\(number)", eventId: "ev-\(number)", record: record)
            let started = monotonicSeconds()
            try engine.commit(batch)
            latencies.append(monotonicSeconds() - started)
            if sampleIds.count < 10 { sampleIds.append(order.id) }
            if sampleCustomer.isEmpty { sampleCustomer = order.customerId }
        }
        let writeSeconds = monotonicSeconds() - writeStart
        latencies.sort()
        print("  wrote \(orders) commits in \(seconds(writeSeconds)): \(Int(Double(orders) / writeSeconds)) commits/s, "
              + "latency p50 \(micros(percentile(latencies, 0.50))), p99 \(micros(percentile(latencies, 0.99))); "
              + "average record \(recordBytes / orders) bytes")
        try engine.close()

        print("Reopening...")
        let reopened = try openOrExit(path, configuration: EngineConfiguration(), logger: logger)
        defer { try? reopened.close() }
        print("  \(reopened.recoveryReport) in \(seconds(reopened.recoveryReport.duration))")

        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        var started = monotonicSeconds()
        guard let stored = try reopened.record(table: "SalesOrder", id: sampleIds[0]) else {
            throw ValidationError("order \(sampleIds[0]) is missing after reopen")
        }
        let order = try decoder.decode(SalesOrder.self, from: Data(stored.bytes))
        print("By id: \(order.id) for \(order.customerId), \(order.items.count) items, total \(Double(order.total) / 100) \(order.currency), "
              + "version \(stored.version) (\(micros(monotonicSeconds() - started)))")

        started = monotonicSeconds()
        let byCustomer = try reopened.records(table: "SalesOrder", field: "customerId", value: sampleCustomer)
        print("By customer \(sampleCustomer) (foreign-key index): \(byCustomer.count) orders: "
              + byCustomer.prefix(5).map(\.id).joined(separator: ", ") + (byCustomer.count > 5 ? ", ..." : "")
              + " (\(micros(monotonicSeconds() - started)))")

        started = monotonicSeconds()
        let requested = sampleIds + ["SO-does-not-exist"]
        let byIds = try reopened.records(table: "SalesOrder", ids: requested)
        print("By a list of \(requested.count) ids (IN): \(byIds.count) found (\(micros(monotonicSeconds() - started)))")

        let statistics = try reopened.statistics()
        print("Store: \(statistics.frames) commits in \(statistics.segments.count) segment(s), \(statistics.liveRecords) live orders, "
              + "\(statistics.events) events, \(statistics.logBytes) bytes on disk, "
              + "LZ4 ratio \(String(format: "%.2f", statistics.compressionRatio))")
    }
}

/// Opens a store, turning an open failure into a message and exit status 3.
func openOrExit(_ path: String, configuration: EngineConfiguration, logger: Logger) throws -> StorageEngine {
    do {
        return try StorageEngine.open(at: path, configuration: configuration, logger: logger)
    } catch {
        printError("cannot open \(path): \(error)")
        throw error.code == .corruption ? ExitStatus.damaged : ExitStatus.cannotOpen
    }
}

func printError(_ message: String) {
    FileHandle.standardError.write(Data("aggstore: \(message)\n".utf8))
}

/// The value at quantile `q` of sorted values (nearest rank).
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

func micros(_ seconds: Double) -> String { String(format: "%.1f us", seconds * 1e6) }

func seconds(_ value: Double) -> String { value < 1 ? String(format: "%.1f ms", value * 1e3) : String(format: "%.2f s", value) }
