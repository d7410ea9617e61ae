/// When and how compaction reclaims the space of dead records (`Docs/FORMAT.md`, section 4.4).
///
/// ```swift
/// var configuration = EngineConfiguration()
/// configuration.compaction.minimumDeadRatio = 0.3
/// ```
public struct CompactionSettings: Sendable, Hashable {
    /// A sealed segment is compacted once at least this fraction of its bytes is dead
    /// (overwritten or deleted records, events every durable cursor has passed). Default 0.5;
    /// between 0 and 1.
    public var minimumDeadRatio: Double = 0.5
    /// Whether compaction starts by itself, on a background Dispatch queue, whenever a segment
    /// is sealed and some sealed segment has reached ``minimumDeadRatio``. Default true.
    public var isAutomatic = true
    /// Free space compaction wants beyond the size of its output before it starts, as a
    /// fraction of that size. Default 0.1 (10 %).
    public var freeSpaceMargin: Double = 0.1

    /// The default settings.
    public init() {}
}

/// What one compaction did.
public struct CompactionReport: Sendable, Hashable {
    /// Sealed segments replaced.
    public var segmentsCompacted = 0
    /// Compacted segments written in their place.
    public var segmentsWritten = 0
    /// Bytes of the replaced segments.
    public var bytesBefore: UInt64 = 0
    /// Bytes of the segments written.
    public var bytesAfter: UInt64 = 0
    /// Live records copied to the new segments.
    public var recordsMoved = 0
    /// Records copied that a commit overwrote or deleted meanwhile (the commit wins).
    public var recordsOverwrittenMeanwhile = 0
    /// Tombstones dropped: no older version of their key was left anywhere.
    public var tombstonesDropped = 0
    /// Events dropped: every durable cursor had passed them.
    public var eventsDropped = 0
    /// How long it took, in seconds.
    public var seconds: Double = 0

    /// An empty report (nothing to compact).
    public init() {}
}

/// How far a running compaction has got, for a progress bar.
public struct CompactionProgress: Sendable, Hashable {
    /// Frame bytes of the segments being compacted read so far.
    public var bytesRead: UInt64
    /// Frame bytes of all the segments being compacted (reached when the last frame is read).
    public var bytesTotal: UInt64
}
