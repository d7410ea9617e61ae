import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging

/// `aggstore import`: commits the JSON lines of `aggstore export` into a store.
struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Commit records from JSON lines (aggstore export's format) into a store.",
        discussion: """
        Reads one record per line, from standard input or --input: {"table", "id", \
        "foreignKeys", "bytes"} or, instead of "bytes", "record" as a JSON object whose "id" \
        field is the line's id (encoded as a Document; JSON has no timestamps or bytes, so \
        strings stay strings). "bytes" wins when both are there; "version" is ignored (the store \
        numbers its own versions). Empty lines are skipped. The store is created if missing; \
        it is opened for writing (an exclusive lock).

        Records are committed in units of work of --batch-size records (fewer when their bytes \
        near the engine's batch limit), each one durable commit with the unit-of-work id \
        import-1, import-2 ... Without --replace, an id that exists already is an error; with \
        it, the record is overwritten (its version goes on from the old one).

        A line that is not valid (not JSON, an unknown key, an empty or invalid table or id, \
        bad base64, an existing id) stops the import with its line number, and nothing of \
        that line's batch is written. The batches before it stay committed: the message says \
        how many records were imported, so the rest of the input can be imported after fixing \
        the line (with --replace, or from the line that failed).

        Exit codes: 0 everything imported; 1 a line was rejected or a commit failed; 3 the \
        store or the input cannot be opened, or a write failed (I/O error, disk full); 64 bad \
        arguments.
        """
    )

    @Argument(help: "The store directory; created if missing.")
    var directory: String

    @Option(help: "Read from this file instead of standard input.")
    var input: String?

    @Option(help: "Records per unit of work (each one durable commit).")
    var batchSize = 1000

    @Flag(help: "Overwrite records that exist already, instead of failing.")
    var replace = false

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
    }

    func run() throws {
        let source: Foundation.FileHandle
        if let input {
            guard let handle = Foundation.FileHandle(forReadingAtPath: input) else {
                printError("cannot open \(input)")
                throw ExitStatus.cannotOpen
            }
            source = handle
        } else {
            source = Foundation.FileHandle.standardInput
        }
        let logger = Logger(label: "aggstore.import", factory: { _ in SwiftLogNoOpLogHandler() })
        var configuration = EngineConfiguration()
        configuration.compaction.isAutomatic = false
        let engine = try openOrExit(directory, configuration: configuration, logger: logger)
        defer { try? engine.close() }
        var importer = Importer(engine: engine, batchSize: batchSize, replace: replace)
        var reader = LineReader(source)
        var lineNumber = 0
        do {
            while let bytes = try reader.next() {
                lineNumber += 1
                guard bytes.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else { continue }
                guard let text = String(validating: bytes, as: UTF8.self) else { throw LineError("not UTF-8") }
                try importer.add(try ExportLine(parsing: text), line: lineNumber)
            }
            try importer.commit()
        } catch let error as LineError {
            printError("line \(lineNumber): \(error.message)")
            printError(importer.stopped(at: lineNumber))
            throw ExitStatus.damaged
        } catch let error as ImportCommitError {
            printError("lines \(error.lines.lowerBound)...\(error.lines.upperBound) (unit of work \(error.unitOfWork)) were not written: \(error.error)")
            printError(importer.stopped(at: error.lines.lowerBound))
            switch error.error.code {
            case .io, .noSpace, .storeFailed: throw ExitStatus.cannotOpen
            default: throw ExitStatus.damaged
            }
        }
        print("Imported \(importer.imported) records in \(importer.units) unit(s) of work into \(directory).")
    }
}

/// A commit of a batch of lines that the engine refused or could not write.
struct ImportCommitError: Error {
    var lines: ClosedRange<Int>
    var unitOfWork: String
    var error: StoreError
}

/// Gathers checked lines into batches and commits them.
private struct Importer {
    let engine: StorageEngine
    let batchSize: Int
    let replace: Bool
    private(set) var imported = 0
    private(set) var units = 0
    private var batch: WriteBatch
    private var count = 0
    private var bytes = 0
    private var firstLine = 0
    private var lastLine = 0
    /// The keys in the batch, so that a repeated id is named by its line, not by a failed commit.
    private var keys = Set<[String]>()

    init(engine: StorageEngine, batchSize: Int, replace: Bool) {
        self.engine = engine
        self.batchSize = batchSize
        self.replace = replace
        batch = WriteBatch(unitOfWorkId: "import-1")
    }

    mutating func add(_ line: ExportLine, line number: Int) throws {
        guard line.bytes.count <= engine.configuration.maximumRecordSize else {
            throw LineError("the record has \(line.bytes.count) bytes; the store's maximum is \(engine.configuration.maximumRecordSize)")
        }
        if !replace {
            guard !keys.contains([line.table, line.id]) else {
                throw LineError("\(line.table)/\(line.id) appears twice in this batch (use --replace to keep the last)")
            }
            guard try !engine.version(table: line.table, id: line.id).isLive else {
                throw LineError("\(line.table)/\(line.id) exists already (use --replace to overwrite it)")
            }
        }
        // The engine refuses a batch past its limit: commit early rather than fail.
        let estimate = line.bytes.count + line.table.utf8.count + line.id.utf8.count + 64
            + line.foreignKeys.reduce(0) { $0 + $1.field.utf8.count + $1.value.utf8.count + 8 }
        if count > 0, bytes + estimate > engine.configuration.maximumBatchSize / 2 { try commit() }
        if count == 0 { firstLine = number }
        batch.put(table: line.table, id: line.id, record: line.bytes, foreignKeys: line.foreignKeys,
                  expecting: replace ? .any : .absent)
        keys.insert([line.table, line.id])
        count += 1
        bytes += estimate
        lastLine = number
        if count == batchSize { try commit() }
    }

    /// Commits the batch (durably: the default durability), if it holds anything.
    mutating func commit() throws {
        guard count > 0 else { return }
        do throws(StoreError) {
            try engine.commit(batch)
        } catch {
            throw ImportCommitError(lines: firstLine...lastLine, unitOfWork: batch.unitOfWorkId, error: error)
        }
        imported += count
        units += 1
        batch = WriteBatch(unitOfWorkId: "import-\(units + 1)")
        count = 0
        bytes = 0
        keys.removeAll(keepingCapacity: true)
    }

    /// What stayed written when the import stopped at `line`.
    func stopped(at line: Int) -> String {
        guard units > 0 else { return "nothing was imported" }
        return "\(imported) record(s) were imported before it, in \(units) unit(s) of work (import-1...import-\(units)); "
            + "nothing from line \(count > 0 ? firstLine : line) on was written"
    }
}
