import AggregateStore
import AggregateStoreTestKit
import Foundation
import Synchronization

// The DataStore-level crash class (`Docs/CRASH-TESTING.md`, "The DataStore level"): the
// aggregate and event of its workload, what the test knows at each instant (`CrashKnowledge`),
// the recorder the driver and the subscriber report to, the driver, and the checks run after
// every recovery. The tests are in `DataStoreCrashTests.swift`.

// MARK: - The workload's aggregate and event

/// The aggregate the crash workload writes: a small key space, so units of work update and
/// delete what earlier ones wrote; `note` varies in length so that segments roll.
struct CrashLedger: Aggregate, Equatable {
    static let table = "Ledger"
    static let foreignKeys: [ForeignKeyField<CrashLedger>] = [.field(\.owner)]
    var id: String
    var owner: String
    var balance: Int
    var note: String
}

/// The event the crash workload emits; each names its unit of work and index, so a stale or
/// misplaced one never compares equal.
struct LedgerChanged: DomainEvent, Equatable {
    static let eventType = "LedgerChanged"
    var ledgerId: String
    var unit: String
    var index: Int
    var memo: String
}

// MARK: - What the test knows

/// An event as its unit of work emitted it.
struct EmittedEvent: Sendable, Equatable {
    var id: String
    var aggregateId: String
    var unitOfWorkId: String
    var payload: LedgerChanged
}

/// One unit of work as the test saw it: its writes (a nil value is a delete), its events and,
/// once acknowledged, the positions its receipt gave them.
struct UnitRecord: Sendable {
    var id: String
    var writes: [(key: String, value: CrashLedger?)] = []
    var events: [EmittedEvent] = []
    var positions: Range<UInt64> = 0..<0
}

/// The state of one ledger key: its version (every committed write or delete adds one) and its
/// value, nil for a tombstone.
struct LedgerEntry: Sendable, Equatable {
    var version: UInt64
    var value: CrashLedger?
}

/// What the test knows at one instant: acknowledged units of work, the one in flight (issued,
/// commit not returned: after a crash it is all there or not at all), the refused ones (aborted,
/// conflicted, failed before writing: none of their events may ever appear), the events the
/// subscriber handled, and its cursor as the event engine holds it, which moves only once the
/// commit storing it has returned.
struct CrashKnowledge: Sendable {
    var acknowledged: [UnitRecord] = []
    var inFlight: UnitRecord?
    var refused: [UnitRecord] = []
    var delivered: [StoredEvent] = []
    var cursor: UInt64 = 0

    /// The last acknowledged event position (0 for none).
    var lastPosition: UInt64 { acknowledged.reduce(0) { max($0, $1.positions.upperBound == 0 ? 0 : $1.positions.upperBound - 1) } }

    /// The ledger state after the acknowledged units of work, and the in-flight one if asked.
    func model(includingInFlight: Bool) -> [String: LedgerEntry] {
        var entries: [String: LedgerEntry] = [:]
        for unit in acknowledged + (includingInFlight ? inFlight.map { [$0] } ?? [] : []) {
            for (key, value) in unit.writes {
                entries[key] = LedgerEntry(version: (entries[key]?.version ?? 0) + 1, value: value)
            }
        }
        return entries
    }

    /// The outbox the acknowledged units of work (and the in-flight one if asked) imply: each
    /// event at its position, 1, 2, 3 ... in commit order, then emission order.
    func expectedEvents(includingInFlight: Bool) -> [(position: UInt64, event: EmittedEvent)] {
        var result: [(position: UInt64, event: EmittedEvent)] = []
        for unit in acknowledged {
            for (offset, event) in unit.events.enumerated() { result.append((unit.positions.lowerBound + UInt64(offset), event)) }
        }
        if includingInFlight, let inFlight {
            for event in inFlight.events { result.append((UInt64(result.count + 1), event)) }
        }
        return result
    }
}

// MARK: - The recorder

/// Where the driver and the subscriber report, under one lock, so that the crash hook can take
/// a consistent ``CrashKnowledge`` at any operation. It also holds the subscriber's gate (closed,
/// the handler waits: the subscriber lags behind the units of work) and the positions whose
/// first delivery fails (the event engine must retry them).
final class CrashRecorder: Sendable {
    private struct State {
        var knowledge = CrashKnowledge()
        /// The engine's last sequence when the in-flight unit of work was issued.
        var issuedAfter: UInt64 = 0
        var gateClosed = false
        var blocked = false
        var failFirst: Set<UInt64> = []
        var failedOnce: Set<UInt64> = []
        var problems: [String] = []
    }
    private let state = Mutex(State())

