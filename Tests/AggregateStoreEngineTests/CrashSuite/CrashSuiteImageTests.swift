@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Synchronization
import Testing

/// Class 1 of `Docs/CRASH-TESTING.md`, after ALICE and CrashMonkey: record tiny workloads on the
/// simulated file system, then at every point of the trace crash in every way a weak
/// persistence model permits for the operations not yet synced (each applied, dropped, torn at
/// 512-byte or 4 KiB sectors, zero-filled or garbled; directory operations kept or lost),
/// recover, and check the oracle.
@Suite("Crash suite: crash images")
struct CrashSuiteImageTests {
    /// A recorded point of a workload: the file system right after one operation, and what the
    /// oracle knew then.
    struct RecordedPoint: Sendable {
        var image: SimulatedFileSystem
        var oracle: CommitOracle
        var operation: String
    }

    /// A crash state for deduplication: the surviving files and the oracle's view.
    struct StateKey: Hashable {
        var files: [String: [UInt8]]
        var acknowledged: UInt64
        var issued: UInt64
    }

    /// The workloads: how many commits, with which segment size (a small one forces a roll).
    struct Workload: Sendable, CustomStringConvertible {
        var name: String
        var commits: Int
        var segmentSize: Int
        var seed: UInt64
        var maximumRecordSize = 300
        /// Commits written together (one pwrite and one fsync for the group).
        var groupSize = 1
        /// Commits after which the workload compacts every sealed segment with dead bytes,
        /// then commits the rest.
        var compactAfter: Int?
        /// Whether its compaction drops the tombstones it may; the oracle then lets a deleted
        /// key be forgotten (and start over at version 1), never come back.
        var dropsTombstones = false
        var description: String { name }

        /// `configuration` as this workload runs it.
        func configuring(_ configuration: EngineConfiguration) -> EngineConfiguration {
            var configuration = configuration
            configuration.compactionDropsTombstones = dropsTombstones
            return configuration
        }
    }

    static let workloads = [
        Workload(name: "creation and 1 commit", commits: 1, segmentSize: 4096, seed: 1),
        Workload(name: "2 commits", commits: 2, segmentSize: 4096, seed: 2),
        Workload(name: "3 commits", commits: 3, segmentSize: 4096, seed: 3),
        Workload(name: "segment roll", commits: 16, segmentSize: 4096, seed: 44, maximumRecordSize: 400),
        Workload(name: "group commits", commits: 9, segmentSize: 4096, seed: 5, maximumRecordSize: 200, groupSize: 3),
        Workload(name: "compaction", commits: 22, segmentSize: 4096, seed: 6, maximumRecordSize: 300, compactAfter: 20,
                 dropsTombstones: true),
    ]

    /// States per workload: exhaustive up to this many, sampled by seed above.
    static var budget: Int { CrashSuite.longMode ? 100_000 : 10_000 }

