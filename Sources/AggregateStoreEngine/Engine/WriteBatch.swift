/// A reference from a record to another aggregate, indexed by the engine so that
/// ``StorageEngine/ids(table:field:value:)`` finds every record that points at `value`.
public struct ForeignKey: Sendable, Hashable, Codable {
    /// The field holding the reference, such as `"customerId"`.
    public var field: String
    /// The referenced aggregate's id.
    public var value: String

    /// Creates a foreign-key pair.
    public init(field: String, value: String) {
        self.field = field
        self.value = value
    }
}

/// What a write expects to find, checked when the commit is staged, before anything is written
/// (optimistic concurrency). A failed expectation fails the whole commit with
/// ``StoreError/Code/conflict`` or ``StoreError/Code/duplicate``.
public enum VersionExpectation: Sendable, Hashable {
    /// No check.
    case any
    /// The record must not exist (never written, or deleted): a create.
    case absent
    /// The record's latest version must be exactly this one (0 means never written).
    case version(UInt64)
}

/// An event of the transactional outbox, written in the same frame as the state it describes.
/// The engine gives it a position when it commits; ``StorageEngine/events(after:limit:)``
/// reads it back as a ``StoredEvent``.
public struct OutboxEvent: Sendable, Hashable {
    /// A unique id chosen by the producer; consumers deduplicate on it.
    public var id: String
    /// The event's type name, such as `"SalesOrderPlaced"`.
    public var type: String
    /// The table of the aggregate the event is about.
    public var aggregateTable: String
    /// The id of the aggregate the event is about.
    public var aggregateId: String
    /// When the event occurred, in microseconds since 1970-01-01T00:00:00Z.
    public var occurredAt: Int64
    /// The event's encoded body; opaque to the engine.
    public var payload: [UInt8]

    /// Creates an event.
    public init(id: String, type: String, aggregateTable: String, aggregateId: String, occurredAt: Int64, payload: [UInt8]) {
        self.id = id
        self.type = type
        self.aggregateTable = aggregateTable
        self.aggregateId = aggregateId
        self.occurredAt = occurredAt
        self.payload = payload
    }
}

/// Everything one unit of work commits: puts, deletes and outbox events, written as one frame
/// and applied all or nothing.
///
/// ```swift
/// var batch = WriteBatch(unitOfWorkId: "uow-1")
/// batch.put(table: "SalesOrder", id: "so-1", record: bytes,
///           foreignKeys: [ForeignKey(field: "customerId", value: "c-7")], expecting: .absent)
/// batch.append(OutboxEvent(id: "ev-1", type: "SalesOrderPlaced", aggregateTable: "SalesOrder",
///                          aggregateId: "so-1", occurredAt: now, payload: []))
/// let receipt = try engine.commit(batch)
/// ```
public struct WriteBatch: Sendable {
    /// One write of a batch.
    public enum Operation: Sendable {
        /// Store `record` as the latest version of (`table`, `id`).
        case put(table: String, id: String, record: [UInt8], foreignKeys: [ForeignKey], expecting: VersionExpectation)
        /// Delete (`table`, `id`), leaving a tombstone.
        case delete(table: String, id: String, expecting: VersionExpectation)
        /// Append an event to the outbox.
        case event(OutboxEvent)
    }

    /// The unit of work this batch commits, carried into the log for correlation.
    public var unitOfWorkId: String
    /// The operations in the order they were staged.
    public private(set) var operations: [Operation] = []

    /// Creates an empty batch for a unit of work.
    public init(unitOfWorkId: String) {
        self.unitOfWorkId = unitOfWorkId
    }

    /// Whether the batch holds no operation.
    public var isEmpty: Bool { operations.isEmpty }

    /// Stages a put.
    public mutating func put(table: String, id: String, record: [UInt8], foreignKeys: [ForeignKey] = [], expecting: VersionExpectation = .any) {
        operations.append(.put(table: table, id: id, record: record, foreignKeys: foreignKeys, expecting: expecting))
    }

    /// Stages a delete. Deleting a record that does not exist is allowed and writes a tombstone.
    public mutating func delete(table: String, id: String, expecting: VersionExpectation = .any) {
        operations.append(.delete(table: table, id: id, expecting: expecting))
    }

    /// Stages an outbox event.
    public mutating func append(_ event: OutboxEvent) {
        operations.append(.event(event))
    }
}

/// What a successful commit returns.
public struct CommitReceipt: Sendable, Hashable {
    /// The commit's sequence number: dense, from 1, in commit order.
    public var sequence: UInt64
    /// The version assigned to each put and delete, in the batch's order.
    public var versions: [UInt64]
    /// The outbox positions assigned to the commit's events, in the batch's order: dense from
    /// 1 over the whole log, so the next commit with events starts at ``eventPositions``'s
    /// upper bound. Empty, at the next position, when the commit has no events.
    public var eventPositions: Range<UInt64>
    /// The bytes written to the log: the frame, header included.
    public var frameBytes: Int
    /// The uncompressed payload's size; `payloadBytes` over the frame's stored bytes is the
    /// compression ratio.
    public var payloadBytes: Int
    /// How long the commit's `fdatasync` took, in nanoseconds (0 with ``Durability/unsafeNoSync``).
    public var syncNanoseconds: UInt64
    /// How many commits the `fdatasync` covered: this one and the others of its group
    /// (see ``EngineConfiguration/maximumCommitGroupSize``).
    public var groupSize: Int = 1
}

/// A record as read back: its bytes and where it stands.
public struct StoredRecord: Sendable, Hashable {
    /// The table the record belongs to.
    public var table: String
    /// The record's id.
    public var id: String
    /// The record's version: 1 for the first put, one more for every later put or delete.
    public var version: UInt64
    /// The sequence number of the commit that wrote this version.
    public var sequence: UInt64
    /// The record's foreign-key pairs.
    public var foreignKeys: [ForeignKey]
    /// The record's bytes, as given to ``WriteBatch/put(table:id:record:foreignKeys:expecting:)``.
    public var bytes: [UInt8]
}
