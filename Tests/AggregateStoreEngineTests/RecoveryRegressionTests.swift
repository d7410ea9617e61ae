@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Dispatch
import Foundation
import Synchronization
import Testing

/// Regressions for what the review of the engine foundation found: each test failed before its fix.
@Suite("Recovery regressions")
struct RecoveryRegressionTests {
    private func open(_ fileSystem: any FileSystem, segmentSize: Int = 8192) throws(StoreError) -> StorageEngine {
        var configuration = EngineConfiguration()
        configuration.segmentSize = segmentSize
        return try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
    }

    @Test func aStoreDirectoryCreatedBeforehandIsMadeDurable() throws {
        let memory = InMemoryFileSystem()
        // The directory exists, but its entry in the parent was never synced.
        try memory.createDirectory("/store")
        let engine = try open(memory)
        try engine.commit(orderBatch(1))
        memory.crash()
        let recovered = try open(memory)
        #expect(recovered.lastSequence == 1, "an acknowledged commit was lost with its directory")
        try recovered.close()
    }

    @Test func aFrameWhoseFsyncFailedIsCutSoAReopenCannotServeIt() throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1))
        let size = try endOfFrames(memory.bytes(of: "/store/00000001.seg")!)
        fileSystem.inject(.sync, errno: 5, pathContains: ".seg")
        #expect(throws: StoreError.self) { try engine.commit(orderBatch(2)) }
        #expect(memory.bytes(of: "/store/00000001.seg")!.count == size)
        try engine.close()
        // No power loss: a reopen reads the page cache, where commit 2 must not be found.
        let reopened = try open(fileSystem)
        #expect(reopened.lastSequence == 1)
        try reopened.close()
    }

    @Test func aValidFrameFarPastABadOneIsFoundAcrossReadWindows() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        try engine.commit(orderBatch(1))
        try engine.commit(orderBatch(2))
        try engine.close()
        let original = try fileBytes(segmentPath(directory.path))
        let secondStart = try original.withUnsafeBytes { bytes in
            Format.segmentHeaderLength + (try Frame.parseHeader(UnsafeRawBufferPointer(rebasing: bytes[Format.segmentHeaderLength...])).get()).frameLength
        }
        let second = Array(original[secondStart...])
        // Damage frame 2, then bury a valid copy of it after more than one 4 MiB read window,
        // at offsets that put it across a window boundary or well inside one.
        for gap in [(4 << 20) - 100 - second.count, (4 << 20) - 10, (4 << 20) - Format.frameHeaderLength / 2, 6 << 20] {
            var damaged = original
            damaged[secondStart + 40] ^= 0xFF
            damaged += [UInt8](repeating: 0, count: gap) + second
            try Data(damaged).write(to: URL(fileURLWithPath: segmentPath(directory.path)))
            let error = #expect(throws: StoreError.self) { try openStore(directory.path) }
            #expect(error?.offset == UInt64(secondStart), "gap \(gap)")
            #expect(error?.message.contains("valid frame follows at offset \(original.count + gap)") == true, "\(String(describing: error))")
        }
        // Without the buried copy, the same damage plus a long zero tail is a torn tail.
        var torn = original
        torn[secondStart + 40] ^= 0xFF
        torn += [UInt8](repeating: 0, count: 9 << 20)
        try Data(torn).write(to: URL(fileURLWithPath: segmentPath(directory.path)))
        let recovered = try openStore(directory.path)
        #expect(recovered.lastSequence == 1)
        #expect(recovered.recoveryReport.tornTail?.frames == 1)
        try recovered.close()
    }

    @Test func aVerifyingFrameThatBreaksTheVersionSequenceIsCorruption() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        try engine.commit(orderBatch(1))
        try engine.close()
        let manifest = try Manifest.decode(try fileBytes(directory.path("MANIFEST")), path: "MANIFEST")
        var batch = WriteBatch(unitOfWorkId: "hostile")
        batch.put(table: "SalesOrder", id: "SO-1", record: [1])
        let (payload, _) = CommitPayload.encode(batch, versions: [UInt64.max], firstEventPosition: 1, commitTimestamp: 0)
        let size = fileSize(segmentPath(directory.path))
        try editFile(segmentPath(directory.path)) { $0 += Frame.encode(sequence: 2, payload: payload, salt: manifest.salt) }
        let error = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(error?.code == .corruption && error?.offset == UInt64(size))
        #expect(error?.message.contains("version") == true)
    }

    /// Like the version rule: a frame that verifies but leaves a gap in the outbox or repeats a
    /// position is corruption at its offset, in the middle of the log as at its end, never a
    /// torn tail. Position 2 is the control: the same frame with the right position opens.
    @Test(arguments: [UInt64(1), 2, 3, 100], [false, true])
    func aVerifyingFrameThatBreaksTheEventPositionSequenceIsCorruption(firstPosition: UInt64, inTheMiddle: Bool) throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        try engine.commit(orderBatch(1))  // its event takes position 1
        try engine.close()
        let manifest = try Manifest.decode(try fileBytes(directory.path("MANIFEST")), path: "MANIFEST")
        var hostile = WriteBatch(unitOfWorkId: "hostile")
        hostile.put(table: "SalesOrder", id: "SO-2", record: [1])
        hostile.append(OutboxEvent(id: "ev-h", type: "T", aggregateTable: "SalesOrder", aggregateId: "SO-2", occurredAt: 0, payload: []))
        hostile.append(OutboxEvent(id: "ev-i", type: "T", aggregateTable: "SalesOrder", aggregateId: "SO-2", occurredAt: 0, payload: []))
        let (payload, _) = CommitPayload.encode(hostile, versions: [1], firstEventPosition: firstPosition, commitTimestamp: 0)
        var frames = Frame.encode(sequence: 2, payload: payload, salt: manifest.salt)
        if inTheMiddle {
            var later = WriteBatch(unitOfWorkId: "later")
            later.put(table: "SalesOrder", id: "SO-3", record: [2])
            let (laterPayload, _) = CommitPayload.encode(later, versions: [1], firstEventPosition: 1, commitTimestamp: 0)
            frames += Frame.encode(sequence: 3, payload: laterPayload, salt: manifest.salt)
        }
        let size = fileSize(segmentPath(directory.path))
        try editFile(segmentPath(directory.path)) { $0 += frames }
        guard firstPosition != 2 else {
            let reopened = try openStore(directory.path)
            #expect(reopened.lastEventPosition == 3 && reopened.lastSequence == (inTheMiddle ? 3 : 2))
            #expect(try reopened.events(after: 1, limit: 5).map(\.event.id) == ["ev-h", "ev-i"])
            try reopened.close()
            return
        }
        for readOnly in [true, false] {
            let error = #expect(throws: StoreError.self) { try openStore(directory.path, readOnly: readOnly) }
            #expect(error?.code == .corruption && error?.offset == UInt64(size), "\(String(describing: error))")
            #expect(error?.path == segmentPath(directory.path))
            #expect(error?.message.contains("event position") == true, "\(String(describing: error))")
        }
        #expect(fileSize(segmentPath(directory.path)) == size + frames.count, "nothing is cut")
    }

    @Test func aCompressedFrameClaimingAnImpossibleExpansionIsRejectedBeforeAllocating() {
        var frame = Frame.encode(sequence: 1, payload: Array(repeating: 9, count: 1000), salt: 1)
        let stored = frame.withUnsafeBytes { (try? Frame.parseHeader($0).get())?.storedLength } ?? 0
        #expect(stored > 0 && stored < 1000)
        // Claim a 1 GiB payload from a few bytes, and re-sign the header so only the bound can catch it.
        let claimed = UInt32(Format.maximumPayloadLength)
        withUnsafeBytes(of: claimed.littleEndian) { for index in 0..<4 { frame[20 + index] = $0[index] } }
        let crc = frame.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<Format.frameHeaderCRCOffset])) }
        withUnsafeBytes(of: CRC32C.mask(crc).littleEndian) { for index in 0..<4 { frame[28 + index] = $0[index] } }
        let result = frame.withUnsafeBytes { Frame.parseHeader($0) }
        #expect(result == .failure(.badLength("uncompressed length \(claimed)")))
    }

    @Test func aLeftoverFromAFailedRollIsReusedByTheNextRoll() throws {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1, size: 3000))
        try engine.commit(orderBatch(2, size: 3000))
        // The new segment's header write fails, and so does removing the file.
        fileSystem.inject(.write, errno: 28, pathContains: "00000002.seg")
        fileSystem.inject(.removeFile, errno: 5, pathContains: "00000002.seg")
        let failed = #expect(throws: StoreError.self) { try engine.commit(orderBatch(3, size: 3000)) }
        #expect(failed?.code == .noSpace)
        // Space is back: the next commit rolls into the leftover file instead of failing on it.
        try engine.commit(orderBatch(3, size: 3000))
        #expect(engine.lastSequence == 3)
        #expect(try engine.verify().isHealthy)
        try engine.close()
    }

    @Test func aFailedOpenChangesNothing() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        try engine.commit(orderBatch(1))
        try engine.commit(orderBatch(2))
        try engine.close()
        // A torn tail that a successful open would cut, a MANIFEST.tmp and an unlisted segment
        // it would remove, and damage to the first frame (a valid one follows), which makes the
        // open fail.
        try editFile(segmentPath(directory.path)) { $0[Format.segmentHeaderLength + 40] ^= 0xFF; $0 += [1, 2, 3] }
        try Data([7]).write(to: URL(fileURLWithPath: directory.path("MANIFEST.tmp")))
        try Data(try fileBytes(segmentPath(directory.path))).write(to: URL(fileURLWithPath: segmentPath(directory.path, 9)))
        let before = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        let segmentBefore = try fileBytes(segmentPath(directory.path))
        #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == before)
        #expect(try fileBytes(segmentPath(directory.path)) == segmentBefore)
    }

    @Test func statisticsAndReadsRacingCloseNeverTouchAClosedHandle() throws {
        for _ in 0..<20 {
            let directory = TemporaryDirectory()
            var configuration = EngineConfiguration()
            configuration.readCacheSize = 0
            let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
            for number in 1...5 { try engine.commit(orderBatch(number)) }
            // A closed handle is a precondition failure, which would stop the test process.
            DispatchQueue.concurrentPerform(iterations: 4) { worker in
                if worker == 0 {
                    try? engine.close()
                } else {
                    for _ in 0..<50 {
                        _ = try? engine.statistics()
                        _ = try? engine.record(table: "SalesOrder", id: "SO-\(worker)")
                    }
                }
            }
        }
    }
}