    /// Runs the workload on a fresh simulated file system, snapshotting after every operation.
    /// A broken invariant of the live engine after the workload is recorded in `tally`.
    static func record(_ workload: Workload, configuration: EngineConfiguration, tally: CrashTally? = nil) -> [RecordedPoint] {
        let configuration = workload.configuring(configuration)
        let fileSystem = SimulatedFileSystem()
        let oracle = Mutex(CommitOracle(tombstonesMayBeForgotten: workload.dropsTombstones))
        let points = Mutex<[RecordedPoint]>([])
        fileSystem.onOperation = { operation, path in
            let point = RecordedPoint(image: fileSystem.copy(), oracle: oracle.withLock { $0 }, operation: "\(operation) \(path)")
            points.withLock { $0.append(point) }
        }
        do {
            let engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
            let crashWorkload = CrashWorkload(seed: workload.seed, maximumRecordSize: workload.maximumRecordSize)
            for first in stride(from: UInt64(1), through: UInt64(workload.commits), by: workload.groupSize) {
                if let compactAfter = workload.compactAfter, first == UInt64(compactAfter) + 1 {
                    // Commit `first` is made while the compaction runs: from its progress
                    // callback, once it has copied its first frame, so every operation of the
                    // commit falls between two of the compaction's, the same way on every run.
                    let batch = crashWorkload.batch(first)
                    let interleaved = Mutex<Result<CommitReceipt, StoreError>?>(nil)
                    let report = try engine.compact(minimumDeadRatio: 0.01) { _ in
                        guard interleaved.withLock({ $0 == nil }) else { return }
                        oracle.withLock { $0.issue(batch) }
                        let outcome = Result { () throws(StoreError) in try engine.commit(batch) }
                        if case let .success(receipt) = outcome { oracle.withLock { $0.acknowledge(receipt) } }
                        interleaved.withLock { $0 = outcome }
                    }
                    precondition(report.segmentsCompacted > 0, "the compaction workload compacted nothing")
                    precondition(!workload.dropsTombstones || report.tombstonesDropped > 0, "the compaction dropped no tombstone")
                    _ = try interleaved.withLock { $0 }?.get()
                    let point = RecordedPoint(image: fileSystem.copy(), oracle: oracle.withLock { $0 }, operation: "end of compaction")
                    points.withLock { $0.append(point) }
                    continue
                }
                let numbers = first...min(UInt64(workload.commits), first + UInt64(workload.groupSize) - 1)
                let batches = numbers.map { crashWorkload.batch($0) }
                oracle.withLock { $0.issue(group: batches) }
                for outcome in engine.commit(group: batches) {
                    let receipt = try outcome.get()
                    oracle.withLock { $0.acknowledge(receipt) }
                }
                // A crash right after the acknowledgement, before any further operation: an
                // engine that acknowledged before its fsync would lose these commits here.
                let point = RecordedPoint(image: fileSystem.copy(), oracle: oracle.withLock { $0 },
                                          operation: "acknowledgement of commits \(numbers)")
                points.withLock { $0.append(point) }
            }
            // The live engine must already match the model, not only a recovered one.
            fileSystem.onOperation = nil
            _ = try oracle.withLock { $0 }.check(engine, events: try engine.loggedEvents(), files: nil)
            try engine.close()
        } catch let violation as CommitOracle.Violation {
            fileSystem.onOperation = nil
            tally?.record(violation, replay: "crash image: workload '\(workload.name)', the live engine after the workload")
        } catch {
            // A disabled sync site can make the workload itself fail; the points so far still count.
            fileSystem.onOperation = nil
        }
        return points.withLock { $0 }
    }

    /// The fates a crash may give one pending mutation.
    static func fates(for mutation: SimulatedMutation) -> [CrashFate] {
        guard case let .write(_, _, offset, bytes) = mutation, !bytes.isEmpty else { return [.apply, .drop] }
        var fates: [CrashFate] = [.apply, .drop, .zeros, .garble(seed: 7)]
        for sectorSize in [512, 4096] {
            let first = Int(offset) / sectorSize
            let last = (Int(offset) + bytes.count - 1) / sectorSize
            let sectors = last - first + 1
            for kept in stride(from: 1, to: sectors, by: 1) {
                fates.append(.tear(sectorSize: sectorSize, keptSectors: (0..<sectors).map { $0 < kept }))
            }
        }
        return fates
    }

    /// Every crash state of a recorded point, or a seeded sample of `limit` of them.
    static func states(of point: RecordedPoint, limit: Int, random: inout SplitMix64) -> [[CrashFate]] {
        let choices = point.image.pendingMutations.map(fates(for:))
        let total = choices.reduce(1.0) { $0 * Double($1.count) }
        if total <= Double(limit) {
            var states: [[CrashFate]] = [[]]
            for options in choices {
                states = states.flatMap { prefix in options.map { prefix + [$0] } }
            }
            return states
        }
        return (0..<limit).map { _ in choices.map { $0[Int.random(in: 0..<$0.count, using: &random)] } }
    }

    /// Crashes every recorded point of a workload in every permitted way (up to the budget),
    /// recovers and checks. Stops early after `stopAfter` anomalies.
    static func explore(_ workload: Workload, configuration: EngineConfiguration, tally: CrashTally,
                        budget: Int, stopAfter: Int = .max) {
        let configuration = workload.configuring(configuration)
        let points = record(workload, configuration: configuration, tally: tally)
        var random = SplitMix64(seed: workload.seed)
        let perPoint = max(1, budget / max(1, points.count))
        // The same image can be judged more strictly at a later point (more acknowledged), so
        // states are told apart by what the oracle knew as well as by their bytes.
        var seen = Set<StateKey>()
        for (index, point) in points.enumerated() {
            if tally.anomalies >= stopAfter { return }
            let replay = "crash image: workload '\(workload.name)', after operation \(index + 1) (\(point.operation))"
            // A process crash here, a reopen, then a power loss: what the reopen served must stay.
            checkProcessCrashThenPowerLoss(point, configuration: configuration, tally: tally, replay: replay + ", process crash")
            for fates in states(of: point, limit: perPoint, random: &random) {
                let image = point.image.copy()
                image.crash { position, _ in fates[position] }
                let key = StateKey(files: contents(of: image), acknowledged: point.oracle.maxAcknowledged,
                                   issued: point.oracle.maxIssued)
                guard seen.insert(key).inserted else { continue }
                tally.explored()
                check(image, oracle: point.oracle, workload: workload, configuration: configuration, tally: tally,
                      replay: replay + ", fates \(fates)")
                if tally.anomalies >= stopAfter { return }
            }
        }
    }

