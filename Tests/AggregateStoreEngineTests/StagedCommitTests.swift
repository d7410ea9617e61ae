@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Testing

/// A staged commit: its payload and frame written in place into one allocation, by the buffer
/// forms of the encoders, which must write what their array forms write.
@Suite("Staged commits")
struct StagedCommitTests {
    /// Bytes no LZ4 block shrinks.
    private func incompressible(_ count: Int) -> [UInt8] {
        var generator = SplitMix64(seed: UInt64(count))
        return (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
    }

    /// The header and payload of a frame, once placed as a write of its own.
    private func decode(_ frame: [UInt8], salt: UInt64) throws -> (header: FrameHeader, payload: [UInt8]) {
        try frame.withUnsafeBytes { bytes in
            let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[..<Format.frameHeaderLength])
            let header = try Frame.parseHeader(headerBytes).get()
            let stored = UnsafeRawBufferPointer(rebasing: bytes[Format.frameHeaderLength...])
            #expect(header.frameLength == frame.count)
            #expect(Frame.verify(header, headerBytes: headerBytes, stored: stored, salt: salt))
            return (header, try Frame.payload(of: header, stored: stored))
        }
    }

    @Test func aFrameEncodedIntoABufferOfTheLeastRoomIsTheArrayFormsFrame() throws {
        for payload in [Array(repeating: UInt8(7), count: 5000), incompressible(5000), [1]] {
            let headerLength = Format.frameHeaderLength
            var frame = [UInt8](unsafeUninitializedCapacity: headerLength + payload.count) { buffer, count in
                count = payload.withUnsafeBytes { Frame.encode(sequence: 9, payload: $0, into: UnsafeMutableRawBufferPointer(buffer)) }
            }
            Frame.place(&frame, at: 0, of: 1, salt: 3)
            #expect(frame == Frame.encode(sequence: 9, payload: payload, salt: 3))
            let (header, decoded) = try decode(frame, salt: 3)
            #expect(decoded == payload)
            #expect(header.isCompressed == (payload.count == 5000 && payload[1] == 7), "only the run of sevens shrinks")
        }
    }

    @Test func aPayloadEncodedIntoABufferOfItsBoundIsTheArrayFormsPayload() {
        var batch = orderBatch(1, size: 700)
        batch.delete(table: "SalesOrder", id: "SO-0")
        let versions: [UInt64] = [4, 2]
        let (bytes, payload) = CommitPayload.encode(batch, versions: versions, firstEventPosition: 11, commitTimestamp: 77)
        let bound = CommitPayload.estimatedSize(of: batch)
        var decoded: CommitPayload?
        let inPlace = [UInt8](unsafeUninitializedCapacity: bound) { buffer, count in
            (count, decoded) = CommitPayload.encode(batch, versions: versions, firstEventPosition: 11, commitTimestamp: 77, into: buffer)
        }
        #expect(inPlace == bytes)
        #expect(decoded == payload)
    }

    @Test func aStagedCommitHoldsItsPayloadThenItsFrameAndGivesBackLargeSlack() throws {
        for (record, compresses) in [(Array(repeating: UInt8(7), count: 100_000), true), (incompressible(5000), false)] {
            var batch = WriteBatch(unitOfWorkId: "uow-1")
            batch.put(table: "T", id: "1", record: record)
            let numbers = CommitNumbers(epoch: 0, sequence: 5, versions: [1], keys: BatchKeys(batch), eventPositions: 1..<1, timestamp: 99)
            let staged = StagedCommit(encoding: batch, numbers, estimatedSize: CommitPayload.estimatedSize(of: batch))
            let payload = CommitPayload.encode(batch, versions: [1], firstEventPosition: 1, commitTimestamp: 99).bytes
            #expect(Array(staged.bytes[..<staged.payloadLength]) == payload)
            var frame = Array(staged.bytes[staged.payloadLength...])
            #expect(frame.count == staged.frameLength)
            Frame.place(&frame, at: 0, of: 1, salt: 1)
            let (header, decoded) = try decode(frame, salt: 1)
            #expect(header.sequence == 5 && header.isCompressed == compresses)
            #expect(decoded == payload)
            // 100 KB of sevens compress to a few hundred bytes: the room kept for them
            // uncompressed is given back, not held while the commit waits.
            #expect(staged.bytes.capacity - staged.bytes.count <= max(4096, staged.bytes.count / 4))
        }
    }

