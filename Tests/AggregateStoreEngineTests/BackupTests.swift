@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

/// `StorageEngine.backup(to:)`: a consistent copy of an open store, made while commits and
/// compactions go on, that holds a prefix of the log and opens on its own; a failed backup
/// leaves nothing behind.
@Suite("Backup")
struct BackupTests {
    /// A commit of two records that must appear together or not at all.
    private func pairBatch(_ prefix: String) -> WriteBatch {
        var batch = WriteBatch(unitOfWorkId: "uow-\(prefix)")
        for side in ["a", "b"] {
            let id = "\(prefix)-\(side)"
            batch.put(table: "Pair", id: id, record: recordBytes(id), foreignKeys: [ForeignKey(field: "prefix", value: prefix)])
        }
        return batch
    }

    /// Runs `body` on `count` threads; returns a wait for them all.
    private func start(threads count: Int, _ body: @escaping @Sendable (Int) -> Void) -> DispatchGroup {
        let group = DispatchGroup()
        for thread in 0..<count {
            group.enter()
            Thread.detachNewThread {
                body(thread)
                group.leave()
            }
        }
        return group
    }

    private func segmentFiles(_ path: String) throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".seg") })
    }

    @Test func aBackupWhileThreadsCommitHoldsExactlyAPrefixOfTheLog() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path("store"), segmentSize: 16 << 10)
        defer { try? engine.close() }
        // Commit sequence -> the prefix of its two records.
        let committed = Mutex<[UInt64: String]>([:])
        for number in 0..<60 {
            let prefix = "pre-\(number)"
            let receipt = try engine.commit(pairBatch(prefix))
            committed.withLock { $0[receipt.sequence] = prefix }
        }
        let stop = Atomic(false)
        let writers = start(threads: 3) { thread in
            var number = 0
            while !stop.load(ordering: .relaxed) {
                let prefix = "w\(thread)-\(number)"
                guard let receipt = try? engine.commit(pairBatch(prefix)) else { continue }
                committed.withLock { $0[receipt.sequence] = prefix }
                number += 1
            }
        }
        // Commits are running before the backup starts...
        while committed.withLock({ $0.count }) < 100 { usleep(100) }
        let acknowledgedBeforeBackup = engine.lastSequence
        let waitedDuringCopy = Atomic(false)
        let report = try engine.backup(to: directory.path("copy")) { _ in
            // ... and while it copies: the first chunk waits for more commits to be acknowledged.
            guard !waitedDuringCopy.exchange(true, ordering: .relaxed) else { return }
            let target = committed.withLock { $0.count } + 5
            while committed.withLock({ $0.count }) < target { usleep(100) }
        }
        stop.store(true, ordering: .relaxed)
        writers.wait()

        #expect(report.lastSequence >= acknowledgedBeforeBackup, "every commit acknowledged before the backup is in it")
        #expect(report.lastSequence < engine.lastSequence, "commits acknowledged during the copy are not")
        #expect(report.segments > 2)
        let copy = try openStore(directory.path("copy"))
        defer { try? copy.close() }
        #expect(copy.lastSequence == report.lastSequence)
        #expect(try copy.verify().isHealthy)
        // A prefix, and whole commits: both records of every commit up to the copy's last
        // sequence, neither of any later one.
        let commits = committed.withLock { $0 }
        var expected = 0
        for (sequence, prefix) in commits {
            for side in ["a", "b"] {
                let record = try copy.record(table: "Pair", id: "\(prefix)-\(side)")
                if sequence <= report.lastSequence {
                    #expect(record?.bytes == recordBytes("\(prefix)-\(side)"), "sequence \(sequence) is missing or wrong in the copy")
                    #expect(record?.foreignKeys == [ForeignKey(field: "prefix", value: prefix)])
                    expected += 1
                } else {
                    #expect(record == nil, "sequence \(sequence) was acknowledged after the capture but is in the copy")
                }
            }
        }
        #expect(try copy.liveRecordCount(table: "Pair") == expected)
        #expect(copy.recoveryReport.snapshot == nil, "the copy has no snapshot; its index is rebuilt")
    }

    @Test func anExistingDestinationIsRefusedAndLeftAsItWas() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path("store"))
        defer { try? engine.close() }
        try engine.commit(pairBatch("one"))
        let existing = directory.path("existing")
        try FileManager.default.createDirectory(atPath: existing, withIntermediateDirectories: false)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: existing + "/note.txt"))
        #expect(throws: StoreError.self) { try engine.backup(to: existing) }
        do { try engine.backup(to: existing) } catch { #expect(error.code == .duplicate) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: existing) == ["note.txt"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing + "/note.txt")) == Data("keep".utf8))
        // A file is refused as well.
        do { try engine.backup(to: existing + "/note.txt") } catch { #expect(error.code == .duplicate) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing + "/note.txt")) == Data("keep".utf8))
    }

    /// A fault planned on the copy's (or the source's) files.
    struct Fault: Sendable, CustomTestStringConvertible {
        var operation: FaultInjectingFileSystem.Operation
        var errno: Int32
        var skip: Int
        var path: String
        var testDescription: String { "\(operation) #\(skip + 1) on \(path) fails with errno \(errno)" }
    }

    static let faults: [Fault] = [
        Fault(operation: .write, errno: 28, skip: 0, path: "copy/"),   // ENOSPC on the first segment
        Fault(operation: .write, errno: 28, skip: 2, path: "copy/"),   // ENOSPC on a later segment
        Fault(operation: .write, errno: 5, skip: 1, path: "copy/"),
        Fault(operation: .sync, errno: 5, skip: 1, path: "copy/"),     // a segment's fsync
        Fault(operation: .open, errno: 5, skip: 2, path: "copy/"),     // creating a segment
        Fault(operation: .syncDirectory, errno: 5, skip: 0, path: "copy"),
        Fault(operation: .rename, errno: 5, skip: 0, path: "copy/"),   // MANIFEST.tmp -> MANIFEST
        Fault(operation: .read, errno: 5, skip: 0, path: "store/00000002.seg"),
    ]

    @Test(arguments: faults)
    func aFailedCopyLeavesNothingBehindAndTheStoreGoesOn(_ fault: Fault) throws {
        let directory = TemporaryDirectory()
        let fileSystem = FaultInjectingFileSystem(wrapping: PosixFileSystem())
        var configuration = EngineConfiguration()
        configuration.segmentSize = 8 << 10
        configuration.compaction.isAutomatic = false
        let engine = try StorageEngine.open(at: directory.path("store"), configuration: configuration, fileSystem: fileSystem,
                                            logger: quietLogger)
        defer { try? engine.close() }
        for number in 0..<60 { try engine.commit(pairBatch("p\(number)")) }
        let copy = directory.path("copy")
        fileSystem.inject(fault.operation, errno: fault.errno, skip: fault.skip, pathContains: fault.path)
        do {
            try engine.backup(to: copy)
            Issue.record("the backup succeeded despite \(fault.testDescription)")
        } catch {
            #expect(error.code == (fault.errno == 28 ? .noSpace : .io), "\(error)")
        }
        #expect(fileSystem.injectedFaults == 1)
        #expect(try PosixFileSystem().kind(of: copy) == .missing, "a failed backup leaves no directory")
        // The store is unaffected: it commits, verifies, and backs up once the fault is gone.
        fileSystem.clearFaults()
        try engine.commit(pairBatch("after"))
        #expect(try engine.verify().isHealthy)
        let report = try engine.backup(to: copy)
        #expect(report.lastSequence == engine.lastSequence)
    }

    @Test func aCompactionDuringABackupWaitsToDeleteTheSegmentsBeingCopied() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let engine = try openStore(store, segmentSize: 8 << 10)
        defer { try? engine.close() }
        // Rounds of overwrites: every sealed segment but the newest is mostly dead.
        for round in 0..<6 {
            for key in 0..<10 {
                var batch = WriteBatch(unitOfWorkId: "uow-\(round)-\(key)")
                batch.put(table: "T", id: "K-\(key)", record: recordBytes("K-\(key)", round: round, size: 400))
                try engine.commit(batch)
            }
        }
        let captured = try segmentFiles(store)
        #expect(captured.count > 3)
        let epochBefore = engine.state.withLock { $0.epoch }
        let compactionReport = Mutex<CompactionReport?>(nil)
        let compaction = DispatchGroup()
        let replacedWhileCopying = Mutex<Set<String>>([])
        let stillThereWhileCopying = Mutex<Bool>(false)
        let report = try engine.backup(to: directory.path("copy")) { _ in
            guard compaction.wait(timeout: .now()) == .success, compactionReport.withLock({ $0 }) == nil,
                  replacedWhileCopying.withLock({ $0.isEmpty }) else { return }
            // The first chunk is copied: compact now, and wait until the compaction has
            // installed its manifest (it cannot finish: it waits for this backup to delete).
            compaction.enter()
            Thread.detachNewThread {
                let result = try? engine.compact(minimumDeadRatio: 0.3)
                compactionReport.withLock { $0 = result }
                compaction.leave()
            }
            while engine.state.withLock({ $0.epoch }) == epochBefore { usleep(100) }
            let listed = Set(engine.state.withLock { $0.manifest.segments }.map { SegmentHeader.fileName(for: $0.id) })
            let replaced = captured.subtracting(listed)
            replacedWhileCopying.withLock { $0 = replaced }
            stillThereWhileCopying.withLock { $0 = (try? segmentFiles(store))?.isSuperset(of: replaced) ?? false }
        }
        compaction.wait()
        let replaced = replacedWhileCopying.withLock { $0 }
        #expect(!replaced.isEmpty, "the compaction replaced segments during the backup")
        #expect(stillThereWhileCopying.withLock { $0 }, "the replaced segments stay until the backup is done")
        #expect((compactionReport.withLock { $0 }?.segmentsCompacted ?? 0) > 0)
        #expect(try segmentFiles(store).isDisjoint(with: replaced), "and are deleted after it")

        // The copy is the log as captured: the old segments, every record.
        #expect(try segmentFiles(directory.path("copy")) == captured)
        let copy = try openStore(directory.path("copy"))
        defer { try? copy.close() }
        #expect(try copy.verify().isHealthy)
        #expect(copy.lastSequence == report.lastSequence && report.lastSequence == engine.lastSequence)
        for key in 0..<10 {
            #expect(try copy.record(table: "T", id: "K-\(key)")?.bytes == recordBytes("K-\(key)", round: 5, size: 400))
        }
    }

    @Test func aBackupOfAClosedEngineFails() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path("store"))
        try engine.commit(pairBatch("one"))
        try engine.close()
        do {
            try engine.backup(to: directory.path("copy"))
            Issue.record("a closed engine backed up")
        } catch {
            #expect(error.code == .closed)
        }
        #expect(!FileManager.default.fileExists(atPath: directory.path("copy")))
    }

    @Test func theFileLevelCopySkipsAPartialFrameAtTheEndAndStartsOverWhenASegmentVanished() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let engine = try openStore(store, segmentSize: 8 << 10)
        for number in 0..<40 { try engine.commit(pairBatch("p\(number)")) }
        let lastSequence = engine.lastSequence
        try engine.close()
        // A frame being written: its header and part of its payload.
        let active = try #require(segmentFiles(store).max())
        let frame = Frame.encode(sequence: lastSequence + 1, payload: (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }, salt: 1)
        let opened: Foundation.FileHandle? = Foundation.FileHandle(forWritingAtPath: store + "/" + active)
        let handle = try #require(opened)
        try handle.seekToEnd()
        try handle.write(contentsOf: frame.prefix(60))
        try handle.close()
        // A segment the manifest lists that is gone on the first attempt (as if a compaction had
        // removed it), back on the second: the copy starts over.
        let fileSystem = FaultInjectingFileSystem(wrapping: PosixFileSystem())
        fileSystem.inject(.open, errno: 2, skip: 0, pathContains: "00000002.seg")
        let report = try StorageEngine.backupFiles(of: store, to: directory.path("copy"), fileSystem: fileSystem, logger: quietLogger)
        #expect(report.restarts == 1)
        #expect(report.lastSequence == lastSequence)
        let copy = try openStore(directory.path("copy"), readOnly: true)
        defer { try? copy.close() }
        #expect(copy.recoveryReport.tornTail == nil, "the partial frame was not copied")
        #expect(try copy.verify().isHealthy)
        #expect(try copy.liveRecordCount(table: "Pair") == 80)
    }

    /// Damage in the middle of the active segment of a store another process holds: the
    /// file-level copy must not stop at it as if it were a write in progress and drop the
    /// commits after it.
    @Test func theFileLevelCopyReportsDamageInTheActiveSegmentOfAStoreInUse() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let engine = try openStore(store)
        defer { try? engine.close() }
        for number in 0..<5 { try engine.commit(pairBatch("p\(number)")) }
        let segment = segmentPath(store)
        let third = try frameRanges(fileBytes(segment))[2]
        try editFile(segment) { $0[third.lowerBound + Format.frameHeaderLength + 3] ^= 0x10 }
        let error = #expect(throws: StoreError.self) {
            try StorageEngine.backupFiles(of: store, to: directory.path("copy"), logger: quietLogger)
        }
        #expect(error?.code == .corruption && error?.path == segment && error?.offset == UInt64(third.lowerBound))
        #expect(!FileManager.default.fileExists(atPath: directory.path("copy")))
    }
}
