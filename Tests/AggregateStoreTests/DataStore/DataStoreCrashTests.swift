import AggregateStore
import AggregateStoreTestKit
import Foundation
import InMemoryLogging
import Logging
import Synchronization
import Testing

/// The crash suite at the DataStore level (`Docs/CRASH-TESTING.md`, "The DataStore level"): a
/// seeded workload of units of work (commits in both forms, aborts, dropped units, conflicts,
/// empty ones; 0-2 events each) runs on the simulated file system while a subscriber handles
/// the events in batches of two and its cursor advances. The file system is crashed at every
/// operation of the run (on a copy), and at chosen operations under the running store; a new
/// DataStore recovers it, the subscriber resubscribes under its name, and D1-D6 are checked.
/// Every failure names the seed and the crash point that replay it.
@Suite("Crash suite: the DataStore level (units of work, events, subscriber cursors)")
struct DataStoreCrashTests {
    /// Units of work per run, and distinct ledger keys.
    static let units = 40
    static let keySpace = 6

    /// The seeds of a class: `AGGSTORE_DS_SEED` replays one.
    static func seeds(_ count: Int) -> [UInt64] {
        if let seed = ProcessInfo.processInfo.environment["AGGSTORE_DS_SEED"].flatMap({ UInt64($0) }) { return [seed] }
        return Array(1...UInt64(count))
    }

    /// `AGGSTORE_DS_POINT` (with `AGGSTORE_DS_SEED`) checks that one crash point only.
    static let onlyPoint = ProcessInfo.processInfo.environment["AGGSTORE_DS_POINT"].flatMap { Int($0) }

    static func replay(_ seed: UInt64, _ test: String, point: Int? = nil) -> String {
        "AGGSTORE_DS_SEED=\(seed) \(point.map { "AGGSTORE_DS_POINT=\($0) " } ?? "")swift test --filter DataStoreCrashTests/\(test)"
    }

    /// The fault rates of a seed's power losses, as the seeded simulation draws them.
    static func rates(_ seed: UInt64) -> SimulatedFileSystem.CrashRates {
        var random = SplitMix64(seed: seed ^ 0xC0FF_EE00_DA7A_5701)
        var rates = SimulatedFileSystem.CrashRates()
        rates.apply = Double.random(in: 0...1, using: &random)
        rates.drop = Double.random(in: 0...1, using: &random)
        rates.tear = Double.random(in: 0...0.5, using: &random)
        rates.zeros = Double.random(in: 0...0.2, using: &random)
        rates.garble = Double.random(in: 0...0.3, using: &random)
        rates.keepDirectoryOperation = Double.random(in: 0...1, using: &random)
        return rates
    }

    /// Crashes a file system at point `point` of a seed's run: a process crash (one in four) or
    /// a power loss with the seed's rates. Returns what it did, for the replay line.
    @discardableResult
    static func crash(_ fileSystem: SimulatedFileSystem, seed: UInt64, point: Int, tally: DataStoreCrashTally) -> String {
        var random = SplitMix64(seed: seed &* 0xD1B5_4A32_D192_ED03 &+ UInt64(point))
        if Int.random(in: 0..<4, using: &random) == 0 {
            fileSystem.processCrash()
            tally.processCrash()
            return "process crash"
        }
        let fates = random.next()
        fileSystem.crash(seed: fates, rates: rates(seed))
        return "power loss with fates \(fates)"
    }

    /// The positions whose first delivery fails in a seed's runs (about one in ten).
    static func failingPositions(_ seed: UInt64) -> Set<UInt64> {
        var random = SplitMix64(seed: seed ^ 0x0FA1_1ED0)
        return Set((1...UInt64(4 * units)).filter { _ in Int.random(in: 0..<10, using: &random) == 0 })
    }

    /// A recorded crash point: the file system right after one operation, and what was known.
    struct Point: Sendable {
        var number: Int
        var operation: String
        var knowledge: CrashKnowledge
        var image: SimulatedFileSystem
    }

    // MARK: - Every operation, on copies