    /// The store directory's files and bytes after a crash (when volatile equals durable).
    static func contents(of image: SimulatedFileSystem) -> [String: [UInt8]] {
        guard let names = image.fileNames(in: "/store") else { return [:] }
        return Dictionary(uniqueKeysWithValues: names.map { ($0, image.bytes(of: "/store/\($0)") ?? []) })
    }

    /// Recovers a crash image, checks it, then commits once more and loses power again (I7).
    static func check(_ image: SimulatedFileSystem, oracle: CommitOracle, workload: Workload,
                      configuration: EngineConfiguration, tally: CrashTally, replay: String) {
        var oracle = oracle
        guard let engine = CrashSuite.recoverAndCheck(fileSystem: image, configuration: configuration,
                                                      oracle: &oracle, tally: tally, replay: replay) else { return }
        CrashSuite.drive(engine, CrashWorkload(seed: workload.seed &+ 1000), oracle: &oracle, count: 1)
        var then = "then a commit"
        if workload.compactAfter != nil {
            // A compaction a crash interrupted can be run again on the recovered store.
            do {
                try engine.compact(minimumDeadRatio: 0.01)
                then += " and a compaction"
            } catch {
                tally.record(other: "compacting the recovered store failed: \(error)", replay: replay)
            }
        }
        try? engine.close()
        image.crash { _, _ in .drop }
        if let again = CrashSuite.recoverAndCheck(fileSystem: image, configuration: configuration, oracle: &oracle,
                                                  tally: tally, replay: replay + ", \(then), and a second power loss") {
            try? again.close()
        }
    }

    static func checkProcessCrashThenPowerLoss(_ point: RecordedPoint, configuration: EngineConfiguration,
                                               tally: CrashTally, replay: String) {
        let image = point.image.copy()
        image.processCrash()
        var oracle = point.oracle
        guard let engine = CrashSuite.recoverAndCheck(fileSystem: image, configuration: configuration,
                                                      oracle: &oracle, tally: tally, replay: replay) else { return }
        CrashSuite.drive(engine, CrashWorkload(seed: 77), oracle: &oracle, count: 1)
        try? engine.close()
        image.crash { _, _ in .drop }
        if let again = CrashSuite.recoverAndCheck(fileSystem: image, configuration: configuration, oracle: &oracle,
                                                  tally: tally, replay: replay + ", then a commit and a power loss") {
            try? again.close()
        }
    }

    @Test func theRollWorkloadRollsToASecondSegment() {
        let points = Self.record(Self.workloads[3], configuration: CrashSuite.configuration())
        #expect(points.contains { $0.operation.contains("00000002.seg") })
    }

    @Test func theGroupWorkloadWritesEachGroupWithOneWriteAndOneSync() {
        let operations = Self.record(Self.workloads[4], configuration: CrashSuite.configuration()).map(\.operation)
        // After the open (which ends with the parent directory's fsync), each group of three
        // commits is one frame write and one fdatasync, then their acknowledgement; the first
        // also writes zeros ahead of its frames, in the same fdatasync.
        let afterOpen = operations.drop { $0 != "syncDirectory /" }.dropFirst()
        #expect(Array(afterOpen) == ["write /store/00000001.seg"] + ["1...3", "4...6", "7...9"].flatMap {
            ["write /store/00000001.seg", "sync /store/00000001.seg", "acknowledgement of commits \($0)"]
        })
    }

    @Test(arguments: workloads)
    func everyCrashStateOfATinyWorkloadRecovers(_ workload: Workload) {
        let tally = CrashTally("crash images (\(workload.name))", unit: "states")
        Self.explore(workload, configuration: CrashSuite.configuration(), tally: tally, budget: Self.budget)
        print(tally.summary)
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }
}
