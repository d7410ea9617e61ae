@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import InMemoryLogging
import Logging
import Testing

/// Recovery on open: torn tails are cut and reported; everything else is corruption with a file
/// and an offset (`Docs/FORMAT.md`, section 5).
@Suite("Recovery and damage at rest")
struct RecoveryTests {
    /// Writes `count` commits and returns the byte range of each frame in segment 1.
    private func writeCommits(_ path: String, count: Int) throws -> [Range<Int>] {
        let engine = try openStore(path)
        for number in 1...count { try engine.commit(orderBatch(number, customer: number % 3)) }
        try engine.close()
        // The close cut the zeros written ahead of the frames.
        let frames = try frameRanges(fileBytes(segmentPath(path)))
        #expect(frames.count == count && frames.last?.upperBound == fileSize(segmentPath(path)))
        return frames
    }

    @Test func truncationAtEveryByteOfTheLastFrameIsCutAsATornTail() throws {
        let directory = TemporaryDirectory()
        let frames = try writeCommits(directory.path, count: 3)
        let original = try fileBytes(segmentPath(directory.path))
        let last = frames[2]
        for cut in last.lowerBound..<last.upperBound {
            try Data(original[..<cut]).write(to: URL(fileURLWithPath: segmentPath(directory.path)))
            let (logger, log) = recordingLogger()
            let engine = try openStore(directory.path, logger: logger)
            #expect(engine.lastSequence == 2, "cut at \(cut)")
            #expect(try engine.record(table: "SalesOrder", id: "SO-1") != nil)
            #expect(try engine.record(table: "SalesOrder", id: "SO-2") != nil)
            #expect(try engine.record(table: "SalesOrder", id: "SO-3") == nil)
            if cut > last.lowerBound {
                let torn = try #require(engine.recoveryReport.tornTail)
                #expect(torn.offset == UInt64(last.lowerBound))
                #expect(torn.bytes == UInt64(cut - last.lowerBound))
                #expect(torn.truncated)
                #expect(torn.frames == (cut - last.lowerBound >= Format.frameHeaderLength ? 1 : 0))
                #expect(log.entries.contains { $0.level == .warning && "\($0.message)".contains("torn tail") })
            } else {
                #expect(engine.recoveryReport.tornTail == nil)
            }
            #expect(fileSize(segmentPath(directory.path)) == last.lowerBound, "the torn bytes are cut")
            // The store takes a new commit where the torn one was, and it survives reopening.
            try engine.commit(orderBatch(3))
            try engine.close()
            let reopened = try openStore(directory.path)
            #expect(reopened.lastSequence == 3)
            #expect(reopened.recoveryReport.tornTail == nil)
            try reopened.close()
        }
    }

    @Test func readOnlyOpenReportsATornTailWithoutCuttingIt() throws {
        let directory = TemporaryDirectory()
        let frames = try writeCommits(directory.path, count: 2)
        try editFile(segmentPath(directory.path)) { $0.removeLast(5) }
        let engine = try openStore(directory.path, readOnly: true)
        #expect(engine.lastSequence == 1)
        let torn = try #require(engine.recoveryReport.tornTail)
        #expect(!torn.truncated)
        #expect(torn.offset == UInt64(frames[1].lowerBound))
        #expect(fileSize(segmentPath(directory.path)) == frames[1].upperBound - 5)
        #expect(throws: StoreError.self) { try engine.commit(orderBatch(9)) }
        try engine.close()
    }

    @Test func garbageTailsAreTorn() throws {
        for garbage in [(0..<700).map { UInt8(truncatingIfNeeded: $0 &* 31) }, [UInt8](repeating: 0, count: 4096) + [1]] {
            let directory = TemporaryDirectory()
            let frames = try writeCommits(directory.path, count: 2)
            try editFile(segmentPath(directory.path)) { $0 += garbage }
            let engine = try openStore(directory.path)
            #expect(engine.lastSequence == 2)
            let torn = try #require(engine.recoveryReport.tornTail)
            #expect(torn.offset == UInt64(frames[1].upperBound) && torn.bytes == UInt64(garbage.count) && torn.frames == 0)
            try engine.close()
        }
    }