    /// For each seed, one live run that snapshots the file system after every operation; each
    /// snapshot is then crashed, recovered by a new DataStore and checked.
    @Test func everyOperationOfSeededRunsCrashedRecoversEventsAndCursors() async {
        let tally = DataStoreCrashTally("DataStore level, every operation", unit: "crash points")
        let started = ContinuousClock.now
        for seed in Self.seeds(8) {
            let replay = Self.replay(seed, "everyOperationOfSeededRunsCrashedRecoversEventsAndCursors")
            let (points, problems) = await Self.record(seed: seed)
            if !problems.isEmpty {
                tally.record(DataStoreViolation("live", problems.joined(separator: "; ")), replay: replay + " (the live run)")
                continue
            }
            for point in points where Self.onlyPoint.map({ $0 == point.number }) ?? true {
                let crash = Self.crash(point.image, seed: seed, point: point.number, tally: tally)
                await tally.check(point.image, point.knowledge, keySpace: Self.keySpace,
                                  replay: Self.replay(seed, "everyOperationOfSeededRunsCrashedRecoversEventsAndCursors", point: point.number)
                                      + " (after \(point.operation); \(crash))")
            }
        }
        print("\(tally.summary); \(ContinuousClock.now - started)")
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }

    /// Runs a seed's workload on a fresh simulated file system, keeping a copy after every
    /// operation with what was known then. Returns the points and anything that went wrong live.
    static func record(seed: UInt64) async -> (points: [Point], problems: [String]) {
        let fileSystem = SimulatedFileSystem()
        let recorder = CrashRecorder()
        recorder.failFirstDelivery(of: failingPositions(seed))
        let points = Mutex<[Point]>([])
        let running = Mutex<DataStore?>(nil)
        fileSystem.onOperation = { [unowned fileSystem] operation, path in
            // The cursor first: one the event engine reports is stored by a commit that has
            // returned, so the copy holds it.
            let store = running.withLock { $0 }
            let cursor = store.map { (try? $0.events.cursor(of: LedgerDriver.subscriber)) ?? 0 } ?? 0
            let knowledge = recorder.snapshot(cursor: cursor, lastSequence: store?.engine.lastSequence ?? 0)
            let image = fileSystem.copy()
            points.withLock { $0.append(Point(number: $0.count + 1, operation: "\(operation) \(path)", knowledge: knowledge, image: image)) }
        }
        defer { fileSystem.onOperation = nil }
        let store: DataStore
        do {
            store = try DataStore.open(at: DataStoreCrashCheck.path, configuration: DataStoreCrashCheck.configuration(idStart: 1_000_000_000_000),
                                       fileSystem: fileSystem)
            try store.events.subscribe(LedgerDriver.subscriber) { try await recorder.handle($0) }
        } catch {
            return ([], ["the store does not open: \(error)"])
        }
        running.withLock { $0 = store }
        var driver = LedgerDriver(seed: seed, store: store, recorder: recorder, keySpace: keySpace)
        await driver.run(units: units)
        var problems = recorder.problems
        if problems.isEmpty {
            problems += liveProblems(store, recorder.knowledge, cursor: (try? store.events.cursor(of: LedgerDriver.subscriber)) ?? 0)
        }
        fileSystem.onOperation = nil
        if ProcessInfo.processInfo.environment["AGGSTORE_DS_TRACE"] != nil {
            let known = recorder.knowledge
            let recorded = points.withLock { $0 }
            print("seed \(seed): \(recorded.count) operations, \(known.acknowledged.count) units of work acknowledged, "
                + "refused \(known.refused.map(\.id)), \(known.lastPosition) events, \(known.delivered.count) deliveries; "
                + "points with a unit of work in flight \(recorded.filter { $0.knowledge.inFlight != nil }.count), "
                + "with the subscriber behind \(recorded.filter { $0.knowledge.lastPosition > $0.knowledge.cursor }.count), "
                + "with delivered events past the cursor \(recorded.filter { ($0.knowledge.delivered.last?.position ?? 0) > $0.knowledge.cursor }.count); "
                + "operations \(Dictionary(grouping: recorded, by: { String($0.operation.prefix { $0 != " " }) }).mapValues(\.count).sorted { $0.key < $1.key })")
        }
        try? store.close()
        return (points.withLock { $0 }, problems)
    }

