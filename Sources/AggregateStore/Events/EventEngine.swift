import CoreMetrics
import Logging
import Synchronization

/// Publishes the events of committed units of work, at least once, to in-process subscribers
/// and external publishers, and serves the change feed.
///
/// Each subscriber has a durable cursor, kept in the store's log (table `_subscribers`): the
/// position of the last event it has handled. Events after the cursor are delivered in
/// position order, in batches; the cursor moves after each batch. A handler that throws is
/// retried with backoff (``DeliveryPolicy``) and never stops the subscriber. After a crash,
/// events past the cursor are delivered again, so handlers deduplicate on ``OutboxEvent/id``.
///
/// ```swift
/// try store.events.subscribe("mailer") { event in
///     if let placed = try event.decode(OrderPlaced.self) { try await mailer.confirm(placed) }
/// }
/// ```
public final class EventEngine: Sendable {
    /// The table of subscriber cursors: id is the subscriber's name, the record `{position}`.
    static let cursorTable = "_subscribers"

    private struct Subscriber: Sendable {
        var cursor: UInt64
        var task: Task<Void, Never>
    }

    /// How a subscriber takes events: one at a time (retried alone), or whole batches.
    private enum Handler: Sendable {
        case each(@Sendable (StoredEvent) async throws -> Void)
        case batch(@Sendable ([StoredEvent]) async throws -> Void)
    }

    private struct State: Sendable {
        var isRunning = false
        var subscribers: [String: Subscriber] = [:]
    }

    private let engine: StorageEngine
    private let policy: DeliveryPolicy
    private let logger: Logger
    private let instruments: Instruments
    let signal = CommitSignal()
    private let progress = CommitSignal()
    /// Subscribers and whether the engine runs, under one lock, so that no subscriber task can
    /// start unseen by `stop()` or `unsubscribe(_:)`.
    private let state = Mutex(State())

    init(engine: StorageEngine, configuration: DataStore.Configuration, logger: Logger, instruments: Instruments) {
        self.engine = engine
        self.policy = configuration.delivery
        self.logger = logger
        self.instruments = instruments
    }

    func start() {
        state.withLock { $0.isRunning = true }
        releaseDeliveredEvents()
    }

    /// Cancels every subscriber's task and ends the change feeds.
    func stop() {
        let tasks = state.withLock { state in
            state.isRunning = false
            return state.subscribers.values.map(\.task)
        }
        for task in tasks { task.cancel() }
        signal.stop()
        progress.stop()
    }

    /// Called by the data store after a commit whose events end at `position`.
    func committed(through position: UInt64) {
        signal.signal()
        updateLag()
    }

    /// Subscribes an in-process handler under a durable name, from its stored cursor (or the
    /// beginning of the outbox for a new name). The handler gets one event at a time.
    ///
    /// - Throws: ``StoreError/Code/duplicate`` if `name` is already subscribed;
    ///   ``StoreError/Code/invalidArgument`` for an empty or over-long name.
    public func subscribe(_ name: String, _ handler: @escaping @Sendable (StoredEvent) async throws -> Void) throws(StoreError) {
        try start(name, .each(handler))
    }

    /// Registers a publisher to an external broker under a durable name; it gets batches, and a
    /// batch whose publication fails is retried whole.
    public func register(_ publisher: some EventPublisher, as name: String) throws(StoreError) {
        try start(name, .batch { events in try await publisher.publish(events) })
    }

    /// Stops a subscriber and waits for its task to end; its cursor stays stored, and a later
    /// subscription under the same name resumes after it.
    public func unsubscribe(_ name: String) async {
        let task = state.withLock { $0.subscribers.removeValue(forKey: name)?.task }
        task?.cancel()
        await task?.value
    }

    /// The cursor of a subscriber: the position of the last event it has handled. For a running
    /// subscriber, the stored (durable) cursor may lag behind it if storing it failed.
    public func cursor(of name: String) throws(StoreError) -> UInt64 {
        if let cursor = state.withLock({ $0.subscribers[name]?.cursor }) { return cursor }
        return try storedCursor(name)
    }

    /// The change feed: every event after `position`, then new ones as they commit.
    public func events(after position: UInt64) -> EventFeed {
        EventFeed(engine: engine, signal: signal, position: position, batchSize: policy.batchSize)
    }

    /// Waits until subscriber `name` has handled every event up to `position`, or the store
    /// stops.
    public func waitForDelivery(to name: String, through position: UInt64) async {
        while true {
            let generation = progress.generation
            let cursor = state.withLock { $0.subscribers[name]?.cursor }
            guard let cursor, cursor < position, !progress.isStopped, !Task.isCancelled else { return }
            await progress.wait(after: generation)
        }
    }

    // MARK: - Delivery

    private func start(_ name: String, _ handler: Handler) throws(StoreError) {
        try checkName(name, "subscriber name")
        let cursor = try storedCursor(name)
        try state.withLock { state throws(StoreError) in
            guard state.isRunning else { throw StoreError(.closed, "the store is closed") }
            guard state.subscribers[name] == nil else { throw StoreError(.duplicate, "subscriber '\(name)' is already subscribed") }
            // Created under the lock, so stop() and unsubscribe(_:) always find it to cancel.
            let task = Task.detached { [self] in await self.run(name, from: cursor, handler) }
            state.subscribers[name] = Subscriber(cursor: cursor, task: task)
        }
        updateLag()
    }

