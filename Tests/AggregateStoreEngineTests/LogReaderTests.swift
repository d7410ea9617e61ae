import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

/// The lockless log reader (`aggstore dump`, `events`): it reads the log of a store another
/// handle has open and is committing to, stops at a write in progress, resumes, reports damage
/// with its file and offset, and survives a compaction that replaces the segments under it.
@Suite("Lockless log reader")
struct LogReaderTests {
    /// Everything a pass delivers.
    private func readAll(_ reader: inout LogReader) throws -> (frames: [LogFrame], pass: LogReader.Pass) {
        var frames: [LogFrame] = []
        let pass = try reader.read { frames.append($0) }
        return (frames, pass)
    }

    /// Checks a delivered frame against the batch `orderBatch(number)` committed.
    private func expectOrder(_ frame: LogFrame, number: Int) {
        #expect(frame.payload.unitOfWorkId == "uow-\(number)")
        guard frame.payload.operations.count == 2,
              case let .put(table, id, version, foreignKeys, record) = frame.payload.operations[0],
              case let .event(event, _) = frame.payload.operations[1] else {
            Issue.record("frame \(frame.header.sequence) holds \(frame.payload.operations)")
            return
        }
        #expect(table == "SalesOrder" && id == "SO-\(number)" && version == 1)
        #expect(foreignKeys == [ForeignKey(field: "customerId", value: "C-1")])
        #expect(Array(frame.record(record)) == recordBytes("SO-\(number)"))
        #expect(event.id == "ev-\(number)" && event.aggregateId == "SO-\(number)")
    }