    /// The live store after a run, once the subscriber has caught up: the outbox holds exactly
    /// the acknowledged events, the ledgers are as the model says, and the subscriber got every
    /// event in position order (a failed delivery retries its batch), each as committed.
    static func liveProblems(_ store: DataStore, _ knowledge: CrashKnowledge, cursor: UInt64) -> [String] {
        do {
            let log = try store.engine.events(after: 0, limit: Int.max)
            guard knowledge.inFlight == nil else { return ["\(knowledge.inFlight!.id) is still in flight"] }
            guard DataStoreCrashCheck.eventsMatch(log, knowledge.expectedEvents(includingInFlight: false)) else {
                return ["the live outbox holds \(log.count) events that differ from the \(knowledge.expectedEvents(includingInFlight: false).count) acknowledged ones"]
            }
            let state = try DataStoreCrashCheck.readState(store, keySpace: keySpace)
            guard state == knowledge.model(includingInFlight: false) else {
                return ["the live ledgers differ from the model: \(DataStoreCrashCheck.describe(state, against: knowledge.model(includingInFlight: false)))"]
            }
            var handled: UInt64 = 0
            for event in knowledge.delivered {
                guard event.position <= handled + 1, log.indices.contains(Int(event.position) - 1), log[Int(event.position) - 1] == event else {
                    return ["the subscriber got event \(event.position) after \(handled), or not as committed"]
                }
                handled = max(handled, event.position)
            }
            guard handled == log.count, cursor == handled else {
                return ["the subscriber handled up to \(handled) with cursor \(cursor) of \(log.count) events"]
            }
            return []
        } catch {
            return ["reading the live store failed: \(error)"]
        }
    }

    // MARK: - Crashes under the running store

    /// For each seed, crashes the file system under the running store at chosen operations
    /// (every later call of that store fails, as if its process had died): the units of work in
    /// progress and the subscriber's task must fail, not hang or trap, the store must close;
    /// then a new DataStore recovers the same file system and is checked.
    @Test func theFileSystemCrashesUnderTheRunningStore() async {
        let tally = DataStoreCrashTally("DataStore level, crashes under the running store", unit: "crash points")
        let started = ContinuousClock.now
        for seed in Self.seeds(5) {
            let replay = Self.replay(seed, "theFileSystemCrashesUnderTheRunningStore")
            // A first run counts the operations and records their order.
            let trace = await Self.liveCrash(seed: seed, at: nil, tally: tally, replay: replay)
            guard !trace.isEmpty else { continue }
            var random = SplitMix64(seed: seed ^ 0x11FE_C4A5)
            let chosen = Self.onlyPoint.map { [min($0, trace.count)] } ?? (0..<12).map { _ in Int.random(in: 1...trace.count, using: &random) }
            for point in chosen {
                let seen = await Self.liveCrash(seed: seed, at: point, tally: tally,
                                                replay: Self.replay(seed, "theFileSystemCrashesUnderTheRunningStore", point: point))
                // The same seed must give the same operations, or crash point N would not replay.
                if seen != Array(trace.prefix(point)) {
                    let index = zip(seen, trace).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(seen.count, point)
                    tally.record(DataStoreViolation("other", "the run is not deterministic: operation \(index + 1) was "
                        + "\(index < seen.count ? seen[index] : "missing"), the first run's \(index < trace.count ? trace[index] : "missing")"),
                        replay: Self.replay(seed, "theFileSystemCrashesUnderTheRunningStore", point: point))
                }
            }
        }
        print("\(tally.summary); \(ContinuousClock.now - started)")
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }

