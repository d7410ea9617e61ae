#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A value under construction in ``TreeEncoder``: containers are references so nested
/// containers and super encoders can fill them in any order, as JSONEncoder's are.
enum TreeNode {
    case value(Document)
    case map(TreeMap)
    case array(TreeArray)
    /// A `superEncoder()`'s value, known only when the encoding is finished.
    case deferred(TreeEncoder)

    func document(depth: Int) throws -> Document {
        switch self {
        case .value(let document):
            return document
        case .map(let map):
            guard depth < RecordFormat.maximumDepth else { throw TreeEncoder.tooDeep() }
            var values: [Document] = []
            values.reserveCapacity(map.values.count)
            for value in map.values { values.append(try value.document(depth: depth + 1)) }
            return .map(Document.Map(uncheckedKeys: map.keys, values: values))
        case .array(let array):
            guard depth < RecordFormat.maximumDepth else { throw TreeEncoder.tooDeep() }
            var values: [Document] = []
            values.reserveCapacity(array.values.count)
            for value in array.values { values.append(try value.document(depth: depth + 1)) }
            return .array(values)
        case .deferred(let encoder):
            return try (encoder.node ?? .map(TreeMap())).document(depth: depth)
        }
    }
}

final class TreeMap {
    var keys: [String] = []
    var values: [TreeNode] = []

    /// Sets a key, replacing an earlier value in place (the last write wins, as in JSONEncoder).
    func set(_ key: String, _ node: TreeNode) {
        if let position = keys.firstIndex(where: { $0.utf8.elementsEqual(key.utf8) }) {
            values[position] = node
        } else {
            keys.append(key)
            values.append(node)
        }
    }
}

final class TreeArray {
    var values: [TreeNode] = []
}

/// Encodes an `Encodable` value into a ``Document``, supporting every use of `Encoder`
/// (super encoders, containers written in any order, keys written twice). ``RecordEncoder``
/// uses it for ``RecordEncoder/document(from:)`` and when ``StreamingEncoder`` gives up.
final class TreeEncoder: Encoder {
    let codingPath: [any CodingKey]
    let userInfo: [CodingUserInfoKey: Any]
    var node: TreeNode?
    /// Set when the value asked for two different kinds of container or wrote twice.
    var misuse: String?

    init(codingPath: [any CodingKey], userInfo: [CodingUserInfoKey: Any]) {
        self.codingPath = codingPath
        self.userInfo = userInfo
    }

    static func tooDeep() -> StoreError {
        StoreError(.invalidArgument, "the value nests arrays and maps deeper than \(RecordFormat.maximumDepth) levels")
    }

    /// Encodes a whole value into a document.
    static func document<T: Encodable>(from value: T, userInfo: [CodingUserInfoKey: Any]) throws -> Document {
        let root = TreeEncoder(codingPath: [], userInfo: userInfo)
        let node = try root.box(value, key: nil)
        return try node.document(depth: 0)
    }

    /// The node of a nested value.
    func box<T: Encodable>(_ value: T, key: (any CodingKey)?) throws -> TreeNode {
        if let special = SpecialType(T.self) {
            switch special {
            case .string: return .value(.string(identityCast(value, to: String.self)))
            case .bool: return .value(.bool(identityCast(value, to: Bool.self)))
            case .int: return .value(.integer(Int64(identityCast(value, to: Int.self))))
            case .int64: return .value(.integer(identityCast(value, to: Int64.self)))
            case .int32: return .value(.integer(Int64(identityCast(value, to: Int32.self))))
            case .double: return .value(.double(identityCast(value, to: Double.self)))
            case .float: return .value(.double(Double(identityCast(value, to: Float.self))))
            case .date:
                let date = identityCast(value, to: Date.self)
                guard let timestamp = Timestamp(exactly: date) else {
                    throw EncodingError.invalidValue(date, EncodingError.Context(
                        codingPath: codingPath + (key.map { [$0] } ?? []),
                        debugDescription: "the date \(date.timeIntervalSince1970) is outside the range of a timestamp"))
                }
                return .value(.timestamp(timestamp))
            case .timestamp: return .value(.timestamp(identityCast(value, to: Timestamp.self)))
            case .decimal: return .value(.decimal(identityCast(value, to: Decimal.self)))
            case .data: return .value(.bytes([UInt8](identityCast(value, to: Data.self))))
            case .bytes: return .value(.bytes(identityCast(value, to: [UInt8].self)))
            case .url: return .value(.string(identityCast(value, to: URL.self).absoluteString))
            case .document: return .value(identityCast(value, to: Document.self))
            }
        }
        let nested = TreeEncoder(codingPath: key.map { codingPath + [$0] } ?? codingPath, userInfo: userInfo)
        try value.encode(to: nested)
        if let misuse = nested.misuse {
            throw EncodingError.invalidValue(value, EncodingError.Context(codingPath: nested.codingPath, debugDescription: misuse))
        }
        return nested.node ?? .map(TreeMap())
    }