    @Test func aStagedCommitOfUsualSizeIsAllocatedAtItsLength() throws {
        // Encoded in the thread's scratch buffer, whose room is twice the payload's bound,
        // then copied out: a commit waiting in the queue holds its bytes, not their bound.
        var batch = WriteBatch(unitOfWorkId: "uow-1")
        batch.put(table: "SalesOrder", id: "SO-1", record: incompressible(600))
        let numbers = CommitNumbers(epoch: 0, sequence: 5, versions: [1], keys: BatchKeys(batch), eventPositions: 1..<1, timestamp: 99)
        let estimate = CommitPayload.estimatedSize(of: batch)
        let staged = StagedCommit(encoding: batch, numbers, estimatedSize: estimate)
        #expect(2 * estimate + Format.frameHeaderLength <= ThreadScratch.maximumSize)
        #expect(staged.bytes.capacity - staged.bytes.count < 64)
        let payload = CommitPayload.encode(batch, versions: [1], firstEventPosition: 1, commitTimestamp: 99).bytes
        #expect(Array(staged.bytes[..<staged.payloadLength]) == payload)
        var frame = Array(staged.bytes[staged.payloadLength...])
        Frame.place(&frame, at: 0, of: 1, salt: 1)
        #expect(try decode(frame, salt: 1).payload == payload)
    }

