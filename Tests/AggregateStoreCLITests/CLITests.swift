import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Logging
import Testing

/// Runs the built `aggstore` binary as a separate process.
@Suite("The aggstore command", .serialized)
struct CLITests {
    @Test func theBinaryWasBuilt() {
        #expect(FileManager.default.isExecutableFile(atPath: aggstoreBinary.path), "run `swift build --product aggstore` first (make test does)")
    }

    @Test func demoWritesReopensAndLooksUp() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        let run = try aggstore("demo", "--path", store, "--orders", "40")
        #expect(run.status == 0, "\(run.errors)")
        for line in ["wrote 40 orders", "paid 14 orders", "event #1 OrderPlaced: order SO-1 ",
                     "uow-demo-cancel failed with conflict, nothing written", "recovered ", "By id: SO-1 ",
                     "By customer CUST-", "Paid orders (filter, newest first, pages of 5): 13 in all",
                     "page 3: SO-10, SO-7, SO-4", "By a list of 11 ids (IN): 10 found"] {
            #expect(run.output.contains(line), "missing: \(line)\n\(run.output)")
        }
        // A second run appends new orders rather than failing on duplicates, and the subscriber
        // resumes after its durable cursor.
        let again = try aggstore("demo", "--path", store, "--orders", "5")
        #expect(again.status == 0, "\(again.errors)")
        #expect(again.output.contains("By id: SO-41 "))
        #expect(again.output.contains("handled 7 events; its durable cursor is at 61"))

        let verify = try aggstore("verify", store)
        #expect(verify.status == 0)
        #expect(verify.output.contains("Checked "))

