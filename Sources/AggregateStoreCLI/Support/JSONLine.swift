import AggregateStore
import AggregateStoreEngine
import Foundation

/// One JSON object written key by key, in the order given, for the JSON-lines output of
/// `dump`, `events` and `salvage`. Built by hand rather than with `JSONEncoder` because records
/// and event payloads are embedded as the JSON their `Document` renders, and a person reading a
/// dump expects `kind` first, not keys in sorted order.
struct JSONLine {
    private var text = "{"
    private var empty = true

    private mutating func key(_ name: String) {
        if !empty { text += "," }
        empty = false
        text += JSONLine.quoted(name) + ":"
    }

    /// Adds a string member.
    mutating func add(_ name: String, _ value: String) {
        key(name)
        text += JSONLine.quoted(value)
    }

    /// Adds a number member.
    mutating func add(_ name: String, _ value: some BinaryInteger) {
        key(name)
        text += String(value)
    }

    /// Adds a Boolean member.
    mutating func add(_ name: String, _ value: Bool) {
        key(name)
        text += value ? "true" : "false"
    }

    /// Adds a member whose value is JSON text already (a record, an array built elsewhere).
    mutating func add(_ name: String, json: String) {
        key(name)
        text += json
    }

    /// Adds `name` holding the record-format bytes as the JSON of their `Document`; bytes that
    /// are not a record (raw engine-level data) go under `name` + `Base64` instead, so a script
    /// can tell the two apart without guessing.
    mutating func add(document name: String, _ bytes: some Collection<UInt8>) {
        if let document = try? Document(decoding: bytes) {
            add(name, json: document.jsonString())
        } else {
            add(name + "Base64", Data(bytes).base64EncodedString())
        }
    }

    /// Adds an outbox event's own members, the same in `dump` and `events`: its id, type,
    /// aggregate, time and payload.
    mutating func add(event: OutboxEvent) {
        add("id", event.id)
        add("type", event.type)
        add("aggregateTable", event.aggregateTable)
        add("aggregateId", event.aggregateId)
        add("occurredAt", event.occurredAt)
        add(document: "payload", event.payload)
    }

    /// The object's text, on one line.
    var string: String { text + "}" }

    /// `value` as a JSON string literal.
    static func quoted(_ value: String) -> String { Document.string(value).jsonString() }

    /// A JSON array of the given JSON texts.
    static func array(_ elements: [String]) -> String { "[" + elements.joined(separator: ",") + "]" }
}

/// Renders record-format bytes for people: the document's JSON, or base64 for raw bytes.
func documentText(_ bytes: some Collection<UInt8>) -> String {
    if let document = try? Document(decoding: bytes) { return document.jsonString() }
    return "base64:" + Data(bytes).base64EncodedString()
}