    /// Runs a seed's workload, crashing the file system under the store right after operation
    /// `point` (nil: never). Returns the operations seen, up to the crash.
    static func liveCrash(seed: UInt64, at point: Int?, tally: DataStoreCrashTally, replay: String) async -> [String] {
        let replay = point.map { "\(replay) (a crash under the running store after operation \($0))" } ?? replay + " (the first run)"
        let fileSystem = SimulatedFileSystem()
        let process = FaultInjectingFileSystem(wrapping: fileSystem)
        let recorder = CrashRecorder()
        recorder.failFirstDelivery(of: failingPositions(seed))
        let trace = Mutex<[String]>([])
        let running = Mutex<DataStore?>(nil)
        let atCrash = Mutex<CrashKnowledge?>(nil)
        fileSystem.onOperation = { [unowned fileSystem] operation, path in
            let count = trace.withLock { trace in
                if atCrash.withLock({ $0 != nil }) { return 0 }
                trace.append("\(operation) \(path)")
                return trace.count
            }
            guard count == point else { return }
            let store = running.withLock { $0 }
            let cursor = store.map { (try? $0.events.cursor(of: LedgerDriver.subscriber)) ?? 0 } ?? 0
            atCrash.withLock { $0 = recorder.snapshot(cursor: cursor, lastSequence: store?.engine.lastSequence ?? 0) }
            // The process dies: every later call of this store fails; then the disk crashes.
            for operation in FaultInjectingFileSystem.Operation.allCases { process.inject(operation, persistent: true) }
            crash(fileSystem, seed: seed, point: count, tally: tally)
        }
        defer { fileSystem.onOperation = nil }
        let crashed: @Sendable () -> Bool = { atCrash.withLock { $0 != nil } }
        // What the dying store reports: its failed reads, cursor commits and units of work.
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "dying-store", factory: { _ in logs })
        logger.logLevel = .info
        // No read cache: after the crash the subscriber's reads of the outbox reach the dead
        // file system and fail.
        var configuration = DataStoreCrashCheck.configuration(idStart: 1_000_000_000_000)
        configuration.engine.readCacheSize = 0
        var store: DataStore?
        do {
            store = try DataStore.open(at: DataStoreCrashCheck.path, configuration: configuration, fileSystem: process, logger: logger)
            try store?.events.subscribe(LedgerDriver.subscriber) { try await recorder.handle($0) }
        } catch {
            if !crashed() { tally.record(DataStoreViolation("live", "the store does not open: \(error)"), replay: replay) }
            store = nil
        }
        if let store {
            running.withLock { $0 = store }
            var driver = LedgerDriver(seed: seed, store: store, recorder: recorder, keySpace: keySpace, crashed: crashed)
            await driver.run(units: units)
            if !crashed() {
                var problems = recorder.problems
                if problems.isEmpty { problems = liveProblems(store, recorder.knowledge, cursor: (try? store.events.cursor(of: LedgerDriver.subscriber)) ?? 0) }
                if !problems.isEmpty { tally.record(DataStoreViolation("live", problems.joined(separator: "; ")), replay: replay) }
            } else {
                // The dead store refuses new work rather than hang, and closes.
                var probe = UnitRecord(id: "uow-after-crash")
                do {
                    let uow = try UnitOfWork.begin(on: store, id: probe.id)
                    try LedgerDriver.stage([.blind(CrashLedger(id: "L-1", owner: "o-1", balance: 1, note: "after the crash"))],
                                           [LedgerChanged(ledgerId: "L-1", unit: probe.id, index: 0, memo: "")],
                                           store: store, in: uow.context, unit: &probe, live: [:], recorder: CrashRecorder())
                    _ = try LedgerDriver.commitSynchronously(uow)
                    tally.record(DataStoreViolation("D6", "a unit of work was acknowledged after the file system crashed"), replay: replay)
                } catch {}
                recorder.refuse(probe)
                // The subscriber runs on against the dead file system for a moment: its reads
                // and cursor commits fail, and it must neither trap nor stop the close.
                recorder.openGate()
                try? await Task.sleep(for: .milliseconds(3))
                let closing = ContinuousClock.now
                try? store.close()
                if ContinuousClock.now - closing > .seconds(5) {
                    tally.record(DataStoreViolation("D6", "closing the crashed store took \(ContinuousClock.now - closing)"), replay: replay)
                }
                // Closing cancels the subscriber: it hands out nothing more.
                let handled = recorder.knowledge.delivered.count
                try? await Task.sleep(for: .milliseconds(2))
                if recorder.knowledge.delivered.count != handled {
                    tally.record(DataStoreViolation("D6", "the subscriber of the closed store still delivers events"), replay: replay)
                }
                let entries = logs.entries
                func count(_ message: String) -> Int {
                    entries.count { entry in
                        let error = entry.metadata["error"].map { "\($0)" } ?? ""
                        return "\(entry.message)".contains(message) && !error.hasPrefix("conflict") && !error.hasPrefix("duplicate")
                    }
                }
                tally.dyingStore(failedReads: count("cannot read the outbox"), failedCursors: count("cannot store the subscriber cursor"),
                                 failedCommits: count("failed to commit"))
            }
            running.withLock { $0 = nil }
        }
        let seen = trace.withLock { $0 }
        guard let point else { return seen }
        guard var knowledge = atCrash.withLock({ $0 }) else {
            tally.record(DataStoreViolation("other", "the run ended after \(seen.count) operations, before crash point \(point)"), replay: replay)
            return seen
        }
        // A commit that returned after the crash had its fsync before it: it is acknowledged.
        // Units of work refused after the crash must leave nothing either.
        let final = recorder.knowledge
        if let inFlight = knowledge.inFlight, let acknowledged = final.acknowledged.first(where: { $0.id == inFlight.id }) {
            knowledge.acknowledged.append(acknowledged)
            knowledge.inFlight = nil
        }
        knowledge.refused = final.refused.filter { $0.id != knowledge.inFlight?.id }
        fileSystem.onOperation = nil
        await tally.check(fileSystem, knowledge, keySpace: keySpace, replay: replay)
        return seen
    }
}

