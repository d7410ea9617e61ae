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
