#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The coding key of an array element.
struct IndexKey: CodingKey {
    var intValue: Int?
    var stringValue: String { String(intValue ?? 0) }

    init(_ index: Int) { intValue = index }
    init?(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) {
        guard let value = Int(stringValue) else { return nil }
        intValue = value
    }
}

/// The coding key `super`, for `superEncoder()` and `superDecoder()`.
struct SuperKey: CodingKey {
    var stringValue: String { "super" }
    var intValue: Int? { nil }

    init() {}
    init?(stringValue: String) { guard stringValue == "super" else { return nil } }
    init?(intValue: Int) { nil }
}

/// A coding path in the dotted form of ``Document/value(at:)``: `items.2.productId`.
func dottedPath(_ path: [any CodingKey]) -> String {
    if path.isEmpty { return "(the top-level value)" }
    return path.map { key in key.intValue.map(String.init) ?? key.stringValue }.joined(separator: ".")
}

/// Reinterprets a value whose dynamic type the caller has checked to be `U`.
@inline(__always)
func identityCast<T, U>(_ value: T, to type: U.Type) -> U {
    withUnsafePointer(to: value) { UnsafeRawPointer($0).load(as: U.self) }
}

/// The types the record format stores natively rather than through their `Codable` conformance.
enum SpecialType {
    case string, bool, int, int64, int32, double, float
    case date, decimal, data, bytes, url, document, timestamp

    /// The special type `T` is, if it passes `filter` (which every special type does).
    @inline(__always)
    init?<T>(_ type: T.Type, filter: SpecialTypeFilter) {
        guard filter.mayBeSpecial(type) else { return nil }
        self.init(type)
    }

    @inline(__always)
    init?<T>(_ type: T.Type) {
        if type == String.self {
            self = .string
        } else if type == Int.self {
            self = .int
        } else if type == Double.self {
            self = .double
        } else if type == Bool.self {
            self = .bool
        } else if type == Int64.self {
            self = .int64
        } else if type == Int32.self {
            self = .int32
        } else if type == Float.self {
            self = .float
        } else if type == Date.self {
            self = .date
        } else if type == Decimal.self {
            self = .decimal
        } else if type == Data.self {
            self = .data
        } else if type == [UInt8].self {
            self = .bytes
        } else if type == URL.self {
            self = .url
        } else if type == Document.self {
            self = .document
        } else if type == Timestamp.self {
            self = .timestamp
        } else {
            return nil
        }
    }
}

/// A 128-bit Bloom filter of the special types' metadata addresses: most types (the value's own
/// structs, its arrays) fail it in a few instructions, where ``SpecialType/init(_:)`` compares a
/// type with all fourteen. The encoder and decoder keep a copy in their state, which is cheaper
/// to read than a global.
struct SpecialTypeFilter {
    private let low: UInt64
    private let high: UInt64

    /// The filter of the special types (type metadata lives as long as the process).
    static let all = SpecialTypeFilter(types: [
        String.self, Bool.self, Int.self, Int64.self, Int32.self, Double.self, Float.self, Date.self, Decimal.self,
        Data.self, [UInt8].self, URL.self, Document.self, Timestamp.self,
    ])

    private init(types: [Any.Type]) {
        var low: UInt64 = 0
        var high: UInt64 = 0
        for type in types {
            let bit = Self.bit(ObjectIdentifier(type))
            if bit < 64 { low |= 1 << UInt64(bit) } else { high |= 1 << UInt64(bit - 64) }
        }
        self.low = low
        self.high = high
    }

    @inline(__always)
    private static func bit(_ type: ObjectIdentifier) -> Int {
        let address = UInt(bitPattern: type)
        return Int(truncatingIfNeeded: (address ^ (address &>> 9)) &>> 3) & 127
    }

    /// Whether `type` may be a special type (it is not when this says no).
    @inline(__always)
    func mayBeSpecial<T>(_ type: T.Type) -> Bool {
        let bit = Self.bit(ObjectIdentifier(type))
        let word = bit < 64 ? low : high
        return word & (1 &<< UInt64(truncatingIfNeeded: bit & 63)) != 0
    }
}

/// No `userInfo`. (An empty `[:]` literal is built through `init(dictionaryLiteral:)` on every
/// call; `init()` is the shared empty storage.)
var emptyUserInfo: [CodingUserInfoKey: Any] {
    @inline(__always) get { [CodingUserInfoKey: Any]() }
}

/// Converts any error thrown while encoding or decoding into a ``StoreError``.
func storeError(from error: any Error, encoding: Bool, type: Any.Type) -> StoreError {
    if let error = error as? StoreError { return error }
    let verb = encoding ? "encode" : "decode"
    if let error = error as? DecodingError {
        switch error {
        case .keyNotFound(let key, let context):
            return StoreError(.invalidArgument,
                              "cannot \(verb) \(type): missing field '\(dottedPath(context.codingPath + [key]))'")
        case .typeMismatch(let expected, let context):
            return StoreError(.invalidArgument,
                              "cannot \(verb) \(type): field '\(dottedPath(context.codingPath))' is not \(expected): \(context.debugDescription)")
        case .valueNotFound(let expected, let context):
            return StoreError(.invalidArgument,
                              "cannot \(verb) \(type): field '\(dottedPath(context.codingPath))' is null, expected \(expected)")
        case .dataCorrupted(let context):
            return StoreError(.invalidArgument,
                              "cannot \(verb) \(type): field '\(dottedPath(context.codingPath))': \(context.debugDescription)")
        @unknown default:
            return StoreError(.invalidArgument, "cannot \(verb) \(type): \(error)")
        }
    }
    if let error = error as? EncodingError {
        switch error {
        case .invalidValue(_, let context):
            return StoreError(.invalidArgument,
                              "cannot \(verb) \(type): field '\(dottedPath(context.codingPath))': \(context.debugDescription)")
        @unknown default:
            return StoreError(.invalidArgument, "cannot \(verb) \(type): \(error)")
        }
    }
    return StoreError(.invalidArgument, "cannot \(verb) \(type): \(error)")
}
