import AggregateStore
import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Logging
import Testing

/// `aggstore dump`, `events` and `salvage`, run as separate processes against stores this
/// process writes (and, for the lockless ones, still holds open).
@Suite("aggstore dump, events and salvage", .serialized)
struct LogToolsTests {
    private let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    private func open(_ path: String) throws -> StorageEngine {
        var configuration = EngineConfiguration()
        configuration.compaction.isAutomatic = false
        return try StorageEngine.open(at: path, configuration: configuration, logger: logger)
    }

    /// The record of order `number`, in the record format.
    private func orderRecord(_ number: Int) throws -> [UInt8] {
        let document: Document = ["id": .string("SO-\(number)"), "customerId": .string("C-\(number % 3)"),
                                  "totalCents": .integer(Int64(number * 100))]
        return try document.encoded()
    }

    private func eventPayload(_ number: Int) throws -> [UInt8] {
        let document: Document = ["orderId": .string("SO-\(number)")]
        return try document.encoded()
    }

    /// Order `number`: a put of the order and an OrderPlaced event about it.
    private func orderBatch(_ number: Int) throws -> WriteBatch {
        var batch = WriteBatch(unitOfWorkId: "uow-\(number)")
        batch.put(table: "SalesOrder", id: "SO-\(number)", record: try orderRecord(number),
                  foreignKeys: [ForeignKey(field: "customerId", value: "C-\(number % 3)")])
        batch.append(OutboxEvent(id: "ev-\(number)", type: "OrderPlaced", aggregateTable: "SalesOrder",
                                 aggregateId: "SO-\(number)", occurredAt: 1_700_000_000_000_000 + Int64(number),
                                 payload: try eventPayload(number)))
        return batch
    }

