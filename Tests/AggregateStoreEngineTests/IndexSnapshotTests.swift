@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Testing

/// The index snapshot: written at a clean close, loaded at open with only the log after it read,
/// and never trusted when it is damaged or no longer describes the log.
@Suite("Index snapshots")
struct IndexSnapshotTests {
    private func snapshotPath(_ directory: TemporaryDirectory) -> String { directory.path(Format.snapshotFileName) }

    /// A store with orders, deletes and events over several segments, closed cleanly.
    private func populatedStore(_ directory: TemporaryDirectory) throws -> (lastSequence: UInt64, index: KeyIndex, events: [StoredEvent]) {
        let engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        for number in 1...150 { try engine.commit(orderBatch(number, customer: number % 9)) }
        for number in stride(from: 1, through: 150, by: 7) {
            var batch = WriteBatch(unitOfWorkId: "delete-\(number)")
            batch.delete(table: "SalesOrder", id: "SO-\(number)")
            try engine.commit(batch)
        }
        let state = (engine.lastSequence, try engine.readIndex { $0 }, try engine.events(after: 0, limit: 1000))
        try engine.close()
        return state
    }

    @Test func aCleanCloseLeavesASnapshotAndOpenReadsNoFrameBehindIt() throws {
        let directory = TemporaryDirectory()
        let (lastSequence, index, events) = try populatedStore(directory)
        #expect(FileManager.default.fileExists(atPath: snapshotPath(directory)))
        let engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        #expect(engine.recoveryReport.snapshot == .used)
        #expect(engine.recoveryReport.framesScanned == 0)
        #expect(engine.recoveryReport.frames == Int(lastSequence))
        #expect(engine.lastSequence == lastSequence)
        #expect(try engine.readIndex { $0 } == index)
        #expect(try engine.events(after: 0, limit: 1000) == events)
        #expect(try engine.ids(table: "SalesOrder", field: "customerId", value: "C-4") == index.ids(table: "SalesOrder", field: "customerId", value: "C-4"))
        // verify() rebuilds from the whole log and finds the same indexes.
        #expect(try engine.verify().isHealthy)
        try engine.commit(orderBatch(500))
        #expect(try engine.record(table: "SalesOrder", id: "SO-500") != nil)
        try engine.close()
    }

    @Test func snapshotPlusTheLogAfterItEqualsAFullRebuild() throws {
        let directory = TemporaryDirectory()
        _ = try populatedStore(directory)
        let engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        // Commits after the snapshot, across rolls, then a crash: no close, no new snapshot
        // (a copy of the files is what a killed process leaves).
        for number in 200...320 { try engine.commit(orderBatch(number, customer: 2)) }
        let crashed = try copyOfStore(directory)
        let index = try engine.readIndex { $0 }
        try engine.close()
        let recovered = try openStore(crashed.path, segmentSize: 16 << 10, snapshot: true)
        #expect(recovered.recoveryReport.snapshot == .used)
        #expect(recovered.recoveryReport.framesScanned == 121)
        #expect(try recovered.readIndex { $0 } == index)
        #expect(try recovered.verify().isHealthy)
        try recovered.close()
    }

    @Test func aDamagedSnapshotIsIgnoredRemovedAndTheIndexRebuilt() throws {
        let directory = TemporaryDirectory()
        let (lastSequence, index, _) = try populatedStore(directory)
        try editFile(snapshotPath(directory)) { $0[$0.count / 2] ^= 0x10 }
        let engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        guard case let .ignored(reason)? = engine.recoveryReport.snapshot else {
            Issue.record("a damaged snapshot was used")
            return
        }
        #expect(reason.contains("CRC"))
        #expect(!FileManager.default.fileExists(atPath: snapshotPath(directory)))
        #expect(engine.recoveryReport.framesScanned == Int(lastSequence))
        #expect(try engine.readIndex { $0 } == index)
        try engine.close()
    }