    /// What is known now, with the subscriber's cursor as the event engine holds it and the
    /// engine's last sequence, both read by the caller first (a cursor the event engine reports
    /// was stored by a commit that had returned).
    ///
    /// Once the engine's last sequence has moved past the in-flight unit of work's issue, its
    /// commit is durable and applied, even if `commit()` has not yet returned to the driver
    /// (the subscriber may already be storing a cursor past its events): it counts as
    /// acknowledged. So the same operation always gives the same knowledge, whatever the
    /// threads' timing.
    func snapshot(cursor: UInt64, lastSequence: UInt64) -> CrashKnowledge {
        state.withLock { state in
            var knowledge = state.knowledge
            knowledge.cursor = cursor
            if var unit = knowledge.inFlight, lastSequence > state.issuedAfter {
                let next = knowledge.lastPosition + 1
                unit.positions = unit.events.isEmpty ? 0..<0 : next..<next + UInt64(unit.events.count)
                knowledge.acknowledged.append(unit)
                knowledge.inFlight = nil
            }
            return knowledge
        }
    }

    /// What the driver knows, once it has nothing in flight.
    var knowledge: CrashKnowledge { state.withLock { $0.knowledge } }

    /// Anything the driver saw go wrong while the store was live.
    var problems: [String] { state.withLock { $0.problems } }

    func problem(_ message: String) { state.withLock { $0.problems.append(message) } }

    /// The unit of work is about to commit; the engine's last sequence is `lastSequence`.
    func issue(_ unit: UnitRecord, after lastSequence: UInt64) {
        state.withLock { state in
            state.knowledge.inFlight = unit
            state.issuedAfter = lastSequence
        }
    }

    /// The unit of work's commit returned (with `receipt` in the explicit form; the closure
    /// form returns none); its events must have the next positions.
    func acknowledge(_ unit: UnitRecord, _ receipt: UnitOfWorkReceipt?) {
        state.withLock { state in
            var unit = unit
            let next = state.knowledge.lastPosition + 1
            let expected = next..<next + UInt64(unit.events.count)
            if let receipt {
                if receipt.eventPositions != expected, !(unit.events.isEmpty && receipt.eventPositions.isEmpty) {
                    state.problems.append("\(unit.id) was acknowledged with positions \(receipt.eventPositions), expected \(expected)")
                }
                if receipt.unitOfWorkId != unit.id {
                    state.problems.append("\(unit.id) was acknowledged as \(receipt.unitOfWorkId)")
                }
                if (receipt.sequence == nil) != (unit.writes.isEmpty && unit.events.isEmpty) {
                    state.problems.append("\(unit.id) was acknowledged with sequence \(String(describing: receipt.sequence))")
                }
            }
            unit.positions = unit.events.isEmpty ? 0..<0 : expected
            state.knowledge.acknowledged.append(unit)
            if state.knowledge.inFlight?.id == unit.id { state.knowledge.inFlight = nil }
        }
    }

    /// The unit of work was aborted or refused before anything was written.
    func refuse(_ unit: UnitRecord) {
        state.withLock { state in
            state.knowledge.refused.append(unit)
            if state.knowledge.inFlight?.id == unit.id { state.knowledge.inFlight = nil }
        }
    }

    /// Closes the gate: the next event handled waits until ``openGate()``.
    func closeGate() { state.withLock { $0.gateClosed = true } }

    func openGate() {
        state.withLock { state in
            state.gateClosed = false
            state.blocked = false
        }
    }

    var isGateClosed: Bool { state.withLock { $0.gateClosed } }

    /// Whether the handler is waiting at the closed gate.
    var isBlocked: Bool { state.withLock { $0.blocked } }

    /// Makes the first delivery of each of these positions fail.
    func failFirstDelivery(of positions: Set<UInt64>) { state.withLock { $0.failFirst = positions } }

    /// The subscriber's handler: waits at the gate, fails where told to, then records the event.
    func handle(_ event: StoredEvent) async throws {
        while state.withLock({ state in
            if state.gateClosed { state.blocked = true }
            return state.gateClosed
        }) {
            if Task.isCancelled { throw CancellationError() }
            try? await Task.sleep(for: .microseconds(100))
        }
        // Checked under the lock that records the event: once the store is closed (its
        // subscriber cancelled), nothing more is recorded.
        try state.withLock { state throws(HandlerError) in
            if Task.isCancelled { throw .cancelled }
            if state.failFirst.contains(event.position), state.failedOnce.insert(event.position).inserted {
                throw .injected
            }
            state.knowledge.delivered.append(event)
        }
    }

    /// Why the handler threw: the planned failure of a first delivery, or cancellation.
    enum HandlerError: Error {
        case injected, cancelled
    }
}

// MARK: - Timing

extension DataStoreCrashCheck {
    /// Polls `condition` every 100 µs until it holds (true) or `timeout` passes (false): a
    /// stalled subscriber fails the check instead of hanging the test. It gives up only after
    /// 50,000 polls as well: while other tests hold the cooperative threads, this task and the
    /// subscriber's wait together, and the time that passes says nothing about a stall.
    static func eventually(timeout: Duration = .seconds(20), _ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var polls = 0
        while !condition() {
            polls += 1
            if polls > 50_000, ContinuousClock.now > deadline { return false }
            try? await Task.sleep(for: .microseconds(100))
        }
        return true
    }
}

