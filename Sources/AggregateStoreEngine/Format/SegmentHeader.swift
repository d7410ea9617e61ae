/// The 40-byte header at the start of every segment file (`Docs/FORMAT.md`, section 2.1).
package struct SegmentHeader: Sendable, Equatable {
    /// The number in the file name.
    package var segmentId: UInt64
    /// The store's salt; the same in every segment.
    package var salt: UInt64
    /// The sequence number the segment's first frame must carry (in a compacted segment: the
    /// first of the range it covers; its first frame may come later).
    package var baseSequence: UInt64
    /// Whether compaction wrote the segment (``Format/segmentFlagCompacted``).
    package var isCompacted: Bool

    package init(segmentId: UInt64, salt: UInt64, baseSequence: UInt64, isCompacted: Bool = false) {
        self.segmentId = segmentId
        self.salt = salt
        self.baseSequence = baseSequence
        self.isCompacted = isCompacted
    }

    /// The header's bytes.
    package func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Format.segmentHeaderLength)
        writer.writeUInt32(Format.segmentMagic)
        writer.writeUInt16(Format.version)
        writer.writeUInt16(isCompacted ? Format.segmentFlagCompacted : 0)
        writer.writeUInt64(segmentId)
        writer.writeUInt64(salt)
        writer.writeUInt64(baseSequence)
        let crc = CRC32C.checksum(writer.bytes)
        writer.writeUInt32(CRC32C.mask(crc))
        writer.writeUInt32(0)
        return writer.bytes
    }

    /// Parses and checks a header; `bytes` may be short (a torn creation).
    package static func decode(_ bytes: [UInt8], path: String) throws(StoreError) -> SegmentHeader {
        guard bytes.count >= Format.segmentHeaderLength else {
            throw .corruption("segment header is incomplete (\(bytes.count) of \(Format.segmentHeaderLength) bytes)", path: path, offset: 0)
        }
        return try bytes.withUnsafeBytesTyped { buffer throws(StoreError) in
            guard buffer.loadLittleEndian(UInt32.self, at: 0) == Format.segmentMagic else {
                throw .corruption("segment header has a bad magic number", path: path, offset: 0)
            }
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[..<Format.segmentHeaderCRCOffset]))
            guard CRC32C.unmask(buffer.loadLittleEndian(UInt32.self, at: Format.segmentHeaderCRCOffset)) == crc else {
                throw .corruption("segment header CRC mismatch", path: path, offset: 0)
            }
            let version = buffer.loadLittleEndian(UInt16.self, at: 4)
            guard version == Format.version else {
                throw StoreError(.unsupportedFormat, "segment format version \(version) is not supported (this build reads \(Format.version))", path: path, offset: 4)
            }
            let flags = buffer.loadLittleEndian(UInt16.self, at: 6)
            guard flags & ~Format.segmentFlagCompacted == 0 else {
                throw .corruption("segment header has unknown flags", path: path, offset: 6)
            }
            // The reserved bytes after the CRC are outside it, so they are checked here.
            guard buffer.loadLittleEndian(UInt32.self, at: Format.segmentHeaderCRCOffset + 4) == 0 else {
                throw .corruption("segment header's reserved bytes are not zero", path: path, offset: UInt64(Format.segmentHeaderCRCOffset + 4))
            }
            return SegmentHeader(segmentId: buffer.loadLittleEndian(UInt64.self, at: 8),
                                 salt: buffer.loadLittleEndian(UInt64.self, at: 16),
                                 baseSequence: buffer.loadLittleEndian(UInt64.self, at: 24),
                                 isCompacted: flags & Format.segmentFlagCompacted != 0)
        }
    }

    /// The file name of a segment: its id in at least ``Format/segmentNameDigits`` digits.
    package static func fileName(for id: UInt64) -> String {
        let digits = String(id)
        return String(repeating: "0", count: max(0, Format.segmentNameDigits - digits.count)) + digits + Format.segmentFileExtension
    }

    /// The id in a segment file name, or nil if the name is not one.
    package static func segmentId(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(Format.segmentFileExtension) else { return nil }
        let stem = name.dropLast(Format.segmentFileExtension.count)
        guard stem.count >= Format.segmentNameDigits, stem.allSatisfy(\.isASCII), stem.allSatisfy(\.isNumber),
              let id = UInt64(stem), id > 0, fileName(for: id) == name else { return nil }
        return id
    }
}
