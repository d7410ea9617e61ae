/// Where the latest version of a record lives: a frame in a segment and the record's byte range
/// within the frame's uncompressed payload. The frame's stored length is kept so that a read
/// is one `pread`.
package struct RecordLocation: Sendable, Hashable {
    /// The segment holding the frame.
    package var segment: UInt32
    /// The frame's stored payload length.
    package var storedLength: UInt32
    /// The frame's byte offset in the segment.
    package var frameOffset: UInt64
    /// The record's offset in the uncompressed payload.
    package var recordOffset: UInt32
    /// The record's length.
    package var recordLength: UInt32

    /// The frame this location points into.
    package var frame: FrameAddress { FrameAddress(segment: segment, offset: frameOffset) }
}

/// A frame's position in the log.
package struct FrameAddress: Sendable, Hashable, Comparable {
    /// The segment holding the frame.
    package var segment: UInt32
    /// The frame's byte offset in the segment.
    package var offset: UInt64

    package static func < (lhs: FrameAddress, rhs: FrameAddress) -> Bool {
        (lhs.segment, lhs.offset) < (rhs.segment, rhs.offset)
    }
}

/// The primary index's entry for a key: its latest version, live or a tombstone.
package struct IndexEntry: Sendable, Hashable {
    /// The latest version (of a put or a delete).
    package var version: UInt64
    /// The sequence number of the commit that wrote it.
    package var sequence: UInt64
    /// The record's location; nil for a tombstone.
    package var location: RecordLocation?

    /// Whether the key has a live record (not a tombstone).
    package var isLive: Bool { location != nil }
}