    /// Zeros after the last frame are space the writer wrote ahead of its frames
    /// (`Docs/FORMAT.md`, section 4.2): the end of the log, not a torn write. A read-only open
    /// leaves them; a writable one cuts them.
    @Test func aZeroTailIsTheEndOfTheLogAndAWritableOpenCutsIt() throws {
        let directory = TemporaryDirectory()
        let frames = try writeCommits(directory.path, count: 2)
        try editFile(segmentPath(directory.path)) { $0 += [UInt8](repeating: 0, count: 5000) }
        let readOnly = try openStore(directory.path, readOnly: true)
        #expect(readOnly.lastSequence == 2 && readOnly.recoveryReport.tornTail == nil)
        #expect(try readOnly.verify().isHealthy)
        try readOnly.close()
        #expect(fileSize(segmentPath(directory.path)) == frames[1].upperBound + 5000)
        let engine = try openStore(directory.path)
        #expect(engine.lastSequence == 2 && engine.recoveryReport.tornTail == nil)
        #expect(engine.recoveryReport.zerosAfterLastFrame == 5000)
        #expect(fileSize(segmentPath(directory.path)) == frames[1].upperBound)
        try engine.commit(orderBatch(3))
        try engine.close()
        let reopened = try openStore(directory.path)
        #expect(reopened.lastSequence == 3)
        try reopened.close()
    }

