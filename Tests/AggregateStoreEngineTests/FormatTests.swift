@testable import AggregateStoreEngine
import Testing

@Suite("On-disk format round trips")
struct FormatTests {
    private func sampleBatch() -> WriteBatch {
        var batch = WriteBatch(unitOfWorkId: "uow-7")
        batch.put(table: "SalesOrder", id: "SO-1", record: Array(repeating: 7, count: 300),
                  foreignKeys: [ForeignKey(field: "customerId", value: "C-1"), ForeignKey(field: "tag", value: "t1"),
                                ForeignKey(field: "tag", value: "t2")])
        batch.delete(table: "SalesOrder", id: "SO-0")
        batch.put(table: "Customer", id: "C-ü", record: [])
        batch.append(OutboxEvent(id: "ev-1", type: "SalesOrderPlaced", aggregateTable: "SalesOrder", aggregateId: "SO-1",
                                 occurredAt: -5, payload: [1, 2, 3]))
        return batch
    }

    @Test func payloadRoundTrip() throws {
        let batch = sampleBatch()
        let (bytes, encoded) = CommitPayload.encode(batch, versions: [3, 9, 1], firstEventPosition: 41, commitTimestamp: 1_234_567)
        let decoded = try bytes.withUnsafeBytes { try CommitPayload.decode($0) }
        #expect(decoded == encoded)
        #expect(decoded.unitOfWorkId == "uow-7")
        #expect(decoded.commitTimestamp == 1_234_567)
        #expect(decoded.operations.count == 4)
        guard case let .put(table, id, version, keys, record) = decoded.operations[0] else {
            Issue.record("first operation is not a put")
            return
        }
        #expect((table, id, version) == ("SalesOrder", "SO-1", 3))
        #expect(keys.count == 3)
        #expect(Array(bytes[record]) == Array(repeating: 7, count: 300))
        #expect(decoded.operations[1] == .delete(table: "SalesOrder", id: "SO-0", version: 9))
        guard case let .event(event, position) = decoded.operations[3] else {
            Issue.record("last operation is not an event")
            return
        }
        #expect(event.occurredAt == -5 && event.payload == [1, 2, 3])
        #expect(position == 41)
        #expect(decoded.firstEventPosition == 41 && decoded.eventCount == 1)
    }

    @Test func payloadDecoderRejectsTrailingBytesAndUnknownTags() {
        let (bytes, _) = CommitPayload.encode(sampleBatch(), versions: [1, 1, 1], firstEventPosition: 1, commitTimestamp: 0)
        #expect(throws: ByteReader.Failure.self) { try (bytes + [0]).withUnsafeBytes { try CommitPayload.decode($0) } }
        var unknownTag = bytes
        // The first tag follows the id string (1 + 5 bytes), the timestamp (8) and the count (1).
        unknownTag[15] = 99
        #expect(throws: ByteReader.Failure.self) { try unknownTag.withUnsafeBytes { try CommitPayload.decode($0) } }
        for cut in 0..<bytes.count {
            #expect(throws: ByteReader.Failure.self) { try Array(bytes[..<cut]).withUnsafeBytes { try CommitPayload.decode($0) } }
        }
    }

