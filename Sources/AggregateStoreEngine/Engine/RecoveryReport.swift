/// What opening a store found and did, returned by ``StorageEngine/recoveryReport``.
public struct RecoveryReport: Sendable, Hashable, CustomStringConvertible {
    /// A torn tail: the incomplete or damaged end of the last segment, left by a write that was
    /// never acknowledged.
    public struct TornTail: Sendable, Hashable {
        /// The segment file.
        public var path: String
        /// Where the torn bytes start (the end of the last valid frame).
        public var offset: UInt64
        /// How many bytes follow that offset.
        public var bytes: UInt64
        /// How many frame headers that verified were among them (0 for zeros or garbage).
        public var frames: Int
        /// Why the first of those bytes is not a valid frame.
        public var reason: String
        /// Whether the bytes were cut (false when the store was opened read-only).
        public var truncated: Bool
    }

    /// What open did with the index snapshot.
    public enum SnapshotUse: Sendable, Hashable {
        /// It was loaded; only the log after it was read.
        case used
        /// It was damaged or stale, so the indexes were rebuilt from the whole log (and a
        /// writable open removed it). The reason says which.
        case ignored(String)
    }

    /// Whether the store did not exist and was created.
    public var created = false
    /// What open did with the index snapshot; nil when there was none.
    public var snapshot: SnapshotUse?
    /// Frames read from the log (fewer than ``frames`` when a snapshot covered the rest).
    public var framesScanned = 0
    /// Segments scanned.
    public var segments = 0
    /// Valid frames in the log (in a compacted log, fewer than the commits).
    public var frames = 0
    /// The last recovered commit sequence number (0 for an empty store).
    public var lastSequence: UInt64 = 0
    /// The torn tail found at the end of the log, if any.
    public var tornTail: TornTail?
    /// Zero bytes found after the last frame of the active segment: space the writer wrote
    /// ahead of its frames (`EngineConfiguration/preallocationSize`), not a torn write. A
    /// writable open cut them.
    public var zerosAfterLastFrame: UInt64 = 0
    /// Files removed as leftovers of an interrupted segment roll, creation or manifest install.
    public var removedFiles: [String] = []
    /// Such leftovers found by a read-only open, which removes nothing.
    public var leftoverFiles: [String] = []
    /// How long open took, in seconds.
    public var duration: Double = 0

    /// A one-line summary for logs and the CLI.
    public var description: String {
        var text = created ? "created a new store" :
            "recovered \(frames) commits (last sequence \(lastSequence)) from \(segments) segments"
        switch snapshot {
        case .used?: text += " (from the index snapshot and \(framesScanned) frames after it)"
        case let .ignored(reason)?: text += "; index snapshot ignored: \(reason)"
        case nil: break
        }
        if let tornTail {
            text += "; torn tail at \(tornTail.path):\(tornTail.offset): \(tornTail.bytes) bytes, \(tornTail.frames) frames (\(tornTail.reason))"
            text += tornTail.truncated ? ", truncated" : ", not truncated (read-only)"
        }
        if !removedFiles.isEmpty { text += "; removed \(removedFiles.joined(separator: ", "))" }
        if !leftoverFiles.isEmpty { text += "; leftover files \(leftoverFiles.joined(separator: ", "))" }
        return text
    }
}