/// Collects what a handler saw after a recovery.
final class RedeliveryInbox: Sendable {
    private let events = Mutex<[StoredEvent]>([])
    func add(_ event: StoredEvent) { events.withLock { $0.append(event) } }
    var all: [StoredEvent] { events.withLock { $0 } }
}

// MARK: - The driver

/// Runs the seeded workload of units of work on a live store and reports to a
/// ``CrashRecorder``. Unit *k* is a function of the seed, *k* and the acknowledged state, and the
/// subscriber runs only while the driver waits for it (or waits at its closed gate), so a seed
/// gives the same file-system operations in the same order on every run: crash point N
/// replays.
struct LedgerDriver {
    /// The durable subscriber name of the workload.
    static let subscriber = "ledger-mirror"

    let seed: UInt64
    let store: DataStore
    let recorder: CrashRecorder
    let keySpace: Int
    /// Whether the file system has crashed under the store (the live-crash runs): the driver
    /// then stops waiting and stops issuing work.
    let crashed: @Sendable () -> Bool
    /// The acknowledged ledger state, which is the store's: nothing else writes.
    private var live: [String: CrashLedger] = [:]
    /// Units of work left in the current lag episode (the subscriber's gate is closed).
    private var lagRemaining = 0

    init(seed: UInt64, store: DataStore, recorder: CrashRecorder, keySpace: Int, crashed: @escaping @Sendable () -> Bool = { false }) {
        self.seed = seed
        self.store = store
        self.recorder = recorder
        self.keySpace = keySpace
        self.crashed = crashed
    }

    /// One planned write of a unit of work.
    enum Write {
        /// `create` of a key that does not exist.
        case create(CrashLedger)
        /// `load`, then `save`: checked against the version read.
        case replace(CrashLedger)
        /// A partial `update` of the balance.
        case adjust(String, balance: Int)
        /// `delete` of a live key.
        case delete(String)
        /// `save` without reading first: a blind upsert.
        case blind(CrashLedger)

        var key: String {
            switch self {
            case let .create(value), let .replace(value), let .blind(value): value.id
            case let .adjust(key, _), let .delete(key): key
            }
        }
    }

