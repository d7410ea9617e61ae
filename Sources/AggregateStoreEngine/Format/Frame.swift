/// The header of a batch frame (`Docs/FORMAT.md`, section 2.2), once its own CRC has verified.
package struct FrameHeader: Sendable, Equatable {
    /// Frame flags; see ``Format/frameFlagCompressed``.
    package var flags: UInt16
    /// The commit sequence number.
    package var sequence: UInt64
    /// Payload bytes stored after the header.
    package var storedLength: Int
    /// Payload bytes after decompression.
    package var uncompressedLength: Int
    /// The masked frame CRC as stored.
    package var maskedFrameCRC: UInt32
    /// The frame's index in the write that wrote it (0 for the first frame of a write).
    package var writeIndex: UInt16 = 0

    /// Whether the payload is LZ4-compressed.
    package var isCompressed: Bool { flags & Format.frameFlagCompressed != 0 }
    /// Whether the frame is the last of the write that wrote it.
    package var endsWrite: Bool { flags & Format.frameFlagEndsWrite != 0 }
    /// The sequence number of the first frame of the write that wrote this one.
    package var writeStartSequence: UInt64 { sequence &- UInt64(writeIndex) }
    /// Header plus stored payload.
    package var frameLength: Int { Format.frameHeaderLength + storedLength }
}