    private func run(_ name: String, from start: UInt64, _ handler: Handler) async {
        var cursor = start
        let logger = self.logger.with("aggstore.subscriber", name)
        while !Task.isCancelled {
            let generation = signal.generation
            let batch: [StoredEvent]
            do {
                batch = try engine.events(after: cursor, limit: policy.batchSize)
            } catch {
                if error.code == .closed { return }
                logger.error("cannot read the outbox", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: policy.maximumBackoff)
                continue
            }
            if batch.isEmpty {
                await signal.wait(after: generation)
                continue
            }
            var handled = cursor
            switch handler {
            case let .each(handle):
                for event in batch {
                    guard await deliver([event], logger, { try await handle(event) }) else { break }
                    handled = event.position
                }
            case let .batch(publish):
                if await deliver(batch, logger, { try await publish(batch) }) { handled = batch.last!.position }
            }
            guard handled > cursor else { return }   // cancelled before anything was handled
            cursor = handled
            do {
                try storeCursor(name, cursor)
            } catch {
                // Not fatal: the events will be delivered again after a restart (at least once).
                logger.warning("cannot store the subscriber cursor", metadata: ["error": "\(error)"])
                if error.code == .closed { return }
            }
            instruments.eventsPublished.increment(by: Int64(batch.count { $0.position <= cursor }))
            state.withLock { $0.subscribers[name]?.cursor = cursor }
            updateLag()
            progress.signal()
        }
    }

    /// Delivers until it succeeds (true), the attempts run out (true: the events are skipped,
    /// and logged), or the subscriber is cancelled (false: nothing is skipped).
    private func deliver(_ events: [StoredEvent], _ logger: Logger, _ body: () async throws -> Void) async -> Bool {
        var attempt = 0
        while !Task.isCancelled {
            do {
                try await body()
                return true
            } catch {
                if Task.isCancelled { return false }
                attempt += 1
                logger.warning("event delivery failed; will retry", metadata: [
                    "uow.id": "\(events[0].unitOfWorkId)", "aggstore.event.position": "\(events[0].position)",
                    "aggstore.event.id": "\(events[0].event.id)", "attempt": "\(attempt)", "error": "\(error)",
                ])
                if let maximum = policy.maximumAttempts, attempt >= maximum {
                    logger.error("event delivery gave up; events skipped", metadata: [
                        "aggstore.event.positions": "\(events.first!.position)...\(events.last!.position)",
                    ])
                    return true
                }
                do {
                    try await Task.sleep(for: policy.backoff(after: attempt))
                } catch {
                    return false
                }
            }
        }
        return false
    }

    // MARK: - Cursors

    /// The durable cursors of every subscriber the store has stored one for, by name: for
    /// tools that read a store without subscribing (`aggstore info` shows them with their lag
    /// behind ``StorageEngine/lastEventPosition``).
    ///
    /// - Throws: ``StoreError/Code/corruption`` if a stored cursor is malformed.
    public static func storedCursors(in engine: StorageEngine) throws(StoreError) -> [String: UInt64] {
        var cursors: [String: UInt64] = [:]
        for record in try engine.records(table: cursorTable, ids: try engine.ids(table: cursorTable)) {
            cursors[record.id] = try cursorPosition(record.bytes, name: record.id)
        }
        return cursors
    }

    private func storedCursor(_ name: String) throws(StoreError) -> UInt64 {
        guard let record = try engine.record(table: Self.cursorTable, id: name) else { return 0 }
        return try Self.cursorPosition(record.bytes, name: name)
    }

    private static func cursorPosition(_ bytes: [UInt8], name: String) throws(StoreError) -> UInt64 {
        guard case let .integer(position)? = try Document(decoding: bytes)[field: "position"], position >= 0 else {
            throw StoreError(.corruption, "the cursor of subscriber '\(name)' is malformed")
        }
        return UInt64(position)
    }

    private func storeCursor(_ name: String, _ position: UInt64) throws(StoreError) {
        var batch = WriteBatch(unitOfWorkId: "subscriber-cursor")
        batch.put(table: Self.cursorTable, id: name, record: try Document.map(["position": .integer(Int64(position))]).encoded())
        try engine.commit(batch)
        releaseDeliveredEvents()
    }

    /// Lets compaction drop the events every stored cursor has passed, those of subscribers
    /// not running now included (they resume from their cursor). Without a stored cursor,
    /// every event is kept.
    private func releaseDeliveredEvents() {
        do throws(StoreError) {
            var lowest: UInt64?
            for name in try engine.ids(table: Self.cursorTable) {
                let cursor = try storedCursor(name)
                lowest = min(lowest ?? cursor, cursor)
            }
            if let lowest { engine.releaseEvents(through: lowest) }
        } catch {
            // Keeping events longer is always safe; the next stored cursor tries again.
            logger.debug("cannot read the subscriber cursors; no events released", metadata: ["error": "\(error)"])
        }
    }

    private func updateLag() {
        let slowest = state.withLock { $0.subscribers.values.map(\.cursor).min() }
        guard let slowest else { return }
        instruments.outboxLag.record(Int64(engine.lastEventPosition) - Int64(slowest))
    }
}

extension Logger {
    /// A copy with one more metadata value.
    func with(_ key: String, _ value: String) -> Logger {
        var logger = self
        logger[metadataKey: key] = "\(value)"
        return logger
    }
}