    @Test func readsEveryFrameAsCommittedWhileTheStoreIsOpen() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        defer { try? engine.close() }
        var receipts: [CommitReceipt] = []
        for number in 1...30 { receipts.append(try engine.commit(orderBatch(number))) }
        var reader = LogReader(directory: directory.path)
        let (frames, pass) = try readAll(&reader)
        #expect(frames.map(\.header.sequence) == receipts.map(\.sequence))
        #expect(pass.delivered == 30 && pass.pendingTail == nil && pass.restarts == 0)
        #expect(Set(frames.map(\.segmentId)).count > 1, "the log spans several segments")
        for (number, frame) in zip(1..., frames) {
            expectOrder(frame, number: number)
            #expect(frame.payload.firstEventPosition == receipts[number - 1].eventPositions.lowerBound)
            #expect(frame.path == segmentPath(directory.path, frame.segmentId))
            // The offset is where the frame is: its header is there, in the file.
            let header = try fileBytes(frame.path)[Int(frame.offset)..<Int(frame.offset) + Format.frameHeaderLength]
            #expect(try Array(header).withUnsafeBytes { try Frame.parseHeader($0).get() } == frame.header)
        }
        #expect(reader.nextSequence == 31)
        // Nothing new: an empty pass.
        #expect(try readAll(&reader).frames.isEmpty)
    }

    @Test func startsAtAGivenSequence() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        for number in 1...20 { try engine.commit(orderBatch(number)) }
        try engine.close()
        var reader = LogReader(directory: directory.path, from: 7)
        let frames = try readAll(&reader).frames
        #expect(frames.map(\.header.sequence) == Array(7...20))
        for frame in frames { expectOrder(frame, number: Int(frame.header.sequence)) }
        var beyond = LogReader(directory: directory.path, from: 21)
        #expect(try readAll(&beyond).frames.isEmpty)
    }

    @Test func stopsAtAWriteInProgressAndResumesAfterMoreCommits() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        for number in 1...5 { try engine.commit(orderBatch(number)) }
        // Half a frame header at the end of the active segment: what a reader sees while a
        // write is under way. The engine's next write goes exactly there and covers it.
        let segment = segmentPath(directory.path)
        // The file holds zeros written ahead of the frames.
        let end = try endOfFrames(fileBytes(segment))
        let firstFrame = try fileBytes(segment)[Format.segmentHeaderLength..<Format.segmentHeaderLength + 20]
        let handle = try PosixFileSystem().open(segment, mode: .readWrite)
        try handle.write(Array(firstFrame), at: UInt64(end))
        try handle.close()

        var reader = LogReader(directory: directory.path)
        let (first, pass) = try readAll(&reader)
        #expect(first.map(\.header.sequence) == [1, 2, 3, 4, 5])
        let tail = try #require(pass.pendingTail)
        #expect(tail.path == segment && tail.offset == UInt64(end) && tail.bytes == UInt64(fileSize(segment) - end))

        for number in 6...8 { try engine.commit(orderBatch(number)) }
        let (second, resumed) = try readAll(&reader)
        #expect(second.map(\.header.sequence) == [6, 7, 8])
        for frame in second { expectOrder(frame, number: Int(frame.header.sequence)) }
        #expect(resumed.pendingTail == nil)
    }

    @Test func reportsDamageInTheMiddleOfTheLogWithItsFileAndOffset() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        for number in 1...10 { try engine.commit(orderBatch(number)) }
        try engine.close()
        let segment = segmentPath(directory.path)
        let third = try frameRanges(try fileBytes(segment))[2]
        try editFile(segment) { $0[third.lowerBound + Format.frameHeaderLength + 5] ^= 0x01 }

        var reader = LogReader(directory: directory.path)
        var delivered: [UInt64] = []
        do {
            _ = try reader.read { delivered.append($0.header.sequence) }
            Issue.record("damage followed by valid frames was not reported")
        } catch {
            #expect(error.code == .corruption)
            #expect(error.path == segment && error.offset == UInt64(third.lowerBound), "\(error)")
        }
        #expect(delivered == [1, 2], "the frames before the damage are delivered, none after it")
        #expect(reader.nextSequence == 3)
    }

    @Test func reportsDamageAtTheEndOfASealedSegment() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        for number in 1...20 { try engine.commit(orderBatch(number)) }
        try engine.close()
        // The last frame of the first (sealed) segment: no valid frame follows it in that
        // segment, which in the active one would be a write in progress, but a sealed segment
        // is complete.
        let segment = segmentPath(directory.path, 1)
        let last = try #require(try frameRanges(try fileBytes(segment)).last)
        try editFile(segment) { $0[last.upperBound - 1] ^= 0x01 }
        var reader = LogReader(directory: directory.path)
        #expect {
            _ = try reader.read { _ in }
        } throws: { error in
            (error as? StoreError)?.code == .corruption && (error as? StoreError)?.path == segment
                && (error as? StoreError)?.offset == UInt64(last.lowerBound)
        }
    }

    /// Commits `rounds` puts of each of `keys` keys (each round's overwrite kills the one before).
    private func overwrite(_ engine: StorageEngine, keys: Int, rounds: Int, prefix: String = "K") throws -> [UInt64] {
        var sequences: [UInt64] = []
        for round in 0..<rounds {
            for key in 0..<keys {
                var batch = WriteBatch(unitOfWorkId: "uow-\(prefix)-\(round)-\(key)")
                batch.put(table: "T", id: "\(prefix)-\(key)", record: recordBytes("\(prefix)-\(key)", round: round, size: 300))
                sequences.append(try engine.commit(batch).sequence)
            }
        }
        return sequences
    }

    @Test func aCompactionBetweenTwoReadsLosesAndRepeatsNothing() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        defer { try? engine.close() }
        let early = try overwrite(engine, keys: 10, rounds: 4)
        var reader = LogReader(directory: directory.path)
        #expect(try readAll(&reader).frames.map(\.header.sequence) == early)

        // Live commits after the first read, then a compaction that rewrites the sealed
        // segments (those commits' included: they are live, so it keeps them).
        let later = try overwrite(engine, keys: 8, rounds: 1, prefix: "L")
        let report = try engine.compact(minimumDeadRatio: 0.3)
        #expect(report.segmentsCompacted > 0)
        #expect(!FileManager.default.fileExists(atPath: segmentPath(directory.path, 1)), "segment 1 was replaced")
        let (frames, _) = try readAll(&reader)
        #expect(frames.map(\.header.sequence) == later)
        for (key, frame) in zip(0..., frames) {
            guard case let .put(_, id, _, _, record) = frame.payload.operations.first else {
                Issue.record("no put in \(frame.header.sequence)")
                continue
            }
            #expect(id == "L-\(key)" && Array(frame.record(record)) == recordBytes("L-\(key)", round: 0, size: 300))
        }
    }

    @Test func aSegmentReplacedDuringAPassMakesItReadTheManifestAgain() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        defer { try? engine.close() }
        let sequences = try overwrite(engine, keys: 10, rounds: 4)
        let inFirstSegment = UInt64(try frameRanges(try fileBytes(segmentPath(directory.path, 1))).count)
        // The compaction runs after the reader has read the manifest and delivered what
        // segment 1 holds, just as it opens segment 2, which the compaction replaces.
        let compacted = Mutex(false)
        let fileSystem = HookedFileSystem { path in
            guard path == segmentPath(directory.path, 2), !compacted.withLock({ $0 }) else { return }
            compacted.withLock { $0 = true }
            _ = try? engine.compact(minimumDeadRatio: 0.3)
        }
        var reader = LogReader(directory: directory.path, fileSystem: fileSystem)
        let (frames, pass) = try readAll(&reader)
        #expect(compacted.withLock { $0 })
        #expect(!FileManager.default.fileExists(atPath: segmentPath(directory.path, 2)), "segment 2 was replaced")
        #expect(pass.restarts == 1)
        // Segment 1's frames, then, without a repeat or a gap, what the compacted log holds after them.
        var fresh = LogReader(directory: directory.path, from: inFirstSegment + 1)
        let rest = try readAll(&fresh).frames.map(\.header.sequence)
        #expect(frames.map(\.header.sequence) == Array(1...inFirstSegment) + rest)
        #expect(Set(sequences.suffix(10)).isSubset(of: Set(rest)), "the live last round is all there")
        #expect(rest.count < sequences.count - Int(inFirstSegment), "the compaction dropped dead commits")
    }
}

/// The real file system, calling `beforeOpen` with each path before it is opened: where a test
/// makes a compaction happen in the middle of a reader's pass.
private struct HookedFileSystem: FileSystem {
    let real = PosixFileSystem()
    let beforeOpen: @Sendable (String) -> Void

    func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any AggregateStoreEngine.FileHandle {
        beforeOpen(path)
        return try real.open(path, mode: mode)
    }
    func createDirectory(_ path: String) throws(StoreError) { try real.createDirectory(path) }
    func syncDirectory(_ path: String) throws(StoreError) { try real.syncDirectory(path) }
    func rename(_ source: String, to destination: String) throws(StoreError) { try real.rename(source, to: destination) }
    func removeFile(_ path: String) throws(StoreError) { try real.removeFile(path) }
    func listDirectory(_ path: String) throws(StoreError) -> [String] { try real.listDirectory(path) }
    func kind(of path: String) throws(StoreError) -> FileKind { try real.kind(of: path) }
    func freeSpace(at path: String) throws(StoreError) -> UInt64 { try real.freeSpace(at: path) }
}
