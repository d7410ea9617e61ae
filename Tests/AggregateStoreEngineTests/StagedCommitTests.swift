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
