import AggregateStore
import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging

/// `aggstore info` (alias `stats`): what a store holds and what compaction could reclaim.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show segments, tables, live and dead records and bytes, the outbox and its subscribers.",
        discussion: """
        Opens the store read-only (a shared lock: it fails with exit 3 while a writer has it \
        open) and recovers it; never modifies it. Prints the sequence range, the segments with \
        a bar of live (#) against dead (.) bytes each as compaction reckons them, the tables \
        with their live records and bytes, the compression ratio, the memory the indexes take, \
        the outbox's positions, and each subscriber's durable cursor with its lag. Reads the \
        whole log to count each table's overwritten versions, tombstones and dead bytes, \
        unless --quick (the indexes alone know only the live ones). --json prints the same as \
        one JSON document.
        """,
        aliases: ["stats"]
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "Do not read the log: no per-table dead versions and bytes.")
    var quick = false

    /// What `--json` prints.
    struct Report: Codable {
        /// A subscriber's durable cursor and the events after it.
        struct Subscriber: Codable {
            var cursor: UInt64
            var lag: UInt64
        }

        var statistics: EngineStatistics
        var subscribers: [String: Subscriber]
    }

    func run() throws {
        let residentBefore = residentMemory()
        let engine = try openReadOnlyOrExit(directory, logger: Logger(label: "aggstore.info"))
        // Taken before the log is scanned: the scan's buffers, which the allocator keeps, are
        // not the open's (they added 7 MiB to a store of 1M orders).
        let residentAfterOpen = residentMemory()
        defer { try? engine.close() }
        let cursors = try releaseDeliveredEvents(engine)
        let bar = ProgressBar(enabled: !quick && standardErrorIsTerminal)
        let statistics = try engine.statistics(scanningLog: !quick) { progress in
            bar.show(done: progress.bytesRead, of: progress.bytesTotal)
        }
        bar.finish()
        let subscribers = cursors.mapValues { cursor in
            Report.Subscriber(cursor: cursor, lag: statistics.lastEventPosition > cursor ? statistics.lastEventPosition - cursor : 0)
        }
        if json {
            print(try prettyJSON(Report(statistics: statistics, subscribers: subscribers)))
            return
        }
        printSummary(statistics)
        print("  process memory     \(residentAfterOpen / 1024) KiB resident after the open, \(residentBefore / 1024) KiB before it")
        printTables(statistics)
        printSegments(statistics)
        printSubscribers(subscribers, lastEventPosition: statistics.lastEventPosition)
    }

    private func printSummary(_ statistics: EngineStatistics) {
        let dead = statistics.segments.reduce(0) { $0 + $1.deadBytes }
        print("Store \(directory)")
        print("  commits            \(statistics.frames) frames, sequences \(range(statistics.firstSequence, statistics.lastSequence))")
        print("  live records       \(statistics.liveRecords) (\(byteCount(statistics.liveRecordBytes)))")
        print("  dead records       \(statistics.deadRecords) (overwritten versions and tombstones)")
        print("  puts/deletes/events \(statistics.puts)/\(statistics.deletes)/\(statistics.events)")
        print("  log                \(count(statistics.segments.count, "segment")), \(byteCount(statistics.logBytes)) on disk; "
              + "\(percent(statistics.deadRatio)) dead (\(byteCount(dead)) compaction could reclaim)")
        print("  payload bytes      \(statistics.payloadBytes) uncompressed, \(statistics.storedBytes) stored, "
              + "LZ4 ratio \(String(format: "%.2f", statistics.compressionRatio))")
        print("  outbox             events \(range(statistics.firstEventPosition, statistics.lastEventPosition))")
        print("  index memory       \(byteCount(UInt64(statistics.indexMemoryBytes))) "
              + "(\(statistics.liveRecords == 0 ? 0 : statistics.indexMemoryBytes / statistics.liveRecords) bytes per live record)")
    }

    private func printTables(_ statistics: EngineStatistics) {
        print("Tables")
        var rows = [["table", "live", "live bytes", "versions", "tombstones", "dead", "dead bytes"]]
        for (name, table) in statistics.tableStatistics.sorted(by: { $0.key < $1.key }) {
            rows.append([name, "\(table.liveRecords)", byteCount(table.liveBytes),
                         table.versions.map(String.init) ?? "-", table.tombstones.map(String.init) ?? "-",
                         table.deadRecords.map(String.init) ?? "-", table.deadBytes.map(byteCount) ?? "-"])
        }
        printColumns(rows)
    }

    private func printSegments(_ statistics: EngineStatistics) {
        print("Segments (live # against dead . bytes)")
        var rows = [["segment", "state", "from seq", "size", "live", "bytes (live | dead)", ""]]
        for segment in statistics.segments {
            let total = segment.liveBytes + segment.deadBytes
            let liveShare = total == 0 ? 1 : Double(segment.liveBytes) / Double(total)
            rows.append([SegmentHeader.fileName(for: segment.id), segment.sealed ? "sealed" : "active", "\(segment.baseSequence)",
                         byteCount(segment.bytes), "\(segment.liveRecords)", liveDeadBar(liveShare: liveShare),
                         "\(percent(1 - liveShare)) dead"])
        }
        printColumns(rows)
    }

    private func printSubscribers(_ subscribers: [String: Report.Subscriber], lastEventPosition: UInt64) {
        guard !subscribers.isEmpty else {
            print("Subscribers: none has stored a cursor (every event is kept)")
            return
        }
        print("Subscribers (last event \(lastEventPosition))")
        var rows = [["name", "cursor", "lag"]]
        for (name, subscriber) in subscribers.sorted(by: { $0.key < $1.key }) {
            rows.append([name, "\(subscriber.cursor)", "\(subscriber.lag)"])
        }
        printColumns(rows)
    }

    private func range(_ first: UInt64, _ last: UInt64) -> String {
        first > last ? "none" : "\(first)...\(last)"
    }
}
