import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Logging
import Synchronization
import Testing

/// `aggstore backup`, `export` and `import`, run as a separate process on real stores.
@Suite("aggstore backup, export and import", .serialized)
struct BackupExportTests {
    private let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs `aggstore` with `input` on its standard input.
    private func aggstore(_ arguments: [String], input: String) throws -> Run {
        let process = Process()
        process.executableURL = aggstoreBinary
        process.arguments = arguments
        let output = Pipe(), errors = Pipe(), standardInput = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = standardInput
        try process.run()
        try standardInput.fileHandleForWriting.write(contentsOf: Data(input.utf8))
        try standardInput.fileHandleForWriting.close()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
                   errors: String(decoding: errorData, as: UTF8.self))
    }

    /// Every live record of a store, by table and id, versions left out.
    private func contents(_ path: String, skippingInternal: Bool = true) throws -> [String: [String: (bytes: [UInt8], foreignKeys: [ForeignKey])]] {
        var configuration = EngineConfiguration()
        configuration.readOnly = true
        let engine = try StorageEngine.open(at: path, configuration: configuration, logger: logger)
        defer { try? engine.close() }
        var tables: [String: [String: (bytes: [UInt8], foreignKeys: [ForeignKey])]] = [:]
        for table in try engine.tables() where !(skippingInternal && table.hasPrefix("_")) {
            for record in try engine.records(table: table, ids: engine.ids(table: table)) {
                tables[table, default: [:]][record.id] = (record.bytes, record.foreignKeys)
            }
        }
        return tables
    }

    private func expectSameRecords(_ left: String, _ right: String, skippingInternal: Bool = true) throws {
        let a = try contents(left, skippingInternal: skippingInternal), b = try contents(right, skippingInternal: skippingInternal)
        #expect(a.keys.sorted() == b.keys.sorted())
        #expect(!a.isEmpty)
        for (table, records) in a {
            #expect(records.keys.sorted() == b[table]?.keys.sorted(), "table \(table)")
            for (id, record) in records {
                #expect(record.bytes == b[table]?[id]?.bytes, "\(table)/\(id): bytes")
                #expect(record.foreignKeys == b[table]?[id]?.foreignKeys, "\(table)/\(id): foreign keys")
            }
        }
    }

    /// A commit of two records that appear together or not at all.
    private func pairBatch(_ prefix: String) -> WriteBatch {
        var batch = WriteBatch(unitOfWorkId: "uow-\(prefix)")
        for side in ["a", "b"] {
            batch.put(table: "Pair", id: "\(prefix)-\(side)", record: Array("\(prefix)-\(side) ".utf8) + Array(repeating: 1, count: 300),
                      foreignKeys: [ForeignKey(field: "prefix", value: prefix)])
        }
        return batch
    }

    // MARK: backup

    @Test func backupOfAClosedStoreVerifiesAndHoldsEveryRecord() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store"), copy = directory.path("copy")
        #expect(try AggregateStoreCLITests.aggstore("demo", "--path", store, "--orders", "30").status == 0)
        let run = try AggregateStoreCLITests.aggstore("backup", store, copy)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("copied through a read-only open"), "\(run.output)")
        var readOnly = EngineConfiguration()
        readOnly.readOnly = true
        let source = try StorageEngine.open(at: store, configuration: readOnly, logger: logger)
        let lastSequence = source.lastSequence
        try source.close()
        #expect(lastSequence > 60)
        #expect(run.output.contains("through sequence \(lastSequence)"), "\(run.output)")
        #expect(!FileManager.default.fileExists(atPath: copy + "/SNAPSHOT"))
        let verify = try AggregateStoreCLITests.aggstore("verify", copy)
        #expect(verify.status == 0, "\(verify.output)")
        try expectSameRecords(store, copy, skippingInternal: false)

        // A second backup to the same place is a usage error and changes nothing.
        let before = try FileManager.default.contentsOfDirectory(atPath: copy).sorted()
        let again = try AggregateStoreCLITests.aggstore("backup", store, copy)
        #expect(again.status == 64)
        #expect(again.errors.contains("already exists"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: copy).sorted() == before)
        // A missing source cannot be opened.
        #expect(try AggregateStoreCLITests.aggstore("backup", directory.path("nothing"), directory.path("copy2")).status == 3)
        #expect(!FileManager.default.fileExists(atPath: directory.path("copy2")))
    }

    @Test func backupOfAStoreAnotherProcessHoldsAndCommitsToCopiesAPrefixWithoutTheLock() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store"), copy = directory.path("copy")
        var configuration = EngineConfiguration()
        configuration.segmentSize = 16 << 10
        configuration.compaction.isAutomatic = false
        let engine = try StorageEngine.open(at: store, configuration: configuration, logger: logger)
        defer { try? engine.close() }
        let committed = Mutex<[UInt64: String]>([:])
        for number in 0..<80 {
            let receipt = try engine.commit(pairBatch("pre-\(number)"))
            committed.withLock { $0[receipt.sequence] = "pre-\(number)" }
        }
        let acknowledgedBefore = engine.lastSequence
        // Commits go on in this process while the backup runs in another.
        let stop = Atomic(false)
        let writer = DispatchGroup()
        writer.enter()
        Thread.detachNewThread {
            var number = 0
            while !stop.load(ordering: .relaxed) {
                if let receipt = try? engine.commit(pairBatch("during-\(number)")) {
                    committed.withLock { $0[receipt.sequence] = "during-\(number)" }
                }
                number += 1
            }
            writer.leave()
        }
        let run = try AggregateStoreCLITests.aggstore("backup", store, copy)
        stop.store(true, ordering: .relaxed)
        writer.wait()
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("copied without the lock"), "\(run.output)")
        #expect(try AggregateStoreCLITests.aggstore("verify", copy).status == 0)

        var readOnly = EngineConfiguration()
        readOnly.readOnly = true
        let backup = try StorageEngine.open(at: copy, configuration: readOnly, logger: logger)
        defer { try? backup.close() }
        #expect(backup.lastSequence >= acknowledgedBefore)
        #expect(run.output.contains("through sequence \(backup.lastSequence)"))
        var expected = 0
        for (sequence, prefix) in committed.withLock({ $0 }) {
            for side in ["a", "b"] {
                let record = try backup.record(table: "Pair", id: "\(prefix)-\(side)")
                if sequence <= backup.lastSequence {
                    #expect(record?.bytes == (try engine.record(table: "Pair", id: "\(prefix)-\(side)"))?.bytes, "sequence \(sequence)")
                    expected += 1
                } else {
                    #expect(record == nil, "sequence \(sequence) is past the copy's end but in it")
                }
            }
        }
        #expect(try backup.liveRecordCount(table: "Pair") == expected)
    }

    @Test func backupWithoutTheLockLeavesOutAFrameBeingWritten() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store"), copy = directory.path("copy")
        let engine = try StorageEngine.open(at: store, logger: logger)
        defer { try? engine.close() }
        for number in 0..<20 { try engine.commit(pairBatch("p\(number)")) }
        // The first bytes of a frame, as a commit in the middle of its write leaves them.
        let segment: Foundation.FileHandle? = Foundation.FileHandle(forWritingAtPath: store + "/00000001.seg")
        let handle = try #require(segment)
        try handle.seekToEnd()
        try handle.write(contentsOf: [0x41, 0x47, 0x42, 0x46] + [UInt8](repeating: 9, count: 40))
        try handle.close()
        let run = try AggregateStoreCLITests.aggstore("backup", store, copy)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("through sequence 20"), "\(run.output)")
        // verify reports a torn tail as damage: a pass shows the partial frame was not copied.
        let verify = try AggregateStoreCLITests.aggstore("verify", copy)
        #expect(verify.status == 0, "\(verify.output)")
    }

    // MARK: export and import

    @Test func exportThenImportGivesTheSameRecords() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store"), copy = directory.path("copy"), file = directory.path("export.jsonl")
        #expect(try AggregateStoreCLITests.aggstore("demo", "--path", store, "--orders", "25").status == 0)
        let export = try AggregateStoreCLITests.aggstore("export", store, "--output", file)
        #expect(export.status == 0, "\(export.errors)")
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        // 25 orders and their customers; the subscribers' cursors (table _subscribers) are left out.
        let source = try contents(store)
        let count = source.values.reduce(0) { $0 + $1.count }
        #expect(source["SalesOrder"]?.count == 25 && source.keys.sorted() == ["Customer", "SalesOrder"])
        #expect(try contents(store, skippingInternal: false)["_subscribers"] != nil)
        #expect(lines.count == count)
        #expect(export.errors.contains("exported \(count) records from 2 table(s)"))
        #expect(lines.first?.hasPrefix(#"{"table":"Customer","id":"CUST-1","version":1,"foreignKeys":[],"record":{"id":"CUST-1","#) == true,
                "\(lines.first ?? "")")
        let tables = lines.map { $0.split(separator: "\"")[3] }
        #expect(tables == tables.sorted(), "tables in name order")

        // Import through standard input, in units of work of 10 records.
        let run = try aggstore(["import", copy, "--batch-size", "10"], input: String(contentsOfFile: file, encoding: .utf8))
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("Imported \(count) records in \((count + 9) / 10) unit(s) of work"), "\(run.output)")
        try expectSameRecords(store, copy)
        #expect(try AggregateStoreCLITests.aggstore("verify", copy).status == 0)

        // One table only, to standard output.
        let orders = try AggregateStoreCLITests.aggstore("export", store, "--table", "SalesOrder")
        #expect(orders.status == 0)
        #expect(orders.output.split(separator: "\n").count == 25)
        #expect(orders.output.contains(#""foreignKeys":[{"field":"customerId","value":"CUST-"#))
    }

    @Test func importEncodesTheReadableRecordWhenTheLineHasNoBytes() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let input = """
        {"table":"Note","id":"n-1","foreignKeys":[{"field":"author","value":"a-1"}],"record":{"id":"n-1","text":"hello","stars":3}}

        {"table":"Note","id":"n-2","record":{"id":"n-2","tags":["x","y"],"ok":true}}
        """
        let run = try aggstore(["import", store], input: input)
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("Imported 2 records in 1 unit(s) of work"))
        let export = try AggregateStoreCLITests.aggstore("export", store)
        let lines = export.output.split(separator: "\n")
        #expect(lines.count == 2)
        #expect(lines.first?.contains(#""foreignKeys":[{"field":"author","value":"a-1"}],"record":{"id":"n-1","text":"hello","stars":3}"#) == true,
                "\(export.output)")
        #expect(lines.last?.contains(#""record":{"id":"n-2","tags":["x","y"],"ok":true}"#) == true, "\(export.output)")
    }

    static let badLines: [(line: String, message: String)] = [
        (#"{"table":"T","id":"x-4""#, "not JSON"),
        (#"{"table":"T","id":"x-4","bytes":"AQID","colour":"red"}"#, #"unknown key "colour""#),
        (#"{"table":"","id":"x-4","bytes":"AQID"}"#, "table"),
        (#"{"table":"T","id":"","bytes":"AQID"}"#, "id"),
        (#"{"table":"T","bytes":"AQID"}"#, #""id" is missing"#),
        (#"{"table":"T","id":"x-4","bytes":"not base64!"}"#, "base64"),
        (#"{"table":"T","id":"x-4","record":{"id":"other"}}"#, "is not the line's id"),
        (#"{"table":"T","id":"x-1","bytes":"AQID"}"#, "exists already"),
    ]

    @Test(arguments: badLines)
    func aBadLineStopsTheImportNamingItAndNothingOfItsBatchIsWritten(_ bad: (line: String, message: String)) throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let input = [#"{"table":"T","id":"x-1","bytes":"AQID"}"#, #"{"table":"T","id":"x-2","bytes":"AQID"}"#,
                     #"{"table":"T","id":"x-3","bytes":"AQID"}"#, bad.line, #"{"table":"T","id":"x-5","bytes":"AQID"}"#]
        let run = try aggstore(["import", store, "--batch-size", "2"], input: input.joined(separator: "\n"))
        #expect(run.status == 1)
        #expect(run.errors.contains("line 4: "), "\(run.errors)")
        #expect(run.errors.contains(bad.message), "\(run.errors)")
        #expect(run.errors.contains("2 record(s) were imported before it"), "\(run.errors)")
        // The first batch (lines 1 and 2) stays; line 3, in the bad line's batch, is not written.
        #expect(try contents(store)["T"].map { $0.keys.sorted() } == ["x-1", "x-2"])
    }

    @Test func importOfAnExistingIdFailsUnlessReplacing() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        #expect(try aggstore(["import", store], input: #"{"table":"T","id":"a","bytes":"AQID"}"#).status == 0)
        let again = try aggstore(["import", store], input: #"{"table":"T","id":"a","bytes":"BAUG"}"#)
        #expect(again.status == 1)
        #expect(again.errors.contains("line 1: T/a exists already"), "\(again.errors)")
        #expect(try contents(store)["T"]?["a"]?.bytes == [1, 2, 3])
        let replaced = try aggstore(["import", store, "--replace"], input: #"{"table":"T","id":"a","bytes":"BAUG"}"#)
        #expect(replaced.status == 0, "\(replaced.errors)")
        #expect(try contents(store)["T"]?["a"]?.bytes == [4, 5, 6])
        #expect(try AggregateStoreCLITests.aggstore("import", store, "--batch-size", "0").status == 64)
    }
}
