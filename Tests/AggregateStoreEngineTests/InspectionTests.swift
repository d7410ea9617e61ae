import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Testing

/// `statistics` (what `aggstore info` prints) and the snapshot check of `verify`.
@Suite("Inspection: statistics and the snapshot check")
struct InspectionTests {
    /// Ten keys of table A written three times each, two of them deleted; five keys of B
    /// written once; an event per commit. Records do not compress much, so the log rolls.
    private func populate(_ engine: StorageEngine) throws -> (commits: Int, events: Int) {
        var commits = 0
        for round in 0..<3 {
            for key in 0..<10 {
                var batch = WriteBatch(unitOfWorkId: "a-\(round)-\(key)")
                batch.put(table: "A", id: "A-\(key)", record: recordBytes("A-\(key)", round: round, size: 1000))
                batch.append(OutboxEvent(id: "e-\(commits)", type: "Written", aggregateTable: "A", aggregateId: "A-\(key)",
                                         occurredAt: 1, payload: []))
                try engine.commit(batch)
                commits += 1
            }
        }
        for key in 0..<2 {
            var batch = WriteBatch(unitOfWorkId: "delete-\(key)")
            batch.delete(table: "A", id: "A-\(key)")
            try engine.commit(batch)
            commits += 1
        }
        for key in 0..<5 {
            var batch = WriteBatch(unitOfWorkId: "b-\(key)")
            batch.put(table: "B", id: "B-\(key)", record: recordBytes("B-\(key)", size: 300),
                      foreignKeys: [ForeignKey(field: "a", value: "A-\(key)")])
            try engine.commit(batch)
            commits += 1
        }
        return (commits, 30)
    }