extension DataStoreCrashTests {
    /// A unit of work whose fsync fails has had its frame written: the engine cuts it again with
    /// a truncate it does not sync, and stops. Whether the unit of work survives a power loss
    /// depends on which of the two the disk kept, so its outcome is unknown until the store is
    /// reopened; either way it is whole, and its events are delivered exactly when it is there.
    @Test(arguments: [true, false])
    func aUnitOfWorkWhoseFsyncFailedIsInDoubtUntilTheStoreReopens(truncateSurvives: Bool) async throws {
        let fileSystem = SimulatedFileSystem()
        let faults = FaultInjectingFileSystem(wrapping: fileSystem)
        let configuration = DataStoreCrashCheck.configuration(idStart: 1)
        let store = try DataStore.open(at: DataStoreCrashCheck.path, configuration: configuration, fileSystem: faults)
        func unit(_ number: Int) throws(StoreError) -> UnitOfWork {
            let uow = try UnitOfWork.begin(on: store, id: "uow-\(number)")
            try store.save(CrashLedger(id: "L-\(number)", owner: "o-0", balance: number, note: ""), in: uow.context)
            try uow.context.emit(LedgerChanged(ledgerId: "L-\(number)", unit: uow.id, index: 0, memo: ""),
                                 aboutTable: CrashLedger.table, id: "L-\(number)")
            return uow
        }
        _ = try LedgerDriver.commitSynchronously(try unit(1))
        faults.inject(.sync, errno: 5, pathContains: ".seg")
        let error = #expect(throws: StoreError.self) { _ = try LedgerDriver.commitSynchronously(try unit(2)) }
        #expect(error?.code == .io)
        try? store.close()
        #expect(fileSystem.pendingMutations.contains { $0.isWrite } && fileSystem.pendingMutations.contains {
            if case .truncate = $0 { true } else { false }
        })
        fileSystem.crash { _, mutation in
            if case .truncate = mutation { truncateSurvives ? .apply : .drop } else { .apply }
        }
        let recovered = try DataStore.open(at: DataStoreCrashCheck.path, configuration: configuration, fileSystem: fileSystem)
        defer { try? recovered.close() }
        let inbox = RedeliveryInbox()
        try recovered.events.subscribe(LedgerDriver.subscriber) { inbox.add($0) }
        let expected = truncateSurvives ? ["uow-1"] : ["uow-1", "uow-2"]
        #expect(await DataStoreCrashCheck.eventually { inbox.all.count == expected.count })
        #expect(inbox.all.map(\.unitOfWorkId) == expected)
        #expect(inbox.all.map(\.position) == Array(1...UInt64(expected.count)))
        #expect(try recovered.engine.record(table: CrashLedger.table, id: "L-2") == nil ? truncateSurvives : !truncateSurvives)
    }
}

