@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation

/// Shared steps of the crash suite's classes: drive a workload, then recover and check.
enum CrashSuite {
    /// Whether the long mode is on (`AGGSTORE_CRASH_LONG=1`), and how much to scale budgets.
    static let longMode = ProcessInfo.processInfo.environment["AGGSTORE_CRASH_LONG"] != nil
    /// A seed from the environment, to replay one failure exactly.
    static func seed(_ name: String) -> UInt64? {
        ProcessInfo.processInfo.environment[name].flatMap { UInt64($0) }
    }

    /// The configuration the suite's stores use: small segments, so rolls happen.
    /// `snapshot` false: a clean close writes no index snapshot (the corruption class damages
    /// frames a snapshot would cover).
    static func configuration(segmentSize: Int = 4096, disabled: SyncSite? = nil, snapshot: Bool = true) -> EngineConfiguration {
        var configuration = EngineConfiguration()
        configuration.writesIndexSnapshot = snapshot
        configuration.segmentSize = segmentSize
        configuration.syncSites = SyncSites(disabled: disabled)
        // Compaction runs where a workload asks for it, never at a moment of its own choosing.
        configuration.compaction.isAutomatic = false
        // The oracle models every version a key ever had; a workload that lets compaction drop
        // tombstones says so (`CrashSuiteImageTests.Workload.dropsTombstones`).
        configuration.compactionDropsTombstones = false
        // No random salt and no clock: a seed replays the same bytes, not only the same fates.
        configuration.determinism = EngineConfiguration.Determinism(salt: 0x5EED_5A17, time: 1_700_000_000_000_000)
        return configuration
    }

    /// What happened to one commit attempt of ``drive(_:_:oracle:count:)``.
    enum Attempt {
        case acknowledged(UInt64)
        case failed(StoreError)
    }

    /// Commits up to `count` workload batches, numbered by the sequence each should get,
    /// recording issue and acknowledgement in the oracle. Stops when the store refuses writes.
    /// Returns every attempt in order.
    @discardableResult
    static func drive(_ engine: StorageEngine, _ workload: CrashWorkload, oracle: inout CommitOracle, count: Int) -> [Attempt] {
        var attempts: [Attempt] = []
        for _ in 0..<count {
            // The oracle, not the engine, says which sequence comes next.
            let number = oracle.maxAcknowledged + 1
            let batch = workload.batch(number)
            oracle.issue(batch)
            do {
                let receipt = try engine.commit(batch)
                guard receipt.sequence == number else {
                    attempts.append(.failed(StoreError(.invalidArgument, "commit got sequence \(receipt.sequence), expected \(number)")))
                    break
                }
                oracle.acknowledge(receipt)
                attempts.append(.acknowledged(receipt.sequence))
            } catch {
                precondition(error.code != .recordTooLarge && error.code != .invalidArgument, "the workload does not fit the store: \(error)")
                attempts.append(.failed(error))
                if error.code == .storeFailed || error.code == .closed { break }
            }
        }
        return attempts
    }

    /// Opens the store, checks the oracle's invariants, reopens to check I7, and settles the
    /// oracle at the recovered sequence. Returns the open engine, or nil after recording a failure.
    static func recoverAndCheck(fileSystem: any FileSystem, configuration: EngineConfiguration,
                                oracle: inout CommitOracle, tally: CrashTally, replay: String,
                                settled: (CommitOracle) -> Void = { _ in }) -> StorageEngine? {
        let engine: StorageEngine
        do {
            engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
        } catch {
            // Recovery must never fail on what a crash can leave: a torn tail is cut, nothing else
            // can appear. Corruption here would be a missing fsync or a silent truncation bug.
            tally.record(CommitOracle.Violation(invariant: error.code == .corruption ? "I8" : "other",
                                                message: "open failed after a crash: \(error)"), replay: replay)
            return nil
        }
        do {
            let files = try fileSystem.listDirectory("/store")
            let last = try oracle.check(engine, events: try engine.loggedEvents(), files: files)
            let index = try engine.readIndex { $0 }
            try engine.close()
            // What the first open served is durable from now on: a crash during the second open
            // is judged against it.
            oracle.settle(at: last)
            settled(oracle)
            // I7: a second open finds exactly the same state.
            let again = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
            guard again.lastSequence == last, try again.readIndex({ $0 }) == index else {
                throw CommitOracle.Violation(invariant: "I7", message: "a second open found a different state")
            }
            return again
        } catch let violation as CommitOracle.Violation {
            tally.record(violation, replay: replay)
        } catch {
            tally.record(other: "checking the recovered store failed: \(error)", replay: replay)
        }
        try? engine.close()
        return nil
    }
}
