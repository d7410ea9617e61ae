@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// The order of file operations for a store creation, a commit and a segment roll: every new
/// file and its directory entry are durable before anything refers to them, and a commit is
/// acknowledged only after its fdatasync. (A weak file system may persist directory operations
/// in any order between directory fsyncs, which an in-memory crash alone cannot show.)
@Suite("Syscall audit")
struct SyscallAuditTests {
    private func open(_ fileSystem: any FileSystem, segmentSize: Int = 8192) throws(StoreError) -> StorageEngine {
        var configuration = EngineConfiguration()
        configuration.segmentSize = segmentSize
        return try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
    }

    @Test func creatingAStore() throws {
        let fileSystem = RecordingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        #expect(fileSystem.log.map(\.description) == [
            "createDirectory store", "open LOCK", "lockExclusive LOCK",
            "create 00000001.seg", "write 00000001.seg", "fsync 00000001.seg", "close 00000001.seg", "syncDirectory store",
            "create MANIFEST.tmp", "write MANIFEST.tmp", "fsync MANIFEST.tmp", "close MANIFEST.tmp",
            "rename MANIFEST.tmp->MANIFEST",
            "open 00000001.seg", "fsync 00000001.seg", "syncDirectory store", "syncDirectory /",
        ])
        try engine.close()
    }

    /// The first commit also writes zeros ahead of its frame (up to the segment's size here),
    /// in the same fdatasync; the commits after it overwrite them.
    @Test func aCommitIsOneWriteAndOneFdatasync() throws {
        let fileSystem = RecordingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        fileSystem.clearLog()
        try engine.commit(orderBatch(1))
        #expect(fileSystem.log.map(\.description) == ["write 00000001.seg", "write 00000001.seg", "fdatasync 00000001.seg"])
        fileSystem.clearLog()
        try engine.commit(orderBatch(2))
        #expect(fileSystem.log.map(\.description) == ["write 00000001.seg", "fdatasync 00000001.seg"])
        // The close cuts the zeros.
        fileSystem.clearLog()
        try engine.close()
        #expect(fileSystem.log.map(\.description).contains("truncate 00000001.seg"))
    }

    @Test func withoutPreallocationEveryCommitIsOneWriteAndOneFdatasync() throws {
        let fileSystem = RecordingFileSystem(wrapping: InMemoryFileSystem())
        var configuration = EngineConfiguration()
        configuration.preallocationSize = 0
        let engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
        for number in 1...3 {
            fileSystem.clearLog()
            try engine.commit(orderBatch(number))
            #expect(fileSystem.log.map(\.description) == ["write 00000001.seg", "fdatasync 00000001.seg"])
        }
        try engine.close()
    }

    @Test func aSegmentRollMakesTheNewSegmentDurableBeforeTheManifestNamesIt() throws {
        let fileSystem = RecordingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1, size: 3000))
        try engine.commit(orderBatch(2, size: 3000))
        fileSystem.clearLog()
        try engine.commit(orderBatch(3, size: 3000))
        // No fsync of segment 1: every frame in it was fdatasynced when it was committed. Its
        // zeros written ahead are cut, unsynced (recovery accepts zeros past a sealed length).
        #expect(fileSystem.log.map(\.description) == [
            "truncate 00000001.seg",
            "open 00000002.seg", "truncate 00000002.seg", "write 00000002.seg", "fsync 00000002.seg", "syncDirectory store",
            "create MANIFEST.tmp", "write MANIFEST.tmp", "fsync MANIFEST.tmp", "close MANIFEST.tmp",
            "rename MANIFEST.tmp->MANIFEST", "syncDirectory store",
            "write 00000002.seg", "write 00000002.seg", "fdatasync 00000002.seg",
        ])
        try engine.close()
    }

    @Test func aCrashRightAfterARollLeavesAnOpenableStore() throws {
        // The roll completes, then the first frame of the new segment fails: the new segment
        // holds only its header, which must already be durable since the manifest names it.
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1, size: 3000))
        try engine.commit(orderBatch(2, size: 3000))
        fileSystem.inject(.write, errno: 5, skip: 1, pathContains: "00000002.seg")
        #expect(throws: StoreError.self) { try engine.commit(orderBatch(3, size: 3000)) }
        memory.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == 2)
        try recovered.commit(orderBatch(3, size: 3000))
        #expect(try recovered.verify().isHealthy)
        try recovered.close()
    }
}