    @Test func aSnapshotOfAnEarlierLogIsIgnored() throws {
        let directory = TemporaryDirectory()
        _ = try populatedStore(directory)
        let stale = try fileBytes(snapshotPath(directory))
        // A compaction replaces the segments the old snapshot lists.
        var engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        for number in 1...150 where number % 7 != 1 {
            var batch = WriteBatch(unitOfWorkId: "again-\(number)")
            batch.put(table: "SalesOrder", id: "SO-\(number)", record: recordBytes("SO-\(number)", round: 2))
            try engine.commit(batch)
        }
        #expect(try engine.compact(minimumDeadRatio: 0.2).segmentsCompacted > 0)
        let index = try engine.readIndex { $0 }
        try engine.close()
        try Data(stale).write(to: URL(fileURLWithPath: snapshotPath(directory)))
        engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        guard case let .ignored(reason)? = engine.recoveryReport.snapshot else {
            Issue.record("a snapshot of the segments before a compaction was used")
            return
        }
        #expect(reason.contains("segments changed"))
        #expect(try engine.readIndex { $0 } == index)
        try engine.close()
        // The snapshot written at that close, after the compaction, is used.
        engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        #expect(engine.recoveryReport.snapshot == .used)
        #expect(try engine.readIndex { $0 } == index)
        #expect(try engine.verify().isHealthy)
        try engine.close()
    }

    @Test func aCompactionLeavesASnapshotOfTheCompactedLog() throws {
        let directory = TemporaryDirectory()
        _ = try populatedStore(directory)
        let engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        for number in 1...150 {
            var batch = WriteBatch(unitOfWorkId: "again-\(number)")
            batch.put(table: "SalesOrder", id: "SO-\(number)", record: recordBytes("SO-\(number)", round: 3))
            try engine.commit(batch)
        }
        #expect(try engine.compact(minimumDeadRatio: 0.2).segmentsCompacted > 0)
        try engine.commit(orderBatch(900))
        // A crash now (a copy of the files): the open uses the compaction's snapshot and reads
        // only the commit after it.
        let crashed = try copyOfStore(directory)
        let index = try engine.readIndex { $0 }
        try engine.close()
        let recovered = try openStore(crashed.path, segmentSize: 16 << 10, snapshot: true)
        #expect(recovered.recoveryReport.snapshot == .used)
        #expect(recovered.recoveryReport.framesScanned == 1)
        #expect(try recovered.readIndex { $0 } == index)
        #expect(try recovered.verify().isHealthy)
        try recovered.close()
    }

    @Test func aSnapshotWhoseLastFrameWasReplacedIsIgnored() throws {
        // Two stores with the same history up to commit 10, then different commits 11-12: the
        // first's snapshot names a last frame the second's log holds something else in place of.
        let first = TemporaryDirectory(), second = TemporaryDirectory()
        for directory in [first, second] {
            var configuration = EngineConfiguration()
            configuration.writesIndexSnapshot = true
            configuration.determinism = EngineConfiguration.Determinism(salt: 42, time: 1_700_000_000_000_000)
            let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
            for number in 1...10 { try engine.commit(orderBatch(number)) }
            for number in 11...12 { try engine.commit(orderBatch(directory === first ? number : number + 100)) }
            try engine.close()
        }
        try Data(try fileBytes(snapshotPath(first))).write(to: URL(fileURLWithPath: snapshotPath(second)))
        var configuration = EngineConfiguration()
        configuration.determinism = EngineConfiguration.Determinism(salt: 42, time: 1_700_000_000_000_000)
        let engine = try StorageEngine.open(at: second.path, configuration: configuration, logger: quietLogger)
        guard case let .ignored(reason)? = engine.recoveryReport.snapshot else {
            Issue.record("a snapshot of another log was used")
            return
        }
        #expect(reason.contains("last frame"))
        #expect(try engine.record(table: "SalesOrder", id: "SO-112") != nil)
        #expect(try engine.record(table: "SalesOrder", id: "SO-12") == nil)
        try engine.close()
    }

    @Test func aSnapshotOfAnotherStoreIsIgnored() throws {
        let one = TemporaryDirectory(), other = TemporaryDirectory()
        _ = try populatedStore(one)
        _ = try populatedStore(other)
        try Data(try fileBytes(snapshotPath(one))).write(to: URL(fileURLWithPath: snapshotPath(other)))
        let engine = try openStore(other.path, segmentSize: 16 << 10, snapshot: true)
        #expect(engine.recoveryReport.snapshot == .ignored("it belongs to another store"))
        try engine.close()
    }
}
