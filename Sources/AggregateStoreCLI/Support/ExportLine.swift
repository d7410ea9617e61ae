import AggregateStore
import AggregateStoreEngine
import Foundation

/// One line of `aggstore export`'s output and `aggstore import`'s input: one live record.
///
/// ```
/// {"table":"SalesOrder","id":"SO-1","version":3,"foreignKeys":[{"field":"customerId","value":"C-1"}],
///  "record":{"id":"SO-1",...},"bytes":"base64 of the stored record"}
/// ```
///
/// `record` is for people and for hand-written input; `bytes` is what makes the round trip
/// lossless, since JSON has no timestamps or bytes and `record` renders them as strings.
struct ExportLine {
    var table: String
    var id: String
    /// The version in the store exported; import ignores it (the new store numbers its own).
    var version: UInt64?
    var foreignKeys: [ForeignKey]
    /// The stored record, as given to the engine.
    var bytes: [UInt8]

    /// The keys a line may have.
    static let keys: Set<String> = ["table", "id", "version", "foreignKeys", "record", "bytes"]

    init(table: String, id: String, version: UInt64?, foreignKeys: [ForeignKey], bytes: [UInt8]) {
        self.table = table
        self.id = id
        self.version = version
        self.foreignKeys = foreignKeys
        self.bytes = bytes
    }

    /// The line's JSON text, without the newline. Keys in a fixed order, so exports diff well.
    var jsonText: String {
        var fields: [(String, Document)] = [("table", .string(table)), ("id", .string(id))]
        if let version { fields.append(("version", version <= UInt64(Int64.max) ? .integer(Int64(version)) : .null)) }
        fields.append(("foreignKeys", .array(foreignKeys.map { .map(["field": .string($0.field), "value": .string($0.value)]) })))
        // A record the Document codec cannot read (bytes a program stored through the engine)
        // is still exported: `bytes` carries it.
        fields.append(("record", (try? Document(decoding: bytes)) ?? .null))
        fields.append(("bytes", .string(Data(bytes).base64EncodedString())))
        return Document.map(Document.Map(uniqueKeysWithValues: fields)).jsonString()
    }

    /// Parses and checks one line of input.
    /// - Throws: A message saying what is wrong (the caller adds the line number).
    init(parsing text: String) throws(LineError) {
        let document: Document
        do throws(StoreError) {
            document = try Document(json: text)
        } catch {
            throw LineError("not JSON: \(error.message)")
        }
        guard case let .map(map) = document else { throw LineError("not a JSON object") }
        for key in map.keys where !Self.keys.contains(key) {
            throw LineError("unknown key \"\(key)\" (expected \(Self.keys.sorted().joined(separator: ", ")))")
        }
        table = try Self.name(map["table"], "table")
        id = try Self.name(map["id"], "id")
        switch map["version"] {
        case nil, .null?: version = nil
        case let .integer(value)? where value >= 0: version = UInt64(value)
        default: throw LineError("\"version\" is not a non-negative integer")
        }
        foreignKeys = []
        switch map["foreignKeys"] {
        case nil, .null?: break
        case let .array(elements)?:
            for element in elements {
                guard case let .map(pair) = element, pair.count == 2,
                      case let .string(field)? = pair["field"], case let .string(value)? = pair["value"] else {
                    throw LineError("\"foreignKeys\" holds something other than {\"field\": string, \"value\": string}")
                }
                do throws(StoreError) {
                    try checkName(field, "foreign-key field")
                    try checkName(value, "foreign-key value")
                } catch {
                    throw LineError(error.message)
                }
                foreignKeys.append(ForeignKey(field: field, value: value))
            }
        default: throw LineError("\"foreignKeys\" is not an array")
        }
        switch map["bytes"] {
        case let .string(base64)?:
            guard let data = Data(base64Encoded: base64), !data.isEmpty else { throw LineError("\"bytes\" is not non-empty base64") }
            bytes = [UInt8](data)
        case nil, .null?:
            bytes = try Self.encodedRecord(map["record"], id: id)
        default:
            throw LineError("\"bytes\" is not a string")
        }
    }

    /// The record's bytes from its readable form, when the line has no `bytes`.
    private static func encodedRecord(_ record: Document?, id: String) throws(LineError) -> [UInt8] {
        guard let record, record != .null else { throw LineError("the line has neither \"bytes\" nor \"record\"") }
        guard case .map = record else { throw LineError("\"record\" is not a JSON object") }
        guard record[field: "id"] == .string(id) else {
            throw LineError("the record's \"id\" field is not the line's id \"\(id)\"")
        }
        do throws(StoreError) {
            return try record.encoded()
        } catch {
            throw LineError("\"record\" cannot be encoded: \(error.message)")
        }
    }

    /// A table or id: a non-empty string the engine accepts.
    private static func name(_ value: Document?, _ what: String) throws(LineError) -> String {
        guard case let .string(name)? = value else { throw LineError("\"\(what)\" is missing or not a string") }
        do throws(StoreError) {
            try checkName(name, what)
        } catch {
            throw LineError("\"\(what)\": \(error.message)")
        }
        return name
    }
}

/// What is wrong with a line of import input.
struct LineError: Error {
    var message: String

    init(_ message: String) {
        self.message = message
    }
}