    @Test func statisticsCountLiveAndDeadRecordsPerTableAndSegment() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 16 << 10)
        defer { try? engine.close() }
        let (commits, events) = try populate(engine)

        let quick = try engine.statistics()
        #expect(!quick.logScanned && quick.tableStatistics["A"]?.versions == nil && quick.tableStatistics["A"]?.deadRecords == nil)
        var progressCalls = 0
        var lastProgress: StatisticsProgress?
        let statistics = try engine.statistics(scanningLog: true) { progress in
            #expect(progress.bytesRead >= lastProgress?.bytesRead ?? 0)
            lastProgress = progress
            progressCalls += 1
        }
        #expect(progressCalls == commits)
        let final = try #require(lastProgress)
        #expect(final.bytesRead == final.bytesTotal && final.bytesTotal == statistics.logBytes)

        let a = try #require(statistics.tableStatistics["A"])
        #expect(a.liveRecords == 8 && a.liveBytes == 8 * 1000)
        #expect(a.versions == 30 && a.tombstones == 2 && a.deadRecords == 24)
        #expect(a.deadBytes == 30 * 1000 - 8 * 1000)
        let b = try #require(statistics.tableStatistics["B"])
        #expect(b.liveRecords == 5 && b.liveBytes == 5 * 300 && b.versions == 5 && b.tombstones == 0 && b.deadRecords == 0 && b.deadBytes == 0)
        #expect(statistics.tables == ["A": 8, "B": 5])

        #expect(statistics.firstSequence == 1 && statistics.lastSequence == UInt64(commits) && statistics.frames == commits)
        #expect(statistics.firstEventPosition == 1 && statistics.lastEventPosition == UInt64(events))
        #expect(statistics.segments.count > 2, "the records fill several 16 KiB segments")
        #expect(statistics.segments.reduce(0) { $0 + $1.liveRecords } == 13)
        #expect(statistics.logBytes == statistics.segments.reduce(0) { $0 + $1.bytes })
        // Without compacted segments, a segment's frame bytes are its live bytes plus its dead ones.
        for segment in statistics.segments {
            #expect(segment.liveBytes + segment.deadBytes == segment.bytes - UInt64(Format.segmentHeaderLength), "\(segment)")
        }
        // The first segment holds only round 0 of A, all of it overwritten since (with no
        // subscriber cursor, the events it holds are still needed, and live).
        let first = try #require(statistics.segments.first)
        #expect(first.liveRecords == 0 && first.deadBytes > 0)
        #expect(statistics.deadRatio > 0.5)
        #expect(statistics.indexMemoryBytes > 0)
    }

    @Test func compactionLowersTheDeadShareAndTheVersionsItCounts() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 16 << 10)
        defer { try? engine.close() }
        _ = try populate(engine)
        engine.releaseEvents(through: 30)
        let before = try engine.statistics(scanningLog: true)
        #expect(try engine.compact(minimumDeadRatio: 0.2).segmentsCompacted > 0)
        let after = try engine.statistics(scanningLog: true)
        #expect(after.deadRatio < before.deadRatio)
        #expect(after.logBytes < before.logBytes)
        #expect(after.tables == before.tables)
        #expect(after.tableStatistics["A"]?.liveBytes == before.tableStatistics["A"]?.liveBytes)
        #expect(try #require(after.tableStatistics["A"]?.versions) < 30)
        #expect(try #require(after.tableStatistics["A"]?.deadBytes) < #require(before.tableStatistics["A"]?.deadBytes))
    }

    @Test func indexMemoryGrowsWithTheRecords() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, durability: .unsafeNoSync)
        defer { try? engine.close() }
        _ = try populate(engine)
        let before = try engine.statistics().indexMemoryBytes
        for key in 0..<2000 {
            var batch = WriteBatch(unitOfWorkId: "more-\(key)")
            batch.put(table: "C", id: "C-\(key)", record: [1, 2, 3], foreignKeys: [ForeignKey(field: "a", value: "A-\(key % 7)")])
            try engine.commit(batch)
        }
        let after = try engine.statistics().indexMemoryBytes
        // At least a 40-byte entry and the id's bytes per record.
        #expect(after - before >= 2000 * 44)
    }

    /// A store with a snapshot written at a clean close, reopened read-only (so nothing removes it).
    private func storeWithSnapshot(_ directory: TemporaryDirectory) throws {
        let engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        _ = try populate(engine)
        try engine.close()
        #expect(FileManager.default.fileExists(atPath: directory.path(Format.snapshotFileName)))
    }

    @Test func verifyFindsAValidSnapshotValid() throws {
        let directory = TemporaryDirectory()
        try storeWithSnapshot(directory)
        let engine = try openStore(directory.path, readOnly: true, snapshot: true)
        defer { try? engine.close() }
        var checked: UInt64 = 0
        let report = try engine.verify { progress in checked = progress.bytesChecked }
        #expect(report.isHealthy && report.snapshot == .valid)
        #expect(report.liveRecords == 13 && report.events == 30 && checked == report.frameBytes && report.frameBytes > 0)
    }

    @Test func verifyReportsADamagedSnapshotAndChangesNothing() throws {
        let directory = TemporaryDirectory()
        try storeWithSnapshot(directory)
        try editFile(directory.path(Format.snapshotFileName)) { $0[$0.count / 2] ^= 0x04 }
        let damaged = try fileBytes(directory.path(Format.snapshotFileName))
        let engine = try openStore(directory.path, readOnly: true, snapshot: true)
        defer { try? engine.close() }
        let report = try engine.verify()
        guard case .damaged = report.snapshot else {
            Issue.record("a damaged snapshot was reported as \(report.snapshot)")
            return
        }
        #expect(!report.isHealthy)
        #expect(report.problems.contains { $0.message.contains("index snapshot") && $0.path == directory.path(Format.snapshotFileName) })
        #expect(try fileBytes(directory.path(Format.snapshotFileName)) == damaged)
    }

    @Test func verifyNotesAStaleSnapshotWithoutFailing() throws {
        let directory = TemporaryDirectory()
        try storeWithSnapshot(directory)
        let stale = try fileBytes(directory.path(Format.snapshotFileName))
        let engine = try openStore(directory.path, segmentSize: 16 << 10, snapshot: true)
        engine.releaseEvents(through: 30)
        #expect(try engine.compact(minimumDeadRatio: 0.2).segmentsCompacted > 0)
        try engine.close()
        try Data(stale).write(to: URL(fileURLWithPath: directory.path(Format.snapshotFileName)))
        let reopened = try openStore(directory.path, readOnly: true, snapshot: true)
        defer { try? reopened.close() }
        let report = try reopened.verify()
        guard case let .stale(reason) = report.snapshot else {
            Issue.record("a stale snapshot was reported as \(report.snapshot)")
            return
        }
        #expect(reason.contains("segments changed"))
        #expect(report.isHealthy, "\(report.problems)")
    }
}
