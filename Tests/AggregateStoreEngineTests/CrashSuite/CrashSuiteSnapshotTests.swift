@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// Class 6 of `Docs/CRASH-TESTING.md`: damaged and stale index snapshots. A store lives through
/// clean closes (each writes a snapshot), a compaction and a process crash; then its `SNAPSHOT`
/// is replaced by every damaged or stale variant a disk or an operator could leave (bit flips,
/// cuts, zeros, the snapshot of an earlier log or of another store) and the store recovered
/// and checked against the oracle. A snapshot may only be used if it still describes the log.
@Suite("Crash suite: damaged and stale snapshots")
struct CrashSuiteSnapshotTests {
    /// The store's history, and the snapshot each clean close left.
    struct History {
        var image: SimulatedFileSystem
        var oracle: CommitOracle
        /// The snapshot of the first close (before the compaction) and of the last one.
        var beforeCompaction: [UInt8]
        var latest: [UInt8]
    }

    static func history(seed: UInt64) throws -> History {
        let image = SimulatedFileSystem()
        let configuration = CrashSuite.configuration()
        var oracle = CommitOracle()
        let workload = CrashWorkload(seed: seed)
        var engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: image, logger: quietLogger)
        CrashSuite.drive(engine, workload, oracle: &oracle, count: 14)
        try engine.close()
        let beforeCompaction = try #require(image.bytes(of: "/store/SNAPSHOT"))
        engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: image, logger: quietLogger)
        CrashSuite.drive(engine, workload, oracle: &oracle, count: 8)
        try engine.compact(minimumDeadRatio: 0.01)
        CrashSuite.drive(engine, workload, oracle: &oracle, count: 3)
        try engine.close()
        let latest = try #require(image.bytes(of: "/store/SNAPSHOT"))
        // The last process dies without a close: its commits lie after the latest snapshot.
        engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: image, logger: quietLogger)
        CrashSuite.drive(engine, workload, oracle: &oracle, count: 4)
        image.processCrash()
        return History(image: image, oracle: oracle, beforeCompaction: beforeCompaction, latest: latest)
    }

    /// Every variant of the snapshot to install, named for the replay line.
    static func variants(of history: History, foreign: [UInt8]) -> [(name: String, bytes: [UInt8], usable: Bool)] {
        var random = SplitMix64(seed: 31)
        let latest = history.latest
        var variants: [(String, [UInt8], Bool)] = [
            ("the latest snapshot", latest, true),
            ("the snapshot from before the compaction", history.beforeCompaction, false),
            ("another store's snapshot", foreign, false),
            ("an empty file", [], false),
            ("all zeros", [UInt8](repeating: 0, count: latest.count), false),
        ]
        let positions = CrashSuite.longMode ? Array(latest.indices) : (0..<300).map { _ in Int(random.next() % UInt64(latest.count)) }
        for position in positions {
            var flipped = latest
            flipped[position] ^= UInt8(1 << (random.next() % 8))
            variants.append(("a bit flipped at byte \(position)", flipped, false))
        }
        for length in stride(from: 0, to: latest.count, by: max(1, latest.count / 40)) {
            variants.append(("cut to \(length) bytes", Array(latest.prefix(length)), false))
        }
        variants.append(("one byte appended", latest + [0], false))
        return variants
    }

    @Test func everyDamagedOrStaleSnapshotIsIgnoredOrStillDescribesTheLog() throws {
        let history = try Self.history(seed: 61)
        let foreign = try Self.history(seed: 62).latest
        let tally = CrashTally("damaged and stale snapshots", unit: "snapshots")
        var ignored = 0, used = 0
        for variant in Self.variants(of: history, foreign: foreign) {
            let image = history.image.copy()
            try image.setBytes(variant.bytes, of: "/store/SNAPSHOT")
            tally.explored()
            var oracle = history.oracle
            let replay = "snapshot: \(variant.name)"
            // What the open did with it, before the check reopens the store.
            let first = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: image.copy(),
                                               logger: quietLogger)
            let report = first.recoveryReport
            try first.close()
            switch report.snapshot {
            case .used?:
                used += 1
                if !variant.usable { tally.record(other: "a snapshot that no longer describes the log was used", replay: replay) }
            case .ignored?:
                ignored += 1
                if variant.usable { tally.record(other: "a snapshot that describes the log was ignored", replay: replay) }
            case nil:
                tally.record(other: "the snapshot was not considered", replay: replay)
            }
            if let engine = CrashSuite.recoverAndCheck(fileSystem: image, configuration: CrashSuite.configuration(),
                                                       oracle: &oracle, tally: tally, replay: replay) {
                try? engine.close()
            }
        }
        print(tally.summary + "; \(used) used, \(ignored) ignored")
        #expect(used == 1)
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }
}
