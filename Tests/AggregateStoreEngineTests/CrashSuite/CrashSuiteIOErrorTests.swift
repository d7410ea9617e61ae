@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Synchronization
import Testing

/// Class 6 of `Docs/CRASH-TESTING.md`: an I/O error (EIO, ENOSPC, EDQUOT) on the N-th call of
/// each kind, once or from then on, sweeping N over every call of a workload (SQLite's loop),
/// then a power loss or a process crash, then recovery and the oracle. After a failed fsync
/// nothing is ever acknowledged again; after a failed write no commit lands behind a partial
/// frame (the injected write fails halfway). A second sweep fails calls during recovery.
@Suite("Crash suite: I/O errors")
struct CrashSuiteIOErrorTests {
    static let errnos: [Int32] = [5 /* EIO */, 28 /* ENOSPC */, 122 /* EDQUOT */]
    /// Enough commits for several segment rolls in 4 KiB segments.
    static let commits = 40

    /// How many calls of each kind a clean run of the workload makes.
    private func callCounts(seed: UInt64) throws -> [FaultInjectingFileSystem.Operation: Int] {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: fileSystem, logger: quietLogger)
        var oracle = CommitOracle()
        CrashSuite.drive(engine, CrashWorkload(seed: seed), oracle: &oracle, count: Self.commits)
        try engine.close()
        return Dictionary(uniqueKeysWithValues: FaultInjectingFileSystem.Operation.allCases.map { ($0, fileSystem.count($0)) })
    }

    @Test func everyCallFailingDuringCommitsKeepsTheInvariants() throws {
        let seed = CrashSuite.seed("AGGSTORE_IO_SEED") ?? 6
        let tally = CrashTally("I/O errors during commits", unit: "runs")
        let counts = try callCounts(seed: seed)
        let targets: [FaultInjectingFileSystem.Operation] = [.open, .write, .sync, .syncDirectory, .rename, .truncate, .size]
        for operation in targets {
            #expect(counts[operation, default: 0] > 0, "the workload makes no \(operation) call to fail")
            for skip in 0..<counts[operation, default: 0] {
                for errno in Self.errnos {
                    for persistent in [false, true] {
                        for powerLoss in [true, false] {
                            let replay = "AGGSTORE_IO_SEED=\(seed) (\(operation) #\(skip + 1), errno \(errno), persistent \(persistent), power loss \(powerLoss))"
                            run(seed: seed, fault: (operation, skip, errno, persistent), powerLoss: powerLoss, tally: tally, replay: replay)
                        }
                    }
                }
            }
        }
        print(tally.summary)
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }

    private func run(seed: UInt64, fault: (FaultInjectingFileSystem.Operation, Int, Int32, Bool), powerLoss: Bool,
                     tally: CrashTally, replay: String) {
        tally.explored()
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        fileSystem.inject(fault.0, errno: fault.2, skip: fault.1, persistent: fault.3)
        var oracle = CommitOracle()
        if let engine = try? StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: fileSystem, logger: quietLogger) {
            let attempts = CrashSuite.drive(engine, CrashWorkload(seed: seed), oracle: &oracle, count: Self.commits)
            // After a failed fsync (the injected operation, whatever the message says) the store
            // must never acknowledge again: fail-stop, never retry and acknowledge.
            if fault.0 == .sync, let failure = attempts.firstIndex(where: { if case .failed = $0 { true } else { false } }),
               attempts[(failure + 1)...].contains(where: { if case .acknowledged = $0 { true } else { false } }) {
                tally.record(CommitOracle.Violation(invariant: "fail-stop", message: "a commit was acknowledged after a failed fsync"), replay: replay)
            }
            // A live engine still accepting writes matches the model of what it acknowledged. (One
            // that stopped after a failed durable write may hold a leftover until it is reopened.)
            if engine.writer.withLock({ $0.failure == nil }) {
                do {
                    _ = try oracle.check(engine, events: try engine.loggedEvents(), files: nil)
                } catch let violation as CommitOracle.Violation {
                    tally.record(violation, replay: replay + " (live engine)")
                } catch {}
            }
            try? engine.close()
        }
        fileSystem.clearFaults()
        if powerLoss { memory.crash() }
        if let engine = CrashSuite.recoverAndCheck(fileSystem: fileSystem, configuration: CrashSuite.configuration(),
                                                   oracle: &oracle, tally: tally, replay: replay) {
            // What the recovery served must survive one more commit and a power loss.
            CrashSuite.drive(engine, CrashWorkload(seed: seed &+ 1), oracle: &oracle, count: 1)
            try? engine.close()
            memory.crash()
            if let again = CrashSuite.recoverAndCheck(fileSystem: fileSystem, configuration: CrashSuite.configuration(),
                                                      oracle: &oracle, tally: tally, replay: replay + ", then a commit and a power loss") {
                try? again.close()
            }
        }
    }

    @Test func everyCallFailingDuringRecoveryKeepsTheInvariants() throws {
        let seed = CrashSuite.seed("AGGSTORE_IO_SEED") ?? 9
        let tally = CrashTally("I/O errors during recovery", unit: "runs")
        // A store with a torn tail and a leftover segment, so recovery has repairs to make.
        let memory = InMemoryFileSystem()
        var oracle = CommitOracle()
        let engine = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: memory, logger: quietLogger)
        CrashSuite.drive(engine, CrashWorkload(seed: seed), oracle: &oracle, count: Self.commits)
        try engine.close()
        let active = try #require(memory.fileNames(in: "/store")?.filter { $0.hasSuffix(".seg") }.max())
        try memory.setBytes(memory.bytes(of: "/store/\(active)")! + [0x41, 0x47, 0x42, 0x46, 1, 2, 3], of: "/store/\(active)")
        // The leftovers of an interrupted roll and manifest install, durable, for recovery to remove.
        let next = try #require(SegmentHeader.segmentId(fromFileName: active)) + 1
        for (name, bytes) in [(SegmentHeader.fileName(for: next), SegmentHeader(segmentId: next, salt: 1, baseSequence: 1).encoded()),
                              (Format.manifestTemporaryFileName, [1, 2, 3])] {
            let handle = try memory.open("/store/\(name)", mode: .createNew)
            try handle.write(bytes, at: 0)
            try handle.sync(.full)
            try handle.close()
        }
        try memory.syncDirectory("/store")
        let recoveryCounts = FaultInjectingFileSystem(wrapping: memory.copy())
        _ = try? StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: recoveryCounts, logger: quietLogger)
        for operation in [FaultInjectingFileSystem.Operation.truncate, .sync, .syncDirectory, .removeFile, .open, .read] {
            #expect(recoveryCounts.count(operation) > 0, "recovery makes no \(operation) call to fail")
        }
        for operation in FaultInjectingFileSystem.Operation.allCases {
            for skip in 0..<recoveryCounts.count(operation) {
                for nested in 0..<3 {
                    tally.explored()
                    let replay = "AGGSTORE_IO_SEED=\(seed) (recovery: \(operation) #\(skip + 1), then \(nested) more failed recoveries)"
                    let image = memory.copy()
                    let fileSystem = FaultInjectingFileSystem(wrapping: image)
                    fileSystem.inject(operation, errno: 5, skip: skip)
                    // Up to three recoveries in a row fail (each also losing power), then one succeeds.
                    for _ in 0...nested {
                        _ = try? StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: fileSystem, logger: quietLogger)
                        image.crash()
                        fileSystem.inject(operation, errno: 5, skip: skip)
                    }
                    fileSystem.clearFaults()
                    var copy = oracle
                    if let recovered = CrashSuite.recoverAndCheck(fileSystem: fileSystem, configuration: CrashSuite.configuration(),
                                                                  oracle: &copy, tally: tally, replay: replay) {
                        try? recovered.close()
                    }
                }
            }
        }
        print(tally.summary)
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }
}
