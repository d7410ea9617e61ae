@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

/// Class 2 of `Docs/CRASH-TESTING.md`, after FoundationDB and TigerBeetle: from a seed, a random
/// workload of commits, deletes and events on the simulated file system, crashed at random
/// operations (power losses with random fault rates, and process crashes), recovered and
/// checked, several times in a row. Every failure names the seed that replays it exactly.
@Suite("Crash suite: seeded simulation")
struct CrashSuiteSimulationTests {
    /// Seeds per run: 1,000 in CI; the long mode runs for `AGGSTORE_CRASH_SECONDS` (default 600).
    static var seeds: [UInt64] {
        if let seed = CrashSuite.seed("AGGSTORE_SIM_SEED") { return [seed] }
        return Array(1...(CrashSuite.longMode ? 1_000_000 : 1_000))
    }

    @Test func randomWorkloadsCrashedAtRandomPointsRecover() {
        let tally = CrashTally("seeded simulation", unit: "seeds")
        let deadline = monotonicSeconds() + (ProcessInfo.processInfo.environment["AGGSTORE_CRASH_SECONDS"].flatMap(Double.init) ?? 600)
        var crashes = 0
        for seed in Self.seeds {
            if CrashSuite.longMode, monotonicSeconds() > deadline { break }
            tally.explored()
            crashes += simulate(seed: seed, tally: tally)
            if tally.anomalies > 0 { break }
        }
        print("\(tally.summary); \(crashes) crashes")
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }

    /// One seed: up to four rounds of workload, crash and recovery on the same store.
    /// Returns how many crashes it simulated.
    func simulate(seed: UInt64, tally: CrashTally) -> Int {
        var random = SplitMix64(seed: seed)
        let replay = "AGGSTORE_SIM_SEED=\(seed) swift test --filter CrashSuiteSimulationTests"
        let segmentSize = [4096, 8192, 65536][Int.random(in: 0..<3, using: &random)]
        let configuration = CrashSuite.configuration(segmentSize: segmentSize)
        // Four records and two events must fit in half a segment, the batch limit.
        let workload = CrashWorkload(seed: seed, keySpace: Int.random(in: 3...30, using: &random),
                                     maximumRecordSize: Int.random(in: 10...(segmentSize / 14), using: &random))
        var rates = SimulatedFileSystem.CrashRates()
        rates.apply = Double.random(in: 0...1, using: &random)
        rates.drop = Double.random(in: 0...1, using: &random)
        rates.tear = Double.random(in: 0...0.5, using: &random)
        rates.zeros = Double.random(in: 0...0.2, using: &random)
        rates.garble = Double.random(in: 0...0.3, using: &random)
        rates.keepDirectoryOperation = Double.random(in: 0...1, using: &random)
        let groupSize = Int.random(in: 1...4, using: &random)

        var fileSystem = SimulatedFileSystem()
        var oracle = CommitOracle()
        var crashes = 0
        for round in 0..<Int.random(in: 1...4, using: &random) {
            // Run until a randomly chosen operation, then crash a copy of the state at the first
            // point from there on that has unsynced mutations, so the crash's fates matter.
            let commits = Int.random(in: 1...40, using: &random)
            let target = Int.random(in: 1...(20 + 3 * commits), using: &random)
            let counter = Mutex(0)
            let snapshot = Mutex<(SimulatedFileSystem, CommitOracle)?>(nil)
            let shared = Mutex(oracle)
            let current = fileSystem
            current.onOperation = { _, _ in
                let count = counter.withLock { $0 += 1; return $0 }
                guard count >= target, snapshot.withLock({ $0 == nil }), !current.pendingMutations.isEmpty else { return }
                snapshot.withLock { $0 = (current.copy(), shared.withLock { $0 }) }
            }
            if let engine = round == 0
                ? try? StorageEngine.open(at: "/store", configuration: configuration, fileSystem: current, logger: quietLogger)
                : CrashSuite.recoverAndCheck(fileSystem: current, configuration: configuration, oracle: &oracle, tally: tally,
                                             replay: replay + " (recovery in round \(round))",
                                             settled: { settled in shared.withLock { $0 = settled } }) {
                shared.withLock { $0 = oracle }
                var remaining = commits
                committing: while remaining > 0, snapshot.withLock({ $0 == nil }) {
                    // A group of commits written together (one pwrite, one fsync), as
                    // concurrent units of work are.
                    let first = engine.lastSequence + 1
                    let batches = (0..<min(groupSize, remaining)).map { workload.batch(first + UInt64($0)) }
                    shared.withLock { $0.issue(group: batches) }
                    for outcome in engine.commit(group: batches) {
                        guard case let .success(receipt) = outcome else { break committing }
                        shared.withLock { $0.acknowledge(receipt) }
                    }
                    remaining -= batches.count
                }
                oracle = shared.withLock { $0 }
                // The live engine matches the model before anything crashes.
                if snapshot.withLock({ $0 == nil }) {
                    do {
                        _ = try oracle.check(engine, events: try engine.loggedEvents(), files: nil)
                    } catch let violation as CommitOracle.Violation {
                        tally.record(violation, replay: replay + " (live engine, round \(round))")
                    } catch {}
                }
                try? engine.close()
            }
            current.onOperation = nil
            guard tally.anomalies == 0 else { return crashes }
            // Crash at the chosen point if the workload reached it, otherwise at its end.
            let (image, known) = snapshot.withLock { $0 } ?? (current.copy(), oracle)
            if ProcessInfo.processInfo.environment["AGGSTORE_SIM_TRACE"] != nil {
                print("  before crash: root \(image.fileNames(in: "/", durable: true) ?? []) pending: \(image.pendingMutations.map { m -> String in if case let .write(p, _, o, b) = m { return "write \(p)@\(o)+\(b.count)" } else { return "\(m)" } })")
            }
            if Int.random(in: 0..<4, using: &random) == 0 {
                image.processCrash()
            } else {
                image.crash(seed: random.next(), rates: rates)
            }
            crashes += 1
            if ProcessInfo.processInfo.environment["AGGSTORE_SIM_TRACE"] != nil {
                print("round \(round): target \(target), snapshot \(snapshot.withLock { $0 != nil }), acked \(known.maxAcknowledged) issued \(known.maxIssued); files after crash: \(image.fileNames(in: "/store") ?? []), root: \(image.fileNames(in: "/") ?? [])")
                if let manifest = image.bytes(of: "/store/MANIFEST") { print("  manifest \(manifest.count) bytes; seg sizes: \((image.fileNames(in: "/store") ?? []).map { ($0, image.bytes(of: "/store/\($0)")?.count ?? -1) })") }
            }
            fileSystem = image
            oracle = known
        }
        if let engine = CrashSuite.recoverAndCheck(fileSystem: fileSystem, configuration: configuration, oracle: &oracle,
                                                   tally: tally, replay: replay + " (final recovery)") {
            try? engine.close()
        }
        return crashes
    }
}

@Suite("Crash suite: replay")
struct CrashSuiteReplayTests {
    @Test func aSeedReplaysTheSameBytes() {
        func run() -> [String: [UInt8]] {
            let fileSystem = SimulatedFileSystem()
            var oracle = CommitOracle()
            guard let engine = try? StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(),
                                                      fileSystem: fileSystem, logger: quietLogger) else { return [:] }
            CrashSuite.drive(engine, CrashWorkload(seed: 12), oracle: &oracle, count: 20)
            try? engine.close()
            fileSystem.crash(seed: 99)
            return CrashSuiteImageTests.contents(of: fileSystem)
        }
        let first = run()
        #expect(!first.isEmpty)
        #expect(run() == first)
    }
}