    @Test func payloadDecoderSurvivesRandomDamage() {
        let (bytes, _) = CommitPayload.encode(sampleBatch(), versions: [1, 1, 1], firstEventPosition: 1, commitTimestamp: 0)
        var random = SplitMix64(seed: 11)
        for _ in 0..<5000 {
            var damaged = bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                damaged[Int.random(in: 0..<damaged.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            // Must either decode or throw; never trap or allocate without bound.
            _ = try? damaged.withUnsafeBytes { try CommitPayload.decode($0) }
        }
    }

    @Test func eventPositionsRunOnFromTheFirstAcrossOtherOperations() throws {
        var batch = WriteBatch(unitOfWorkId: "uow")
        let event = OutboxEvent(id: "e", type: "T", aggregateTable: "A", aggregateId: "x", occurredAt: 0, payload: [])
        batch.append(event)
        batch.put(table: "A", id: "x", record: [1])
        batch.append(event)
        batch.delete(table: "A", id: "y")
        batch.append(event)
        let (bytes, encoded) = CommitPayload.encode(batch, versions: [1, 1], firstEventPosition: 10, commitTimestamp: 0)
        let decoded = try bytes.withUnsafeBytes { try CommitPayload.decode($0) }
        #expect(decoded == encoded)
        var positions: [UInt64] = []
        for case let .event(_, position) in decoded.operations { positions.append(position) }
        #expect(positions == [10, 11, 12])
        #expect(decoded.firstEventPosition == 10 && decoded.eventCount == 3)
        // Without events there is no first position, whatever the writer passed.
        var none = WriteBatch(unitOfWorkId: "uow")
        none.put(table: "A", id: "x", record: [1])
        let (noEvents, _) = CommitPayload.encode(none, versions: [1], firstEventPosition: 99, commitTimestamp: 0)
        let plain = try noEvents.withUnsafeBytes { try CommitPayload.decode($0) }
        #expect(plain.firstEventPosition == nil && plain.eventCount == 0)
    }

    /// Within one payload the decoder accepts only consecutive positions from 1 up, and never
    /// traps on a position at the top of the range.
    @Test(arguments: [
        ([5, 6, 7], true), ([1], true), ([UInt64.max], true),
        ([0], false), ([0, 1], false), ([5, 7], false), ([5, 5], false), ([6, 5], false),
        ([UInt64.max, 0], false), ([UInt64.max, UInt64.max], false),
    ] as [([UInt64], Bool)])
    func eventPositionsWithinAPayloadMustBeConsecutiveFromOneUp(positions: [UInt64], valid: Bool) throws {
        var writer = ByteWriter()
        writer.writeString("uow")
        writer.writeInt64(0)
        writer.writeVarint(UInt64(positions.count))
        for position in positions {
            writer.writeUInt8(Format.OperationTag.event.rawValue)
            writer.writeVarint(position)
            for name in ["e", "T", "A", "x"] { writer.writeString(name) }
            writer.writeInt64(0)
            writer.writeLengthPrefixed([])
        }
        let decoded = try? writer.bytes.withUnsafeBytes { try CommitPayload.decode($0) }
        #expect((decoded != nil) == valid)
        if let decoded { #expect(decoded.firstEventPosition == positions.first && decoded.eventCount == positions.count) }
    }

    /// Version 2 added the event position and version 3 the frame's place in its write; a store
    /// of an older version is refused, not misread.
    @Test(arguments: [UInt8(1), UInt8(2)])
    func anOlderSegmentHeaderOrManifestIsAnUnsupportedFormat(version: UInt8) throws {
        #expect(Format.version == 3)
        var header = SegmentHeader(segmentId: 1, salt: 2, baseSequence: 1).encoded()
        header[4] = version
        let headerCRC = header.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<Format.segmentHeaderCRCOffset])) }
        withUnsafeBytes(of: CRC32C.mask(headerCRC).littleEndian) { for index in 0..<4 { header[Format.segmentHeaderCRCOffset + index] = $0[index] } }
        let headerError = #expect(throws: StoreError.self) { try SegmentHeader.decode(header, path: "x") }
        #expect(headerError?.code == .unsupportedFormat)

