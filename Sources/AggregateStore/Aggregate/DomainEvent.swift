/// A fact that a unit of work records about an aggregate, such as "order placed".
///
/// Events are emitted through ``TransactionContext/emit(_:about:)``, stored in the same commit
/// as the aggregate state (the transactional outbox), and published after the commit by the
/// store's ``EventEngine``. This is not event sourcing: the aggregate's state is stored as is,
/// and events describe changes to it.
///
/// ```swift
/// struct OrderPlaced: DomainEvent {
///     static let eventType = "OrderPlaced"
///     var orderId: String
///     var total: Decimal
/// }
/// ```
public protocol DomainEvent: Codable, Sendable {
    /// The event's type name: a past-tense category such as `OrderPlaced`, 1 to 1,024 bytes.
    static var eventType: String { get }
}
