@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Synchronization
import Testing

/// Crashes during recovery, nested up to five deep: a recovery cuts torn tails, fsyncs, removes
/// leftovers and snapshots, and writes a snapshot when it closes; a crash at any of those
/// steps, then another during the next recovery, and so on, must still leave a store whose
/// final recovery passes the oracle.
@Suite("Crash suite: crashes during recovery")
struct CrashSuiteNestedRecoveryTests {
    /// Chains per workload: a seeded sample of its recorded points.
    static var chainsPerWorkload: Int { CrashSuite.longMode ? 1000 : 100 }

    @Test func crashesDuringRecoveryNestedUpToFiveDeepRecover() {
        let tally = CrashTally("crashes during recovery, nested up to 5 deep", unit: "chains")
        var nestedCrashes = 0
        // The roll, group-commit and compaction workloads: torn tails, leftover segments and
        // manifests, and snapshots for recovery to deal with.
        for workload in CrashSuiteImageTests.workloads.suffix(3) {
            let configuration = workload.configuring(CrashSuite.configuration())
            let points = CrashSuiteImageTests.record(workload, configuration: configuration, tally: tally)
                .filter { !$0.image.pendingMutations.isEmpty }
            var random = SplitMix64(seed: workload.seed &+ 0xC0FFEE)
            for chain in 0..<min(Self.chainsPerWorkload, points.count) {
                let point = points[Int(random.next() % UInt64(points.count))]
                var image = point.image.copy()
                image.crash(seed: random.next())
                var depth = 0
                for _ in 0..<5 {
                    // Run a recovery (and the close after it) and crash it at a random one of
                    // its operations, if it gets that far.
                    let target = Int(random.next() % 12) + 1
                    let count = Mutex(0)
                    let crashed = Mutex<SimulatedFileSystem?>(nil)
                    let running = image
                    running.onOperation = { _, _ in
                        let reached = count.withLock { $0 += 1; return $0 == target }
                        if reached { crashed.withLock { $0 = running.copy() } }
                    }
                    if let engine = try? StorageEngine.open(at: "/store", configuration: configuration, fileSystem: running,
                                                            logger: quietLogger) {
                        try? engine.close()
                    }
                    running.onOperation = nil
                    guard let next = crashed.withLock({ $0 }) else { break }
                    if random.next() % 4 == 0 { next.processCrash() } else { next.crash(seed: random.next()) }
                    image = next
                    depth += 1
                }
                nestedCrashes += depth
                tally.explored()
                var oracle = point.oracle
                let replay = "workload '\(workload.name)', chain \(chain), \(depth) crashes during recovery"
                if let engine = CrashSuite.recoverAndCheck(fileSystem: image, configuration: configuration, oracle: &oracle,
                                                           tally: tally, replay: replay) {
                    try? engine.close()
                }
            }
        }
        print("\(tally.summary); \(nestedCrashes) crashes during recovery")
        #expect(nestedCrashes > 0)
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }
}
