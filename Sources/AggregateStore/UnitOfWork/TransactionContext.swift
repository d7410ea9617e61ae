/// A unit of work's handle, through which data-store operations take part in it.
///
/// A context is non-copyable: code receives it borrowed, from ``UnitOfWork/run(on:id:_:)`` or
/// as ``UnitOfWork/context``, and the compiler stops it from being stored or returned, so it
/// cannot escape its unit of work.
///
/// ```swift
/// try UnitOfWork.run(on: store) { tx in
///     try store.create(order, in: tx)
///     try tx.emit(OrderPlaced(orderId: order.id), about: order)
/// }
/// ```
public struct TransactionContext: ~Copyable, Sendable {
    package let transaction: Transaction

    init(_ transaction: Transaction) {
        self.transaction = transaction
    }

    /// The id of the unit of work, carried by its log lines, spans and metrics and stored with
    /// its commit.
    public var unitOfWorkId: String { transaction.id }

    /// Records an event about an aggregate, to be stored in the same commit as the unit of
    /// work's writes and published after it. An aborted unit of work discards it.
    ///
    /// - Returns: The event's id, unique and stable: subscribers deduplicate on it.
    /// - Throws: ``StoreError/Code/invalidArgument`` if the unit of work has ended or the event
    ///   type is empty; an encoding error names the field that could not be encoded.
    @discardableResult
    public func emit<Event: DomainEvent, Root: Aggregate>(_ event: Event, about aggregate: Root) throws(StoreError) -> String {
        try emit(event, aboutTable: Root.table, id: aggregate.id)
    }

    /// Records an event about the aggregate `id` of `table`; see ``emit(_:about:)``.
    @discardableResult
    public func emit<Event: DomainEvent>(_ event: Event, aboutTable table: String, id: String) throws(StoreError) -> String {
        let store = transaction.store
        try checkName(Event.eventType, "event type")
        try checkName(table, "table")
        try checkName(id, "aggregate id")
        let payload = try store.encoder.encode(event)
        let eventId = store.configuration.ids.next(kind: "event")
        try transaction.stage(OutboxEvent(id: eventId, type: Event.eventType, aggregateTable: table, aggregateId: id,
                                          occurredAt: store.configuration.clock(), payload: payload))
        return eventId
    }
}