    /// A roll cuts the zeros after the sealed segment's frames without an fsync, so a crash
    /// can leave them past the sealed length: accepted, but anything else there is corruption.
    @Test func zerosPastASealedSegmentsLengthAreAcceptedAndAnythingElseIsNot() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        for number in 1...20 { try engine.commit(orderBatch(number)) }
        try engine.close()
        let sealed = segmentPath(directory.path, 1)
        let original = try fileBytes(sealed)
        try Data(original + [UInt8](repeating: 0, count: 3000)).write(to: URL(fileURLWithPath: sealed))
        let reopened = try openStore(directory.path)
        #expect(reopened.lastSequence == 20)
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
        try Data(original + [UInt8](repeating: 0, count: 3000) + [7]).write(to: URL(fileURLWithPath: sealed))
        let error = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(error?.code == .corruption && error?.path == sealed && error?.offset == UInt64(original.count))
    }

    @Test func aBitFlipInAnyByteOfAMiddleFrameIsCorruptionAtThatFrame() throws {
        let directory = TemporaryDirectory()
        let frames = try writeCommits(directory.path, count: 3)
        let original = try fileBytes(segmentPath(directory.path))
        let middle = frames[1]
        for position in middle {
            var damaged = original
            damaged[position] ^= UInt8(1 << (position % 8))
            try Data(damaged).write(to: URL(fileURLWithPath: segmentPath(directory.path)))
            do {
                let engine = try openStore(directory.path)
                try engine.close()
                Issue.record("a flipped bit at byte \(position) was not detected")
            } catch {
                #expect(error.code == .corruption)
                #expect(error.path == segmentPath(directory.path))
                #expect(error.offset == UInt64(middle.lowerBound), "byte \(position): \(error)")
            }
            #expect(try fileBytes(segmentPath(directory.path)) == damaged, "a failed open changes nothing")
        }
    }

    @Test func aBitFlipInAnEarlierSegmentIsCorruptionEvenAtItsEnd() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        for number in 1...40 { try engine.commit(orderBatch(number, size: 300)) }
        try engine.close()
        let first = segmentPath(directory.path, 1)
        #expect(FileManager.default.fileExists(atPath: segmentPath(directory.path, 2)))
        let size = fileSize(first)
        try editFile(first) { $0[size - 3] ^= 0x40 }
        let error = #expect(throws: StoreError.self) { try openStore(directory.path, segmentSize: 4096) }
        #expect(error?.code == .corruption && error?.path == first && (error?.offset ?? .max) < UInt64(size))
    }

    @Test func aSequenceGapIsCorruption() throws {
        let directory = TemporaryDirectory()
        let frames = try writeCommits(directory.path, count: 3)
        let manifest = try Manifest.decode(try fileBytes(directory.path("MANIFEST")), path: "MANIFEST")
        let original = try fileBytes(segmentPath(directory.path))
        // Re-encode the middle frame's payload under sequence 5: it verifies, but breaks continuity.
        let payload = try original.withUnsafeBytes { buffer in
            let header = try Frame.parseHeader(UnsafeRawBufferPointer(rebasing: buffer[frames[1].lowerBound...])).get()
            return try Frame.payload(of: header, stored: UnsafeRawBufferPointer(rebasing: buffer[(frames[1].lowerBound + 32)..<frames[1].upperBound]))
        }
        let gap = Frame.encode(sequence: 5, payload: payload, salt: manifest.salt)
        #expect(gap.count == frames[1].count)
        var damaged = original
        damaged.replaceSubrange(frames[1], with: gap)
        try Data(damaged).write(to: URL(fileURLWithPath: segmentPath(directory.path)))
        let error = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(error?.code == .corruption && error?.offset == UInt64(frames[1].lowerBound) && error?.message.contains("sequence") == true)
        // A verifying frame with a wrong sequence at the very end is not a torn write either.
        var appended = original
        appended += Frame.encode(sequence: 9, payload: payload, salt: manifest.salt)
        try Data(appended).write(to: URL(fileURLWithPath: segmentPath(directory.path)))
        #expect(throws: StoreError.self) { try openStore(directory.path) }
    }

    @Test func aFrameCopiedToTheWrongPlaceIsCorruption() throws {
        let directory = TemporaryDirectory()
        let frames = try writeCommits(directory.path, count: 3)
        var bytes = try fileBytes(segmentPath(directory.path))
        // A misdirected write: frame 1 lands again after frame 3.
        bytes += Array(bytes[frames[0]])
        try Data(bytes).write(to: URL(fileURLWithPath: segmentPath(directory.path)))
        let error = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(error?.offset == UInt64(frames[2].upperBound))
    }

    @Test func aFrameFromAnotherStoreDoesNotVerify() throws {
        let one = TemporaryDirectory(), other = TemporaryDirectory()
        _ = try writeCommits(one.path, count: 1)
        let otherFrames = try writeCommits(other.path, count: 2)
        // Frame 2 of another store (another salt) appended here is not a valid frame: a torn tail.
        let foreign = Array(try fileBytes(segmentPath(other.path))[otherFrames[1]])
        try editFile(segmentPath(one.path)) { $0 += foreign }
        let engine = try openStore(one.path)
        #expect(engine.lastSequence == 1)
        #expect(engine.recoveryReport.tornTail?.reason == "frame CRC mismatch")
        try engine.close()
    }

    @Test func damagedSegmentHeaderMissingSegmentAndDamagedManifestFailTheOpen() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        for number in 1...40 { try engine.commit(orderBatch(number, size: 300)) }
        try engine.close()
        let second = segmentPath(directory.path, 2)
        let saved = try fileBytes(second)

        try editFile(second) { $0[9] ^= 1 }
        let headerError = #expect(throws: StoreError.self) { try openStore(directory.path, segmentSize: 4096) }
        #expect(headerError?.code == .corruption && headerError?.path == second && headerError?.offset == 0)
        try FileManager.default.removeItem(atPath: second)
        let missingError = #expect(throws: StoreError.self) { try openStore(directory.path, segmentSize: 4096) }
        #expect(missingError?.code == .corruption && missingError?.path == second && missingError?.message.contains("missing") == true)
        try Data(saved).write(to: URL(fileURLWithPath: second))
        let manifestPath = directory.path("MANIFEST")
        let manifest = try fileBytes(manifestPath)
        try editFile(manifestPath) { $0[30] ^= 4 }
        let manifestError = #expect(throws: StoreError.self) { try openStore(directory.path, segmentSize: 4096) }
        #expect(manifestError?.code == .corruption && manifestError?.path == manifestPath)
        try FileManager.default.removeItem(atPath: manifestPath)
        let noManifestError = #expect(throws: StoreError.self) { try openStore(directory.path, segmentSize: 4096) }
        #expect(noManifestError?.code == .corruption)
        try Data(manifest).write(to: URL(fileURLWithPath: manifestPath))
        let healthy = try openStore(directory.path, segmentSize: 4096)
        #expect(healthy.lastSequence == 40)
        try healthy.close()
    }

    @Test func truncatingASealedSegmentIsCorruption() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        for number in 1...40 { try engine.commit(orderBatch(number, size: 300)) }
        try engine.close()
        let first = segmentPath(directory.path, 1)
        let frames = try fileBytes(first)
        // Cut exactly one whole frame off the end of the sealed segment: every frame left verifies.
        let manifest = try Manifest.decode(try fileBytes(directory.path("MANIFEST")), path: "MANIFEST")
        var offset = Format.segmentHeaderLength
        var lastStart = offset
        while offset < frames.count {
            lastStart = offset
            offset += try frames.withUnsafeBytes { try Frame.parseHeader(UnsafeRawBufferPointer(rebasing: $0[offset...])).get().frameLength }
        }
        try Data(frames[..<lastStart]).write(to: URL(fileURLWithPath: first))
        #expect(manifest.segments[0].sealedLength == UInt64(frames.count))
        let error = #expect(throws: StoreError.self) { try openStore(directory.path, segmentSize: 4096) }
        #expect(error?.path == first)
    }

    @Test func leftoversOfAnInterruptedRollOrInstallAreRemoved() throws {
        let directory = TemporaryDirectory()
        _ = try writeCommits(directory.path, count: 2)
        // An interrupted roll: segment 2 created (header only), manifest never installed.
        let header = SegmentHeader(segmentId: 2, salt: 1, baseSequence: 3).encoded()
        try Data(header).write(to: URL(fileURLWithPath: segmentPath(directory.path, 2)))
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: directory.path("MANIFEST.tmp")))

        let readOnly = try openStore(directory.path, readOnly: true)
        #expect(Set(readOnly.recoveryReport.leftoverFiles) == ["00000002.seg", "MANIFEST.tmp"])
        try readOnly.close()

        let engine = try openStore(directory.path)
        #expect(Set(engine.recoveryReport.removedFiles) == ["00000002.seg", "MANIFEST.tmp"])
        #expect(!FileManager.default.fileExists(atPath: segmentPath(directory.path, 2)))
        #expect(engine.lastSequence == 2)
        try engine.close()
        // An unlisted segment holding frames is a compaction's unfinished output (or a segment
        // it replaced): no acknowledged commit is only there, so it goes too.
        try Data(try fileBytes(segmentPath(directory.path, 1))).write(to: URL(fileURLWithPath: segmentPath(directory.path, 5)))
        let again = try openStore(directory.path)
        #expect(again.recoveryReport.removedFiles == ["00000005.seg"])
        #expect(again.lastSequence == 2)
        try again.close()
    }

    @Test func anInterruptedCreationIsStartedAgain() throws {
        let directory = TemporaryDirectory()
        // Creation died after segment 1 was written, before the manifest.
        try Data(SegmentHeader(segmentId: 1, salt: 7, baseSequence: 1).encoded())
            .write(to: URL(fileURLWithPath: segmentPath(directory.path, 1)))
        let engine = try openStore(directory.path)
        #expect(engine.recoveryReport.created)
        #expect(engine.recoveryReport.removedFiles == ["00000001.seg"])
        try engine.commit(orderBatch(1))
        try engine.close()
        let reopened = try openStore(directory.path)
        #expect(reopened.lastSequence == 1)
        try reopened.close()
    }
}