    /// Runs units of work 1...`units` (fewer if the store crashes or something goes wrong), then
    /// lets the subscriber catch up.
    mutating func run(units: Int) async {
        for number in 1...units {
            if crashed() || !recorder.problems.isEmpty { return }
            var random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(number))
            if lagRemaining == 0, Int.random(in: 0..<100, using: &random) < 25 {
                // The subscriber is idle and caught up here: from now on it waits at the gate
                // after reading its next batch, while later units of work commit.
                recorder.closeGate()
                lagRemaining = Int.random(in: 2...5, using: &random)
            }
            let shape = Int.random(in: 0..<100, using: &random)
            let id = "uow-\(number)"
            switch shape {
            case 0..<60: await commit(id, &random)
            case 60..<68: await abortByThrowing(id, &random)
            case 68..<73: explicitAbort(id, &random, drop: false)
            case 73..<76: explicitAbort(id, &random, drop: true)
            case 76..<90: await conflict(id, &random)
            default: await empty(id)
            }
            if lagRemaining > 0 {
                lagRemaining -= 1
                if lagRemaining == 0 {
                    recorder.openGate()
                    guard await settle(after: id) else { return }
                }
            }
        }
        if recorder.isGateClosed {
            recorder.openGate()
            _ = await settle(after: "the last unit of work")
        }
    }

    // MARK: Shapes

    /// A unit of work that commits: 0-3 writes and 0-2 events, in the closure form or the
    /// explicit one (with a synchronous or an asynchronous commit).
    private mutating func commit(_ id: String, _ random: inout SplitMix64) async {
        let writes = plan(&random, unit: id)
        let events = planEvents(&random, unit: id, about: writes.map(\.key))
        let form = Int.random(in: 0..<3, using: &random)
        var unit = UnitRecord(id: id)
        let store = store, recorder = recorder, live = live
        if form == 0 {
            var issued = false
            do {
                try await UnitOfWork.run(on: store, id: id) { tx in
                    try Self.stage(writes, events, store: store, in: tx, unit: &unit, live: live, recorder: recorder)
                    recorder.issue(unit, after: store.engine.lastSequence)
                    issued = true
                }
            } catch {
                failed(unit, error, atCommit: issued)
                return
            }
            acknowledged(unit, nil)
        } else {
            let uow: UnitOfWork
            do {
                uow = try UnitOfWork.begin(on: store, id: id)
            } catch {
                failed(unit, error, atCommit: false)
                return
            }
            do {
                try Self.stage(writes, events, store: store, in: uow.context, unit: &unit, live: live, recorder: recorder)
            } catch {
                uow.abort()
                failed(unit, error, atCommit: false)
                return
            }
            recorder.issue(unit, after: store.engine.lastSequence)
            let receipt: UnitOfWorkReceipt
            do {
                receipt = form == 1 ? try Self.commitSynchronously(uow) : try await uow.commit()
            } catch {
                failed(unit, error, atCommit: true)
                return
            }
            acknowledged(unit, receipt)
        }
        if !unit.events.isEmpty { _ = await settle(after: id) }
    }

    /// A unit of work whose action throws: a duplicate `create` or an error of its own, after
    /// staging writes and events. Nothing may be written.
    private mutating func abortByThrowing(_ id: String, _ random: inout SplitMix64) async {
        let writes = plan(&random, unit: id)
        let events = planEvents(&random, unit: id, about: writes.map(\.key))
        // A live key this unit of work does not write: creating it again is a duplicate.
        let duplicate = live.values.filter { value in !writes.contains { $0.key == value.id } }.min { $0.id < $1.id }
        let throwsDuplicate = duplicate != nil && Int.random(in: 0..<2, using: &random) == 0
        var unit = UnitRecord(id: id)
        let store = store, recorder = recorder, live = live
        do {
            try await UnitOfWork.run(on: store, id: id) { tx in
                try Self.stage(writes, events, store: store, in: tx, unit: &unit, live: live, recorder: recorder)
                if throwsDuplicate, let duplicate { try store.create(duplicate, in: tx) }
                throw ActionFailed()
            }
            recorder.problem("\(id): a unit of work whose action threw committed")
        } catch let error as StoreError where error.code == .duplicate && throwsDuplicate {
            recorder.refuse(unit)
        } catch is ActionFailed {
            recorder.refuse(unit)
        } catch {
            failed(unit, error, atCommit: false)
        }
    }

    /// A unit of work that stages writes and events and is then aborted, or dropped without
    /// commit or abort.
    private mutating func explicitAbort(_ id: String, _ random: inout SplitMix64, drop: Bool) {
        let writes = plan(&random, unit: id)
        let events = planEvents(&random, unit: id, about: writes.map(\.key))
        var unit = UnitRecord(id: id)
        do {
            let uow = try UnitOfWork.begin(on: store, id: id)
            do {
                try Self.stage(writes, events, store: store, in: uow.context, unit: &unit, live: live, recorder: recorder)
            } catch {
                uow.abort()
                throw error
            }
            if !drop { uow.abort() }
        } catch {
            failed(unit, error, atCommit: false)
            return
        }
        recorder.refuse(unit)
    }

    /// Unit of work A reads a ledger, unit of work B changes it and commits, then A writes it,
    /// emits events and tries to commit: a conflict, and none of A's events may ever appear.
    private mutating func conflict(_ id: String, _ random: inout SplitMix64) async {
        let key = "L-\(Int.random(in: 0..<keySpace, using: &random))"
        var unit = UnitRecord(id: id + "-a")
        let uow: UnitOfWork
        do {
            uow = try UnitOfWork.begin(on: store, id: unit.id)
        } catch {
            failed(unit, error, atCommit: false)
            return
        }
        do {
            _ = try store.load(CrashLedger.self, id: key, in: uow.context)
        } catch {
            uow.abort()
            failed(unit, error, atCommit: false)
            return
        }
        // B: a committing unit of work that writes the same key.
        let interfering: Write = if live[key] == nil {
            .create(ledger(key, unit: id + "-b", &random))
        } else if Int.random(in: 0..<4, using: &random) == 0 {
            .delete(key)
        } else {
            .replace(ledger(key, unit: id + "-b", &random))
        }
        let otherEvents = planEvents(&random, unit: id + "-b", about: [key])
        await commitPlanned(id + "-b", [interfering], otherEvents)
        guard !crashed(), recorder.problems.isEmpty else {
            uow.abort()
            recorder.refuse(unit)
            return
        }
        let events = planEvents(&random, unit: unit.id, about: [key])
        do {
            // A's own view: the version it read is the base of the check at commit.
            try Self.stage([.blind(ledger(key, unit: unit.id, &random))], events, store: store, in: uow.context,
                           unit: &unit, live: live, recorder: recorder)
        } catch {
            uow.abort()
            failed(unit, error, atCommit: false)
            return
        }
        recorder.refuse(unit)
        do {
            _ = try Self.commitSynchronously(uow)
            recorder.problem("\(unit.id): a unit of work that lost a conflict committed")
        } catch where error.code == .conflict || error.code == .duplicate {
            // Expected: nothing was written.
        } catch {
            if !crashed() { recorder.problem("\(unit.id): a conflicting commit failed with \(error), not a conflict") }
        }
    }

    /// A unit of work that stages nothing: it commits without writing.
    private mutating func empty(_ id: String) async {
        do {
            let uow = try UnitOfWork.begin(on: store, id: id)
            let receipt = try Self.commitSynchronously(uow)
            acknowledged(UnitRecord(id: id), receipt)
        } catch {
            failed(UnitRecord(id: id), error, atCommit: false)
        }
    }

    /// Commits planned writes and events in the explicit form (B of a conflict).
    private mutating func commitPlanned(_ id: String, _ writes: [Write], _ events: [LedgerChanged]) async {
        var unit = UnitRecord(id: id)
        let uow: UnitOfWork
        do {
            uow = try UnitOfWork.begin(on: store, id: id)
        } catch {
            failed(unit, error, atCommit: false)
            return
        }
        do {
            try Self.stage(writes, events, store: store, in: uow.context, unit: &unit, live: live, recorder: recorder)
        } catch {
            uow.abort()
            failed(unit, error, atCommit: false)
            return
        }
        recorder.issue(unit, after: store.engine.lastSequence)
        do {
            let receipt = try Self.commitSynchronously(uow)
            acknowledged(unit, receipt)
        } catch {
            failed(unit, error, atCommit: true)
            return
        }
        if !unit.events.isEmpty { _ = await settle(after: id) }
    }

    // MARK: Steps

    /// Stages the writes and events in `tx`, recording them in `unit`.
    static func stage(_ writes: [Write], _ events: [LedgerChanged], store: DataStore, in tx: borrowing TransactionContext,
                      unit: inout UnitRecord, live: [String: CrashLedger], recorder: CrashRecorder) throws {
        for write in writes {
            switch write {
            case let .create(value):
                try store.create(value, in: tx)
                unit.writes.append((value.id, value))
            case let .replace(value):
                _ = try store.load(CrashLedger.self, id: value.id, in: tx)
                try store.save(value, in: tx)
                unit.writes.append((value.id, value))
            case let .adjust(key, balance):
                let updated = try store.update(CrashLedger.self, id: key, set: ["balance": .set(.integer(Int64(balance)))], in: tx)
                var expected = live[key]
                expected?.balance = balance
                if updated != expected { recorder.problem("\(unit.id): update of \(key) gave \(updated), expected \(String(describing: expected))") }
                unit.writes.append((key, updated))
            case let .delete(key):
                guard try store.delete(CrashLedger.self, id: key, in: tx) else {
                    recorder.problem("\(unit.id): delete of the live \(key) found nothing")
                    continue
                }
                unit.writes.append((key, nil))
            case let .blind(value):
                try store.save(value, in: tx)
                unit.writes.append((value.id, value))
            }
        }
        for payload in events {
            let eventId = try tx.emit(payload, aboutTable: CrashLedger.table, id: payload.ledgerId)
            unit.events.append(EmittedEvent(id: eventId, aggregateId: payload.ledgerId, unitOfWorkId: unit.id, payload: payload))
        }
    }

    /// The synchronous commit, which an `async` caller would not pick by itself.
    static func commitSynchronously(_ uow: consuming UnitOfWork) throws(StoreError) -> UnitOfWorkReceipt {
        try uow.commit()
    }

    private mutating func acknowledged(_ unit: UnitRecord, _ receipt: UnitOfWorkReceipt?) {
        recorder.acknowledge(unit, receipt)
        for (key, value) in unit.writes { live[key] = value }
    }

    /// A unit of work failed. Before a crash nothing may fail but what the shape intends; after
    /// one, a commit that was under way is in doubt (the recorder keeps it in flight) and
    /// anything else wrote nothing.
    private func failed(_ unit: UnitRecord, _ error: any Error, atCommit: Bool) {
        if atCommit, let error = error as? StoreError, error.code != .conflict, error.code != .duplicate, crashed() {
            return  // in doubt: it stays in flight
        }
        recorder.refuse(unit)
        if !crashed() { recorder.problem("\(unit.id) failed \(atCommit ? "to commit" : "before its commit"): \(error)") }
    }

    /// After a unit of work with events: with the gate open, waits until the subscriber has
    /// handled every event; with it closed, until the handler waits at the gate. Returns false
    /// if the store crashed or delivery stalled.
    private func settle(after id: String) async -> Bool {
        let subscriber = Self.subscriber
        let store = store, recorder = recorder, crashed = crashed
        let settled: Bool
        if recorder.isGateClosed {
            settled = await DataStoreCrashCheck.eventually { recorder.isBlocked || crashed() }
        } else {
            let target = store.engine.lastEventPosition
            settled = await DataStoreCrashCheck.eventually { ((try? store.events.cursor(of: subscriber)) ?? 0) >= target || crashed() }
        }
        if !settled { recorder.problem("delivery stalled after \(id)") }
        return settled && !crashed()
    }

    // MARK: Planning

    /// 1-3 writes of distinct keys (rarely none), valid against the acknowledged state.
    private func plan(_ random: inout SplitMix64, unit: String) -> [Write] {
        let count = Int.random(in: 0..<10, using: &random) == 0 ? 0 : Int.random(in: 1...3, using: &random)
        var keys: [String] = []
        while keys.count < min(count, keySpace) {
            let key = "L-\(Int.random(in: 0..<keySpace, using: &random))"
            if !keys.contains(key) { keys.append(key) }
        }
        return keys.map { key in
            guard live[key] != nil else {
                return Int.random(in: 0..<5, using: &random) == 0 ? .blind(ledger(key, unit: unit, &random)) : .create(ledger(key, unit: unit, &random))
            }
            switch Int.random(in: 0..<10, using: &random) {
            case 0, 1: return .delete(key)
            case 2, 3: return .adjust(key, balance: Int.random(in: -1000...1000, using: &random))
            case 4: return .blind(ledger(key, unit: unit, &random))
            default: return .replace(ledger(key, unit: unit, &random))
            }
        }
    }

    /// 0-2 events about the given keys (or any key when there are none).
    private func planEvents(_ random: inout SplitMix64, unit: String, about keys: [String]) -> [LedgerChanged] {
        (0..<Int.random(in: 0...2, using: &random)).map { index in
            let key = keys.isEmpty ? "L-\(Int.random(in: 0..<keySpace, using: &random))" : keys[Int.random(in: 0..<keys.count, using: &random)]
            return LedgerChanged(ledgerId: key, unit: unit, index: index,
                                 memo: String(repeating: "m", count: Int.random(in: 0...60, using: &random)))
        }
    }

    /// A new value for a ledger, naming the unit of work that writes it.
    private func ledger(_ key: String, unit: String, _ random: inout SplitMix64) -> CrashLedger {
        CrashLedger(id: key, owner: "o-\(Int.random(in: 0..<3, using: &random))", balance: Int.random(in: -1000...1000, using: &random),
                    note: "\(unit)/\(key):" + String(repeating: "n", count: Int.random(in: 0...250, using: &random)))
    }

    struct ActionFailed: Error {}
}

