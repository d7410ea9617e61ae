import AggregateStore
import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Testing

/// What `aggstore info --json` prints.
struct InfoReport: Decodable {
    struct Subscriber: Decodable {
        var cursor: UInt64
        var lag: UInt64
    }

    var statistics: EngineStatistics
    var subscribers: [String: Subscriber]
}

/// `info`, `get`, `query` and `verify` on stores built here, damaged ones included.
@Suite("aggstore info, get, query and verify", .serialized)
struct InspectionCommandTests {
    /// Orders O-1...O-30 as record-format documents (status paid for multiples of 3, total
    /// 10 × n), each written twice; O-30 deleted; an event per order; subscriber `mailer`'s
    /// cursor stored at 25 of the 30 events.
    private func orderStore(_ path: String, snapshot: Bool = false) throws {
        var configuration = EngineConfiguration()
        configuration.segmentSize = 16 << 10
        configuration.compaction.isAutomatic = false
        let engine = try StorageEngine.open(at: path, configuration: configuration)
        for round in 0..<2 {
            for number in 1...30 {
                let order: Document = ["id": .string("O-\(number)"), "status": number % 3 == 0 ? "paid" : "open",
                                       "total": .integer(Int64(10 * number)), "round": .integer(Int64(round)),
                                       "note": .string(noise(seed: number * 2 + round))]
                var batch = WriteBatch(unitOfWorkId: "uow-\(round)-\(number)")
                batch.put(table: "Order", id: "O-\(number)", record: try order.encoded(),
                          foreignKeys: [ForeignKey(field: "customerId", value: "C-\(number % 4)")])
                if round == 0 {
                    batch.append(OutboxEvent(id: "ev-\(number)", type: "OrderPlaced", aggregateTable: "Order",
                                             aggregateId: "O-\(number)", occurredAt: 1, payload: try Document.map(["n": .integer(Int64(number))]).encoded()))
                }
                try engine.commit(batch)
            }
        }
        var delete = WriteBatch(unitOfWorkId: "uow-delete")
        delete.delete(table: "Order", id: "O-30")
        try engine.commit(delete)
        var cursor = WriteBatch(unitOfWorkId: "subscriber-cursor")
        cursor.put(table: "_subscribers", id: "mailer", record: try Document.map(["position": .integer(25)]).encoded())
        try engine.commit(cursor)
        try engine.close()
        if !snapshot {
            // No snapshot: a store closed without one, as after a crash.
            try FileManager.default.removeItem(atPath: (path as NSString).appendingPathComponent(Format.snapshotFileName))
        }
    }

