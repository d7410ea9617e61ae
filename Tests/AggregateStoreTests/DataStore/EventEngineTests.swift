import AggregateStore
import AggregateStoreTestKit
import Synchronization
import Testing

/// Collects what a handler saw, across tasks.
final class Inbox: Sendable {
    private let events = Mutex<[StoredEvent]>([])
    func add(_ event: StoredEvent) { events.withLock { $0.append(event) } }
    func add(_ batch: [StoredEvent]) { events.withLock { $0.append(contentsOf: batch) } }
    var all: [StoredEvent] { events.withLock { $0 } }
    var positions: [UInt64] { all.map(\.position) }
}

@Suite("Events: the outbox, at-least-once delivery, the change feed")
struct EventEngineTests {
    struct ActionFailed: Error {}

    static func fastRetry(_ configuration: inout DataStore.Configuration) {
        configuration.delivery.initialBackoff = .milliseconds(1)
        configuration.delivery.maximumBackoff = .milliseconds(5)
        configuration.delivery.batchSize = 2
    }

    /// Places order `n` and emits OrderPlaced for it, in one unit of work.
    @discardableResult
    static func place(_ n: Int, on store: DataStore) throws -> UnitOfWorkReceipt {
        let uow = try UnitOfWork.begin(on: store, id: "uow-\(n)")
        try store.create(order("so-\(n)"), in: uow.context)
        try uow.context.emit(OrderPlaced(orderId: "so-\(n)"), about: order("so-\(n)"))
        return try uow.commit()
    }

    @Test func onlyCommittedEventsAreDeliveredInPositionOrderWithTheirUnitOfWork() async throws {
        let fixture = try StoreFixture(configure: Self.fastRetry)
        let store = fixture.store
        let inbox = Inbox()
        try store.events.subscribe("inbox") { inbox.add($0) }
        for n in 1...3 { try Self.place(n, on: store) }
        _ = try? await UnitOfWork.run(on: store) { tx throws in
            try tx.emit(OrderPlaced(orderId: "ghost"), aboutTable: "Order", id: "ghost")
            throw ActionFailed()
        }
        let last = try Self.place(4, on: store)
        #expect(last.eventPositions == 4..<5)
        await store.events.waitForDelivery(to: "inbox", through: 4)
        #expect(inbox.positions == [1, 2, 3, 4])
        #expect(try inbox.all.map { try $0.decode(OrderPlaced.self)?.orderId } == ["so-1", "so-2", "so-3", "so-4"])
        #expect(inbox.all.map(\.unitOfWorkId) == ["uow-1", "uow-2", "uow-3", "uow-4"])
        #expect(inbox.all.allSatisfy { $0.event.aggregateTable == "SalesOrder" && $0.event.type == "OrderPlaced" })
        #expect(Set(inbox.all.map(\.event.id)).count == 4)
        #expect(try store.events.cursor(of: "inbox") == 4)
    }

    @Test func compactionKeepsEveryEventUntilEveryStoredCursorHasPassedIt() async throws {
        let fixture = try StoreFixture { configuration in
            Self.fastRetry(&configuration)
            configuration.engine.segmentSize = 8192
            configuration.engine.compaction.isAutomatic = false
        }
        let store = fixture.store
        for n in 1...60 { try Self.place(n, on: store) }
        // Dead records to reclaim: every order is saved again, without events.
        for n in 1...60 {
            try await UnitOfWork.run(on: store) { tx throws in
                var again = try #require(try store.load(Order.self, id: "so-\(n)", in: tx))
                again.status = "paid"
                try store.save(again, in: tx)
            }
        }
        // No subscriber has a stored cursor: compaction keeps every event.
        try store.engine.compact(minimumDeadRatio: 0.01)
        #expect(try store.engine.events(after: 0, limit: 1000).map(\.position) == Array(1...60))
        // A subscriber that is not running has its cursor stored at 20; another one handles
        // everything.
        var cursor = WriteBatch(unitOfWorkId: "stopped-subscriber")
        cursor.put(table: "_subscribers", id: "stopped", record: try Document.map(["position": .integer(20)]).encoded())
        try await store.engine.commit(cursor)
        let inbox = Inbox()
        try store.events.subscribe("all") { inbox.add($0) }
        await store.events.waitForDelivery(to: "all", through: 60)
        try store.engine.compact(minimumDeadRatio: 0.0001)
        let kept = try store.engine.events(after: 0, limit: 1000).map(\.position)
        #expect(kept.filter { $0 > 20 } == Array(21...60), "the stopped subscriber's events stay")
        #expect(kept.count < 60, "events both cursors passed are gone")
    }

