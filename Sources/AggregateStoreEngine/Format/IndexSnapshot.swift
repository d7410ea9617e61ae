/// A checksummed copy of the in-memory indexes as of a position in the log (`Docs/FORMAT.md`,
/// section 3.1), so that open reads it and scans only the log after that position instead of
/// the whole log. Never trusted blindly: a snapshot that does not verify, or no longer matches
/// the log, is ignored and the indexes are rebuilt from the log.
package struct IndexSnapshot: Sendable, Equatable {
    /// The manifest's segments up to the one the snapshot stops in (that one last, as the
    /// manifest recorded it then: sealed or active).
    package var segments: [Manifest.Segment]
    /// Where in the last of ``segments`` the log the snapshot covers ends.
    package var endOffset: UInt64
    /// The frames the snapshot covers in that segment.
    package var framesInLastSegment: Int
    /// The last commit covered; its frame's offset, header and masked CRC, which open compares
    /// with the frame it finds there, so a log rewritten since is not mistaken for this one.
    package var lastSequence: UInt64
    package var lastFrameOffset: UInt64
    package var lastFrameCRC: UInt32
    package var lastFrameWriteIndex: UInt16
    package var lastFrameEndsWrite: Bool
    /// Whether a compacted segment lies in the covered log (versions and positions may skip).
    package var compacted: Bool
    package var counters: LogCounters
    package var index: KeyIndex
    package var events: EventIndex

    /// The snapshot's bytes: header, body, masked CRC32C of both.
    package func encoded(salt: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + index.keyCount * 64)
        writer.writeUInt32(Format.snapshotMagic)
        writer.writeUInt16(Format.snapshotVersion)
        writer.writeUInt16(0)
        writer.writeUInt64(salt)
        writer.writeVarint(UInt64(segments.count))
        for segment in segments {
            writer.writeVarint(segment.id)
            writer.writeVarint(segment.baseSequence)
            writer.writeUInt64(segment.sealedLength)
            writer.writeVarint(segment.lastSequence)
        }
        writer.writeVarint(endOffset)
        writer.writeVarint(UInt64(framesInLastSegment))
        writer.writeVarint(lastSequence)
        writer.writeVarint(lastFrameOffset)
        writer.writeUInt32(lastFrameCRC)
        writer.writeUInt16(lastFrameWriteIndex)
        writer.writeUInt8((lastFrameEndsWrite ? 1 : 0) | (compacted ? 2 : 0))
        for count in [counters.frames, counters.puts, counters.deletes, counters.events] { writer.writeVarint(UInt64(count)) }
        for bytes in [counters.frameBytes, counters.payloadBytes, counters.storedBytes] { writer.writeVarint(bytes) }
        writer.writeVarint(UInt64(index.tables.count))
        for (name, table) in index.tables.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            writer.writeString(name)
            table.encode(into: &writer)
        }
        writer.writeVarint(UInt64(events.runs.count))
        for run in events.runs {
            writer.writeVarint(run.firstPosition)
            writer.writeVarint(run.sequence)
            writer.writeVarint(run.frameOffset)
            writer.writeVarint(UInt64(run.segment))
            writer.writeVarint(UInt64(run.storedLength))
            writer.writeVarint(UInt64(run.count))
            writer.writeVarint(UInt64(run.bytes))
        }
        writer.writeUInt32(CRC32C.mask(CRC32C.checksum(writer.bytes)))
        return writer.bytes
    }

    /// Parses and checks a snapshot: magic, version, salt, CRC, and every length and count.
    /// - Returns: The snapshot, or why it cannot be used.
    package static func decode(_ bytes: [UInt8], salt: UInt64) -> Result<IndexSnapshot, SnapshotDefect> {
        guard bytes.count >= 20 else { return .failure(SnapshotDefect("it is too short (\(bytes.count) bytes)")) }
        return bytes.withUnsafeBytes { buffer in
            let crcOffset = buffer.count - 4
            guard CRC32C.unmask(buffer.loadLittleEndian(UInt32.self, at: crcOffset))
                    == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[..<crcOffset])) else {
                return .failure(SnapshotDefect("its CRC does not match"))
            }
            do throws(ByteReader.Failure) {
                return try decodeVerified(UnsafeRawBufferPointer(rebasing: buffer[..<crcOffset]), salt: salt)
            } catch {
                return .failure(SnapshotDefect("\(error.reason) at byte \(error.offset)"))
            }
        }
    }

    private static func decodeVerified(_ buffer: UnsafeRawBufferPointer, salt: UInt64) throws(ByteReader.Failure)
        -> Result<IndexSnapshot, SnapshotDefect> {
        var reader = ByteReader(buffer)
        guard try reader.readUInt32() == Format.snapshotMagic else { return .failure(SnapshotDefect("its magic number is wrong")) }
        let version = try reader.readUInt16()
        guard version == Format.snapshotVersion else { return .failure(SnapshotDefect("it is of layout version \(version)")) }
        guard try reader.readUInt16() == 0 else { return .failure(SnapshotDefect("it has unknown flags")) }
        guard try reader.readUInt64() == salt else { return .failure(SnapshotDefect("it belongs to another store")) }
        let segmentCount = try reader.readLength(limit: Format.maximumSegmentCount, "segment count")
        var segments: [Manifest.Segment] = []
        for _ in 0..<segmentCount {
            segments.append(Manifest.Segment(id: try reader.readVarint(), baseSequence: try reader.readVarint(),
                                             sealedLength: try reader.readUInt64(), lastSequence: try reader.readVarint()))
        }
        guard !segments.isEmpty else { return .failure(SnapshotDefect("it lists no segment")) }
        let endOffset = try reader.readVarint()
        let framesInLastSegment = try reader.readLength("frame count")
        let lastSequence = try reader.readVarint()
        let lastFrameOffset = try reader.readVarint()
        let lastFrameCRC = try reader.readUInt32()
        let lastFrameWriteIndex = try reader.readUInt16()
        let flags = try reader.readUInt8()
        var counters = LogCounters()
        counters.frames = try reader.readLength("frames")
        counters.puts = try reader.readLength("puts")
        counters.deletes = try reader.readLength("deletes")
        counters.events = try reader.readLength("events")
        counters.frameBytes = try reader.readVarint()
        counters.payloadBytes = try reader.readVarint()
        counters.storedBytes = try reader.readVarint()
        var index = KeyIndex(salt: salt)
        let tableCount = try reader.readLength(limit: buffer.count, "table count")
        for _ in 0..<tableCount {
            let name = try reader.readString(limit: Format.maximumNameLength, "table")
            guard !index.hasTable(name) else { return .failure(SnapshotDefect("table \(name) appears twice")) }
            switch try TableIndex.decode(from: &reader) {
            case let .success(table): index.restore(table: name, table)
            case let .failure(defect): return .failure(SnapshotDefect("table \(name): \(defect)"))
            }
        }
        let runCount = try reader.readLength(limit: buffer.count, "event run count")
        var runs: [EventRun] = []
        runs.reserveCapacity(runCount)
        for _ in 0..<runCount {
            runs.append(EventRun(firstPosition: try reader.readVarint(), sequence: try reader.readVarint(),
                                 frameOffset: try reader.readVarint(), segment: UInt32(truncatingIfNeeded: try reader.readVarint()),
                                 storedLength: UInt32(truncatingIfNeeded: try reader.readVarint()),
                                 count: UInt32(truncatingIfNeeded: try reader.readVarint()),
                                 bytes: UInt32(truncatingIfNeeded: try reader.readVarint())))
        }
        guard reader.isAtEnd else { return .failure(SnapshotDefect("it has trailing bytes")) }
        return .success(IndexSnapshot(
            segments: segments, endOffset: endOffset, framesInLastSegment: framesInLastSegment, lastSequence: lastSequence,
            lastFrameOffset: lastFrameOffset, lastFrameCRC: lastFrameCRC, lastFrameWriteIndex: lastFrameWriteIndex,
            lastFrameEndsWrite: flags & 1 != 0, compacted: flags & 2 != 0, counters: counters, index: index,
            events: EventIndex(runs: runs)))
    }
}

/// Why a snapshot file was ignored.
package struct SnapshotDefect: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}
