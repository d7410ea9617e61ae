/// Every constant of the on-disk format, in one place. `Docs/FORMAT.md` is the specification;
/// a change here is a format change and bumps ``version``.
package enum Format {
    /// The format version written in segment headers and the manifest. Version 2 added the
    /// event position to the event operation; version 3 gave each frame its place in the write
    /// that wrote it (`Docs/FORMAT.md`, the version table).
    package static let version: UInt16 = 3

    // MARK: Store directory

    /// The file a handle `flock`s while it has the store open.
    package static let lockFileName = "LOCK"
    /// The current list of segments.
    package static let manifestFileName = "MANIFEST"
    /// Where a new manifest is written before it is renamed over ``manifestFileName``.
    package static let manifestTemporaryFileName = "MANIFEST.tmp"
    /// The extension of segment files, named by their id in at least ``segmentNameDigits`` digits.
    package static let segmentFileExtension = ".seg"
    /// The minimum number of decimal digits in a segment file name (zero-padded).
    package static let segmentNameDigits = 8

    // MARK: Segment header

    /// `AGSG` in little-endian byte order.
    package static let segmentMagic: UInt32 = 0x4753_4741
    /// The size of a segment header; the first frame starts here.
    package static let segmentHeaderLength = 40
    /// Offset of the header CRC within the segment header; it covers the bytes before it.
    package static let segmentHeaderCRCOffset = 32
    /// Segment flag: written by compaction; its frames are the live parts of earlier commits,
    /// with their original sequence numbers, which need not be dense.
    package static let segmentFlagCompacted: UInt16 = 1 << 0

    // MARK: Batch frame

    /// `AGBF` in little-endian byte order; lets a scanner resynchronise after damage.
    package static let frameMagic: UInt32 = 0x4642_4741
    /// The size of a frame header.
    package static let frameHeaderLength = 32
    /// Offset of the frame flags (`UInt16`).
    package static let frameFlagsOffset = 4
    /// Offset of the commit sequence number (`UInt64`).
    package static let frameSequenceOffset = 8
    /// Offset of the stored payload length (`UInt32`).
    package static let frameStoredLengthOffset = 16
    /// Offset of the uncompressed payload length (`UInt32`).
    package static let frameUncompressedLengthOffset = 20
    /// Offset of the frame CRC (over salt, header bytes before it, and the stored payload).
    package static let frameCRCOffset = 24
    /// Offset of the header CRC (over the header bytes before it).
    package static let frameHeaderCRCOffset = 28
    /// Offset of the frame's index in the write (one `pwrite` of a commit group) that wrote it.
    package static let frameWriteIndexOffset = 6
    /// Frame flag: the payload is LZ4 block-compressed.
    package static let frameFlagCompressed: UInt16 = 1 << 0
    /// Frame flag: the frame is the last of the write that wrote it.
    package static let frameFlagEndsWrite: UInt16 = 1 << 1
    /// The flags this version's reader understands.
    package static let frameKnownFlags: UInt16 = frameFlagCompressed | frameFlagEndsWrite
    /// Upper bound on stored and uncompressed payload lengths, checked before allocating.
    package static let maximumPayloadLength = 1 << 30
    /// LZ4 cannot expand a block by more than about 255 times, so a compressed frame claiming
    /// more is damaged; checked before allocating the uncompressed buffer.
    package static let maximumCompressionRatio = 255
    /// Slack added to the compression-ratio bound for tiny blocks.
    package static let compressionRatioSlack = 64

    // MARK: Payload

    /// Operation tags in a frame payload.
    package enum OperationTag: UInt8, Sendable {
        case put = 1
        case delete = 2
        case event = 3
    }
    /// The outbox position of the first event of an empty store; positions are dense from here.
    package static let firstEventPosition: UInt64 = 1
    /// Upper bound on the UTF-8 length of tables, ids, field names and event types.
    package static let maximumNameLength = 1024

    // MARK: Manifest

    /// `AGMF` in little-endian byte order.
    package static let manifestMagic: UInt32 = 0x464D_4741
    /// Bytes before the segment entries.
    package static let manifestHeaderLength = 36
    /// Bytes per segment entry: id, base sequence, sealed length, last sequence.
    package static let manifestEntryLength = 32
    /// `sealedLength` of the active (last) segment.
    package static let activeSegmentLength = UInt64.max
    /// Upper bound on the number of segments in a manifest, checked before allocating.
    package static let maximumSegmentCount = 1 << 24

    // MARK: Index snapshot

    /// The snapshot of the indexes that open loads instead of reading the whole log.
    package static let snapshotFileName = "SNAPSHOT"
    /// Where a new snapshot is written before it is renamed over ``snapshotFileName``.
    package static let snapshotTemporaryFileName = "SNAPSHOT.tmp"
    /// `AGIX` in little-endian byte order.
    package static let snapshotMagic: UInt32 = 0x5849_4741
    /// The snapshot layout's version, apart from the log's ``version``: a snapshot of another
    /// layout is ignored (the log is read instead). Layout 2 numbers each table's foreign-key
    /// values once; layout 1 (written by format 3 before it, with 3 in this field) repeated them
    /// in every entry.
    package static let snapshotVersion: UInt16 = 4
    /// Bytes per key entry in a snapshot's table (section 3.1).
    package static let snapshotEntryLength = 40

    // MARK: Checksums

    /// LevelDB's mask delta: a stored CRC is rotated and offset so that CRCs of data that
    /// contains CRCs are not trivially related.
    package static let crcMaskDelta: UInt32 = 0xA282_EAD8
}