// MARK: - The checks after a recovery

/// A broken DataStore-level invariant (D1-D6 of `Docs/CRASH-TESTING.md`).
struct DataStoreViolation: Error, CustomStringConvertible {
    var invariant: String
    var message: String
    var description: String { "\(invariant): \(message)" }

    init(_ invariant: String, _ message: String) {
        self.invariant = invariant
        self.message = message
    }
}

/// What one recovery found, for the summary line.
struct RecoveryFigures: Sendable {
    var redelivered = 0
    var inFlightApplied = false
}

enum DataStoreCrashCheck {
    static let path = "/store"
    /// Every event's occurred-at and every commit's time: fixed, so a seed replays byte for byte.
    static let time: Int64 = 1_700_000_000_000_000

    /// The settings of the crash workload's stores: 4 KiB segments (so they roll), deterministic
    /// ids, salt and clocks, batches of two events, fast retries.
    static func configuration(idStart: Int64) -> DataStore.Configuration {
        var configuration = DataStore.Configuration()
        configuration.engine.segmentSize = 4096
        // A background compaction would make the file operations, and so the crash points,
        // differ from run to run.
        configuration.engine.compaction.isAutomatic = false
        configuration.engine.determinism = EngineConfiguration.Determinism(salt: 0x5EED_5A17, time: time)
        configuration.ids = .deterministic(startingAt: idStart)
        configuration.clock = { DataStoreCrashCheck.time }
        configuration.delivery.batchSize = 2
        configuration.delivery.initialBackoff = .milliseconds(1)
        configuration.delivery.maximumBackoff = .milliseconds(4)
        return configuration
    }

