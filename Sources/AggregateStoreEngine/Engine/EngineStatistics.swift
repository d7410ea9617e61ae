/// Counts that describe a store, from ``StorageEngine/statistics(scanningLog:progress:)``:
/// what `aggstore info` prints.
///
/// Live figures come from the in-memory indexes and cost nothing to read. The dead versions
/// of each table (overwritten puts and tombstones) are only known by reading the log, so the
/// per-table ``Table/versions``, ``Table/tombstones`` and ``Table/deadBytes`` are filled only
/// when the statistics were taken `scanningLog`.
public struct EngineStatistics: Sendable, Hashable, Codable {
    /// One segment file.
    public struct Segment: Sendable, Hashable, Codable {
        /// The segment id.
        public var id: UInt64
        /// Its size in bytes: a sealed segment's sealed length, the active one's end of its
        /// last frame (its file may hold zeros written ahead of that).
        public var bytes: UInt64
        /// Whether it is sealed (only the last segment is not).
        public var sealed: Bool
        /// The sequence number of its first frame.
        public var baseSequence: UInt64
        /// Live records whose latest version lies in this segment.
        public var liveRecords: Int
        /// Bytes compaction must keep: the live records' bytes and the events a subscriber
        /// cursor still needs (uncompressed, at most ``bytes`` less the header).
        public var liveBytes: UInt64
        /// Bytes compaction would reclaim, reckoned as compaction reckons them: the segment's
        /// frame bytes less ``liveBytes`` (for a compacted segment, only what died since it was
        /// written). Its ratio to the frame bytes is what the compaction thresholds compare.
        public var deadBytes: UInt64
    }

    /// One table.
    public struct Table: Sendable, Hashable, Codable {
        /// Its live records.
        public var liveRecords: Int
        /// Their bytes (records as stored, uncompressed).
        public var liveBytes: UInt64
        /// Every put of the table in the log, live or overwritten; nil unless the log was scanned.
        public var versions: Int?
        /// Its deletes (tombstones) in the log; nil unless the log was scanned.
        public var tombstones: Int?
        /// Bytes of its overwritten versions in the log (uncompressed); nil unless the log was scanned.
        public var deadBytes: UInt64?

        /// Overwritten versions and tombstones, which compaction can reclaim; nil unless the
        /// log was scanned.
        public var deadRecords: Int? {
            guard let versions, let tombstones else { return nil }
            return versions - liveRecords + tombstones
        }
    }

    /// The segments in order.
    public var segments: [Segment]
    /// Frames (commits) in the log.
    public var frames: Int
    /// The sequence number of the log's first frame (1 unless compaction dropped the first
    /// commits whole); greater than ``lastSequence`` when the log is empty.
    public var firstSequence: UInt64
    /// The last commit sequence number.
    public var lastSequence: UInt64
    /// Bytes of the log: the sum of the segments' ``Segment/bytes`` (zeros written ahead of the
    /// frames are not counted).
    public var logBytes: UInt64
    /// Uncompressed payload bytes of all frames.
    public var payloadBytes: UInt64
    /// Payload bytes as stored, after compression.
    public var storedBytes: UInt64
    /// Live records: the latest version of each key that is not deleted.
    public var liveRecords: Int
    /// Dead record versions: overwritten puts and tombstones, which compaction can reclaim.
    public var deadRecords: Int
    /// Bytes of live records.
    public var liveRecordBytes: UInt64
    /// Puts, deletes and outbox events in the log.
    public var puts: Int, deletes: Int, events: Int
    /// The position of the first outbox event still in the log and of the last one (the first
    /// is greater than the last when there is none).
    public var firstEventPosition: UInt64, lastEventPosition: UInt64
    /// Live records per table, for every table that has ever held a record.
    public var tables: [String: Int]
    /// Per table, live and (when the log was scanned) dead records and bytes.
    public var tableStatistics: [String: Table]
    /// Heap bytes the primary-, foreign-key and event indexes hold, approximately (their
    /// arrays by capacity).
    public var indexMemoryBytes: Int
    /// Whether the log was read to count the dead versions per table.
    public var logScanned: Bool

    /// Uncompressed over stored payload bytes (1 when nothing is compressed, or the log is empty).
    public var compressionRatio: Double {
        storedBytes == 0 ? 1 : Double(payloadBytes) / Double(storedBytes)
    }

    /// The share of the segments' frame bytes that compaction would reclaim (0 to 1).
    public var deadRatio: Double {
        let frameBytes = segments.reduce(0) { $0 + $1.liveBytes + $1.deadBytes }
        return frameBytes == 0 ? 0 : Double(segments.reduce(0) { $0 + $1.deadBytes }) / Double(frameBytes)
    }
}

/// How far a log scan of ``StorageEngine/statistics(scanningLog:progress:)`` has come.
public struct StatisticsProgress: Sendable, Hashable {
    /// Segment bytes read so far.
    public var bytesRead: UInt64
    /// Segment bytes to read in all.
    public var bytesTotal: UInt64
}
