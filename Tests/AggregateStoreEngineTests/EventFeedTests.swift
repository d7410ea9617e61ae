@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

/// The outbox: event positions assigned inside the commit, the event feed
/// (`events(after:limit:)`) and the table scans (`Docs/FORMAT.md`, section 2.3).
@Suite("Outbox positions and the event feed")
struct EventFeedTests {
    /// An event of commit `number`, the `index`-th of its batch.
    private func event(_ number: Int, _ index: Int) -> OutboxEvent {
        OutboxEvent(id: "ev-\(number)-\(index)", type: index % 2 == 0 ? "Placed" : "Changed", aggregateTable: "SalesOrder",
                    aggregateId: "SO-\(number)", occurredAt: 1_700_000_000_000_000 + Int64(number * 10 + index),
                    payload: recordBytes("ev-\(number)-\(index)", size: index * 37))
    }

    /// A batch that puts one order of `size` bytes and appends `events` events.
    private func batch(_ number: Int, events: Int, size: Int = 200) -> WriteBatch {
        var batch = WriteBatch(unitOfWorkId: "uow-\(number)")
        batch.put(table: "SalesOrder", id: "SO-\(number)", record: recordBytes("SO-\(number)", size: size))
        for index in 0..<events { batch.append(event(number, index)) }
        return batch
    }

    /// What the feed must hold: events in commit order, then batch order, from position 1.
    private struct Expected {
        var events: [(sequence: UInt64, unitOfWorkId: String, event: OutboxEvent)] = []

        mutating func add(_ batch: WriteBatch, sequence: UInt64) {
            for case let .event(event) in batch.operations { events.append((sequence, batch.unitOfWorkId, event)) }
        }