/// Encoding and checking of batch frames.
package enum Frame {
    /// Why a frame header was rejected.
    package enum HeaderDefect: Error, Sendable, Equatable {
        case badMagic, badHeaderCRC, unknownFlags(UInt16), badLength(String)
    }

    /// Encodes one commit's payload as a frame: compressed when LZ4 shrinks it, then checksummed.
    /// The frame is marked as a write of its own (index 0, ends its write); ``place(_:at:of:salt:)``
    /// re-marks a frame written together with others.
    package static func encode(sequence: UInt64, payload: [UInt8], salt: UInt64) -> [UInt8] {
        var frame = [UInt8](unsafeUninitializedCapacity: Format.frameHeaderLength + payload.count) { buffer, initializedCount in
            initializedCount = payload.withUnsafeBytes { encode(sequence: sequence, payload: $0, into: UnsafeMutableRawBufferPointer(buffer)) }
        }
        frame.withUnsafeMutableBytes { place($0, at: 0, of: 1, salt: salt) }
        // Given room for the payload uncompressed, which a well-compressed frame must not keep.
        return frame.trimmingSlack()
    }

    /// Encodes a payload as a frame at the start of `buffer`, which has room for the header
    /// and the payload uncompressed, leaving its place and CRCs to ``place(_:at:of:salt:)``:
    /// the commit path places every frame once its group is known, and checksums it then.
    /// - Returns: The frame's length.
    package static func encode(sequence: UInt64, payload: UnsafeRawBufferPointer, into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let headerLength = Format.frameHeaderLength
        precondition(buffer.count >= headerLength + payload.count, "no room for the frame")
        // LZ4 compresses straight into the frame, behind its header, and gives up when the
        // block would not be smaller than the payload, which is then copied there.
        let body = UnsafeMutableRawBufferPointer(rebasing: buffer[headerLength..<headerLength + max(payload.count - 1, 0)])
        let compressedLength = LZ4.compress(payload, into: body)
        let storedLength = compressedLength ?? payload.count
        if compressedLength == nil {
            UnsafeMutableRawBufferPointer(rebasing: buffer[headerLength..<headerLength + payload.count]).copyMemory(from: payload)
        }
        buffer.storeBytes(of: Format.frameMagic.littleEndian, toByteOffset: 0, as: UInt32.self)
        buffer.storeBytes(of: (compressedLength == nil ? 0 : Format.frameFlagCompressed).littleEndian, toByteOffset: Format.frameFlagsOffset, as: UInt16.self)
        buffer.storeBytes(of: sequence.littleEndian, toByteOffset: Format.frameSequenceOffset, as: UInt64.self)
        buffer.storeBytes(of: UInt32(storedLength).littleEndian, toByteOffset: Format.frameStoredLengthOffset, as: UInt32.self)
        buffer.storeBytes(of: UInt32(payload.count).littleEndian, toByteOffset: Format.frameUncompressedLengthOffset, as: UInt32.self)
        return headerLength + storedLength
    }

    /// Marks an encoded frame as number `index` of a write of `count` frames (one `pwrite` of a
    /// commit group), and checksums it again: recovery tells a torn group write, which may
    /// leave valid frames after a damaged one, from damage in the middle of the log by it.
    package static func place(_ frame: inout [UInt8], at index: Int, of count: Int, salt: UInt64) {
        frame.withUnsafeMutableBytes { place($0, at: index, of: count, salt: salt) }
    }

    /// Marks the encoded frame that starts `bytes` (and fills it) as number `index` of a write
    /// of `count` frames, in place in a group's buffer.
    package static func place(_ bytes: UnsafeMutableRawBufferPointer, at index: Int, of count: Int, salt: UInt64) {
        precondition(index < count && count <= Int(UInt16.max) + 1, "a write holds at most 65,536 frames")
        var flags = UnsafeRawBufferPointer(bytes).loadLittleEndian(UInt16.self, at: Format.frameFlagsOffset) & ~Format.frameFlagEndsWrite
        if index == count - 1 { flags |= Format.frameFlagEndsWrite }
        bytes.storeBytes(of: flags.littleEndian, toByteOffset: Format.frameFlagsOffset, as: UInt16.self)
        bytes.storeBytes(of: UInt16(index).littleEndian, toByteOffset: Format.frameWriteIndexOffset, as: UInt16.self)
        let header = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer(rebasing: bytes[..<Format.frameHeaderLength]))
        let stored = UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer(rebasing: bytes[Format.frameHeaderLength...]))
        let frameCRC = CRC32C.mask(frameChecksum(header: header, stored: stored, salt: salt))
        bytes.storeBytes(of: frameCRC.littleEndian, toByteOffset: Format.frameCRCOffset, as: UInt32.self)
        let headerCRC = CRC32C.mask(CRC32C.checksum(UnsafeRawBufferPointer(UnsafeMutableRawBufferPointer(rebasing: bytes[..<Format.frameHeaderCRCOffset]))))
        bytes.storeBytes(of: headerCRC.littleEndian, toByteOffset: Format.frameHeaderCRCOffset, as: UInt32.self)
    }

    /// The unmasked frame CRC: salt, then the header before the CRC fields, then the stored payload.
    package static func frameChecksum(header: UnsafeRawBufferPointer, stored: UnsafeRawBufferPointer, salt: UInt64) -> UInt32 {
        var crc = withUnsafeBytes(of: salt.littleEndian) { CRC32C.checksum($0) }
        crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: header[..<Format.frameCRCOffset]), seed: crc)
        return CRC32C.checksum(stored, seed: crc)
    }

    /// Parses and checks a 32-byte frame header: magic, header CRC, flags and length bounds.
    package static func parseHeader(_ bytes: UnsafeRawBufferPointer) -> Result<FrameHeader, HeaderDefect> {
        precondition(bytes.count >= Format.frameHeaderLength)
        guard bytes.loadLittleEndian(UInt32.self, at: 0) == Format.frameMagic else { return .failure(.badMagic) }
        let headerCRC = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<Format.frameHeaderCRCOffset]))
        guard CRC32C.unmask(bytes.loadLittleEndian(UInt32.self, at: Format.frameHeaderCRCOffset)) == headerCRC else {
            return .failure(.badHeaderCRC)
        }
        let header = FrameHeader(
            flags: bytes.loadLittleEndian(UInt16.self, at: Format.frameFlagsOffset),
            sequence: bytes.loadLittleEndian(UInt64.self, at: Format.frameSequenceOffset),
            storedLength: Int(bytes.loadLittleEndian(UInt32.self, at: Format.frameStoredLengthOffset)),
            uncompressedLength: Int(bytes.loadLittleEndian(UInt32.self, at: Format.frameUncompressedLengthOffset)),
            maskedFrameCRC: bytes.loadLittleEndian(UInt32.self, at: Format.frameCRCOffset),
            writeIndex: bytes.loadLittleEndian(UInt16.self, at: Format.frameWriteIndexOffset))
        guard header.flags & ~Format.frameKnownFlags == 0 else {
            return .failure(.unknownFlags(header.flags))
        }
        guard (1...Format.maximumPayloadLength).contains(header.storedLength) else {
            return .failure(.badLength("stored length \(header.storedLength)"))
        }
        let expansionLimit = header.storedLength * Format.maximumCompressionRatio + Format.compressionRatioSlack
        guard (1...Format.maximumPayloadLength).contains(header.uncompressedLength),
              header.isCompressed ? header.uncompressedLength <= expansionLimit : header.uncompressedLength == header.storedLength
        else { return .failure(.badLength("uncompressed length \(header.uncompressedLength)")) }
        return .success(header)
    }

    /// Whether the frame CRC matches the header and stored payload.
    package static func verify(_ header: FrameHeader, headerBytes: UnsafeRawBufferPointer, stored: UnsafeRawBufferPointer, salt: UInt64) -> Bool {
        CRC32C.unmask(header.maskedFrameCRC) == frameChecksum(header: headerBytes, stored: stored, salt: salt)
    }

    /// The uncompressed payload of a verified frame.
    package static func payload(of header: FrameHeader, stored: UnsafeRawBufferPointer) throws(StoreError) -> [UInt8] {
        guard header.isCompressed else { return [UInt8](stored) }
        return try LZ4.decompress(stored, uncompressedLength: header.uncompressedLength)
    }
}
