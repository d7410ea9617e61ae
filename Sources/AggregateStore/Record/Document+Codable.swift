#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Document: Codable {
    /// Writes the document into any encoder.
    ///
    /// ``RecordEncoder`` stores the document as it is, so a `Codable` type can carry a free-form
    /// part (an event payload, say). Other encoders get the nearest generic form: maps as keyed
    /// containers in their stored order, arrays as unkeyed ones, bytes as `[UInt8]`, timestamps
    /// as `Date` and decimals as `Decimal`.
    ///
    /// ```swift
    /// struct Event: Codable { var type: String; var payload: Document }
    /// let bytes = try RecordEncoder().encode(Event(type: "OrderPlaced", payload: ["id": "SO-1"]))
    /// ```
    ///
    /// - Parameter encoder: The encoder.
    /// - Throws: What the encoder throws.
    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .array(let elements):
            var container = encoder.unkeyedContainer()
            for element in elements { try container.encode(element) }
        case .map(let map):
            var container = encoder.container(keyedBy: DocumentKey.self)
            for position in map.keys.indices {
                try container.encode(map.values[position], forKey: DocumentKey(map.keys[position]))
            }
        default:
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .bool(let value): try container.encode(value)
            case .integer(let value): try container.encode(value)
            case .double(let value): try container.encode(value)
            case .decimal(let value): try container.encode(value)
            case .string(let value): try container.encode(value)
            case .bytes(let value): try container.encode(value)
            case .timestamp(let value): try container.encode(value.date)
            case .array, .map: preconditionFailure("handled above")
            }
        }
    }

    /// Reads a document from any decoder.
    ///
    /// ``RecordDecoder`` reads the stored document exactly. Other decoders cannot say which
    /// kind a value was written as, so their values become null, booleans, integers (when they
    /// fit `Int64`), doubles, strings, arrays and maps.
    ///
    /// - Parameter decoder: The decoder.
    /// - Throws: `DecodingError` when the value is none of those.
    public init(from decoder: any Decoder) throws {
        if let container = try? decoder.container(keyedBy: DocumentKey.self) {
            var map = Map()
            for key in container.allKeys {
                map[key.stringValue] = try container.decode(Document.self, forKey: key)
            }
            self = .map(map)
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var elements: [Document] = []
            while !container.isAtEnd { elements.append(try container.decode(Document.self)) }
            self = .array(elements)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else {
            self = .string(try container.decode(String.self))
        }
    }
}

/// Any string as a coding key, for a document's maps.
struct DocumentKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { stringValue = String(intValue) }
}
