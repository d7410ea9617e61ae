#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A self-describing value: the content of a stored record, readable without its Swift type.
///
/// A document is null, a boolean, a 64-bit integer, a double, an exact decimal, a string, bytes,
/// a ``Timestamp``, an array of documents or a ``Map`` (string keys in insertion order). The
/// query engine and the `aggstore` CLI read records as documents; component code usually goes
/// through ``RecordEncoder`` and ``RecordDecoder`` with its own `Codable` types instead.
///
/// ```swift
/// let order: Document = [
///     "id": "SO-1",
///     "total": .decimal(Decimal(string: "99.95")!),
///     "shippingAddress": ["city": "Lisbon", "country": "PT"],
///     "items": [["productId": "PRD-1", "quantity": 2]],
/// ]
/// order[field: "id"]                        // .string("SO-1")
/// order.value(at: "shippingAddress.city")   // .string("Lisbon")
/// order.value(at: "items.0.quantity")       // .integer(2)
/// let bytes = try order.encoded()
/// let again = try Document(decoding: bytes)  // == order
/// print(order.jsonString())
/// ```
///
/// Equality is representational: two documents are equal exactly when they encode to the same
/// bytes. Doubles compare by bit pattern (so `NaN == NaN` and `0.0 != -0.0`), strings by their
/// UTF-8 bytes, decimals by numeric value (`1.0 == 1.00`), maps by their entries in order, and
/// an integer never equals a double. For sorting and range predicates use ``compare(_:_:)``,
/// which compares numbers across their kinds.
///
/// ## Topics
///
/// ### Reading values
/// - ``subscript(field:)``
/// - ``subscript(index:)``
/// - ``value(at:)``
/// - ``isNull``
///
/// ### Encoding and JSON
/// - ``encoded()``
/// - ``jsonString(pretty:)``
/// - ``init(json:)``
///
/// ### Ordering
/// - ``compare(_:_:)``
/// - ``sortsBefore(_:_:)``
public enum Document: Sendable {
    /// The absence of a value.
    case null
    /// A boolean.
    case bool(Bool)
    /// A signed 64-bit integer.
    case integer(Int64)
    /// An IEEE 754 double; NaN, the infinities and `-0.0` are kept as they are.
    case double(Double)
    /// An exact decimal number, kept as sign, exponent and up to 38 digits.
    case decimal(Decimal)
    /// A Unicode string.
    case string(String)
    /// Raw bytes.
    case bytes([UInt8])
    /// A point in time, with microsecond precision.
    case timestamp(Timestamp)
    /// An ordered list of values.
    case array([Document])
    /// String keys mapped to values, in insertion order.
    case map(Map)

    /// The deepest nesting of arrays and maps a document may have to be encoded or decoded: 64.
    ///
    /// A document that is not an array or map has depth 0; `[[1]]` has depth 2.
    public static let maximumDepth = RecordFormat.maximumDepth
}

// MARK: - Reading values

extension Document {
    /// Whether the document is ``null``.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The value of a field of a map, or `nil` when this is not a map or has no such field.
    ///
    /// ```swift
    /// let document: Document = ["status": "placed"]
    /// document[field: "status"]   // .string("placed")
    /// document[field: "missing"]  // nil
    /// ```
    ///
    /// - Parameter field: The key to look up.
    public subscript(field field: String) -> Document? {
        guard case .map(let map) = self else { return nil }
        return map[field]
    }

    /// The element at a position of an array, or `nil` when this is not an array or the
    /// position is out of range.
    ///
    /// - Parameter index: The zero-based position.
    public subscript(index index: Int) -> Document? {
        guard case .array(let elements) = self, elements.indices.contains(index) else { return nil }
        return elements[index]
    }

    /// The value at a dotted path, such as `"shippingAddress.city"` or `"items.0.productId"`.
    ///
    /// Each component names a field of a map; on an array, a component that is a decimal number
    /// selects an element. The empty path is the document itself.
    ///
    /// ```swift
    /// order.value(at: "shippingAddress.city")   // .string("Lisbon")
    /// order.value(at: "items.1.quantity")       // .integer(3)
    /// ```
    ///
    /// - Parameter path: Field names (and array positions) separated by `.`.
    /// - Returns: The value, or `nil` when any component is missing. A present ``null`` is
    ///   returned as `.null`, so callers can tell a null field from a missing one.
    public func value(at path: String) -> Document? {
        if path.isEmpty { return self }
        var current = self
        var remaining = Substring(path)
        while true {
            let end = remaining.firstIndex(of: ".") ?? remaining.endIndex
            let component = remaining[..<end]
            switch current {
            case .map(let map):
                guard let next = map.value(forKey: component) else { return nil }
                current = next
            case .array(let elements):
                guard let index = Int(component), elements.indices.contains(index) else { return nil }
                current = elements[index]
            default:
                return nil
            }
            if end == remaining.endIndex { return current }
            remaining = remaining[remaining.index(after: end)...]
        }
    }