    /// 300 letters that LZ4 cannot shrink much, so the orders fill several segments.
    private func noise(seed: Int) -> String {
        var state = UInt64(seed + 1) &* 0x9E37_79B9_7F4A_7C15
        return String((0..<300).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Character(UnicodeScalar(UInt8(97 + (state >> 59) % 26)))
        })
    }

    @Test func infoReportsTablesSegmentsAndSubscribers() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        try orderStore(store)
        let json = try aggstore("info", store, "--json")
        #expect(json.status == 0, "\(json.errors)")
        let report = try JSONDecoder().decode(InfoReport.self, from: Data(json.output.utf8))
        let orders = try #require(report.statistics.tableStatistics["Order"])
        #expect(orders.liveRecords == 29 && orders.versions == 60 && orders.tombstones == 1 && orders.deadRecords == 32)
        #expect(report.statistics.lastSequence == 62 && report.statistics.lastEventPosition == 30)
        #expect(report.statistics.segments.count > 1 && report.statistics.logScanned)
        #expect(report.subscribers["mailer"]?.cursor == 25 && report.subscribers["mailer"]?.lag == 5)

        let quick = try aggstore("stats", store, "--json", "--quick")
        #expect(quick.status == 0)
        let quickReport = try JSONDecoder().decode(InfoReport.self, from: Data(quick.output.utf8))
        #expect(!quickReport.statistics.logScanned && quickReport.statistics.tableStatistics["Order"]?.versions == nil)

        let text = try aggstore("info", store)
        #expect(text.status == 0)
        let lines = text.output.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("  Order ") && $0.contains(" 29 ") && $0.contains(" 60 ") && $0.contains(" 32 ") }, "\(text.output)")
        #expect(lines.contains { $0.contains("mailer") && $0.hasSuffix(" 5") }, "\(text.output)")
        // One bar per segment, its # against . as its live bytes against its dead ones.
        let bars = lines.filter { $0.contains(".seg") }
        #expect(bars.count == report.statistics.segments.count)
        for (bar, segment) in zip(bars, report.statistics.segments) {
            let live = Double(segment.liveBytes) / Double(segment.liveBytes + segment.deadBytes)
            let expected = "[" + String(repeating: "#", count: Int((live * 30).rounded()))
                + String(repeating: ".", count: 30 - Int((live * 30).rounded())) + "]"
            #expect(bar.contains(expected), "\(bar) for \(segment)")
        }
        // The first segment holds round 0, rewritten since: mostly dead (its events too, as
        // the only cursor has passed them).
        #expect(report.statistics.segments[0].deadBytes > 2 * report.statistics.segments[0].liveBytes)
        #expect(text.output.contains("outbox             events 1...30"))
    }

    @Test func getPrintsARecordAsJSON() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        try orderStore(store)
        let run = try aggstore("get", store, "Order", "O-7")
        #expect(run.status == 0, "\(run.errors)")
        let record = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])
        #expect(record["id"] as? String == "O-7" && record["status"] as? String == "open")
        #expect(record["total"] as? Int == 70 && record["round"] as? Int == 1)

        let withMetadata = try aggstore("get", store, "Order", "O-9", "--metadata", "--compact")
        #expect(withMetadata.status == 0 && withMetadata.output.split(separator: "\n").count == 1)
        let wrapped = try #require(try JSONSerialization.jsonObject(with: Data(withMetadata.output.utf8)) as? [String: Any])
        #expect(wrapped["table"] as? String == "Order" && wrapped["version"] as? Int == 2 && wrapped["sequence"] as? Int == 39)
        #expect((wrapped["foreignKeys"] as? [[String: String]]) == [["field": "customerId", "value": "C-1"]])
        #expect((wrapped["record"] as? [String: Any])?["status"] as? String == "paid")

        let deleted = try aggstore("get", store, "Order", "O-30")
        #expect(deleted.status == 1 && deleted.errors.contains("no record Order/O-30") && deleted.output.isEmpty)
        #expect(try aggstore("get", directory.path("missing"), "Order", "O-1").status == 3)
    }

    @Test func queryFiltersOrdersAndPagesWithCursors() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        try orderStore(store)
        func ids(_ output: String) throws -> [String] {
            try output.split(separator: "\n").map { line in
                try #require((try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["id"] as? String)
            }
        }
        // Paid orders are the multiples of 3 but O-30 (deleted): 9 of them, largest total first.
        let expected = stride(from: 27, through: 3, by: -3).map { "O-\($0)" }
        let all = try aggstore("query", store, "Order", "--where", "status = 'paid'", "--order-by", "total desc")
        #expect(all.status == 0, "\(all.errors)")
        #expect(try ids(all.output) == expected)

        var pages: [String] = []
        var after: String?
        for _ in 0..<4 {
            var arguments = ["query", store, "Order", "--where", "status = 'paid'", "--order-by", "total desc", "--limit", "4",
                             "--select", "id, total"]
            if let after { arguments += ["--after", after] }
            let page = try aggstore(arguments: arguments)
            #expect(page.status == 0, "\(page.errors)")
            pages += try ids(page.output)
            #expect(!page.output.contains("status"), "--select keeps only id and total")
            guard let line = page.errors.split(separator: "\n").first(where: { $0.contains("next: --after ") }) else { break }
            after = String(line.split(separator: " ").last!)
        }
        #expect(pages == expected)

        let count = try aggstore("query", store, "Order", "--where", "total >= 100 and status = 'open'", "--count")
        #expect(count.output == "\((10...29).filter { $0 % 3 != 0 }.count)\n")

        let json = try aggstore("query", store, "Order", "--where", "id in ('O-2', 'O-1', 'O-30')", "--json")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        #expect((document["rows"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == ["O-1", "O-2"])
        #expect(document["next"] is NSNull)

        let bad = try aggstore("query", store, "Order", "--where", "status = ")
        #expect(bad.status == 64 && bad.errors.contains("column") && bad.errors.contains("expected a value"))
    }

    @Test func verifyChecksTheSnapshotAndTheFilesAndPrintsJSON() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        try orderStore(store, snapshot: true)
        let healthy = try aggstore("verify", store, "--json")
        #expect(healthy.status == 0, "\(healthy.output)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(healthy.output.utf8)) as? [String: Any])
        #expect(report["healthy"] as? Bool == true && report["frames"] as? Int == 62 && report["liveRecords"] as? Int == 30)
        #expect((report["snapshot"] as? String)?.hasPrefix("valid") == true)

        // A damaged snapshot: open ignores it, verify reports it, and leaves it as it is.
        let snapshot = (store as NSString).appendingPathComponent(Format.snapshotFileName)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: snapshot)))
        bytes[bytes.count / 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: snapshot))
        let damaged = try aggstore("verify", store)
        #expect(damaged.status == 1)
        #expect(damaged.output.contains("DAMAGED: \(snapshot): index snapshot"), "\(damaged.output)")
        #expect(damaged.output.contains("index snapshot: DAMAGED"))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: snapshot))) == bytes)
        try FileManager.default.removeItem(atPath: snapshot)
        #expect(try aggstore("verify", store).status == 0)

        // A segment file the manifest does not list.
        let orphan = (store as NSString).appendingPathComponent("00000099.seg")
        #expect(FileManager.default.createFile(atPath: orphan, contents: Data(count: 100)))
        let withOrphan = try aggstore("verify", store, "--json")
        #expect(withOrphan.status == 1)
        #expect(withOrphan.output.contains("leftover file not referenced by the manifest") && withOrphan.output.contains("00000099.seg"))
        #expect(FileManager.default.fileExists(atPath: orphan))
    }

    @Test func compactDropsOnlyTheEventsEveryStoredCursorHasPassed() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        try orderStore(store)
        let run = try aggstore("compact", store, "--minimum-dead-ratio", "0.3")
        #expect(run.status == 0, "\(run.errors)")
        let dropped = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("Compacted") })
        #expect(dropped.contains(" events dropped") && !dropped.contains(" and 0 events dropped"), "\(run.output)")
        let engine = try StorageEngine.open(at: store)
        defer { try? engine.close() }
        // The mailer's cursor is at 25: every event after it is still there, in order.
        let kept = try engine.events(after: 0, limit: 100).map(\.position)
        #expect(kept.count < 30 && Array(kept.suffix(5)) == [26, 27, 28, 29, 30])
        #expect(try engine.verify().isHealthy)
    }
}