    @Test(arguments: [3000, 40_000])
    func aStagedCommitOverItsPayloadLimitIsRefusedBeforeItsFrameIsEncoded(recordSize: Int) throws {
        // 3,000 bytes are staged in the thread's scratch buffer, 40,000 (whose room is over
        // its largest size) in an allocation of their own.
        var batch = WriteBatch(unitOfWorkId: "uow-1")
        batch.put(table: "T", id: "1", record: Array(repeating: 7, count: recordSize))
        let numbers = CommitNumbers(epoch: 0, sequence: 5, versions: [1], keys: BatchKeys(batch), eventPositions: 1..<1, timestamp: 99)
        let estimate = CommitPayload.estimatedSize(of: batch)
        let length = CommitPayload.encode(batch, versions: [1], firstEventPosition: 1, commitTimestamp: 99).bytes.count
        let fits = try StagedCommit(encoding: batch, numbers, estimatedSize: estimate, maximumPayloadLength: length)
        #expect(fits.payloadLength == length)
        var frame = Array(fits.bytes[length...])
        Frame.place(&frame, at: 0, of: 1, salt: 1)
        let (header, decoded) = try decode(frame, salt: 1)
        let matches = header.sequence == 5 && decoded == Array(fits.bytes[..<length])
        #expect(matches)
        let error = #expect(throws: StoreError.self) {
            try StagedCommit(encoding: batch, numbers, estimatedSize: estimate, maximumPayloadLength: length - 1)
        }
        #expect(error?.code == .recordTooLarge)
        #expect(error?.message == "the batch encodes to \(length) bytes; the maximum is \(length - 1)")
    }

    @Test(arguments: [1, 2, 3])
    func aBatchsMinimumSizeIsALowerBoundOfItsPayloadsLength(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        func name(_ prefix: String) -> String { prefix + String(repeating: "x", count: Int(random.next() % 20)) }
        for _ in 0..<200 {
            var batch = WriteBatch(unitOfWorkId: name("uow"))
            var versions: [UInt64] = []
            for _ in 0..<(1 + random.next() % 8) {
                switch random.next() % 3 {
                case 0:
                    let keys = (0..<random.next() % 3).map { _ in ForeignKey(field: name("f"), value: name("") + "v") }
                    batch.put(table: name("T"), id: name("i"), record: Array(repeating: 1, count: Int(random.next() % 300)), foreignKeys: keys)
                    versions.append(random.next() >> 1)
                case 1:
                    batch.delete(table: name("T"), id: name("i"))
                    versions.append(random.next() >> 1)
                default:
                    batch.append(OutboxEvent(id: name("e"), type: name("t"), aggregateTable: name("T"), aggregateId: name("i"),
                                             occurredAt: 0, payload: Array(repeating: 2, count: Int(random.next() % 100))))
                }
            }
            let length = CommitPayload.encode(batch, versions: versions, firstEventPosition: 1, commitTimestamp: 0).bytes.count
            let minimum = CommitPayload.minimumSize(of: batch)
            #expect(minimum <= length && length <= CommitPayload.estimatedSize(of: batch))
            // The bound leaves out only the lengths, numbers and tags: a few bytes a field.
            #expect(length - minimum <= 9 + batch.operations.count * 40)
        }
    }

    @Test func aBatchOverTheLimitIsRefusedWithoutANumberWhetherItsBytesOrItsEncodingExceedIt() async throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.maximumBatchSize = 4096
        configuration.compaction.isAutomatic = false
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        defer { try? engine.close() }
        try await engine.commit(orderBatch(1))
        let size = fileSize(segmentPath(directory.path))
        func deletes(_ count: Int) -> WriteBatch {
            var batch = WriteBatch(unitOfWorkId: "uow-deletes")
            for index in 0..<count { batch.delete(table: "T", id: "d-\(10_000 + index)") }
            return batch
        }
        // Its bytes alone exceed the limit: refused before the writer lock, unencoded.
        var big = WriteBatch(unitOfWorkId: "uow-big")
        for index in 0..<5 { big.put(table: "T", id: "\(index)", record: Array(repeating: UInt8(index), count: 1000)) }
        let bytesError = #expect(throws: StoreError.self) { try engine.commit(big) }
        #expect(bytesError?.code == .recordTooLarge)
        #expect(bytesError?.message.contains("holds at least") == true, "\(String(describing: bytesError))")
        // 8 bytes of names each (4,011 with the unit-of-work id), but 12 bytes each encoded:
        // refused once encoded, before its frame.
        let tooMany = deletes(500)
        #expect(CommitPayload.minimumSize(of: tooMany) <= 4096 && CommitPayload.estimatedSize(of: tooMany) > 4096)
        let encodingError = #expect(throws: StoreError.self) { try engine.commit(tooMany) }
        #expect(encodingError?.code == .recordTooLarge)
        #expect(encodingError?.message.contains("encodes to") == true, "\(String(describing: encodingError))")
        #expect(engine.lastSequence == 1)
        #expect(fileSize(segmentPath(directory.path)) == size)
        // One whose bound exceeds the limit but whose encoding fits is committed.
        let fewer = deletes(250)
        #expect(CommitPayload.estimatedSize(of: fewer) > 4096)
        #expect(try await engine.commit(fewer).sequence == 2)
        // The async commit refuses the same ways, and so does a group of commits, whose
        // other members are committed.
        for refused in [big, tooMany] {
            let asyncError = await #expect(throws: StoreError.self) { try await engine.commit(refused) }
            #expect(asyncError?.code == .recordTooLarge)
        }
        let outcomes = engine.commit(group: [deletes(1), big, tooMany, deletes(2)])
        #expect(outcomes.map { (try? $0.get())?.sequence } == [3, nil, nil, 4])
        #expect(outcomes.map { outcome -> StoreError.Code? in
            guard case let .failure(error) = outcome else { return nil }
            return error.code
        } == [nil, .recordTooLarge, .recordTooLarge, nil])
    }

    @Test func theReadCacheCopiesExactlyTheBytesOfASliceItIsGiven() {
        let cache = ReadCache(capacity: 1 << 20)
        let bytes = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let key = FrameAddress(segment: 1, offset: 64)
        bytes.withUnsafeBytes { cache.insert(UnsafeRawBufferPointer(rebasing: $0[100..<250]), for: key) }
        #expect(cache.payload(for: key) == Array(bytes[100..<250]))
    }

    @Test func anIncompressibleRecordIsReadBackAfterReopening() throws {
        let directory = TemporaryDirectory()
        let record = incompressible(20_000)
        do {
            let engine = try openStore(directory.path)
            var batch = WriteBatch(unitOfWorkId: "uow-1")
            batch.put(table: "T", id: "1", record: record)
            let receipt = try engine.commit(batch)
            #expect(receipt.frameBytes > receipt.payloadBytes, "stored uncompressed, behind its header")
            try engine.close()
        }
        let reopened = try openStore(directory.path)
        defer { try? reopened.close() }
        #expect(try reopened.record(table: "T", id: "1")?.bytes == record)
    }
}