    /// Opens a new data store on a crashed file system and checks it against what was known at
    /// the crash: D1 nothing acknowledged is lost, D2 the in-flight unit of work is all there or
    /// absent, D3 nothing of a refused unit of work, D4 the cursor lies between the last one
    /// acknowledged and the events delivered, D5 redelivery resumes right after the cursor, in
    /// order and unchanged, D6 the store opens, delivers and takes new work.
    static func recoverAndCheck(_ fileSystem: any FileSystem, _ knowledge: CrashKnowledge, keySpace: Int) async throws -> RecoveryFigures {
        let configuration = configuration(idStart: 2_000_000_000_000)
        let subscriber = LedgerDriver.subscriber
        let store: DataStore
        do {
            store = try DataStore.open(at: path, configuration: configuration, fileSystem: fileSystem)
        } catch {
            throw DataStoreViolation("D6", "the store does not open after the crash: \(error)")
        }
        var figures = RecoveryFigures()
        do {
            let cursor = try store.events.cursor(of: subscriber)
            let log = try store.engine.events(after: 0, limit: Int.max)
            let last = UInt64(log.count)
            guard log.enumerated().allSatisfy({ $0.element.position == UInt64($0.offset + 1) }), store.engine.lastEventPosition == last else {
                throw DataStoreViolation("D5", "the outbox positions are \(log.map(\.position)), last \(store.engine.lastEventPosition)")
            }
            // D3: nothing of an aborted, conflicted or failed unit of work.
            let refusedUnits = Set(knowledge.refused.map(\.id))
            let refusedEvents = Set(knowledge.refused.flatMap { $0.events.map(\.id) })
            if let ghost = log.first(where: { refusedEvents.contains($0.event.id) || refusedUnits.contains($0.unitOfWorkId) }) {
                throw DataStoreViolation("D3", "event \(ghost.position) (\(ghost.event.id)) of refused unit of work \(ghost.unitOfWorkId) is in the outbox")
            }
            if let ghost = knowledge.delivered.first(where: { refusedEvents.contains($0.event.id) }) {
                throw DataStoreViolation("D3", "event \(ghost.event.id) of refused unit of work \(ghost.unitOfWorkId) was delivered")
            }
            // D1: every acknowledged event, at its position, as emitted.
            for (position, expected) in knowledge.expectedEvents(includingInFlight: false) {
                guard position <= last, matches(log[Int(position) - 1], position, expected) else {
                    throw DataStoreViolation("D1", "event \(position) of acknowledged unit of work \(expected.unitOfWorkId) is "
                        + (position <= last ? "changed: \(log[Int(position) - 1])" : "lost (the outbox ends at \(last))"))
                }
            }
            // D1, D2: the ledgers are as the acknowledged units of work leave them, plus the
            // in-flight one whole or not at all, and its events with it.
            let state = try readState(store, keySpace: keySpace)
            let acknowledged = knowledge.model(includingInFlight: false)
            let candidates = knowledge.inFlight == nil ? [false] : [false, true]
            guard let applied = candidates.first(where: { candidate in
                state == knowledge.model(includingInFlight: candidate)
                    && eventsMatch(log, knowledge.expectedEvents(includingInFlight: candidate))
            }) else {
                if let key = acknowledged.keys.sorted().first(where: { (state[$0]?.version ?? 0) < acknowledged[$0]!.version }) {
                    throw DataStoreViolation("D1", "\(key) is at version \(state[key]?.version ?? 0); acknowledged units of work took it to \(acknowledged[key]!.version)")
                }
                throw DataStoreViolation("D2", "neither the acknowledged units of work nor those and in-flight \(knowledge.inFlight?.id ?? "-") "
                    + "explain the recovered state (\(describe(state, against: acknowledged))) with \(last) events "
                    + "(acknowledged \(knowledge.expectedEvents(includingInFlight: false).count), with the in-flight one "
                    + "\(knowledge.expectedEvents(includingInFlight: true).count))")
            }
            figures.inFlightApplied = applied
            let live = state.filter { $0.value.value != nil }
            guard try store.engine.ids(table: CrashLedger.table) == live.keys.sorted() else {
                throw DataStoreViolation("D2", "ids(table:) is \(try store.engine.ids(table: CrashLedger.table)), the model's live keys \(live.keys.sorted())")
            }
            for owner in 0..<3 {
                let expected = live.filter { $0.value.value?.owner == "o-\(owner)" }.keys.sorted()
                guard try store.engine.ids(table: CrashLedger.table, field: "owner", value: "o-\(owner)") == expected else {
                    throw DataStoreViolation("D2", "the owner index for o-\(owner) differs from the model's \(expected)")
                }
            }
            // D4: the cursor is no further than what was delivered before the crash, and no
            // earlier than the last cursor whose commit returned.
            let deliveredBefore = Dictionary(knowledge.delivered.map { ($0.position, $0) }, uniquingKeysWith: { first, _ in first })
            guard cursor <= last else {
                throw DataStoreViolation("D4", "the recovered cursor \(cursor) is beyond the outbox's last event \(last)")
            }
            guard cursor >= knowledge.cursor else {
                throw DataStoreViolation("D4", "the recovered cursor \(cursor) is behind \(knowledge.cursor), a cursor whose commit had returned")
            }
            if cursor > 0, let never = (1...cursor).first(where: { deliveredBefore[$0] == nil }) {
                throw DataStoreViolation("D4", "the recovered cursor \(cursor) covers event \(never), which was never delivered before the crash")
            }
            // D1: an event delivered before the crash came from an acknowledged commit: it is
            // still there, unchanged.
            for event in knowledge.delivered where event.position > last || log[Int(event.position) - 1] != event {
                throw DataStoreViolation("D1", "event \(event.position), delivered before the crash, is "
                    + (event.position > last ? "lost" : "changed: \(log[Int(event.position) - 1])"))
            }
            // D5: resubscribed under the same name, the subscriber gets exactly the events after
            // its cursor, in position order, each as committed.
            let inbox = RedeliveryInbox()
            try store.events.subscribe(subscriber) { inbox.add($0) }
            guard await eventually({ ((try? store.events.cursor(of: subscriber)) ?? 0) >= last }) else {
                throw DataStoreViolation("D6", "delivery after the restart stalled at cursor \((try? store.events.cursor(of: subscriber)) ?? 0) of \(last)")
            }
            let redelivered = inbox.all
            let expected = Array(log.dropFirst(Int(cursor)))
            guard redelivered == expected else {
                let index = zip(redelivered, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(redelivered.count, expected.count)
                throw DataStoreViolation("D5", "after cursor \(cursor) the subscriber got positions \(redelivered.map(\.position)), "
                    + "expected \(expected.map(\.position)); first difference at index \(index)")
            }
            figures.redelivered = redelivered.count
            // D1, explicitly: every acknowledged event was delivered before the crash and is
            // covered by the cursor, or is delivered now.
            for unit in knowledge.acknowledged {
                for position in unit.positions where !(position <= cursor ? deliveredBefore[position] != nil : redelivered.contains { $0.position == position }) {
                    throw DataStoreViolation("D1", "event \(position) of acknowledged unit of work \(unit.id) was never delivered")
                }
            }
            // D6: the recovered store takes a new unit of work and delivers its event, and the
            // cursor that covers it is durable.
            let uow = try UnitOfWork.begin(on: store, id: "uow-after-recovery")
            try store.save(CrashLedger(id: "L-0", owner: "o-0", balance: 0, note: "after recovery"), in: uow.context)
            let eventId = try uow.context.emit(LedgerChanged(ledgerId: "L-0", unit: uow.id, index: 0, memo: ""),
                                               aboutTable: CrashLedger.table, id: "L-0")
            let receipt = try LedgerDriver.commitSynchronously(uow)
            guard receipt.eventPositions == last + 1..<last + 2 else {
                throw DataStoreViolation("D5", "the first unit of work after recovery got positions \(receipt.eventPositions), expected \(last + 1)")
            }
            guard await eventually({ ((try? store.events.cursor(of: subscriber)) ?? 0) > last }), inbox.all.last?.event.id == eventId else {
                throw DataStoreViolation("D6", "the event of the first unit of work after recovery was not delivered")
            }
        } catch {
            try? store.close()
            throw error
        }
        try store.close()
        let again = try DataStore.open(at: path, configuration: configuration, fileSystem: fileSystem)
        defer { try? again.close() }
        guard try again.events.cursor(of: subscriber) == again.engine.lastEventPosition else {
            throw DataStoreViolation("D4", "after a clean close the cursor is \(try again.events.cursor(of: subscriber)), "
                + "not the last delivered event \(again.engine.lastEventPosition)")
        }
        return figures
    }

    /// Whether a stored event is the emitted one, at its position.
    static func matches(_ stored: StoredEvent, _ position: UInt64, _ expected: EmittedEvent) -> Bool {
        stored.position == position && stored.event.id == expected.id && stored.event.type == LedgerChanged.eventType
            && stored.event.aggregateTable == CrashLedger.table && stored.event.aggregateId == expected.aggregateId
            && stored.unitOfWorkId == expected.unitOfWorkId && stored.event.occurredAt == time
            && (try? stored.decode(LedgerChanged.self)) == expected.payload
    }

    static func eventsMatch(_ log: [StoredEvent], _ expected: [(position: UInt64, event: EmittedEvent)]) -> Bool {
        log.count == expected.count && zip(log, expected).allSatisfy { matches($0, $1.position, $1.event) }
    }

    /// Every ledger key's version and value, as the store has them.
    static func readState(_ store: DataStore, keySpace: Int) throws -> [String: LedgerEntry] {
        var state: [String: LedgerEntry] = [:]
        for index in 0..<keySpace {
            let key = "L-\(index)"
            let (version, isLive) = try store.engine.version(table: CrashLedger.table, id: key)
            guard version > 0 else { continue }
            let record = try store.engine.record(table: CrashLedger.table, id: key)
            guard isLive == (record != nil) else { throw DataStoreViolation("D2", "\(key) is live \(isLive) but its record is \(record == nil ? "absent" : "present")") }
            state[key] = LedgerEntry(version: version, value: try record.map { try RecordDecoder().decode(CrashLedger.self, from: $0.bytes) })
        }
        return state
    }

    /// The keys whose recovered state differs from the model's, for a message.
    static func describe(_ state: [String: LedgerEntry], against model: [String: LedgerEntry]) -> String {
        let keys = Set(state.keys).union(model.keys).sorted().filter { state[$0] != model[$0] }
        return keys.map { "\($0) found v\(state[$0]?.version ?? 0) expected v\(model[$0]?.version ?? 0)" }.joined(separator: ", ")
    }
}
