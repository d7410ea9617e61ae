import AggregateStore
import AggregateStoreDemo
import ArgumentParser
import Foundation
import Logging
import Synchronization

/// The open and compaction figures of issue 5: a store of `records` live orders opened from
/// its index snapshot and by a full rebuild, with the index's resident memory; and the commit
/// latency while a compaction runs, with the space the log takes after it.
struct LifecycleBenchmarks {
    var path: String
    var records: Int

    /// Opens of a store of `records` live demo orders (one commit each, written without fsync
    /// to save time): from the snapshot a clean close leaves, and with the snapshot removed.
    func snapshotOpen() throws {
        let storePath = path + "/snapshot"
        var configuration = EngineConfiguration()
        configuration.durability = .unsafeNoSync
        configuration.compaction.isAutomatic = false
        let logger = Logger(label: "aggstore.bench")
        var engine = try StorageEngine.open(at: storePath, configuration: configuration, logger: logger)
        var generator = DemoOrders(customers: max(1, records / 5))
        let encoder = demoEncoder()
        for number in 1...records {
            let order = generator.order(number: number)
            try engine.commit(order.placementBatch(unitOfWorkId: "uow-\(number)", eventId: "ev-\(number)",
                                                   record: try encoder.encode(order), withEvent: false))
        }
        let logBytes = try engine.statistics().logBytes
        var started = monotonicSeconds()
        try engine.close()
        let closeSeconds = monotonicSeconds() - started
        let snapshotBytes = (try? FileManager.default.attributesOfItem(atPath: storePath + "/SNAPSHOT")[.size] as? Int) ?? 0

        var fromSnapshot: [Double] = []
        for _ in 0..<3 {
            started = monotonicSeconds()
            engine = try StorageEngine.open(at: storePath, configuration: configuration, logger: logger)
            fromSnapshot.append(monotonicSeconds() - started)
            guard case .used? = engine.recoveryReport.snapshot, engine.lastSequence == UInt64(records) else {
                throw ValidationError("the open did not use the snapshot: \(engine.recoveryReport)")
            }
            try engine.close()
        }
        // The index's memory, in a process of its own (this one's allocator keeps the memory
        // of the store it wrote): `aggstore stats` opens the store and reports its resident size.
        let residentBytes = try residentMemoryOfStats(storePath)
        var rebuild: [Double] = []
        for _ in 0..<2 {
            try FileManager.default.removeItem(atPath: storePath + "/SNAPSHOT")
            started = monotonicSeconds()
            engine = try StorageEngine.open(at: storePath, configuration: configuration, logger: logger)
            rebuild.append(monotonicSeconds() - started)
            guard engine.recoveryReport.snapshot == nil, engine.lastSequence == UInt64(records) else {
                throw ValidationError("the rebuild did not read the whole log")
            }
            try engine.close()
        }
        let snapshot = fromSnapshot.sorted()[1], full = rebuild.min()!
        print("  opens from the snapshot: \(fromSnapshot.map(seconds)), full rebuilds: \(rebuild.map(seconds))")
        print("Open of \(records) live orders (\(logBytes / 1_048_576) MiB of log, \(snapshotBytes / 1_048_576) MiB snapshot): "
              + "from the snapshot median \(seconds(snapshot)), full rebuild \(seconds(full)) (\(String(format: "%.1f", full / snapshot))x); "
              + "close with snapshot \(seconds(closeSeconds))")
        let indexBytes = residentBytes.after - residentBytes.before
        print(String(format: "  resident memory of a process that opened it (aggstore stats): %.0f MiB after the open, %.0f MiB before it; "
                     + "the open added %.0f bytes per live record (ids here are at most %d bytes)",
                     Double(residentBytes.after) / 1_048_576, Double(residentBytes.before) / 1_048_576,
                     Double(indexBytes) / Double(records), DemoOrders.orderId(records).utf8.count))
    }

