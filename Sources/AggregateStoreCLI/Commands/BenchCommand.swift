import AggregateStore
import AggregateStoreDemo
import ArgumentParser
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `aggstore bench`: the engine's headline figures, measured in one run on this machine.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure commit latency against the fsync floor, lookups, CRC32C, LZ4 and open time.",
        discussion: """
        Durable commits of demo orders alternate with the floor: a plain pwrite plus fdatasync \
        of the same number of bytes to a file in the same directory. Then warm primary-key \
        lookups, CRC32C throughput, the LZ4 ratio on the demo data, and the time to open a store \
        of --open-commits commits (written without fsync to save time). Build with -c release \
        for meaningful numbers. The directory must not exist; it is removed afterwards.
        """
    )

    @Option(help: "A directory for the benchmark stores (must not exist).")
    var path: String = "/tmp/aggstore-bench-\(getpid())"

    @Option(help: "Durable commits to time (and as many floor writes).")
    var commits: Int = 2000

    @Option(help: "Commits in the store whose open time is measured.")
    var openCommits: Int = 100_000

    @Option(help: "Live orders in the store of the snapshot-open figure (a tenth of them, written six times, for compaction).")
    var snapshotRecords: Int = 1_000_000

    @Option(help: "Orders in the store of the DataStore figures (PK, FK, IN, filtered scan).")
    var datastoreOrders: Int = 100_000

    @Option(help: "Run only these figures (commit, group, cpu, crc, open, snapshot, compaction, datastore, codec); all by default.")
    var only: [Figure] = []

    @Option(help: "The group-commit runs: N threads, offN (group commit off) or tasksN; by default 1 4 16 64 off64 tasks4 tasks16 tasks64.")
    var groupRuns: [String] = []

    @Option(help: "Measure the group-commit runs this many times, interleaved, and report the medians: the disk's speed drifts by tens of percent within minutes.")
    var groupRepeats: Int = 1

    @Option(help: "Group-commit runs on a model disk whose fdatasync takes this many microseconds (plus 4 per KiB written), for repeatable comparisons; put --path on tmpfs.")
    var modelDiskSyncMicroseconds: Double?

    @Flag(help: "Keep the benchmark directory.")
    var keep = false

    /// The groups of figures the command measures, in the order it runs them.
    enum Figure: String, CaseIterable, ExpressibleByArgument {
        case commit, group, cpu, crc, open, snapshot, compaction, datastore, codec
    }

    func run() throws {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw ValidationError("\(path) exists; give a new directory")
        }
        defer { if !keep { try? FileManager.default.removeItem(atPath: path) } }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        #if DEBUG
        print("warning: this is a debug build; use `swift run -c release aggstore bench` for real figures")
        #endif
        let figures = Set(only.isEmpty ? Figure.allCases : only)
        if figures.contains(.commit) { try commitLatency() }
        if figures.contains(.group) { try GroupCommitBenchmark(path: path, commits: commits, runs: groupRuns, repeats: max(1, groupRepeats),
                                                                 fileSystem: modelDiskSyncMicroseconds.map { ModelDisk(syncMicroseconds: $0) } ?? PosixFileSystem()).run() }
        if figures.contains(.cpu) { try commitCPUCost() }
        if figures.contains(.crc) { try crcThroughput() }
        if figures.contains(.open) { try openTime() }
        if figures.contains(.snapshot) { try LifecycleBenchmarks(path: path, records: snapshotRecords).snapshotOpen() }
        if figures.contains(.compaction) { try LifecycleBenchmarks(path: path, records: snapshotRecords).compaction() }
        if figures.contains(.datastore) {
            try DataStoreBenchmark(path: path + "/datastore", orders: datastoreOrders).run()
        }
        if figures.contains(.codec) {
            let codec = try codecBenchmark(iterations: 20_000)
            print(String(format: "Record codec, demo order with 4 items, encode+decode: median %.2f us; Foundation JSON %.2f us; %.1fx",
                         codec.ours, codec.json, codec.json / codec.ours))
        }
    }

    private func commitLatency() throws {
        let storePath = path + "/commit"
        let engine = try StorageEngine.open(at: storePath, logger: Logger(label: "aggstore.bench"))
        defer { try? engine.close() }
        let floorFile = open(path + "/floor.dat", O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
        guard floorFile >= 0 else { throw ValidationError("cannot create the floor file") }
        defer { Glibc.close(floorFile) }

        let store = try DataStore.open(at: path + "/commit-datastore", logger: Logger(label: "aggstore.bench"))
        defer { try? store.close() }
        var generator = DemoOrders(customers: max(1, commits / 5))
        let encoder = demoEncoder()
        var ours: [Double] = [], floor: [Double] = [], unitsOfWork: [Double] = []
        // A unit of work's two halves: begin, create and emit; then its commit.
        var stagings: [Double] = [], unitCommits: [Double] = []
        var floorOffset: off_t = 0
        var frameBytes = 0
        var lastStats = try engine.statistics()
        for number in 1...commits {
            let order = generator.order(number: number)
            let batch = order.placementBatch(unitOfWorkId: "uow-bench-\(number)", eventId: "ev-\(number)",
                                             record: try encoder.encode(order))
            // The floor writes exactly as many bytes as the frame; which of the two goes first
            // alternates, so neither gains from running right after the other.
            let floorBytes = [UInt8](repeating: UInt8(truncatingIfNeeded: number), count: frameBytes)
            func floorWrite() throws {
                let started = monotonicSeconds()
                let written = floorBytes.withUnsafeBytes { pwrite(floorFile, $0.baseAddress, $0.count, floorOffset) }
                guard written == floorBytes.count, fdatasync(floorFile) == 0 else { throw ValidationError("floor write failed") }
                floor.append(monotonicSeconds() - started)
                floorOffset += off_t(floorBytes.count)
            }
            if number % 2 == 0, frameBytes > 0 { try floorWrite() }
            // The same order through the DataStore too: a unit of work that creates it and
            // emits its event; which of the two goes first alternates as well.
            func unitOfWork() throws {
                let started = monotonicSeconds()
                let unit = try UnitOfWork.begin(on: store)
                try store.create(order, in: unit.context)
                try unit.context.emit(OrderPlaced(orderId: order.id, customerId: order.customerId, totalCents: order.total), about: order)
                let staged = monotonicSeconds()
                try unit.commit()
                let committed = monotonicSeconds()
                unitsOfWork.append(committed - started)
                stagings.append(staged - started)
                unitCommits.append(committed - staged)
            }
            if number % 4 < 2 { try unitOfWork() }
            let started = monotonicSeconds()
            try engine.commit(batch)
            ours.append(monotonicSeconds() - started)
            if number % 4 >= 2 { try unitOfWork() }
            let stats = try engine.statistics()
            frameBytes = Int(stats.logBytes - lastStats.logBytes)
            lastStats = stats
            if number % 2 == 1 { try floorWrite() }
        }
        ours.sort()
        floor.sort()
        unitsOfWork.sort()
        stagings.sort()
        unitCommits.sort()
        let stats = try engine.statistics()
        print("Durable commit, single writer, \(commits) demo orders (avg frame \(stats.logBytes / UInt64(stats.frames)) bytes):")
        print("  AggregateStore commit     p50 \(micros(percentile(ours, 0.5)))  p99 \(micros(percentile(ours, 0.99)))")
        print("  floor pwrite+fdatasync    p50 \(micros(percentile(floor, 0.5)))  p99 \(micros(percentile(floor, 0.99)))")
        print(String(format: "  ratio ours/floor         p50 %.2fx  p99 %.2fx",
                     percentile(ours, 0.5) / percentile(floor, 0.5), percentile(ours, 0.99) / percentile(floor, 0.99)))
        print("  DataStore unit of work   p50 \(micros(percentile(unitsOfWork, 0.5)))  p99 \(micros(percentile(unitsOfWork, 0.99)))"
              + String(format: "  (%.2fx the floor; the same order created and its event emitted)", percentile(unitsOfWork, 0.5) / percentile(floor, 0.5)))
        // Staging runs right after the previous commit's fsync, with cold caches: compare it
        // with the hot loop of `--only cpu`, where a whole unit of work takes about 14 us.
        print("    of which begin, create and emit p50 \(micros(percentile(stagings, 0.5))); commit p50 \(micros(percentile(unitCommits, 0.5)))")
        print(String(format: "LZ4 on the demo data: %.2fx (%llu payload bytes stored as %llu)",
                     stats.compressionRatio, stats.payloadBytes, stats.storedBytes))

        var lookups: [Double] = []
        for round in 0..<20_000 {
            let id = DemoOrders.orderId(1 + (round * 7919) % commits)
            let started = monotonicSeconds()
            guard try engine.record(table: "SalesOrder", id: id) != nil else { throw ValidationError("lookup of \(id) failed") }
            lookups.append(monotonicSeconds() - started)
        }
        lookups.sort()
        print("PK lookup, warm cache, 20000 lookups: p50 \(micros(percentile(lookups, 0.5)))  p99 \(micros(percentile(lookups, 0.99)))")
    }

    /// The engine's own work per commit, without the fsync: what the durable latency adds to the floor.
    private func commitCPUCost() throws {
        var configuration = EngineConfiguration()
        configuration.durability = .unsafeNoSync
        let engine = try StorageEngine.open(at: path + "/cpu", configuration: configuration, logger: Logger(label: "aggstore.bench"))
        defer { try? engine.close() }
        var generator = DemoOrders(customers: max(1, commits / 5))
        let encoder = demoEncoder()
        var batches: [WriteBatch] = []
        for number in 1...commits {
            let order = generator.order(number: number)
            batches.append(order.placementBatch(unitOfWorkId: "uow-cpu-\(number)", eventId: "ev-\(number)",
                                                record: try encoder.encode(order)))
        }
        var timings: [Double] = []
        for batch in batches {
            let started = monotonicSeconds()
            try engine.commit(batch)
            timings.append(monotonicSeconds() - started)
        }
        timings.sort()
        print("Commit without fsync (the engine's own work: encode, LZ4, CRC, pwrite, index): "
              + "p50 \(micros(percentile(timings, 0.5)))  p99 \(micros(percentile(timings, 0.99)))")

        // The same orders through the DataStore: the unit of work's own work on top (ids,
        // the record codec, version checks, events, metrics, tracing).
        var storeConfiguration = DataStore.Configuration()
        storeConfiguration.engine = configuration
        let store = try DataStore.open(at: path + "/cpu-datastore", configuration: storeConfiguration, logger: Logger(label: "aggstore.bench"))
        defer { try? store.close() }
        var orders = DemoOrders(customers: max(1, commits / 5))
        var units: [Double] = []
        for number in 1...commits {
            let order = orders.order(number: number)
            let started = monotonicSeconds()
            try UnitOfWork.run(on: store) { tx in
                try store.create(order, in: tx)
                try tx.emit(OrderPlaced(orderId: order.id, customerId: order.customerId, totalCents: order.total), about: order)
            }
            units.append(monotonicSeconds() - started)
        }
        units.sort()
        print("Unit of work without fsync (create an order, emit its event, commit): "
              + "p50 \(micros(percentile(units, 0.5)))  p99 \(micros(percentile(units, 0.99)))")
    }

    private func crcThroughput() throws {
        let buffer = [UInt8](repeating: 0xA5, count: 64 << 20)
        var best = Double.infinity
        var checksum: UInt32 = 0  // printed, so the work cannot be optimised away
        for _ in 0..<10 {
            let started = monotonicSeconds()
            checksum = buffer.withUnsafeBytes { CRC32C.checksum($0) }
            best = min(best, monotonicSeconds() - started)
        }
        let gigabytes = Double(buffer.count) / 1e9
        print(String(format: "CRC32C (%@): %.2f GB/s over 64 MiB (best of 10; checksum %08x)",
                     CRC32C.isHardwareAccelerated ? "SSE4.2" : "portable", gigabytes / best, checksum))
    }

    private func openTime() throws {
        let storePath = path + "/open"
        var configuration = EngineConfiguration()
        configuration.durability = .unsafeNoSync
        let engine = try StorageEngine.open(at: storePath, configuration: configuration, logger: Logger(label: "aggstore.bench"))
        var generator = DemoOrders(customers: max(1, openCommits / 5))
        let encoder = demoEncoder()
        for number in 1...openCommits {
            let order = generator.order(number: number)
            try engine.commit(order.placementBatch(unitOfWorkId: "uow-open-\(number)", eventId: "ev-\(number)",
                                                   record: try encoder.encode(order), withEvent: false))
        }
        let stats = try engine.statistics()
        try engine.close()
        var timings: [Double] = []
        for _ in 0..<3 {
            let started = monotonicSeconds()
            let reopened = try StorageEngine.open(at: storePath, logger: Logger(label: "aggstore.bench"))
            timings.append(monotonicSeconds() - started)
            guard reopened.lastSequence == UInt64(openCommits) else { throw ValidationError("reopen lost commits") }
            try reopened.close()
        }
        timings.sort()
        print("Open (full log scan and index rebuild) of \(openCommits) commits, \(stats.logBytes / 1_048_576) MiB in "
              + "\(stats.segments.count) segments: median \(seconds(timings[1])) (min \(seconds(timings[0])))")
    }
}