        let stats = try aggstore("stats", store, "--json")
        #expect(stats.status == 0)
        let statistics = try JSONDecoder().decode(InfoReport.self, from: Data(stats.output.utf8)).statistics
        // 45 orders, 8 customers and the subscriber's cursor; 45 OrderPlaced and 16 OrderPaid.
        #expect(statistics.liveRecords == 54 && statistics.events == 61)
        #expect(statistics.compressionRatio > 1)
        let text = try aggstore("stats", store)
        #expect(text.output.contains("live records       54"))
    }

    @Test func compactRewritesDeadSegmentsAndTheStoreStaysWhole() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        var configuration = EngineConfiguration()
        configuration.segmentSize = 8192
        configuration.compaction.isAutomatic = false
        let engine = try StorageEngine.open(at: store, configuration: configuration, logger: Logger(label: "test"))
        // Records that do not compress, so the rounds fill several segments.
        func record(_ key: Int, _ round: Int) -> [UInt8] {
            var state = UInt64(key * 1000 + round) &* 0x9E37_79B9_7F4A_7C15
            return (0..<300).map { _ in
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                return UInt8(truncatingIfNeeded: state >> 56)
            }
        }
        for round in 0..<5 {
            for key in 0..<20 {
                var batch = WriteBatch(unitOfWorkId: "uow-\(round)-\(key)")
                batch.put(table: "T", id: "K-\(key)", record: record(key, round))
                try engine.commit(batch)
            }
        }
        try engine.close()
        let segmentsBefore = try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".seg") }.count
        let run = try aggstore("compact", store, "--minimum-dead-ratio", "0.3")
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("Compacted"), "\(run.output)")
        let segmentsAfter = try FileManager.default.contentsOfDirectory(atPath: store).filter { $0.hasSuffix(".seg") }.count
        #expect(segmentsAfter < segmentsBefore)
        #expect(run.output.contains("before: \(segmentsBefore) segments") && run.output.contains("after:  \(segmentsAfter) segments"),
                "\(run.output)")
        #expect(try aggstore("verify", store).status == 0)
        let reopened = try StorageEngine.open(at: store, logger: Logger(label: "test"))
        for key in 0..<20 { #expect(try reopened.record(table: "T", id: "K-\(key)")?.bytes == record(key, 4)) }
        try reopened.close()
        #expect(try aggstore("compact", store, "--minimum-dead-ratio", "2").status != 0)
    }

    @Test func verifyNamesTheFileAndOffsetOfDamageAndChangesNothing() throws {
        let directory = TemporaryDirectory()
        let store = directory.path("store")
        #expect(try aggstore("demo", "--path", store, "--orders", "10").status == 0)
        let segment = (store as NSString).appendingPathComponent("00000001.seg")
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
        // Damage the payload of the first frame; valid frames follow it.
        bytes[Format.segmentHeaderLength + Format.frameHeaderLength + 3] ^= 0x20
        try Data(bytes).write(to: URL(fileURLWithPath: segment))
        let run = try aggstore("verify", store)
        #expect(run.status == 1)
        #expect(run.output.contains("DAMAGED: \(segment) at offset \(Format.segmentHeaderLength)"))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: segment))) == bytes, "verify never modifies the store")

        // A torn tail is reported too (and left in place).
        bytes[Format.segmentHeaderLength + Format.frameHeaderLength + 3] ^= 0x20
        try Data(bytes + [1, 2, 3]).write(to: URL(fileURLWithPath: segment))
        let torn = try aggstore("verify", store)
        #expect(torn.status == 1)
        #expect(torn.output.contains("torn tail of 3 bytes"))
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: segment))).count == bytes.count + 3)
    }

    @Test func aSecondProcessIsRefusedByTheLock() throws {
        let directory = TemporaryDirectory()
        let engine = try StorageEngine.open(at: directory.path, logger: .init(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { try? engine.close() }
        for command in [["stats", directory.path], ["verify", directory.path], ["demo", "--path", directory.path, "--orders", "1"]] {
            let process = Process()
            process.executableURL = aggstoreBinary
            process.arguments = command
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = Pipe()
            try process.run()
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 3, "\(command)")
            #expect(message.contains("locked"), "\(command): \(message)")
        }
        #expect(engine.lastSequence == 0)
    }

    @Test func missingStoresAndBadArgumentsFailClearly() throws {
        let directory = TemporaryDirectory()
        let missing = try aggstore("stats", directory.path("nope"))
        #expect(missing.status == 3 && missing.errors.contains("no store"))
        #expect(!FileManager.default.fileExists(atPath: directory.path("nope")))
        let usage = try aggstore("demo", "--path", directory.path("x"), "--orders", "0")
        #expect(usage.status != 0 && usage.errors.contains("--orders must be positive"))
    }

    /// Every subcommand explains itself, and the top-level help lists them all.
    @Test func everySubcommandHasHelp() throws {
        let subcommands = ["info", "get", "query", "dump", "events", "verify", "salvage", "compact", "backup",
                           "export", "import", "demo", "bench"]
        let top = try aggstore("--help")
        #expect(top.status == 0 && top.output.contains("64 a usage error"))
        for name in subcommands {
            #expect(top.output.contains("  \(name)"), "\(name) is not listed")
            let help = try aggstore("help", name)
            #expect(help.status == 0 && help.output.contains("OVERVIEW:") && help.output.contains("USAGE: aggstore \(name)"),
                    "\(name): \(help.output)")
        }
    }

    /// A quick figure: the CRC32C throughput, in a directory it creates and removes.
    @Test func benchMeasuresAFigureAndCleansUp() throws {
        let directory = TemporaryDirectory()
        let path = directory.path("bench")
        let run = try aggstore("bench", "--only", "crc", "--path", path)
        #expect(run.status == 0, "\(run.errors)")
        let line = try #require(run.output.split(separator: "\n").first { $0.hasPrefix("CRC32C (") })
        let rate = line.split(separator: " ").compactMap { Double($0) }.first
        #expect((rate ?? 0) > 0, "\(line)")
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(try aggstore("bench", "--only", "crc", "--path", directory.path).status == 64, "an existing directory is refused")
    }

    /// Group commit measured in rounds: each round's lines, then the medians, whose ranges hold
    /// every round's figure.
    @Test func benchGroupRoundsReportTheirMedians() throws {
        let directory = TemporaryDirectory()
        let run = try aggstore("bench", "--only", "group", "--group-runs", "1", "--group-runs", "tasks2", "--group-repeats", "3",
                               "--commits", "100", "--model-disk-sync-microseconds", "0", "--path", directory.path("bench"))
        #expect(run.status == 0, "\(run.errors)")
        let lines = run.output.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("Round ") }.count == 3)
        let rounds = lines.filter { $0.contains("tasks ") && $0.contains("commits/s") }.compactMap { line in
            line.split(separator: " ").compactMap { Double($0) }.dropFirst().first
        }
        #expect(rounds.count == 3)
        // Each committer's figures are joined after the clock stops: the mean group, commits
        // over fsyncs, counts every committer's share of its groups' fsyncs.
        for line in lines where line.contains("commits/s") && line.contains("mean group") {
            let words = line.split(separator: " ")
            let meanGroup = try #require(words.firstIndex(of: "group").flatMap { Double(words[$0 + 1]) }, "\(line)")
            let committers = line.contains("tasks") ? 2.0 : 1.0
            #expect(meanGroup >= 1 && meanGroup <= committers, "\(line)")
        }
        let median = try #require(lines.first { $0.hasPrefix("  tasks2") })
        let figures = median.split(whereSeparator: { " []-x".contains($0) }).compactMap { Double($0) }
        // median rate, its range, median ratio, its range
        #expect(figures.count >= 6, "\(median)")
        #expect(figures[0] == rounds.sorted()[1], "\(median) against \(rounds)")
        #expect(figures[1] == rounds.min() && figures[2] == rounds.max(), "\(median) against \(rounds)")
        #expect(!FileManager.default.fileExists(atPath: directory.path("bench")))
    }
}