    /// Durable commits with and without a compaction running, and the log's size after it.
    func compaction() throws {
        let storePath = path + "/compaction"
        var configuration = EngineConfiguration()
        configuration.segmentSize = 8 << 20
        configuration.compaction.isAutomatic = false
        let logger = Logger(label: "aggstore.bench")
        // The dead data: `records / 10` orders, each written 6 times (5 overwrites), no fsync.
        let orders = max(1000, records / 10)
        var loading = configuration
        loading.durability = .unsafeNoSync
        var engine = try StorageEngine.open(at: storePath, configuration: loading, logger: logger)
        var generator = DemoOrders(customers: max(1, orders / 5))
        let encoder = demoEncoder()
        for round in 0..<6 {
            for number in 1...orders {
                var order = generator.order(number: number)
                order.status = "round \(round)"
                var batch = WriteBatch(unitOfWorkId: "uow-\(round)-\(number)")
                batch.put(table: "SalesOrder", id: order.id, record: try encoder.encode(order),
                          foreignKeys: [ForeignKey(field: "customerId", value: order.customerId)])
                try engine.commit(batch)
            }
        }
        try engine.close()
        engine = try StorageEngine.open(at: storePath, configuration: configuration, logger: logger)
        defer { try? engine.close() }
        let before = try engine.statistics()

        func durableCommits(_ count: Int, from first: Int) throws -> [Double] {
            var latencies: [Double] = []
            for number in first..<first + count {
                let order = generator.order(number: orders + number)
                let started = monotonicSeconds()
                try engine.commit(order.placementBatch(unitOfWorkId: "uow-live-\(number)", eventId: "ev-live-\(number)",
                                                       record: try encoder.encode(order)))
                latencies.append(monotonicSeconds() - started)
            }
            return latencies.sorted()
        }
        let quiet = try durableCommits(2000, from: 1)
        let outcome = Mutex<Result<CompactionReport, StoreError>?>(nil)
        let compactor = Thread { [engine] in
            let result = Result { () throws(StoreError) in try engine.compact(minimumDeadRatio: 0.5) }
            outcome.withLock { $0 = result }
        }
        compactor.start()
        var during: [Double] = []
        var next = 2001
        while outcome.withLock({ $0 == nil }) {
            during += try durableCommits(50, from: next)
            next += 50
        }
        let report = try outcome.withLock { $0! }.get()
        during.sort()
        let after = try engine.statistics()
        print("Compaction of \(report.segmentsCompacted) segments (\(before.logBytes / 1_048_576) MiB of log, \(orders) orders "
              + "written 6 times) in \(seconds(report.seconds)): \(report.recordsMoved) records moved")
        print("  durable commit p50 \(micros(percentile(quiet, 0.5))) p99 \(micros(percentile(quiet, 0.99))) without compaction; "
              + "p50 \(micros(percentile(during, 0.5))) p99 \(micros(percentile(during, 0.99))) during it (\(during.count) commits); "
              + String(format: "p99 ratio %.2fx", percentile(during, 0.99) / percentile(quiet, 0.99)))
        print(String(format: "  log after compaction: %.1f MiB for %.1f MiB of live records (%.2fx; the active segment is never compacted)",
                     Double(after.logBytes) / 1_048_576, Double(after.liveRecordBytes) / 1_048_576,
                     Double(after.logBytes) / Double(after.liveRecordBytes)))
    }
}

/// The resident memory `aggstore stats` reports after and before opening the store at `path`, in bytes.
private func residentMemoryOfStats(_ path: String) throws -> (after: Int, before: Int) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    process.arguments = ["stats", path]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard let line = text.split(separator: "\n").first(where: { $0.contains("process memory") }),
          case let kibibytes = line.split(separator: " ").compactMap({ Int($0) }), kibibytes.count == 2 else {
        throw ValidationError("aggstore stats did not report its memory")
    }
    return (kibibytes[0] * 1024, kibibytes[1] * 1024)
}