        /// Checks a feed read from `after`, positions included.
        func check(_ feed: [StoredEvent], after: UInt64 = 0, sourceLocation: SourceLocation = #_sourceLocation) {
            let tail = events.dropFirst(Int(after))
            #expect(feed.count == tail.count, sourceLocation: sourceLocation)
            for (offset, (stored, expected)) in zip(feed, tail).enumerated() {
                #expect(stored.position == after + UInt64(offset) + 1, sourceLocation: sourceLocation)
                #expect(stored.sequence == expected.sequence && stored.unitOfWorkId == expected.unitOfWorkId
                        && stored.event == expected.event, "position \(stored.position)", sourceLocation: sourceLocation)
            }
        }
    }

    @Test func positionsAreDenseAcrossCommitsSegmentRollsAndReopen() throws {
        let directory = TemporaryDirectory()
        var expected = Expected()
        let engine = try openStore(directory.path, segmentSize: 4096)
        #expect(engine.lastEventPosition == 0)
        #expect(try engine.events(after: 0, limit: 10).isEmpty)
        var next: UInt64 = 1
        for number in 1...40 {
            // 0 to 3 events a commit, so some commits have none; 500-byte records roll segments.
            let batch = batch(number, events: number % 4, size: 500)
            let receipt = try engine.commit(batch)
            #expect(receipt.eventPositions == next..<next + UInt64(number % 4), "commit \(number)")
            next = receipt.eventPositions.upperBound
            expected.add(batch, sequence: receipt.sequence)
        }
        #expect(try engine.statistics().segments.count > 3, "the workload rolls segments")
        #expect(engine.lastEventPosition == 60)
        expected.check(try engine.events(after: 0, limit: 1000))
        try engine.close()

        let reopened = try openStore(directory.path, segmentSize: 4096)
        #expect(reopened.lastEventPosition == 60)
        expected.check(try reopened.events(after: 0, limit: 1000))
        // Positions continue after a reopen, and a commit without events takes none.
        let empty = try reopened.commit(batch(41, events: 0))
        #expect(empty.eventPositions == 61..<61)
        let more = batch(42, events: 2)
        let receipt = try reopened.commit(more)
        #expect(receipt.eventPositions == 61..<63)
        expected.add(more, sequence: receipt.sequence)
        expected.check(try reopened.events(after: 0, limit: 1000))
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
    }

    @Test func pagingReturnsAscendingPagesOfAtMostTheLimit() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        var expected = Expected()
        for number in 1...12 {
            let batch = batch(number, events: [2, 0, 3, 1][number % 4])
            expected.add(batch, sequence: try engine.commit(batch).sequence)
        }
        let total = UInt64(expected.events.count)
        #expect(total == 18 && engine.lastEventPosition == total)
        for limit in 1...7 {
            var all: [StoredEvent] = []
            while true {
                let page = try engine.events(after: all.last?.position ?? 0, limit: limit)
                #expect(page.count <= limit)
                if page.isEmpty { break }
                // Only the last page may be short.
                #expect(page.count == limit || all.count + page.count == Int(total), "limit \(limit)")
                all += page
            }
            expected.check(all)
        }
        // From every position, including mid-commit ones.
        for after in 0...total {
            expected.check(try engine.events(after: after, limit: 100), after: after)
            let one = try engine.events(after: after, limit: 1)
            #expect(one.map(\.position) == (after < total ? [after + 1] : []))
        }
        #expect(try engine.events(after: UInt64.max, limit: 5).isEmpty)
        #expect(try engine.events(after: 0, limit: Int.max).count == Int(total))
        for limit in [0, -1, Int.min] {
            let error = #expect(throws: StoreError.self) { try engine.events(after: 0, limit: limit) }
            #expect(error?.code == .invalidArgument)
        }
    }

    @Test func rejectedCommitsConsumeNoPositions() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.maximumRecordSize = 1000
        configuration.maximumBatchSize = 3000
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        defer { try? engine.close() }
        #expect(try engine.commit(batch(1, events: 2)).eventPositions == 1..<3)

        func expectRejected(_ code: StoreError.Code, _ batch: WriteBatch) {
            let error = #expect(throws: StoreError.self) { try engine.commit(batch) }
            #expect(error?.code == code, "\(String(describing: error))")
        }
        var duplicate = batch(2, events: 1)
        duplicate.put(table: "SalesOrder", id: "SO-1", record: [1], expecting: .absent)
        expectRejected(.duplicate, duplicate)
        var conflict = batch(2, events: 1)
        conflict.put(table: "SalesOrder", id: "SO-1", record: [1], expecting: .version(9))
        expectRejected(.conflict, conflict)
        var invalid = batch(2, events: 1)
        invalid.append(OutboxEvent(id: "", type: "T", aggregateTable: "SalesOrder", aggregateId: "SO-2", occurredAt: 0, payload: []))
        expectRejected(.invalidArgument, invalid)
        var bigEvent = batch(2, events: 1)
        bigEvent.append(OutboxEvent(id: "big", type: "T", aggregateTable: "SalesOrder", aggregateId: "SO-2", occurredAt: 0,
                                    payload: [UInt8](repeating: 1, count: 1001)))
        expectRejected(.recordTooLarge, bigEvent)
        // Every event fits, but the batch's bytes do not: refused before it is numbered.
        var bigBatch = batch(2, events: 1)
        for index in 0..<4 {
            bigBatch.append(OutboxEvent(id: "e\(index)", type: "T", aggregateTable: "SalesOrder", aggregateId: "SO-2",
                                        occurredAt: 0, payload: [UInt8](repeating: UInt8(index), count: 900)))
        }
        expectRejected(.recordTooLarge, bigBatch)
        // Its bytes fit but its encoding does not: refused after positions were chosen for it.
        func tight(payload: Int) -> WriteBatch {
            var tight = batch(2, events: 1)
            for index in 0..<3 {
                tight.append(OutboxEvent(id: "e\(index)", type: "T", aggregateTable: "SalesOrder", aggregateId: "SO-2",
                                         occurredAt: 0, payload: [UInt8](repeating: UInt8(index), count: payload)))
            }
            return tight
        }
        let tightBatch = tight(payload: (3000 - CommitPayload.minimumSize(of: tight(payload: 0))) / 3)
        let versions = [UInt64](repeating: 1, count: tightBatch.operations.count)
        let encoded = CommitPayload.encode(tightBatch, versions: versions, firstEventPosition: 1, commitTimestamp: 0).bytes.count
        #expect(CommitPayload.minimumSize(of: tightBatch) <= 3000 && encoded > 3000)
        expectRejected(.recordTooLarge, tightBatch)

        #expect(engine.lastEventPosition == 2)
        let receipt = try engine.commit(batch(2, events: 1))
        #expect(receipt.sequence == 2 && receipt.eventPositions == 3..<4)
        #expect(try engine.events(after: 0, limit: 10).map(\.position) == [1, 2, 3])
        #expect(try engine.events(after: 2, limit: 10).first?.event == event(2, 0))
    }

    @Test func aFailedWriteConsumesNoPosition() throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try StorageEngine.open(at: "/store", fileSystem: fileSystem, logger: quietLogger)
        var expected = Expected()
        let first = batch(1, events: 2)
        expected.add(first, sequence: try engine.commit(first).sequence)
        fileSystem.inject(.write, errno: 28, pathContains: ".seg")
        let error = #expect(throws: StoreError.self) { try engine.commit(batch(2, events: 3)) }
        #expect(error?.code == .noSpace)
        #expect(engine.lastEventPosition == 2)
        // The store goes on: the next commit gets the positions the failed one would have had.
        let second = batch(3, events: 1)
        let receipt = try engine.commit(second)
        #expect(receipt.sequence == 2 && receipt.eventPositions == 3..<4)
        expected.add(second, sequence: receipt.sequence)
        expected.check(try engine.events(after: 0, limit: 10))
        try engine.close()
        memory.crash()
        let reopened = try StorageEngine.open(at: "/store", fileSystem: fileSystem, logger: quietLogger)
        defer { try? reopened.close() }
        expected.check(try reopened.events(after: 0, limit: 10))
        #expect(try reopened.commit(batch(4, events: 1)).eventPositions == 4..<5)
    }

    @Test func aFailedFsyncConsumesNoPosition() throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try StorageEngine.open(at: "/store", fileSystem: fileSystem, logger: quietLogger)
        var expected = Expected()
        let first = batch(1, events: 2)
        expected.add(first, sequence: try engine.commit(first).sequence)
        fileSystem.inject(.sync, errno: 5, pathContains: ".seg")
        #expect(throws: StoreError.self) { try engine.commit(batch(2, events: 3)) }
        #expect(engine.lastEventPosition == 2)
        expected.check(try engine.events(after: 0, limit: 10))
        // The store refuses writes until it is reopened; the failed commit's events never appear.
        let refused = #expect(throws: StoreError.self) { try engine.commit(batch(3, events: 1)) }
        #expect(refused?.code == .storeFailed)
        try engine.close()
        memory.crash()
        let reopened = try StorageEngine.open(at: "/store", fileSystem: fileSystem, logger: quietLogger)
        defer { try? reopened.close() }
        #expect(reopened.lastEventPosition == 2)
        let second = batch(3, events: 1)
        let receipt = try reopened.commit(second)
        #expect(receipt.sequence == 2 && receipt.eventPositions == 3..<4)
        expected.add(second, sequence: receipt.sequence)
        expected.check(try reopened.events(after: 0, limit: 10))
    }

    @Test func eventsAreReadableInReadOnlyMode() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 4096)
        var expected = Expected()
        for number in 1...20 {
            let batch = batch(number, events: number % 3, size: 400)
            expected.add(batch, sequence: try engine.commit(batch).sequence)
        }
        try engine.close()
        let readOnly = try openStore(directory.path, segmentSize: 4096, readOnly: true)
        defer { try? readOnly.close() }
        #expect(readOnly.lastEventPosition == UInt64(expected.events.count))
        expected.check(try readOnly.events(after: 0, limit: 100))
        expected.check(try readOnly.events(after: 5, limit: 100), after: 5)
        #expect(try readOnly.verify().isHealthy)
    }

    @Test func committedAtAndSequenceComeFromTheCommit() throws {
        let memory = InMemoryFileSystem()
        var configuration = EngineConfiguration()
        configuration.determinism = EngineConfiguration.Determinism(salt: 7, time: 1_234_567)
        let engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: memory, logger: quietLogger)
        defer { try? engine.close() }
        try engine.commit(batch(1, events: 0))
        try engine.commit(batch(2, events: 2))
        let events = try engine.events(after: 0, limit: 10)
        #expect(events == [
            StoredEvent(position: 1, sequence: 2, unitOfWorkId: "uow-2", committedAt: 1_234_567, event: event(2, 0)),
            StoredEvent(position: 2, sequence: 2, unitOfWorkId: "uow-2", committedAt: 1_234_567, event: event(2, 1)),
        ])
    }

    @Test func theFeedReadsFramesThroughTheVerifiedPath() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.readCacheSize = 0
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        defer { try? engine.close() }
        let start = fileSize(segmentPath(directory.path))
        try engine.commit(batch(1, events: 2))
        try engine.commit(batch(2, events: 1))
        // Damage at rest under the open store: the first frame's payload.
        try editFile(segmentPath(directory.path)) { $0[start + Format.frameHeaderLength + 5] ^= 0x40 }
        let error = #expect(throws: StoreError.self) { try engine.events(after: 0, limit: 10) }
        #expect(error?.code == .corruption && error?.offset == UInt64(start))
        #expect(error?.path == segmentPath(directory.path))
        // The second commit's frame is intact and still served.
        #expect(try engine.events(after: 2, limit: 10).map(\.position) == [3])
    }

    @Test func aClosedStoreRefusesTheFeed() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        try engine.commit(batch(1, events: 1))
        try engine.close()
        #expect(throws: StoreError.self) { try engine.events(after: 0, limit: 1) }
        #expect(throws: StoreError.self) { try engine.ids(table: "SalesOrder") }
        #expect(throws: StoreError.self) { try engine.tables() }
        #expect(throws: StoreError.self) { try engine.liveRecordCount(table: "SalesOrder") }
    }

    @Test func idsAndTablesFollowPutsAndDeletes() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        #expect(try engine.tables().isEmpty)
        #expect(try engine.ids(table: "SalesOrder").isEmpty)
        var setup = WriteBatch(unitOfWorkId: "uow-setup")
        for id in ["SO-3", "SO-1", "SO-10", "SO-2"] { setup.put(table: "SalesOrder", id: id, record: [1]) }
        for id in ["C-2", "C-1"] { setup.put(table: "Customer", id: id, record: [2]) }
        setup.put(table: "Note", id: "N-1", record: [3])
        try engine.commit(setup)
        #expect(try engine.tables() == ["Customer", "Note", "SalesOrder"])
        #expect(try engine.ids(table: "SalesOrder") == ["SO-1", "SO-10", "SO-2", "SO-3"])
        #expect(try engine.ids(table: "Customer") == ["C-1", "C-2"])
        #expect(try engine.liveRecordCount(table: "SalesOrder") == 4)

        var deletes = WriteBatch(unitOfWorkId: "uow-delete")
        deletes.delete(table: "SalesOrder", id: "SO-10")
        deletes.delete(table: "Note", id: "N-1")
        deletes.delete(table: "Customer", id: "C-404")  // a tombstone for a key never written
        try engine.commit(deletes)
        func expectState(_ engine: StorageEngine) throws {
            #expect(try engine.tables() == ["Customer", "SalesOrder"], "a table whose records are all deleted is not listed")
            #expect(try engine.ids(table: "SalesOrder") == ["SO-1", "SO-2", "SO-3"])
            #expect(try engine.ids(table: "Customer") == ["C-1", "C-2"])
            #expect(try engine.ids(table: "Note").isEmpty)
            #expect(try engine.liveRecordCount(table: "SalesOrder") == 3)
            #expect(try engine.liveRecordCount(table: "Note") == 0)
            #expect(try engine.liveRecordCount(table: "Missing") == 0)
            // The statistics still list a table that holds only tombstones, with 0 live records.
            #expect(try engine.statistics().tables == ["SalesOrder": 3, "Customer": 2, "Note": 0])
        }
        try expectState(engine)
        try engine.close()
        let reopened = try openStore(directory.path)
        try expectState(reopened)
        // Re-creating a deleted record lists its table again.
        var recreate = WriteBatch(unitOfWorkId: "uow-recreate")
        recreate.put(table: "Note", id: "N-1", record: [4], expecting: .absent)
        try reopened.commit(recreate)
        #expect(try reopened.tables() == ["Customer", "Note", "SalesOrder"])
        #expect(try reopened.ids(table: "Note") == ["N-1"])
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
    }

    @Test func verifyReportsAnEventIndexThatDiffersFromTheLog() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        try engine.commit(batch(1, events: 2))
        #expect(try engine.verify().isHealthy)
        // Corrupt the in-memory event index only: verify must notice it does not match the log.
        engine.state.withLock { state in
            let payload = CommitPayload(unitOfWorkId: "x", commitTimestamp: 0,
                                        operations: [.event(event(9, 0), position: 3)])
            state.events.apply(payload, sequence: 1, frame: FrameAddress(segment: 1, offset: 40), storedLength: 1)
        }
        let report = try engine.verify()
        #expect(report.problems.contains { $0.message.contains("event index") })
    }
}
