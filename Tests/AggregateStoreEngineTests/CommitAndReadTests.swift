@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

@Suite("Commits, reads and the indexes")
struct CommitAndReadTests {
    @Test func commitsAreReadBackAfterReopen() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        #expect(engine.recoveryReport.created)
        for number in 1...20 {
            let receipt = try engine.commit(orderBatch(number, customer: number % 4, expecting: .absent))
            #expect(receipt.sequence == UInt64(number))
            #expect(receipt.versions == [1])
        }
        try engine.close()
        let reopened = try openStore(directory.path)
        defer { try? reopened.close() }
        #expect(!reopened.recoveryReport.created)
        #expect(reopened.recoveryReport.frames == 20 && reopened.lastSequence == 20)
        for number in 1...20 {
            let record = try #require(try reopened.record(table: "SalesOrder", id: "SO-\(number)"))
            #expect(record.bytes == recordBytes("SO-\(number)"))
            #expect(record.version == 1 && record.sequence == UInt64(number))
            #expect(record.foreignKeys == [ForeignKey(field: "customerId", value: "C-\(number % 4)")])
        }
        #expect(try reopened.record(table: "SalesOrder", id: "SO-21") == nil)
        #expect(try reopened.record(table: "Customer", id: "SO-1") == nil)
    }

    @Test func versionsGrowThroughOverwritesDeletesAndRecreation() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        try engine.commit(orderBatch(1))
        try engine.commit(orderBatch(1))
        var delete = WriteBatch(unitOfWorkId: "uow-d")
        delete.delete(table: "SalesOrder", id: "SO-1")
        #expect(try engine.commit(delete).versions == [3])
        #expect(try engine.record(table: "SalesOrder", id: "SO-1") == nil)
        #expect(try engine.version(table: "SalesOrder", id: "SO-1") == (3, false))
        // A re-created id continues from the tombstone's version, so no version repeats.
        #expect(try engine.commit(orderBatch(1, expecting: .absent)).versions == [4])
        // Several writes of one key in one batch chain their versions.
        var chained = WriteBatch(unitOfWorkId: "uow-c")
        chained.put(table: "SalesOrder", id: "SO-1", record: [1])
        chained.delete(table: "SalesOrder", id: "SO-1")
        chained.put(table: "SalesOrder", id: "SO-1", record: [2], expecting: .version(6))
        #expect(try engine.commit(chained).versions == [5, 6, 7])
        #expect(try engine.record(table: "SalesOrder", id: "SO-1")?.bytes == [2])
    }

    @Test func failedExpectationsWriteNothing() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        try engine.commit(orderBatch(1))
        let size = fileSize(segmentPath(directory.path))

        var duplicate = orderBatch(2)
        duplicate.put(table: "SalesOrder", id: "SO-1", record: [9], expecting: .absent)
        let duplicateError = #expect(throws: StoreError.self) { try engine.commit(duplicate) }
        #expect(duplicateError?.code == .duplicate)

        var stale = WriteBatch(unitOfWorkId: "uow-stale")
        stale.put(table: "SalesOrder", id: "SO-1", record: [9], expecting: .version(7))
        let conflictError = #expect(throws: StoreError.self) { try engine.commit(stale) }
        #expect(conflictError?.code == .conflict)

        #expect(fileSize(segmentPath(directory.path)) == size)
        #expect(engine.lastSequence == 1)
        #expect(try engine.record(table: "SalesOrder", id: "SO-2") == nil, "no part of a failed batch is applied")
        #expect(try engine.record(table: "SalesOrder", id: "SO-1")?.bytes == recordBytes("SO-1"))
    }

    @Test func foreignKeyIndexFollowsOverwritesAndDeletes() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        for number in 1...9 { try engine.commit(orderBatch(number, customer: number % 3)) }
        #expect(try engine.ids(table: "SalesOrder", field: "customerId", value: "C-0") == ["SO-3", "SO-6", "SO-9"])
        // SO-3 moves to customer 1; SO-6 is deleted.
        try engine.commit(orderBatch(3, customer: 1))
        var delete = WriteBatch(unitOfWorkId: "uow-d")
        delete.delete(table: "SalesOrder", id: "SO-6")
        try engine.commit(delete)
        #expect(try engine.ids(table: "SalesOrder", field: "customerId", value: "C-0") == ["SO-9"])
        #expect(try engine.ids(table: "SalesOrder", field: "customerId", value: "C-1") == ["SO-1", "SO-3", "SO-4", "SO-7"])
        #expect(try engine.records(table: "SalesOrder", field: "customerId", value: "C-1").map(\.id) == ["SO-1", "SO-3", "SO-4", "SO-7"])
        #expect(try engine.ids(table: "SalesOrder", field: "customerId", value: "C-404").isEmpty)
        try engine.close()
        // The rebuilt index agrees.
        let reopened = try openStore(directory.path)
        #expect(try reopened.ids(table: "SalesOrder", field: "customerId", value: "C-0") == ["SO-9"])
        #expect(try reopened.ids(table: "SalesOrder", field: "customerId", value: "C-1") == ["SO-1", "SO-3", "SO-4", "SO-7"])
        try reopened.close()
    }

    @Test func bulkFetchByIdsKeepsOrderAndSkipsMissingAndRepeated() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        for number in 1...5 { try engine.commit(orderBatch(number)) }
        let records = try engine.records(table: "SalesOrder", ids: ["SO-4", "SO-404", "SO-1", "SO-4", "SO-2"])
        #expect(records.map(\.id) == ["SO-4", "SO-1", "SO-2"])
        #expect(records.allSatisfy { $0.bytes == recordBytes($0.id) })
    }

    @Test func badInputGetsATypedErrorAndChangesNothing() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.maximumRecordSize = 1000
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        try engine.commit(orderBatch(1))
        let size = fileSize(segmentPath(directory.path))

        func expectRejected(_ code: StoreError.Code, _ build: (inout WriteBatch) -> Void) {
            var batch = WriteBatch(unitOfWorkId: "uow-bad")
            build(&batch)
            let error = #expect(throws: StoreError.self) { try engine.commit(batch) }
            #expect(error?.code == code, "\(String(describing: error))")
        }
        expectRejected(.recordTooLarge) { $0.put(table: "T", id: "big", record: [UInt8](repeating: 1, count: 1001)) }
        expectRejected(.invalidArgument) { $0.put(table: "", id: "x", record: [1]) }
        expectRejected(.invalidArgument) { $0.put(table: "T", id: "", record: [1]) }
        expectRejected(.invalidArgument) { $0.delete(table: "T", id: "") }
        expectRejected(.invalidArgument) { $0.put(table: "T", id: String(repeating: "i", count: 1025), record: [1]) }
        expectRejected(.invalidArgument) { $0.put(table: "T\0", id: "x", record: [1]) }
        expectRejected(.invalidArgument) { $0.put(table: "T", id: "x", record: [1], foreignKeys: [ForeignKey(field: "", value: "v")]) }
        expectRejected(.invalidArgument) { _ in }
        expectRejected(.invalidArgument) {
            $0.append(OutboxEvent(id: "", type: "E", aggregateTable: "T", aggregateId: "x", occurredAt: 0, payload: []))
        }
        expectRejected(.invalidArgument) { batch in
            batch = WriteBatch(unitOfWorkId: "")
            batch.put(table: "T", id: "x", record: [1])
        }
        // A good put in the same batch as a bad one is not written either.
        expectRejected(.recordTooLarge) {
            $0.put(table: "T", id: "fine", record: [1])
            $0.put(table: "T", id: "big", record: [UInt8](repeating: 1, count: 5000))
        }
        #expect(fileSize(segmentPath(directory.path)) == size)
        #expect(engine.lastSequence == 1)
        #expect(try engine.record(table: "T", id: "fine") == nil)

        try engine.close()
        let closedError = #expect(throws: StoreError.self) { try engine.commit(orderBatch(2)) }
        #expect(closedError?.code == .closed)
        let closedRead = #expect(throws: StoreError.self) { try engine.record(table: "SalesOrder", id: "SO-1") }
        #expect(closedRead?.code == .closed)
        try engine.close()  // a second close is harmless
        // The first close cut the zeros written ahead of the one frame.
        #expect(try frameRanges(fileBytes(segmentPath(directory.path))).count == 1)
        #expect(try fileSize(segmentPath(directory.path)) == endOfFrames(fileBytes(segmentPath(directory.path))))
    }

    @Test func invalidConfigurationsAndPathsAreRejected() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.segmentSize = 100
        #expect(throws: StoreError.self) { try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger) }
        configuration = EngineConfiguration()
        configuration.maximumRecordSize = 0
        #expect(throws: StoreError.self) { try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger) }
        configuration = EngineConfiguration()
        configuration.segmentSize = 8192
        #expect(configuration.effectiveMaximumBatchSize == (8192 - 72) / 2)
        #expect(configuration.effectiveMaximumRecordSize == configuration.effectiveMaximumBatchSize)
        let emptyPath = #expect(throws: StoreError.self) { try StorageEngine.open(at: "", logger: quietLogger) }
        #expect(emptyPath?.code == .invalidArgument)
        #expect(FileManager.default.createFile(atPath: directory.path("a-file"), contents: Data([1])))
        let notADirectory = #expect(throws: StoreError.self) { try StorageEngine.open(at: directory.path("a-file"), logger: quietLogger) }
        #expect(notADirectory?.code == .invalidArgument)
        let missing = #expect(throws: StoreError.self) { try openStore(directory.path("nothing-here"), readOnly: true) }
        #expect(missing?.code == .notFound)
        #expect(!FileManager.default.fileExists(atPath: directory.path("nothing-here")), "a read-only open creates nothing")
    }

    @Test func segmentsRollAndEveryCommitSurvivesReopen() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 8192)
        for number in 1...200 { try engine.commit(orderBatch(number, customer: number % 7, size: 400)) }
        let statistics = try engine.statistics()
        #expect(statistics.segments.count > 5)
        #expect(statistics.segments.dropLast().allSatisfy { $0.sealed && $0.bytes <= 8192 })
        #expect(statistics.segments.last?.sealed == false)
        #expect(try engine.verify().isHealthy)
        try engine.close()
        let manifest = try Manifest.decode(try fileBytes(directory.path("MANIFEST")), path: "MANIFEST")
        #expect(manifest.segments.count == statistics.segments.count)
        for (previous, next) in zip(manifest.segments, manifest.segments.dropFirst()) {
            #expect(next.baseSequence == previous.lastSequence + 1)
        }
        let reopened = try openStore(directory.path, segmentSize: 8192)
        defer { try? reopened.close() }
        #expect(reopened.lastSequence == 200)
        for number in stride(from: 1, through: 200, by: 13) {
            #expect(try reopened.record(table: "SalesOrder", id: "SO-\(number)")?.bytes == recordBytes("SO-\(number)", size: 400))
        }
        try reopened.commit(orderBatch(201))
        #expect(try reopened.verify().isHealthy)
    }

    @Test func aFrameLargerThanWhatIsLeftStartsANewSegmentButNeverSplits() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 8192)
        defer { try? engine.close() }
        var random = SplitMix64(seed: 5)
        var batch = WriteBatch(unitOfWorkId: "uow-big")
        batch.put(table: "Blob", id: "b", record: (0..<3000).map { _ in UInt8.random(in: 0...255, using: &random) })
        for _ in 0..<4 { try engine.commit(batch) }
        let statistics = try engine.statistics()
        #expect(statistics.segments.count == 2)
        #expect(statistics.segments.allSatisfy { $0.bytes <= 8192 })
    }

    @Test func theIndexEqualsARebuildAfterARandomWorkload() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path, segmentSize: 16384, durability: .unsafeNoSync)
        var random = SplitMix64(seed: 2026)
        for round in 0..<400 {
            var batch = WriteBatch(unitOfWorkId: "uow-\(round)")
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let id = "K-\(Int.random(in: 0..<60, using: &random))"
                if Int.random(in: 0..<4, using: &random) == 0 {
                    batch.delete(table: "T\(round % 2)", id: id)
                } else {
                    batch.put(table: "T\(round % 2)", id: id, record: recordBytes(id, round: round, size: Int.random(in: 0...300, using: &random)),
                              foreignKeys: [ForeignKey(field: "group", value: "G-\(Int.random(in: 0..<5, using: &random))")])
                }
            }
            try engine.commit(batch)
        }
        let report = try engine.verify()
        #expect(report.isHealthy, "\(report.problems)")
        #expect(report.frames == 400)
        let live = try engine.readIndex { $0 }
        try engine.close()
        let reopened = try openStore(directory.path, segmentSize: 16384)
        #expect(try reopened.readIndex { $0 } == live)
        let statistics = try reopened.statistics()
        #expect(statistics.liveRecords == live.liveCount)
        #expect(statistics.deadRecords == statistics.puts + statistics.deletes - live.liveCount)
        try reopened.close()
    }

    @Test func verifyReportsAnIndexThatDiffersFromTheLog() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        try engine.commit(orderBatch(1))
        #expect(try engine.verify().isHealthy)
        // Corrupt the in-memory index only: verify must notice it does not match the log.
        engine.state.withLock { state in
            var payload = CommitPayload(unitOfWorkId: "x", commitTimestamp: 0, operations: [])
            payload.operations = [.delete(table: "SalesOrder", id: "SO-1", version: 2)]
            state.index.apply(payload, sequence: 1, frame: FrameAddress(segment: 1, offset: 40), storedLength: 1)
        }
        let report = try engine.verify()
        #expect(!report.isHealthy)
        #expect(report.problems.contains { $0.message.contains("index") })
    }
}