    /// The boolean, if this is a ``bool(_:)``.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The integer, if this is an ``integer(_:)``.
    public var integerValue: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The number as a `Double`, if this is an ``integer(_:)``, ``double(_:)`` or ``decimal(_:)``
    /// (integers and decimals may round).
    public var doubleValue: Double? {
        switch self {
        case .integer(let value): return Double(value)
        case .double(let value): return value
        case .decimal(let value): return Double(value.description) ?? .nan
        default: return nil
        }
    }

    /// The decimal, if this is a ``decimal(_:)``, or an ``integer(_:)`` (converted exactly).
    public var decimalValue: Decimal? {
        switch self {
        case .decimal(let value): return value
        case .integer(let value): return Decimal(value)
        default: return nil
        }
    }

    /// The string, if this is a ``string(_:)``.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The bytes, if this is ``bytes(_:)``.
    public var bytesValue: [UInt8]? {
        if case .bytes(let value) = self { return value }
        return nil
    }

    /// The timestamp, if this is a ``timestamp(_:)``.
    public var timestampValue: Timestamp? {
        if case .timestamp(let value) = self { return value }
        return nil
    }

    /// The elements, if this is an ``array(_:)``.
    public var arrayValue: [Document]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The map, if this is a ``map(_:)``.
    public var mapValue: Map? {
        if case .map(let value) = self { return value }
        return nil
    }

    /// The nesting depth of arrays and maps: 0 for a scalar, 1 for `[1, 2]`, 2 for `[[1]]`.
    public var depth: Int {
        switch self {
        case .array(let elements): return 1 + (elements.lazy.map(\.depth).max() ?? 0)
        case .map(let map): return 1 + (map.values.lazy.map(\.depth).max() ?? 0)
        default: return 0
        }
    }
}

// MARK: - Literals

extension Document: ExpressibleByNilLiteral {
    /// Creates ``null`` from `nil`.
    public init(nilLiteral: ()) { self = .null }
}

extension Document: ExpressibleByBooleanLiteral {
    /// Creates a ``bool(_:)`` from `true` or `false`.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension Document: ExpressibleByIntegerLiteral {
    /// Creates an ``integer(_:)`` from an integer literal.
    public init(integerLiteral value: Int64) { self = .integer(value) }
}

extension Document: ExpressibleByFloatLiteral {
    /// Creates a ``double(_:)`` from a floating-point literal.
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension Document: ExpressibleByStringLiteral {
    /// Creates a ``string(_:)`` from a string literal.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension Document: ExpressibleByArrayLiteral {
    /// Creates an ``array(_:)`` from an array literal.
    public init(arrayLiteral elements: Document...) { self = .array(elements) }
}

extension Document: ExpressibleByDictionaryLiteral {
    /// Creates a ``map(_:)`` from a dictionary literal, keeping the literal's key order.
    ///
    /// - Precondition: The keys are distinct.
    public init(dictionaryLiteral elements: (String, Document)...) {
        self = .map(Map(uniqueKeysWithValues: elements))
    }
}

// MARK: - Equality

extension Document: Hashable {
    /// Whether two documents are the same value: whether they encode to the same bytes.
    ///
    /// Doubles compare by bit pattern, strings by UTF-8 bytes, decimals by numeric value and
    /// maps entry by entry in order. See ``compare(_:_:)`` for the ordering of mixed values.
    public static func == (lhs: Document, rhs: Document) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.integer(let a), .integer(let b)): return a == b
        case (.double(let a), .double(let b)): return a.bitPattern == b.bitPattern
        case (.decimal(let a), .decimal(let b)): return DecimalParts(a) == DecimalParts(b)
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.bytes(let a), .bytes(let b)): return a == b
        case (.timestamp(let a), .timestamp(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.map(let a), .map(let b)): return a == b
        default: return false
        }
    }

    /// Hashes the same components ``==`` compares.
    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null:
            hasher.combine(0 as UInt8)
        case .bool(let value):
            hasher.combine(1 as UInt8)
            hasher.combine(value)
        case .integer(let value):
            hasher.combine(2 as UInt8)
            hasher.combine(value)
        case .double(let value):
            hasher.combine(3 as UInt8)
            hasher.combine(value.bitPattern)
        case .decimal(let value):
            hasher.combine(4 as UInt8)
            let parts = DecimalParts(value)
            hasher.combine(parts.flags)
            hasher.combine(parts.exponent)
            hasher.combine(parts.mantissa)
        case .string(let value):
            hasher.combine(5 as UInt8)
            hasher.combine(value.utf8.count)
            for byte in value.utf8 { hasher.combine(byte) }
        case .bytes(let value):
            hasher.combine(6 as UInt8)
            hasher.combine(value)
        case .timestamp(let value):
            hasher.combine(7 as UInt8)
            hasher.combine(value)
        case .array(let value):
            hasher.combine(8 as UInt8)
            hasher.combine(value)
        case .map(let value):
            hasher.combine(9 as UInt8)
            hasher.combine(value)
        }
    }
}

// MARK: - Description

extension Document: CustomStringConvertible {
    /// The compact JSON rendering, as ``jsonString(pretty:)`` returns it.
    public var description: String { jsonString() }
}
