/// When a commit is acknowledged relative to stable storage.
public enum Durability: Sendable, Hashable {
    /// Each commit is `fdatasync`ed before it is acknowledged. The default.
    case synchronous
    /// No fsync at all: commits survive a process crash but **not a power loss or an OS crash**,
    /// after which the store may even fail to open (writeback may persist a later frame and not
    /// an earlier one).
    /// For tests and bulk loads only; the name says so on purpose.
    case unsafeNoSync
}

/// Settings of a ``StorageEngine``, a `Sendable` struct of `var`s in GRDB's shape.
///
/// ```swift
/// var configuration = EngineConfiguration()
/// configuration.segmentSize = 16 << 20
/// let engine = try StorageEngine.open(at: "/var/lib/orders", configuration: configuration)
/// ```
public struct EngineConfiguration: Sendable, Hashable {
    /// Commit durability; ``Durability/synchronous`` by default.
    public var durability: Durability = .synchronous
    /// The size at which the active segment is sealed and a new one started. Default 64 MiB.
    public var segmentSize: Int = 64 << 20
    /// The largest record a put may carry. Default 16 MiB; never more than
    /// ``effectiveMaximumBatchSize``.
    public var maximumRecordSize: Int = 16 << 20
    /// The largest encoded batch a commit may write. Default 32 MiB; never more than half a
    /// segment, since a frame never spans segments (see ``effectiveMaximumBatchSize``).
    public var maximumBatchSize: Int = 32 << 20
    /// Bytes of decompressed frame payloads kept for reads, and the most memory the cache
    /// allocates for them. Default 64 MiB; 0 disables the cache. The cache copies payloads
    /// into slabs of a sixteenth of it (at most 1 MiB, at least 64 KiB), a payload larger
    /// than a quarter of a slab into a slab of its own; one larger than the whole cache is not
    /// cached.
    public var readCacheSize: Int = 64 << 20
    /// The most concurrent commits written with one `pwrite` and made durable with one
    /// `fdatasync` (group commit). Each keeps its own frame and sequence number. Default 256,
    /// at most 65,536; 1 gives every commit its own fsync.
    public var maximumCommitGroupSize: Int = 256
    /// Bytes of zeros written ahead of the log's end in the active segment whenever the
    /// frames reach the end of what the file holds. Commits then overwrite blocks that are
    /// already allocated and written, and their `fdatasync` flushes only data: on ext4 here an
    /// appending fdatasync took 180-270 us and an overwriting one 130-140. The zeros cost one
    /// larger write per this many bytes of commits; they are cut when the segment is sealed or
    /// the store closed. Default 1 MiB; 0 turns it off. Only with ``Durability/synchronous``.
    public var preallocationSize: Int = 1 << 20
    /// When compaction runs and what it reclaims; see ``CompactionSettings``.
    public var compaction = CompactionSettings()
    /// Whether a clean close writes an index snapshot. Tests of damage to the log at rest turn it
    /// off: a snapshot stands in, at open, for the frames it covers.
    package var writesIndexSnapshot = true
    /// Whether compaction drops the tombstones it may (the crash images turn it off, since
    /// their oracle models every version a key ever had).
    package var compactionDropsTombstones = true
    /// Open without writing anything: no lock upgrade, no truncation, commits refused.
    public var readOnly: Bool = false
    /// The fsync sites that run; the crash suite's mutation gate disables one at a time.
    package var syncSites = SyncSites.all
    /// Fixed values for what is otherwise random or read from the clock, so that a crash-suite
    /// seed replays byte for byte; nil outside tests.
    package var determinism: Determinism?

    /// The store salt and the timestamp to use instead of random and real ones.
    package struct Determinism: Sendable, Hashable {
        package var salt: UInt64
        package var time: Int64

        package init(salt: UInt64, time: Int64) {
            self.salt = salt
            self.time = time
        }
    }

    /// Creates the default configuration.
    public init() {}

    /// The batch limit in force: ``maximumBatchSize``, capped at half a segment so that a frame
    /// always fits in a fresh segment.
    public var effectiveMaximumBatchSize: Int {
        min(maximumBatchSize, (segmentSize - Format.segmentHeaderLength - Format.frameHeaderLength) / 2)
    }

    /// The record limit in force: ``maximumRecordSize``, capped at ``effectiveMaximumBatchSize``.
    public var effectiveMaximumRecordSize: Int {
        min(maximumRecordSize, effectiveMaximumBatchSize)
    }

    /// Checks the settings against each other and the format's limits.
    func validate() throws(StoreError) {
        guard segmentSize >= 4096, segmentSize <= Int(UInt32.max) else {
            throw StoreError(.invalidArgument, "segmentSize \(segmentSize) must be between 4096 and \(UInt32.max) bytes")
        }
        guard maximumBatchSize > 0, maximumBatchSize <= Format.maximumPayloadLength else {
            throw StoreError(.invalidArgument, "maximumBatchSize \(maximumBatchSize) must be between 1 and \(Format.maximumPayloadLength) bytes")
        }
        guard maximumRecordSize > 0 else {
            throw StoreError(.invalidArgument, "maximumRecordSize \(maximumRecordSize) must be positive")
        }
        guard (1...65_536).contains(maximumCommitGroupSize) else {
            throw StoreError(.invalidArgument, "maximumCommitGroupSize \(maximumCommitGroupSize) must be between 1 and 65536")
        }
        guard (0...1).contains(compaction.minimumDeadRatio), compaction.freeSpaceMargin >= 0 else {
            throw StoreError(.invalidArgument, "compaction.minimumDeadRatio must be between 0 and 1 and freeSpaceMargin not negative")
        }
        guard preallocationSize >= 0, preallocationSize <= 1 << 30 else {
            throw StoreError(.invalidArgument, "preallocationSize \(preallocationSize) must be between 0 and 1 GiB")
        }
        guard readCacheSize >= 0 else {
            throw StoreError(.invalidArgument, "readCacheSize must not be negative")
        }
    }
}