    func unsigned(_ value: UInt64, key: (any CodingKey)?) throws -> Document {
        guard value <= UInt64(Int64.max) else {
            throw EncodingError.invalidValue(value, EncodingError.Context(
                codingPath: codingPath + (key.map { [$0] } ?? []),
                debugDescription: "\(value) is larger than the largest integer a record holds (Int64.max)"))
        }
        return .integer(Int64(value))
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let map: TreeMap
        if case .map(let existing)? = node {
            map = existing
        } else {
            if node != nil { misuse = "the value encoded a keyed container after another value" }
            map = TreeMap()
            node = .map(map)
        }
        return KeyedEncodingContainer(TreeKeyedContainer<Key>(encoder: self, map: map, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let array: TreeArray
        if case .array(let existing)? = node {
            array = existing
        } else {
            if node != nil { misuse = "the value encoded an unkeyed container after another value" }
            array = TreeArray()
            node = .array(array)
        }
        return TreeUnkeyedContainer(encoder: self, array: array, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        TreeSingleValueContainer(encoder: self)
    }
}

struct TreeKeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: TreeEncoder
    let map: TreeMap
    let codingPath: [any CodingKey]

    private func set(_ document: Document, _ key: Key) { map.set(key.stringValue, .value(document)) }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(.double(value), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(.double(Double(value)), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.integer(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(try nestedEncoder.unsigned(UInt64(value), key: key), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.integer(Int64(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(try nestedEncoder.unsigned(value, key: key), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        map.set(key.stringValue, try nestedEncoder.box(value, key: key))
    }

    /// An encoder at this container's path (the frame's encoder may have moved on).
    private var nestedEncoder: TreeEncoder {
        TreeEncoder(codingPath: codingPath, userInfo: encoder.userInfo)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested = TreeMap()
        map.set(key.stringValue, .map(nested))
        return KeyedEncodingContainer(TreeKeyedContainer<NestedKey>(encoder: encoder, map: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = TreeArray()
        map.set(key.stringValue, .array(nested))
        return TreeUnkeyedContainer(encoder: encoder, array: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        let key = SuperKey()
        let nested = TreeEncoder(codingPath: codingPath + [key], userInfo: encoder.userInfo)
        map.set(key.stringValue, .deferred(nested))
        return nested
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let nested = TreeEncoder(codingPath: codingPath + [key], userInfo: encoder.userInfo)
        map.set(key.stringValue, .deferred(nested))
        return nested
    }
}

struct TreeUnkeyedContainer: UnkeyedEncodingContainer {
    let encoder: TreeEncoder
    let array: TreeArray
    let codingPath: [any CodingKey]

    var count: Int { array.values.count }

    private func append(_ document: Document) { array.values.append(.value(document)) }
    private var nextKey: IndexKey { IndexKey(array.values.count) }
    private var nestedEncoder: TreeEncoder { TreeEncoder(codingPath: codingPath, userInfo: encoder.userInfo) }

    mutating func encodeNil() throws { append(.null) }
    mutating func encode(_ value: Bool) throws { append(.bool(value)) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws { append(.double(value)) }
    mutating func encode(_ value: Float) throws { append(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { append(.integer(Int64(value))) }
    mutating func encode(_ value: Int8) throws { append(.integer(Int64(value))) }
    mutating func encode(_ value: Int16) throws { append(.integer(Int64(value))) }
    mutating func encode(_ value: Int32) throws { append(.integer(Int64(value))) }
    mutating func encode(_ value: Int64) throws { append(.integer(value)) }
    mutating func encode(_ value: UInt) throws { append(try nestedEncoder.unsigned(UInt64(value), key: nextKey)) }
    mutating func encode(_ value: UInt8) throws { append(.integer(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { append(.integer(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { append(.integer(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { append(try nestedEncoder.unsigned(value, key: nextKey)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let node = try nestedEncoder.box(value, key: nextKey)
        array.values.append(node)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let key = nextKey
        let nested = TreeMap()
        array.values.append(.map(nested))
        return KeyedEncodingContainer(TreeKeyedContainer<NestedKey>(encoder: encoder, map: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let key = nextKey
        let nested = TreeArray()
        array.values.append(.array(nested))
        return TreeUnkeyedContainer(encoder: encoder, array: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        let nested = TreeEncoder(codingPath: codingPath + [nextKey], userInfo: encoder.userInfo)
        array.values.append(.deferred(nested))
        return nested
    }
}

struct TreeSingleValueContainer: SingleValueEncodingContainer {
    let encoder: TreeEncoder

    var codingPath: [any CodingKey] { encoder.codingPath }

    private func set(_ node: TreeNode) {
        if encoder.node != nil { encoder.misuse = "the value encoded a single value after another value" }
        encoder.node = node
    }

    mutating func encodeNil() throws { set(.value(.null)) }
    mutating func encode(_ value: Bool) throws { set(.value(.bool(value))) }
    mutating func encode(_ value: String) throws { set(.value(.string(value))) }
    mutating func encode(_ value: Double) throws { set(.value(.double(value))) }
    mutating func encode(_ value: Float) throws { set(.value(.double(Double(value)))) }
    mutating func encode(_ value: Int) throws { set(.value(.integer(Int64(value)))) }
    mutating func encode(_ value: Int8) throws { set(.value(.integer(Int64(value)))) }
    mutating func encode(_ value: Int16) throws { set(.value(.integer(Int64(value)))) }
    mutating func encode(_ value: Int32) throws { set(.value(.integer(Int64(value)))) }
    mutating func encode(_ value: Int64) throws { set(.value(.integer(value))) }
    mutating func encode(_ value: UInt) throws { set(.value(try encoder.unsigned(UInt64(value), key: nil))) }
    mutating func encode(_ value: UInt8) throws { set(.value(.integer(Int64(value)))) }
    mutating func encode(_ value: UInt16) throws { set(.value(.integer(Int64(value)))) }
    mutating func encode(_ value: UInt32) throws { set(.value(.integer(Int64(value)))) }
    mutating func encode(_ value: UInt64) throws { set(.value(try encoder.unsigned(value, key: nil))) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        set(try encoder.box(value, key: nil))
    }
}