    /// The JSON lines of an output, parsed.
    private func jsonLines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
    }

    /// The byte ranges of the frames of a segment file.
    private func frameRanges(_ path: String) throws -> [Range<Int>] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        var frames: [Range<Int>] = []
        var offset = Format.segmentHeaderLength
        while offset < bytes.count {
            let length = try bytes.withUnsafeBytes { try Frame.parseHeader(UnsafeRawBufferPointer(rebasing: $0[offset...])).get().frameLength }
            frames.append(offset..<offset + length)
            offset += length
        }
        return frames
    }

    /// Flips a bit in the payload of frame `index` (0-based) of segment 1; returns the file and the frame's bytes.
    private func damageFrame(_ index: Int, in store: String) throws -> (path: String, frame: Range<Int>) {
        let segment = (store as NSString).appendingPathComponent("00000001.seg")
        let frame = try frameRanges(segment)[index]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        bytes[frame.lowerBound + Format.frameHeaderLength + 2] ^= 0x10
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        return (segment, frame)
    }

    /// Every file of a directory and its bytes.
    private func snapshot(_ directory: String) throws -> [String: Data] {
        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
            files[name] = try Data(contentsOf: URL(fileURLWithPath: (directory as NSString).appendingPathComponent(name)))
        }
        return files
    }

    /// The JSON value of a record-format document, parsed, for comparison with the output.
    private func json(_ bytes: [UInt8]) throws -> NSDictionary {
        let text = try Document(decoding: bytes).jsonString()
        return try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary)
    }

    @Test func dumpPrintsEveryFrameAndOperationBesideAWriter() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let engine = try open(store)
        defer { try? engine.close() }
        var receipts: [CommitReceipt] = []
        for number in 1...4 { receipts.append(try engine.commit(try orderBatch(number))) }
        var mixed = WriteBatch(unitOfWorkId: "uow-mixed")
        mixed.delete(table: "SalesOrder", id: "SO-2")
        mixed.put(table: "Customer", id: "C-1", record: [0xFF, 0x00, 0x01], foreignKeys: [])
        receipts.append(try engine.commit(mixed))

        // The store stays open (and locked) in this process: dump takes no lock.
        let run = try aggstore("dump", store)
        #expect(run.status == 0, "\(run.errors)")
        let lines = try jsonLines(run.output)
        #expect(lines.map { $0["kind"] as? String } == ["frame", "put", "event", "frame", "put", "event", "frame", "put", "event",
                                                        "frame", "put", "event", "frame", "delete", "put"])
        for (number, receipt) in zip(1...4, receipts) {
            let frame = lines[(number - 1) * 3], put = lines[(number - 1) * 3 + 1], event = lines[(number - 1) * 3 + 2]
            #expect(frame["sequence"] as? Int == Int(receipt.sequence) && frame["segment"] as? Int == 1)
            #expect(frame["unitOfWork"] as? String == "uow-\(number)")
            #expect(frame["payloadBytes"] as? Int == receipt.payloadBytes)
            #expect(frame["storedBytes"] as? Int == receipt.frameBytes - Format.frameHeaderLength)
            #expect(frame["offset"] as? Int == (number == 1 ? Format.segmentHeaderLength
                                                 : (lines[(number - 2) * 3]["offset"] as! Int) + receipts[number - 2].frameBytes))
            #expect(put["table"] as? String == "SalesOrder" && put["id"] as? String == "SO-\(number)" && put["version"] as? Int == 1)
            #expect(put["foreignKeys"] as? [[String: String]] == [["field": "customerId", "value": "C-\(number % 3)"]])
            #expect(put["record"] as? NSDictionary == (try json(try orderRecord(number))))
            #expect(event["position"] as? Int == Int(receipt.eventPositions.lowerBound))
            #expect(event["id"] as? String == "ev-\(number)" && event["type"] as? String == "OrderPlaced")
            #expect(event["aggregateTable"] as? String == "SalesOrder" && event["aggregateId"] as? String == "SO-\(number)")
            #expect(event["occurredAt"] as? Int == 1_700_000_000_000_000 + number)
            #expect(event["payload"] as? NSDictionary == (try json(try eventPayload(number))))
        }
        #expect(lines[13]["table"] as? String == "SalesOrder" && lines[13]["id"] as? String == "SO-2" && lines[13]["version"] as? Int == 2)
        // Bytes that are not a record print as base64.
        #expect(lines[14]["recordBase64"] as? String == "/wAB" && lines[14]["record"] == nil)

        let later = try jsonLines(try aggstore("dump", store, "--from-sequence", "4").output)
        #expect(later.filter { $0["kind"] as? String == "frame" }.map { $0["sequence"] as? Int } == [4, 5])
        let customers = try jsonLines(try aggstore("dump", store, "--table", "Customer").output)
        #expect(customers.map { $0["kind"] as? String } == ["frame", "put"])
        #expect(customers.first?["sequence"] as? Int == 5)
    }

    @Test func dumpOfADamagedMiddleFramePrintsWhatPrecedesItAndExits1() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let engine = try open(store)
        for number in 1...8 { try engine.commit(try orderBatch(number)) }
        try engine.close()
        let (segment, frame) = try damageFrame(2, in: store)
        let run = try aggstore("dump", store)
        #expect(run.status == 1)
        #expect(run.errors.contains("\(segment) at offset \(frame.lowerBound)"), "\(run.errors)")
        let lines = try jsonLines(run.output)
        #expect(lines.filter { $0["kind"] as? String == "frame" }.map { $0["sequence"] as? Int } == [1, 2])

        #expect(try aggstore("dump", directory.path("missing")).status == 3)
    }

    @Test func eventsFollowPrintsTheCommitsOfTheProcessHoldingTheStore() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        // This process holds the store (the exclusive lock) throughout, as a service would.
        let engine = try open(store)
        defer { try? engine.close() }
        for number in 1...3 { try engine.commit(try orderBatch(number)) }

        let once = try aggstore("events", store, "--json", "--after", "1", "--limit", "1")
        #expect(once.status == 0, "\(once.errors)")
        let page = try jsonLines(once.output)
        #expect(page.count == 1 && page.first?["position"] as? Int == 2 && page.first?["id"] as? String == "ev-2")
        #expect(page.first?["payload"] as? NSDictionary == (try json(try eventPayload(2))))
        let text = try aggstore("events", store)
        #expect(text.output.split(separator: "\n").count == 3)
        #expect(text.output.contains("OrderPlaced  SalesOrder/SO-3  {\"orderId\":\"SO-3\"}"), "\(text.output)")

        let follower = try BackgroundAggstore(arguments: ["events", store, "--follow", "--json", "--poll-interval", "20"],
                                              outputPath: directory.path("events.out"))
        follower.waitForOutput { $0.split(separator: "\n").count >= 3 }
        for number in 4...6 { try engine.commit(try orderBatch(number)) }
        var unrelated = WriteBatch(unitOfWorkId: "uow-no-events")
        unrelated.put(table: "Customer", id: "C-9", record: try orderRecord(9))
        try engine.commit(unrelated)
        try engine.commit(try orderBatch(7))
        follower.waitForOutput { $0.contains("\"ev-7\"") }
        let run = follower.stop(with: SIGTERM)
        #expect(run.status == 0, "SIGTERM ends --follow normally: \(run.errors)")
        let events = try jsonLines(run.output)
        #expect(events.map { $0["position"] as? Int } == Array(1...7))
        #expect(events.map { $0["id"] as? String } == (1...7).map { "ev-\($0)" })
        #expect(events.map { $0["unitOfWork"] as? String } == (1...7).map { "uow-\($0)" })
        #expect(events.last?["sequence"] as? Int == 8)
    }

    @Test func salvageOfADamagedStoreCopiesEveryOtherCommitAndReportsTheLoss() throws {
        let directory = TemporaryDirectory()
        let source = directory.path("source")
        let engine = try open(source)
        for number in 1...10 { try engine.commit(try orderBatch(number)) }
        try engine.close()
        // Sequence 5 is damaged; valid frames follow it.
        let (segment, frame) = try damageFrame(4, in: source)
        let before = try snapshot(source)
        // The engine itself refuses it.
        #expect(try aggstore("verify", source).status == 1)

        let destination = directory.path("copy")
        let reportPath = directory.path("report.json")
        let run = try aggstore("salvage", source, destination, "--report", reportPath, "--json")
        #expect(run.status == 1, "\(run.output)\(run.errors)")
        #expect(run.output.contains("LOST"))
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: reportPath))) as? [String: Any])
        #expect(report["missingSequences"] as? [[String: Int]] == [["first": 5, "last": 5]])
        let damaged = try #require(report["damaged"] as? [[String: Any]])
        #expect(damaged.count == 1)
        #expect(damaged.first?["file"] as? String == segment)
        #expect(damaged.first?["offset"] as? Int == frame.lowerBound && damaged.first?["length"] as? Int == frame.count)
        #expect(report["commitsCopied"] as? Int == 9)

        #expect(try snapshot(source) == before, "salvage never modifies its source")
        #expect(try aggstore("verify", destination).status == 0)
        let copy = try open(destination)
        defer { try? copy.close() }
        for number in 1...10 {
            let record = try copy.record(table: "SalesOrder", id: "SO-\(number)")
            #expect(record?.bytes == (number == 5 ? nil : try orderRecord(number)), "SO-\(number)")
            #expect(record?.foreignKeys == (number == 5 ? nil : [ForeignKey(field: "customerId", value: "C-\(number % 3)")]))
        }
        let events = try copy.events(after: 0, limit: 100)
        #expect(events.map(\.event.id) == [1, 2, 3, 4, 6, 7, 8, 9, 10].map { "ev-\($0)" })
        #expect(events.map(\.unitOfWorkId) == [1, 2, 3, 4, 6, 7, 8, 9, 10].map { "uow-\($0)" })
        // Positions are the new store's own, dense again.
        #expect(events.map(\.position) == Array(1...9))

        // The text report says the same.
        let text = try aggstore("salvage", source, directory.path("copy2"))
        #expect(text.status == 1)
        #expect(text.output.contains("missing sequence 5"))
        #expect(text.output.contains("damaged bytes \(segment) offset \(frame.lowerBound) length \(frame.count)"))
    }

    @Test func salvageOfAHealthyStoreCopiesEverythingAndExits0() throws {
        let directory = TemporaryDirectory()
        let source = directory.path("source")
        let engine = try open(source)
        for number in 1...6 { try engine.commit(try orderBatch(number)) }
        var change = WriteBatch(unitOfWorkId: "uow-change")
        change.delete(table: "SalesOrder", id: "SO-3")
        change.put(table: "SalesOrder", id: "SO-4", record: try orderRecord(44))
        try engine.commit(change)
        try engine.close()
        let before = try snapshot(source)

        let destination = directory.path("copy")
        let run = try aggstore("salvage", source, destination)
        #expect(run.status == 0, "\(run.output)\(run.errors)")
        #expect(run.output.contains("OK: nothing was lost."))
        #expect(try snapshot(source) == before, "salvage never modifies its source")
        #expect(try aggstore("verify", destination).status == 0)
        let original = try open(source)
        let copy = try open(destination)
        for number in 1...6 {
            #expect(try copy.record(table: "SalesOrder", id: "SO-\(number)")?.bytes == original.record(table: "SalesOrder", id: "SO-\(number)")?.bytes)
        }
        #expect(try copy.record(table: "SalesOrder", id: "SO-3") == nil)
        #expect(try copy.record(table: "SalesOrder", id: "SO-4")?.bytes == (try orderRecord(44)))
        #expect(try copy.events(after: 0, limit: 100).map(\.event) == original.events(after: 0, limit: 100).map(\.event))
        try original.close()
        try copy.close()

        // An existing destination, or a source that is not there, is refused with 3.
        #expect(try aggstore("salvage", source, destination).status == 3)
        #expect(try aggstore("salvage", directory.path("missing"), directory.path("other")).status == 3)
        #expect(!FileManager.default.fileExists(atPath: directory.path("other")))
    }

    @Test func salvageOfACompactedStoreTakesItsSkippedSequencesForNoLoss() throws {
        let directory = TemporaryDirectory()
        let source = directory.path("source")
        var configuration = EngineConfiguration()
        configuration.compaction.isAutomatic = false
        configuration.segmentSize = 4096
        let engine = try StorageEngine.open(at: source, configuration: configuration, logger: logger)
        for round in 0..<4 {
            for key in 0..<10 {
                var batch = WriteBatch(unitOfWorkId: "uow-\(round)-\(key)")
                batch.put(table: "T", id: "K-\(key)", record: try orderRecord(round * 100 + key))
                try engine.commit(batch)
            }
        }
        #expect(try engine.compact(minimumDeadRatio: 0.3).segmentsCompacted > 0)
        try engine.close()

        let dump = try jsonLines(try aggstore("dump", source).output)
        #expect(dump.contains { $0["kind"] as? String == "frame" && $0["compacted"] as? Bool == true })
        let destination = directory.path("copy")
        let run = try aggstore("salvage", source, destination)
        #expect(run.status == 0, "\(run.output)\(run.errors)")
        let copy = try open(destination)
        defer { try? copy.close() }
        for key in 0..<10 {
            #expect(try copy.record(table: "T", id: "K-\(key)")?.bytes == (try orderRecord(300 + key)))
        }
    }
}