/// Counts what a DataStore-level class explored and found, for its summary line.
final class DataStoreCrashTally: Sendable {
    private struct Counts {
        var explored = 0
        var processCrashes = 0
        var redelivered = 0
        var inFlightApplied = 0
        var dying = (reads: 0, cursors: 0, commits: 0)
        var violations: [String: Int] = [:]
        var failures: [String] = []
    }
    let name: String
    let unit: String
    private let counts = Mutex(Counts())

    init(_ name: String, unit: String) {
        self.name = name
        self.unit = unit
    }

    func processCrash() { counts.withLock { $0.processCrashes += 1 } }

    /// What a store whose file system crashed under it logged before it was closed.
    func dyingStore(failedReads: Int, failedCursors: Int, failedCommits: Int) {
        counts.withLock { counts in
            counts.dying.reads += failedReads
            counts.dying.cursors += failedCursors
            counts.dying.commits += failedCommits
        }
    }

    func record(_ violation: DataStoreViolation, replay: String) {
        counts.withLock { counts in
            counts.violations[violation.invariant, default: 0] += 1
            if counts.failures.count < 5 { counts.failures.append("\(violation) -- replay: \(replay)") }
        }
    }

    /// Recovers and checks one crashed file system, counting the outcome.
    func check(_ fileSystem: any FileSystem, _ knowledge: CrashKnowledge, keySpace: Int, replay: String) async {
        counts.withLock { $0.explored += 1 }
        do {
            let figures = try await DataStoreCrashCheck.recoverAndCheck(fileSystem, knowledge, keySpace: keySpace)
            counts.withLock { counts in
                counts.redelivered += figures.redelivered
                if figures.inFlightApplied { counts.inFlightApplied += 1 }
            }
        } catch let violation as DataStoreViolation {
            record(violation, replay: replay)
        } catch {
            record(DataStoreViolation("other", "checking the recovered store failed: \(error)"), replay: replay)
        }
    }

    var anomalies: Int { counts.withLock { $0.violations.values.reduce(0, +) } }
    var failures: [String] { counts.withLock { $0.failures } }

    /// "DataStore level, every operation: 812 crash points (203 process crashes), 1530 events
    /// redelivered, 61 in-flight units of work recovered; lost 0, ..."
    var summary: String {
        counts.withLock { counts in
            let v = counts.violations
            let dying = counts.dying.reads + counts.dying.cursors + counts.dying.commits == 0 ? ""
                : "the dying stores logged \(counts.dying.commits) failed commits, \(counts.dying.cursors) failed cursor commits "
                    + "and \(counts.dying.reads) failed outbox reads, "
            return "\(name): \(counts.explored) \(unit) (\(counts.processCrashes) process crashes, the rest power losses), "
                + "\(counts.redelivered) events redelivered, \(counts.inFlightApplied) in-flight units of work recovered whole, \(dying)"
                + "and then: "
                + "lost acknowledged writes or events (D1) \(v["D1", default: 0]), partial units of work (D2) \(v["D2", default: 0]), "
                + "events of refused units of work (D3) \(v["D3", default: 0]), cursors out of bounds (D4) \(v["D4", default: 0]), "
                + "wrong redeliveries (D5) \(v["D5", default: 0]), stalls or failed opens (D6) \(v["D6", default: 0]), "
                + "live-run problems \(v["live", default: 0]), other failures \(v["other", default: 0])"
        }
    }
}
