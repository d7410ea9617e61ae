@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

/// Compaction: sealed segments are rewritten with only what is still needed and replaced by an
/// atomic manifest change; reads, commits, recovery and the indexes see the same store.
@Suite("Compaction")
struct CompactionTests {
    private func open(_ fileSystem: any FileSystem, segmentSize: Int = 16 << 10, automatic: Bool = false) throws(StoreError) -> StorageEngine {
        var configuration = EngineConfiguration()
        configuration.segmentSize = segmentSize
        configuration.compaction.isAutomatic = automatic
        return try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
    }

    /// Puts `keys` records `rounds` times each, round by round; returns the last bytes of each.
    @discardableResult
    private func overwrite(_ engine: StorageEngine, keys: Int, rounds: Int, size: Int = 300) throws -> [String: [UInt8]] {
        var latest: [String: [UInt8]] = [:]
        for round in 0..<rounds {
            for key in 0..<keys {
                let id = "SO-\(key)"
                var batch = WriteBatch(unitOfWorkId: "uow-\(round)-\(key)")
                let bytes = recordBytes(id, round: round, size: size)
                batch.put(table: "SalesOrder", id: id, record: bytes,
                          foreignKeys: [ForeignKey(field: "customerId", value: "C-\(key % 7)")])
                try engine.commit(batch)
                latest[id] = bytes
            }
        }
        return latest
    }

    private func logBytes(_ memory: InMemoryFileSystem) -> Int {
        (memory.fileNames(in: "/store") ?? []).filter { $0.hasSuffix(".seg") }.reduce(0) { $0 + (memory.bytes(of: "/store/\($1)")?.count ?? 0) }
    }

