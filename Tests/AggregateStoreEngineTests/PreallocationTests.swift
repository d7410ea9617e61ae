import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

/// Zeros written ahead of the frames (``EngineConfiguration/preallocationSize``, and
/// `Docs/FORMAT.md`, section 4.2): commits overwrite allocated blocks, recovery reads the zeros
/// as the end of the log, seals and closes cut them.
@Suite("Space written ahead of the log")
struct PreallocationTests {
    @Test func theActiveSegmentHoldsZerosAheadOfItsFramesAndACrashImageRecoversEveryCommit() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.preallocationSize = 64 << 10
        configuration.writesIndexSnapshot = false
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        try engine.commit(orderBatch(0))
        // The first commit wrote 64 KiB of zeros after its frame, in its one fdatasync.
        let afterFirst = try fileBytes(segmentPath(directory.path))
        #expect(try afterFirst.count == endOfFrames(afterFirst) + (64 << 10))
        var previousSize = afterFirst.count
        for number in 1...40 {
            try engine.commit(orderBatch(number))
            let bytes = try fileBytes(segmentPath(directory.path))
            let end = try endOfFrames(bytes)
            // Never less than 64 KiB of zeros ahead when the frames reach the end, and the file
            // grows only then.
            #expect(bytes.count >= end && bytes.count <= end + (64 << 10))
            #expect(bytes[end...].allSatisfy { $0 == 0 })
            #expect(bytes.count == previousSize || previousSize < end + 1, "grown only when the frames reached its end")
            previousSize = bytes.count
        }
        // A killed process leaves the zeros: the copy opens with every commit, no torn tail,
        // and the writable open cuts them.
        let image = try copyOfStore(directory)
        let recovered = try openStore(image.path)
        #expect(recovered.lastSequence == 41 && recovered.recoveryReport.tornTail == nil)
        #expect(recovered.recoveryReport.zerosAfterLastFrame > 0)
        #expect(try fileSize(segmentPath(image.path)) == endOfFrames(fileBytes(segmentPath(image.path))))
        #expect(try recovered.verify().isHealthy)
        try recovered.close()
        // A clean close cuts them too.
        try engine.close()
        #expect(try fileSize(segmentPath(directory.path)) == endOfFrames(fileBytes(segmentPath(directory.path))))
    }

    @Test func sealedSegmentsEndWithTheirLastFrame() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 8192)
        for number in 1...30 { try engine.commit(orderBatch(number, size: 1000)) }
        // Sealed while the store is open: the roll cut each one's zeros.
        let manifest = try Manifest.decode(try fileBytes(directory.path(Format.manifestFileName)), path: "MANIFEST")
        #expect(manifest.segments.count > 2)
        for segment in manifest.segments.dropLast() {
            #expect(fileSize(segmentPath(directory.path, segment.id)) == Int(segment.sealedLength))
        }
        try engine.close()
    }

    @Test func aFailedWriteOfTheZerosIsIgnored() throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try StorageEngine.open(at: "/store", fileSystem: fileSystem, logger: quietLogger)
        // The commit's second write, of the zeros, runs out of space.
        fileSystem.inject(.write, errno: 28, skip: 1, pathContains: ".seg")
        let receipt = try engine.commit(orderBatch(1))
        #expect(receipt.sequence == 1)
        try engine.commit(orderBatch(2))
        memory.crash()
        let recovered = try StorageEngine.open(at: "/store", fileSystem: fileSystem, logger: quietLogger)
        #expect(recovered.lastSequence == 2 && recovered.recoveryReport.tornTail == nil)
        #expect(try recovered.verify().isHealthy)
        try recovered.close()
    }

    @Test func withoutSyncsNoZerosAreWritten() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, durability: .unsafeNoSync)
        for number in 1...5 { try engine.commit(orderBatch(number)) }
        #expect(try fileSize(segmentPath(directory.path)) == endOfFrames(fileBytes(segmentPath(directory.path))))
        try engine.close()
    }

    @Test func aNegativeOrHugePreallocationIsRefused() {
        for size in [-1, (1 << 30) + 1] {
            var configuration = EngineConfiguration()
            configuration.preallocationSize = size
            let error = #expect(throws: StoreError.self) {
                try StorageEngine.open(at: TemporaryDirectory().path, configuration: configuration, logger: quietLogger)
            }
            #expect(error?.code == .invalidArgument)
        }
    }

    /// Commits go on while the log is scanned for statistics: the scan meets frames being
    /// written into the space ahead, which must not read as damage.
    @Test func statisticsScanTheLogWhileCommitsGoOn() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        for number in 1...500 { try engine.commit(orderBatch(number)) }
        let stop = Atomic(false)
        let writers = (0..<3).map { writer in
            Background { () throws(StoreError) -> Int in
                var number = 0
                while !stop.load(ordering: .relaxed) {
                    try engine.commit(orderBatch(10_000 * (writer + 1) + number))
                    number += 1
                }
                return number
            }
        }
        for _ in 0..<20 {
            let statistics = try engine.statistics(scanningLog: true)
            #expect(try #require(statistics.tableStatistics["SalesOrder"]?.versions) >= 500)
        }
        stop.store(true, ordering: .relaxed)
        for writer in writers { #expect(try writer.result() >= 0) }
        #expect(try engine.verify().isHealthy)
    }
}
