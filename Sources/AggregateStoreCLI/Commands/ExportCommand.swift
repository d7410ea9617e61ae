import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `aggstore export`: every live record as a JSON line, for `aggstore import` or for people.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write every live record as one line of JSON, for aggstore import.",
        discussion: """
        Each line is {"table", "id", "version", "foreignKeys": [{"field", "value"}], "record", \
        "bytes"}: "record" is the record as readable JSON (null if it is not a Document), \
        "bytes" the stored record in base64, which makes export and import lossless (JSON has \
        no timestamps or bytes: "record" shows them as strings). Tables in name order, ids in \
        order. Deleted records, old versions and outbox events are not exported.

        Tables whose name starts with "_" (the subscribers' cursors, which point at event \
        positions of this store only) are left out unless --table names one.

        Opens the store read-only (a shared lock: it fails with exit 3 while a writer has it \
        open); never modifies it. A count goes to standard error, and a progress bar when it \
        is a terminal.
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Option(help: "Export only this table.")
    var table: String?

    @Option(help: "Write to this file (replaced if it exists) instead of standard output.")
    var output: String?

    func run() throws {
        let logger = Logger(label: "aggstore.export", factory: { _ in SwiftLogNoOpLogHandler() })
        let engine = try openReadOnlyOrExit(directory, logger: logger)
        defer { try? engine.close() }
        let sink: Foundation.FileHandle
        if let output {
            guard FileManager.default.createFile(atPath: output, contents: nil),
                  let handle = Foundation.FileHandle(forWritingAtPath: output) else {
                printError("cannot create \(output)")
                throw ExitStatus.cannotOpen
            }
            sink = handle
        } else {
            sink = Foundation.FileHandle.standardOutput
        }
        defer { if output != nil { try? sink.close() } }

        let tables = try table.map { [$0] } ?? engine.tables().filter { !$0.hasPrefix("_") }
        let total = try tables.reduce(0) { $0 + (try engine.liveRecordCount(table: $1)) }
        // Not over the lines themselves when both go to the terminal.
        let bar = ProgressBar(enabled: standardErrorIsTerminal && (output != nil || isatty(STDOUT_FILENO) == 0))
        var writer = BufferedWriter(sink)
        var exported = 0
        for table in tables {
            let ids = try engine.ids(table: table)
            // A slice at a time, so that memory holds a few records, not the table.
            var start = 0
            while start < ids.count {
                let end = min(start + 256, ids.count)
                for record in try engine.records(table: table, ids: Array(ids[start..<end])) {
                    let line = ExportLine(table: table, id: record.id, version: record.version,
                                          foreignKeys: record.foreignKeys, bytes: record.bytes)
                    try writer.write(line.jsonText + "\n")
                    exported += 1
                }
                bar.show(done: UInt64(exported), of: UInt64(total))
                start = end
            }
        }
        try writer.flush()
        bar.finish()
        printError("exported \(exported) records from \(tables.count) table(s)")
    }
}