/// Found by the seeded simulation (seed 350): a process crash during store creation, after the
/// manifest rename but before the directory fsyncs, left a store the next open took as
/// complete; nothing ever made its directory entries durable, and a later power loss took the
/// whole store with 60 acknowledged commits. A writable open now syncs the store directory and
/// its parent.
@Suite("Regression: seeded simulation seed 350")
struct ProcessCrashDuringCreationRegressionTests {
    @Test func aProcessCrashDuringCreationThenAPowerLossKeepsEveryAcknowledgedCommit() throws {
        let fileSystem = SimulatedFileSystem()
        let snapshot = Mutex<SimulatedFileSystem?>(nil)
        fileSystem.onOperation = { operation, path in
            if operation == "rename", path.hasSuffix("MANIFEST.tmp") { snapshot.withLock { $0 = fileSystem.copy() } }
        }
        _ = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: fileSystem, logger: quietLogger)
        fileSystem.onOperation = nil
        let image = try #require(snapshot.withLock { $0 })
        image.processCrash()
        let engine = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: image, logger: quietLogger)
        for number in 1...5 { try engine.commit(orderBatch(number)) }
        try engine.close()
        image.crash { _, _ in .drop }
        let recovered = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(), fileSystem: image, logger: quietLogger)
        #expect(recovered.lastSequence == 5)
        try recovered.close()
    }
}
