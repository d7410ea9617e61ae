@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Testing

/// The durability rules: acknowledge only after fsync, a failed fsync is final, a failed write
/// leaves no partial frame, the lock is exclusive, reads verify what they read.
@Suite("Durability, faults and the lock")
struct DurabilityTests {
    private func open(_ fileSystem: any FileSystem, durability: Durability = .synchronous,
                      segmentSize: Int = 64 << 20) throws(StoreError) -> StorageEngine {
        var configuration = EngineConfiguration()
        configuration.durability = durability
        configuration.segmentSize = segmentSize
        return try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
    }

    @Test func acknowledgedCommitsSurviveAPowerLoss() throws {
        let fileSystem = InMemoryFileSystem()
        let engine = try open(fileSystem)
        for number in 1...10 { try engine.commit(orderBatch(number)) }
        fileSystem.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == 10)
        #expect(try recovered.record(table: "SalesOrder", id: "SO-10")?.bytes == recordBytes("SO-10"))
        try recovered.close()
    }

    @Test func acknowledgedCommitsSurviveAPowerLossAcrossSegmentRolls() throws {
        let fileSystem = InMemoryFileSystem()
        let engine = try open(fileSystem, segmentSize: 8192)
        for number in 1...120 { try engine.commit(orderBatch(number, size: 400)) }
        #expect(try engine.statistics().segments.count > 3)
        fileSystem.crash()
        let recovered = try open(fileSystem, segmentSize: 8192)
        #expect(recovered.lastSequence == 120)
        #expect(try recovered.verify().isHealthy)
        try recovered.close()
    }

    @Test func unsafeNoSyncCommitsAreLostInAPowerLoss() throws {
        let fileSystem = InMemoryFileSystem()
        let engine = try open(fileSystem, durability: .unsafeNoSync)
        for number in 1...5 { try engine.commit(orderBatch(number)) }
        fileSystem.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == 0)
        try recovered.close()
    }

    @Test func aReopenMakesWhatItRecoveredDurableBeforeServingIt() throws {
        // Commits that reached only the page cache (no fsync, then a process crash) are found by
        // the next open, which must make them durable before anyone reads them: otherwise a
        // power loss would take back what readers and the outbox already saw.
        let fileSystem = InMemoryFileSystem()
        let engine = try open(fileSystem, durability: .unsafeNoSync)
        for number in 1...5 { try engine.commit(orderBatch(number)) }
        try engine.close()
        let reopened = try open(fileSystem, durability: .unsafeNoSync)
        #expect(reopened.lastSequence == 5)
        fileSystem.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == 5)
        try recovered.close()
    }

    @Test func aFailedFsyncIsFinalUntilReopen() throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1))
        fileSystem.inject(.sync, errno: 5, pathContains: ".seg")
        let failed = #expect(throws: StoreError.self) { try engine.commit(orderBatch(2)) }
        #expect(failed?.code == .io && failed?.errno == 5)
        #expect(try engine.record(table: "SalesOrder", id: "SO-2") == nil, "an unacknowledged commit is not visible")
        #expect(engine.lastSequence == 1)
        // The fault is gone, but the store never retries and never acknowledges again.
        let syncs = fileSystem.count(.sync), writes = fileSystem.count(.write)
        let refused = #expect(throws: StoreError.self) { try engine.commit(orderBatch(3)) }
        #expect(refused?.code == .storeFailed)
        #expect(fileSystem.count(.sync) == syncs && fileSystem.count(.write) == writes, "nothing is attempted after the failure")
        // Reads still work.
        #expect(try engine.record(table: "SalesOrder", id: "SO-1") != nil)
        try engine.close()
        // The failed fsync left commit 2 in the cache but not on disk: a power loss drops it.
        memory.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == 1)
        try recovered.commit(orderBatch(2))
        #expect(recovered.lastSequence == 2)
        try recovered.close()
    }

    @Test(arguments: [Int32(28), Int32(122), Int32(5)])
    func aFailedWriteLeavesNoPartialFrameAndTheStoreGoesOn(errno: Int32) throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1))
        let size = try endOfFrames(memory.bytes(of: "/store/00000001.seg")!)
        fileSystem.inject(.write, errno: errno, pathContains: ".seg")
        let error = #expect(throws: StoreError.self) { try engine.commit(orderBatch(2)) }
        #expect(error?.code == (errno == 5 ? .io : .noSpace))
        #expect(memory.bytes(of: "/store/00000001.seg")!.count == size)
        // The next commit lands right after the last good frame.
        try engine.commit(orderBatch(3))
        #expect(engine.lastSequence == 2)
        memory.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == 2)
        #expect(recovered.recoveryReport.tornTail == nil)
        #expect(try recovered.record(table: "SalesOrder", id: "SO-3") != nil)
        #expect(try recovered.record(table: "SalesOrder", id: "SO-2") == nil)
        try recovered.close()
    }

    @Test func aWriteThatCannotBeUndoneStopsTheStore() throws {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1))
        fileSystem.inject(.write, errno: 5, pathContains: ".seg")
        fileSystem.inject(.truncate, errno: 5, pathContains: ".seg")
        #expect(throws: StoreError.self) { try engine.commit(orderBatch(2)) }
        let refused = #expect(throws: StoreError.self) { try engine.commit(orderBatch(3)) }
        #expect(refused?.code == .storeFailed)
        try engine.close()
    }

    @Test func aFailedFsyncDuringARollIsFinalToo() throws {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem, segmentSize: 8192)
        try engine.commit(orderBatch(1, size: 3000))
        try engine.commit(orderBatch(2, size: 3000))
        fileSystem.inject(.syncDirectory, errno: 5)
        #expect(throws: StoreError.self) { try engine.commit(orderBatch(3, size: 3000)) }
        let refused = #expect(throws: StoreError.self) { try engine.commit(orderBatch(4)) }
        #expect(refused?.code == .storeFailed)
        try engine.close()
        fileSystem.clearFaults()
        let reopened = try open(fileSystem, segmentSize: 8192)
        #expect(reopened.lastSequence == 2)
        try reopened.commit(orderBatch(3, size: 3000))
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
    }

    @Test func aNewSegmentIsDurableBeforeItsFirstFrameIsAcknowledged() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory, segmentSize: 8192)
        try engine.commit(orderBatch(1, size: 3000))
        try engine.commit(orderBatch(2, size: 3000))
        try engine.commit(orderBatch(3, size: 3000))  // the first frame of segment 2
        #expect(memory.fileNames(in: "/store", durable: true)?.contains("00000002.seg") == true)
        #expect(memory.durableBytes(of: "/store/MANIFEST") == memory.bytes(of: "/store/MANIFEST"))
        memory.crash()
        let recovered = try open(memory, segmentSize: 8192)
        #expect(recovered.lastSequence == 3)
        try recovered.close()
    }

    @Test func aLockReleasedWithinAMomentIsTakenAndOneHeldLongerIsNot() throws {
        // A forking process holds a copy of the lock's descriptor until its child calls exec:
        // the open tries again for about half a second. Here another handle holds the lock,
        // released 10 ms into the open by a thread of its own (a Dispatch queue's work can wait
        // far longer for a worker while other tests run), then held through a whole open.
        let directory = TemporaryDirectory()
        try openStore(directory.path).close()
        let holder = try PosixFileSystem().open(directory.path + "/LOCK", mode: .readWrite)
        #expect(try holder.tryLock(exclusive: true))
        Thread {
            usleep(10_000)
            try? holder.close()
        }.start()
        let engine = try openStore(directory.path)
        try engine.close()
        let stubborn = try PosixFileSystem().open(directory.path + "/LOCK", mode: .readWrite)
        #expect(try stubborn.tryLock(exclusive: true))
        let started = ContinuousClock.now
        let refused = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(refused?.code == .locked)
        #expect(ContinuousClock.now - started >= .milliseconds(400), "tried again before giving up")
        try stubborn.close()
    }

    @Test func aSecondHandleIsRefusedByTheLock() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        let second = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(second?.code == .locked)
        let reader = #expect(throws: StoreError.self) { try openStore(directory.path, readOnly: true) }
        #expect(reader?.code == .locked)
        try engine.close()
        // Readers share the lock with each other, not with a writer.
        let readerOne = try openStore(directory.path, readOnly: true)
        let readerTwo = try openStore(directory.path, readOnly: true)
        #expect(throws: StoreError.self) { try openStore(directory.path) }
        try readerOne.close()
        try readerTwo.close()
        try openStore(directory.path).close()
    }

    @Test func readsVerifyTheFrameTheyRead() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.readCacheSize = 0
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        defer { try? engine.close() }
        try engine.commit(orderBatch(1))
        try engine.commit(orderBatch(2))
        // Damage frame 1 under the running store (bit rot after open).
        let file = try Foundation.FileHandle(forUpdating: URL(fileURLWithPath: segmentPath(directory.path)))
        try file.seek(toOffset: UInt64(Format.segmentHeaderLength + Format.frameHeaderLength + 5))
        try file.write(contentsOf: Data([0xFF, 0x00, 0xFF]))
        try file.close()
        let error = #expect(throws: StoreError.self) { try engine.record(table: "SalesOrder", id: "SO-1") }
        #expect(error?.code == .corruption && error?.offset == UInt64(Format.segmentHeaderLength))
        #expect(try engine.record(table: "SalesOrder", id: "SO-2") != nil)
    }
}