        var manifest = Manifest(salt: 2, createdAt: 0, segments: [
            .init(id: 1, baseSequence: 1, sealedLength: Format.activeSegmentLength, lastSequence: 0),
        ]).encoded()
        manifest[4] = version
        let manifestCRC = CRC32C.checksum(Array(manifest.dropLast(4)))
        withUnsafeBytes(of: CRC32C.mask(manifestCRC).littleEndian) { for index in 0..<4 { manifest[manifest.count - 4 + index] = $0[index] } }
        let manifestError = #expect(throws: StoreError.self) { try Manifest.decode(manifest, path: "m") }
        #expect(manifestError?.code == .unsupportedFormat)
    }

    @Test func theEncodedSizeBoundHoldsAtTheWidestFields() throws {
        // Names of the longest length, versions and positions whose varints take 10 bytes,
        // many foreign keys and empty bodies: the payload is written in place into the room
        // the bound reckons (a write past it traps), and it decodes to what was encoded.
        let long = String(repeating: "n", count: Format.maximumNameLength)
        var batch = WriteBatch(unitOfWorkId: long)
        batch.put(table: long, id: long, record: [], foreignKeys: (0..<50).map { ForeignKey(field: long, value: "\($0)") })
        batch.put(table: "t", id: "i", record: [])
        batch.delete(table: long, id: long)
        batch.append(OutboxEvent(id: long, type: long, aggregateTable: long, aggregateId: long, occurredAt: .min, payload: []))
        batch.append(OutboxEvent(id: "e", type: "t", aggregateTable: "a", aggregateId: "b", occurredAt: 0, payload: []))
        let (bytes, encoded) = CommitPayload.encode(batch, versions: [.max, .max, .max], firstEventPosition: .max - 1,
                                                    commitTimestamp: .min)
        #expect(bytes.count <= CommitPayload.estimatedSize(of: batch))
        #expect(try bytes.withUnsafeBytes { try CommitPayload.decode($0) } == encoded)
        // Compaction's re-encoding of the same operations is bounded the same way.
        let kept = CommitPayload.encode(keeping: encoded.operations, of: encoded, source: bytes)
        #expect(kept.bytes == bytes && kept.payload == encoded)
        #expect(CommitPayload.estimatedSize(of: encoded.operations, unitOfWorkId: long) == CommitPayload.estimatedSize(of: batch))
    }

    @Test func theBoundedWriterWritesWhatTheGrowingWriterWrites() {
        var random = SplitMix64(seed: 5)
        var growing = ByteWriter()
        let bytes = [UInt8](unsafeUninitializedCapacity: 1 << 16) { buffer, count in
            var bounded = BoundedByteWriter(buffer)
            for _ in 0..<500 {
                let value = UInt64.random(in: 0...UInt64.max, using: &random) >> UInt64.random(in: 0...63, using: &random)
                let text = String(repeating: "é", count: Int(value % 40))
                let run = (0..<Int(value % 50)).map { UInt8(truncatingIfNeeded: $0) }
                growing.writeVarint(value)
                bounded.writeVarint(value)
                growing.writeInt64(Int64(bitPattern: value))
                bounded.writeInt64(Int64(bitPattern: value))
                growing.writeString(text)
                bounded.writeString(text)
                #expect(growing.writeLengthPrefixed(run) == bounded.writeLengthPrefixed(run))
                growing.writeUInt8(UInt8(truncatingIfNeeded: value))
                bounded.writeUInt8(UInt8(truncatingIfNeeded: value))
            }
            count = bounded.count
        }
        #expect(bytes == growing.bytes)
    }

    @Test func varintRoundTripAtEveryWidth() throws {
        var writer = ByteWriter()
        let values: [UInt64] = [0, 1, 127, 128, 16_383, 16_384, UInt64(UInt32.max), UInt64.max]
        for value in values { writer.writeVarint(value) }
        try writer.bytes.withUnsafeBytesTyped { buffer throws(ByteReader.Failure) in
            var reader = ByteReader(buffer)
            for value in values { #expect(try reader.readVarint() == value) }
            #expect(reader.isAtEnd)
        }
        // An 11-byte varint overflows.
        let overflow = [UInt8](repeating: 0xFF, count: 10) + [0x01]
        overflow.withUnsafeBytes { buffer in
            var reader = ByteReader(buffer)
            #expect(throws: ByteReader.Failure.self) { try reader.readVarint() }
        }
    }

    @Test(arguments: [false, true])
    func frameRoundTrip(compressible: Bool) throws {
        var random = SplitMix64(seed: 3)
        let payload: [UInt8] = compressible ? Array(repeating: 42, count: 4000) : (0..<4000).map { _ in UInt8.random(in: 0...255, using: &random) }
        let frame = Frame.encode(sequence: 77, payload: payload, salt: 0xABCD)
        try frame.withUnsafeBytes { buffer in
            let headerBytes = UnsafeRawBufferPointer(rebasing: buffer[..<Format.frameHeaderLength])
            let header = try Frame.parseHeader(headerBytes).get()
            #expect(header.sequence == 77)
            #expect(header.isCompressed == compressible)
            #expect(header.uncompressedLength == payload.count)
            #expect(header.frameLength == frame.count)
            let stored = UnsafeRawBufferPointer(rebasing: buffer[Format.frameHeaderLength...])
            #expect(Frame.verify(header, headerBytes: headerBytes, stored: stored, salt: 0xABCD))
            #expect(!Frame.verify(header, headerBytes: headerBytes, stored: stored, salt: 0xABCE), "the salt seeds the CRC")
            #expect(try Frame.payload(of: header, stored: stored) == payload)
        }
        if compressible { #expect(frame.count < payload.count / 10) }
    }

    @Test func aWellCompressedFrameDoesNotKeepTheRoomOfItsPayload() throws {
        // The frame is first given room for the payload uncompressed; it waits in the commit
        // queue, so 100 KB that compress to a few hundred bytes must not keep 100 KB.
        let frame = Frame.encode(sequence: 1, payload: Array(repeating: 7, count: 100_000), salt: 1)
        #expect(frame.count < 1000)
        #expect(frame.capacity < frame.count + 4096)
        let header = try frame.withUnsafeBytes { try Frame.parseHeader(UnsafeRawBufferPointer(rebasing: $0[..<Format.frameHeaderLength])).get() }
        #expect(header.isCompressed && header.frameLength == frame.count)
    }

    @Test func frameHeaderRejectsEveryBitFlip() {
        let frame = Frame.encode(sequence: 1, payload: Array(repeating: 1, count: 100), salt: 1)
        for byte in 0..<Format.frameHeaderLength {
            for bit in 0..<8 {
                var damaged = frame
                damaged[byte] ^= 1 << bit
                let result = damaged.withUnsafeBytes { Frame.parseHeader($0) }
                if case .success = result { Issue.record("a flip of bit \(bit) of header byte \(byte) went unnoticed") }
            }
        }
    }

    @Test func segmentHeaderRoundTripAndDamage() throws {
        let header = SegmentHeader(segmentId: 12, salt: 0xDEAD_BEEF, baseSequence: 1001)
        let bytes = header.encoded()
        #expect(bytes.count == Format.segmentHeaderLength)
        #expect(try SegmentHeader.decode(bytes, path: "x") == header)
        for byte in 0..<Format.segmentHeaderCRCOffset + 4 {
            var damaged = bytes
            damaged[byte] ^= 0x10
            #expect(throws: StoreError.self) { try SegmentHeader.decode(damaged, path: "x") }
        }
        #expect(throws: StoreError.self) { try SegmentHeader.decode(Array(bytes[..<39]), path: "x") }
    }

    @Test func segmentFileNames() {
        #expect(SegmentHeader.fileName(for: 1) == "00000001.seg")
        #expect(SegmentHeader.fileName(for: 123_456_789_012) == "123456789012.seg")
        #expect(SegmentHeader.segmentId(fromFileName: "00000001.seg") == 1)
        #expect(SegmentHeader.segmentId(fromFileName: "123456789012.seg") == 123_456_789_012)
        for name in ["1.seg", "00000000.seg", "0000000a.seg", "00000001.seg.tmp", "LOCK", "000000001.seg"] {
            #expect(SegmentHeader.segmentId(fromFileName: name) == nil, "\(name)")
        }
    }

    @Test func manifestRoundTripAndDamage() throws {
        let manifest = Manifest(salt: 99, createdAt: 5, segments: [
            .init(id: 1, baseSequence: 1, sealedLength: 4096, lastSequence: 10),
            .init(id: 2, baseSequence: 11, sealedLength: Format.activeSegmentLength, lastSequence: 0),
        ])
        let bytes = manifest.encoded()
        #expect(try Manifest.decode(bytes, path: "m") == manifest)
        for byte in bytes.indices {
            var damaged = bytes
            damaged[byte] ^= 0x01
            #expect(throws: StoreError.self) { try Manifest.decode(damaged, path: "m") }
        }
        #expect(throws: StoreError.self) { try Manifest.decode(Array(bytes.dropLast()), path: "m") }
        // An active segment that is not last is inconsistent even with a valid CRC.
        let bad = Manifest(salt: 1, createdAt: 0, segments: [
            .init(id: 1, baseSequence: 1, sealedLength: Format.activeSegmentLength, lastSequence: 0),
            .init(id: 2, baseSequence: 1, sealedLength: Format.activeSegmentLength, lastSequence: 0),
        ])
        #expect(throws: StoreError.self) { try Manifest.decode(bad.encoded(), path: "m") }
    }
}

/// Found by fuzzing: what the payload decoder must reject although the frame verifies.
@Suite("Payload decoding regressions")
struct PayloadDecodingRegressionTests {
    @Test func emptyAndNULNamesAreRejected() {
        for (table, id) in [("", "x"), ("T", ""), ("T\u{0}", "x")] {
            var writer = ByteWriter()
            writer.writeString("uow")
            writer.writeInt64(0)
            writer.writeVarint(1)
            writer.writeUInt8(Format.OperationTag.delete.rawValue)
            writer.writeString(table)
            writer.writeString(id)
            writer.writeVarint(1)
            #expect(throws: ByteReader.Failure.self) { try writer.bytes.withUnsafeBytes { try CommitPayload.decode($0) } }
        }
    }

    @Test func aHugeOperationCountOverGarbageIsRejected() {
        // The allocation this once caused (20 bytes per payload byte) is checked by the fuzz
        // corpus input regression-payload-reserve-amplification under a malloc limit.

        var writer = ByteWriter()
        writer.writeString("uow")
        writer.writeInt64(0)
        writer.writeVarint(3_000_000)
        writer.writeRaw([UInt8](repeating: 0, count: 12_000_004))
        let error = #expect(throws: ByteReader.Failure.self) { try writer.bytes.withUnsafeBytes { try CommitPayload.decode($0) } }
        #expect(error?.reason == "unknown operation tag")
    }

    @Test func aSegmentHeaderWithReservedBytesSetIsRejected() {
        var bytes = SegmentHeader(segmentId: 1, salt: 2, baseSequence: 1).encoded()
        bytes[38] = 1
        #expect(throws: StoreError.self) { try SegmentHeader.decode(bytes, path: "x") }
    }
}
