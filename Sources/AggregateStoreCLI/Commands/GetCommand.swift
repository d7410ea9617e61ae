import AggregateStore
import AggregateStoreEngine
import ArgumentParser
import Logging

/// `aggstore get`: one record by its primary key, as JSON.
struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Print one record, looked up by table and id, as JSON.",
        discussion: """
        Opens the store read-only (a shared lock: it fails with exit 3 while a writer has it \
        open). Prints the record as JSON: timestamps as ISO 8601 strings, bytes as base64. \
        --metadata wraps it with its table, id, version, the sequence number of the commit \
        that wrote it, and its foreign keys. Exits 1 when there is no such record.
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Argument(help: "The table (aggregate type), such as SalesOrder.")
    var table: String

    @Argument(help: "The record's id.")
    var id: String

    @Flag(help: "Print the record with its version, sequence number and foreign keys.")
    var metadata = false

    @Flag(help: "Print on one line.")
    var compact = false

    func run() throws {
        let engine = try openReadOnlyOrExit(directory, logger: Logger(label: "aggstore.get"))
        defer { try? engine.close() }
        guard let stored = try engine.record(table: table, id: id) else {
            printError("no record \(table)/\(id)")
            throw ExitStatus.damaged
        }
        let record = try recordDocument(stored.bytes)
        guard metadata else {
            print(record.jsonString(pretty: !compact))
            return
        }
        let foreignKeys = Document.array(stored.foreignKeys.map { .map(["field": .string($0.field), "value": .string($0.value)]) })
        let wrapped: Document = .map([
            "table": .string(stored.table), "id": .string(stored.id), "version": .integer(Int64(stored.version)),
            "sequence": .integer(Int64(stored.sequence)), "foreignKeys": foreignKeys, "record": record,
        ])
        print(wrapped.jsonString(pretty: !compact))
    }
}

/// A stored record's bytes as a document; a record that is not in the record format (written
/// through the engine directly) is shown as its bytes.
func recordDocument(_ bytes: [UInt8]) throws -> Document {
    do {
        return try Document(decoding: bytes)
    } catch {
        return .bytes(bytes)
    }
}