    @Test func aFailingHandlerIsRetriedWithBackoffAndNeverStopsTheSubscriber() async throws {
        let fixture = try StoreFixture(configure: Self.fastRetry)
        let store = fixture.store
        let inbox = Inbox()
        let failures = Mutex(0)
        try store.events.subscribe("flaky") { event in
            if event.position == 2, failures.withLock({ $0 += 1; return $0 }) <= 3 { throw ActionFailed() }
            inbox.add(event)
        }
        for n in 1...5 { try Self.place(n, on: store) }
        await store.events.waitForDelivery(to: "flaky", through: 5)
        #expect(failures.withLock { $0 } == 4)
        // At least once: event 1 shares a batch with event 2, so it is handled again with it.
        #expect(Set(inbox.positions) == [1, 2, 3, 4, 5])
        #expect(inbox.positions.last == 5 && inbox.positions.filter { $0 == 2 }.count == 1)
    }

    @Test func theCursorIsDurableAndASubscriberResumesAfterIt() async throws {
        let fixture = try StoreFixture(configure: Self.fastRetry)
        let first = Inbox()
        try fixture.store.events.subscribe("mailer") { first.add($0) }
        for n in 1...3 { try Self.place(n, on: fixture.store) }
        await fixture.store.events.waitForDelivery(to: "mailer", through: 3)
        let store = try fixture.reopen()
        defer { try? store.close() }
        #expect(try store.events.cursor(of: "mailer") == 3)
        for n in 4...5 { try Self.place(n, on: store) }
        let second = Inbox()
        try store.events.subscribe("mailer") { second.add($0) }
        await store.events.waitForDelivery(to: "mailer", through: 5)
        #expect(first.positions == [1, 2, 3])
        #expect(second.positions == [4, 5])
    }

    @Test func eventsHandledButNotYetAcknowledgedAreDeliveredAgainAfterARestart() async throws {
        let fixture = try StoreFixture(configure: Self.fastRetry)
        for n in 1...2 { try Self.place(n, on: fixture.store) }
        let seen = Inbox()
        let stuck = Mutex(false)
        // Handles event 1, then never finishes event 2: the batch's cursor is never stored.
        try fixture.store.events.subscribe("slow") { event in
            seen.add(event)
            if event.position == 2 {
                stuck.withLock { $0 = true }
                while !Task.isCancelled { try await Task.sleep(for: .milliseconds(1)) }
                throw CancellationError()
            }
        }
        while !stuck.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(1)) }
        let store = try fixture.reopen()
        defer { try? store.close() }
        #expect(try store.events.cursor(of: "slow") == 0)
        let again = Inbox()
        try store.events.subscribe("slow") { again.add($0) }
        await store.events.waitForDelivery(to: "slow", through: 2)
        #expect(seen.positions == [1, 2])
        #expect(again.positions == [1, 2])
    }

    struct RecordingPublisher: EventPublisher {
        let inbox: Inbox
        func publish(_ events: [StoredEvent]) async throws { inbox.add(events) }
    }

    @Test func aPublisherGetsBatchesAndTheSubscriberNameMustBeUnique() async throws {
        let fixture = try StoreFixture(configure: Self.fastRetry)
        let store = fixture.store
        let inbox = Inbox()
        try store.events.register(RecordingPublisher(inbox: inbox), as: "broker")
        let error = #expect(throws: StoreError.self) { try store.events.subscribe("broker") { _ in } }
        #expect(error?.code == .duplicate)
        for n in 1...5 { try Self.place(n, on: store) }
        await store.events.waitForDelivery(to: "broker", through: 5)
        #expect(inbox.positions == [1, 2, 3, 4, 5])
    }

    @Test func theChangeFeedReplaysThenTailsAndEndsWhenTheStoreCloses() async throws {
        let fixture = try StoreFixture(configure: Self.fastRetry)
        let store = fixture.store
        for n in 1...3 { try Self.place(n, on: store) }
        let reader = Task {
            var positions: [UInt64] = []
            for try await event in store.events.events(after: 1) { positions.append(event.position) }
            return positions
        }
        try await Task.sleep(for: .milliseconds(20))
        for n in 4...6 { try Self.place(n, on: store) }
        while try store.engine.events(after: 0, limit: 10).count < 6 { try await Task.sleep(for: .milliseconds(1)) }
        try await Task.sleep(for: .milliseconds(20))
        try store.close()
        #expect(try await reader.value == [2, 3, 4, 5, 6])
    }
}
