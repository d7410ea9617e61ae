/// Publishes committed events to an external broker (Kafka, NATS, a webhook).
///
/// Registered with ``EventEngine/register(_:as:)``, a publisher gets batches of events in
/// position order, at least once: after a crash, or when `publish` throws, the batch is sent
/// again, so the broker side should deduplicate on ``OutboxEvent/id``.
public protocol EventPublisher: Sendable {
    /// Sends `events` to the broker; returns once the broker has them.
    func publish(_ events: [StoredEvent]) async throws
}

extension StoredEvent {
    /// The event's payload decoded as `Event`, or nil if the event is of another type.
    ///
    /// ```swift
    /// if let placed = try event.decode(OrderPlaced.self) { print(placed.orderId) }
    /// ```
    public func decode<Event: DomainEvent>(_ type: Event.Type) throws(StoreError) -> Event? {
        guard event.type == Event.eventType else { return nil }
        return try RecordDecoder().decode(Event.self, from: event.payload)
    }
}