    @Test func compactionReclaimsOverwrittenRecordsAndKeepsEveryLiveOne() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory)
        let latest = try overwrite(engine, keys: 100, rounds: 5)
        let before = logBytes(memory)
        let indexBefore = try engine.readIndex { $0 }
        let report = try engine.compact(minimumDeadRatio: 0.5)
        #expect(report.segmentsCompacted > 0)
        #expect(report.recordsMoved > 0)
        let after = logBytes(memory)
        #expect(after < before / 2, "the log shrank from \(before) to \(after) bytes")
        for (id, bytes) in latest {
            let record = try #require(try engine.record(table: "SalesOrder", id: id))
            #expect(record.bytes == bytes && record.version == 5)
        }
        #expect(try engine.ids(table: "SalesOrder", field: "customerId", value: "C-3") == indexBefore.ids(table: "SalesOrder", field: "customerId", value: "C-3"))
        #expect(try engine.verify().isHealthy)
        // Commits go on after it, and a reopen rebuilds the same index from the compacted log.
        try overwrite(engine, keys: 3, rounds: 1)
        let index = try engine.readIndex { $0 }
        try engine.close()
        let reopened = try open(memory)
        #expect(try reopened.readIndex { $0 } == index)
        #expect(reopened.lastSequence == 503)
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
    }

    @Test func afterFiveOverwritesTheLogIsAtMostOnePointTwoTimesTheLiveData() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory, segmentSize: 64 << 10)
        try overwrite(engine, keys: 400, rounds: 5)
        try engine.compact(minimumDeadRatio: 0.01)
        let stats = try engine.statistics()
        let ratio = Double(logBytes(memory)) / Double(stats.liveRecordBytes)
        // The active segment is never compacted; its own dead records are part of the figure.
        #expect(ratio <= 1.2 + Double(64 << 10) / Double(stats.liveRecordBytes), "log / live = \(ratio)")
        try engine.close()
    }

    @Test func aRecordWrittenDuringCompactionIsNotReplacedByItsOlderCopy() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory)
        try overwrite(engine, keys: 50, rounds: 4)
        let written = Mutex(false)
        let report = try engine.compact(minimumDeadRatio: 0.3) { progress in
            // Once the compactor has copied everything, before it installs the copies, a
            // commit writes a newer version of every key.
            guard progress.bytesRead == progress.bytesTotal, !written.withLock({ $0 }) else { return }
            written.withLock { $0 = true }
            _ = try? self.overwrite(engine, keys: 50, rounds: 1, size: 120)
        }
        #expect(written.withLock { $0 })
        #expect(report.recordsOverwrittenMeanwhile > 0)
        for key in 0..<50 {
            let record = try #require(try engine.record(table: "SalesOrder", id: "SO-\(key)"))
            #expect(record.bytes == recordBytes("SO-\(key)", round: 0, size: 120), "the newer commit wins")
            #expect(record.version == 5)
        }
        #expect(try engine.verify().isHealthy)
        try engine.close()
        let reopened = try open(memory)
        #expect(try reopened.record(table: "SalesOrder", id: "SO-7")?.version == 5)
        try reopened.close()
    }

    @Test func deletedKeysStayDeletedWhetherTheirTombstoneIsKeptOrDropped() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory)
        try overwrite(engine, keys: 60, rounds: 3)
        for key in stride(from: 0, to: 60, by: 2) {
            var batch = WriteBatch(unitOfWorkId: "delete-\(key)")
            batch.delete(table: "SalesOrder", id: "SO-\(key)")
            try engine.commit(batch)
        }
        // Seal the deletes' segments with records of another table.
        for number in 0..<40 {
            var batch = WriteBatch(unitOfWorkId: "filler-\(number)")
            batch.put(table: "Filler", id: "F-\(number)", record: recordBytes("F-\(number)", size: 300))
            try engine.commit(batch)
        }
        let report = try engine.compact(minimumDeadRatio: 0.1)
        // The run starts the log, so every older version is gone with it: tombstones go too.
        #expect(report.tombstonesDropped > 0)
        #expect(try engine.verify().isHealthy)
        try engine.close()
        let reopened = try open(memory)
        for key in 0..<60 {
            let record = try reopened.record(table: "SalesOrder", id: "SO-\(key)")
            #expect((record == nil) == key.isMultiple(of: 2), "SO-\(key)")
        }
        #expect(try reopened.liveRecordCount(table: "SalesOrder") == 30)
        try reopened.close()
    }

    @Test func aTombstoneIsKeptWhileAnOlderVersionSurvivesBeforeTheRun() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory)
        // Segment 1 holds the only put of SO-keep's predecessor: it stays uncompacted (live).
        var batch = WriteBatch(unitOfWorkId: "first")
        batch.put(table: "SalesOrder", id: "SO-old", record: recordBytes("SO-old", size: 8000))
        try engine.commit(batch)
        try overwrite(engine, keys: 1, rounds: 1, size: 7000)
        // The later segments: SO-old is deleted among many overwrites, so they qualify.
        try overwrite(engine, keys: 10, rounds: 6)
        var delete = WriteBatch(unitOfWorkId: "delete")
        delete.delete(table: "SalesOrder", id: "SO-old")
        try engine.commit(delete)
        try overwrite(engine, keys: 10, rounds: 12)
        let segments = try engine.statistics().segments
        #expect(segments.count > 3)
        let report = try engine.compact(minimumDeadRatio: 0.5)
        #expect(report.segmentsCompacted > 0)
        try engine.close()
        let reopened = try open(memory)
        #expect(try reopened.record(table: "SalesOrder", id: "SO-old") == nil, "a deleted record never comes back")
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
    }

    @Test func eventsAreKeptUntilReleasedAndPositionsNeverRestart() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory)
        for number in 1...120 { try engine.commit(orderBatch(number, customer: number % 5)) }
        let events = try engine.events(after: 0, limit: 1000)
        #expect(events.count == 120)
        for number in 1...60 {
            var batch = WriteBatch(unitOfWorkId: "again-\(number)")
            batch.put(table: "SalesOrder", id: "SO-\(number)", record: recordBytes("SO-\(number)", round: 1))
            try engine.commit(batch)
        }
        // Nothing released: every event survives compaction.
        try engine.compact(minimumDeadRatio: 0.1)
        #expect(try engine.events(after: 0, limit: 1000) == events)
        engine.releaseEvents(through: 100)
        let report = try engine.compact(minimumDeadRatio: 0.0001)
        #expect(report.eventsDropped > 0)
        let remaining = try engine.events(after: 0, limit: 1000)
        // Released events may be gone (those in compacted segments are); the rest are intact.
        #expect(remaining.count < events.count)
        #expect(remaining.filter { $0.position > 100 } == events.filter { $0.position > 100 })
        #expect(remaining.filter { $0.position <= 100 }.allSatisfy { events.contains($0) })
        #expect(engine.lastEventPosition == 120)
        #expect(try engine.verify().isHealthy)
        try engine.close()
        let reopened = try open(memory)
        #expect(reopened.lastEventPosition == 120)
        let next = try reopened.commit(orderBatch(500))
        #expect(next.eventPositions == 121..<122, "positions continue after the dropped ones")
        try reopened.close()
    }

    @Test func compactionWithoutRoomForItsOutputChangesNothing() throws {
        let memory = InMemoryFileSystem()
        let engine = try open(memory)
        try overwrite(engine, keys: 100, rounds: 4)
        let files = memory.fileNames(in: "/store")
        memory.reportedFreeSpace = 1000
        let error = #expect(throws: StoreError.self) { try engine.compact(minimumDeadRatio: 0.1) }
        #expect(error?.code == .noSpace)
        #expect(memory.fileNames(in: "/store") == files)
        memory.reportedFreeSpace = nil
        #expect(try engine.compact(minimumDeadRatio: 0.1).segmentsCompacted > 0)
        try engine.close()
    }

    @Test(arguments: [FaultInjectingFileSystem.Operation.write, .sync, .open, .syncDirectory, .rename])
    func aFailureWhileCompactingAbandonsTheRunAndTheStoreStaysCorrect(_ operation: FaultInjectingFileSystem.Operation) throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try open(fileSystem)
        let latest = try overwrite(engine, keys: 100, rounds: 4)
        let files = memory.fileNames(in: "/store")
        fileSystem.inject(operation, errno: 28)
        #expect(throws: StoreError.self) { try engine.compact(minimumDeadRatio: 0.1) }
        fileSystem.clearFaults()
        // No partial output is left; reads and commits go on (a failed rename leaves the old
        // manifest in force; a failed directory fsync after it stops writes until reopen).
        #expect((memory.fileNames(in: "/store") ?? []).filter { !(files ?? []).contains($0) && $0 != "MANIFEST.tmp" }.isEmpty || operation == .syncDirectory)
        for (id, bytes) in latest { #expect(try engine.record(table: "SalesOrder", id: id)?.bytes == bytes) }
        try engine.close()
        memory.crash()
        let reopened = try open(fileSystem)
        for (id, bytes) in latest { #expect(try reopened.record(table: "SalesOrder", id: id)?.bytes == bytes) }
        #expect(try reopened.verify().isHealthy)
        try overwrite(reopened, keys: 2, rounds: 1)
        try reopened.close()
    }

    @Test func automaticCompactionRunsWhileWritersDeletersAndReadersGoOn() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.segmentSize = 32 << 10
        configuration.compaction.minimumDeadRatio = 0.4
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        let keys = 40
        let model = Mutex<[String: [UInt8]?]>([:])
        let workers = (0..<4).map { worker in
            Background { () throws(StoreError) -> Int in
                var random = SplitMix64(seed: UInt64(worker + 1))
                for round in 0..<150 {
                    // Each worker owns its keys, so the model needs no ordering between workers.
                    let id = "K-\(worker)-\(Int(random.next() % UInt64(keys)))"
                    var batch = WriteBatch(unitOfWorkId: "w\(worker)-\(round)")
                    if random.next() % 5 == 0 {
                        batch.delete(table: "T", id: id)
                        try engine.commit(batch)
                        model.withLock { $0[id] = .some(nil) }
                    } else {
                        let bytes = recordBytes(id, round: round, size: 500)
                        batch.put(table: "T", id: id, record: bytes, foreignKeys: [ForeignKey(field: "w", value: "\(worker)")])
                        try engine.commit(batch)
                        model.withLock { $0[id] = .some(bytes) }
                    }
                    // Reads of the worker's own keys see its last commit.
                    let check = "K-\(worker)-\(Int(random.next() % UInt64(keys)))"
                    let expected = model.withLock { $0[check] }
                    let actual = try engine.record(table: "T", id: check)?.bytes
                    if let expected, actual != expected { throw StoreError(.corruption, "read \(check) saw a stale value") }
                }
                return 0
            }
        }
        for worker in workers { _ = try worker.result(timeout: 300) }
        try engine.compact(minimumDeadRatio: 0.4)
        let expected = model.withLock { $0 }
        for (id, bytes) in expected { #expect(try engine.record(table: "T", id: id)?.bytes == bytes, "\(id)") }
        #expect(try engine.verify().isHealthy)
        let segments = try engine.statistics().segments.count
        try engine.close()
        let reopened = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        for (id, bytes) in expected { #expect(try reopened.record(table: "T", id: id)?.bytes == bytes, "\(id)") }
        #expect(try reopened.statistics().segments.count == segments)
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
    }
}
