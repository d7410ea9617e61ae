import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging

/// `aggstore stats`: segments, frames, live and dead records, bytes and compression.
struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print segments, frames, live and dead records, bytes and the compression ratio.",
        discussion: "Opens the store read-only (a shared lock) and recovers it; never modifies it."
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        var configuration = EngineConfiguration()
        configuration.readOnly = true
        let residentBefore = residentMemory()
        let engine = try openOrExit(directory, configuration: configuration, logger: Logger(label: "aggstore.stats"))
        defer { try? engine.close() }
        let statistics = try engine.statistics()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(statistics), as: UTF8.self))
            return
        }
        print("Store \(directory)")
        print("  commits (frames)   \(statistics.frames), sequences 1...\(statistics.lastSequence)")
        print("  live records       \(statistics.liveRecords) (\(statistics.liveRecordBytes) bytes)")
        print("  dead records       \(statistics.deadRecords) (overwritten versions and tombstones)")
        print("  puts/deletes/events \(statistics.puts)/\(statistics.deletes)/\(statistics.events)")
        print("  bytes on disk      \(statistics.logBytes)")
        print("  payload bytes      \(statistics.payloadBytes) uncompressed, \(statistics.storedBytes) stored, "
              + "LZ4 ratio \(String(format: "%.2f", statistics.compressionRatio))")
        for (table, count) in statistics.tables.sorted(by: { $0.key < $1.key }) {
            print("  table \(table): \(count) live")
        }
        print("  process memory     \(residentMemory() / 1024) KiB resident after the open, \(residentBefore / 1024) KiB before it")
        print("  segments           \(statistics.segments.count)")
        for segment in statistics.segments {
            print("    \(segment.id)  \(segment.bytes) bytes  \(segment.sealed ? "sealed" : "active")  from sequence \(segment.baseSequence)")
        }
    }
}
