#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Document {
    /// Parses JSON text (RFC 8259) into a document, for the CLI's import.
    ///
    /// - Objects become maps with their keys in text order; a key repeated in one object is an
    ///   error.
    /// - Numbers without a fraction or exponent become integers when they fit `Int64`, and exact
    ///   decimals when they do not (up to 38 digits); other numbers become doubles.
    /// - Strings stay strings: JSON has no bytes or timestamps, so the strings ``jsonString(pretty:)``
    ///   writes for them come back as strings.
    ///
    /// ```swift
    /// let order = try Document(json: #"{"id": "SO-1", "items": [{"quantity": 2}]}"#)
    /// order.value(at: "items.0.quantity")   // .integer(2)
    /// ```
    ///
    /// - Parameter json: The JSON text; one value, optionally surrounded by whitespace.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` naming the line and
    ///   column of the first error, when the text is not JSON, nests deeper than
    ///   ``maximumDepth`` or repeats a key.
    public init(json: String) throws(StoreError) {
        var text = json
        let outcome: Result<Document, StoreError> = text.withUTF8 { utf8 in
            var parser = JSONParser(UnsafeRawBufferPointer(utf8))
            return Result { () throws(StoreError) -> Document in try parser.parseDocument() }
        }
        self = try outcome.get()
    }
}

/// A recursive-descent JSON parser over UTF-8 bytes, with the nesting bounded by
/// ``Document/maximumDepth``.
private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var position = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func parseDocument() throws(StoreError) -> Document {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard position == bytes.count else { throw error("unexpected text after the value") }
        return value
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
    }

    /// An error naming the line and column of the current position.
    private func error(_ message: String) -> StoreError {
        var line = 1
        var column = 1
        for index in 0..<min(position, bytes.count) {
            if bytes[index] == 0x0A {
                line += 1
                column = 1
            } else if bytes[index] & 0xC0 != 0x80 {
                column += 1
            }
        }
        return StoreError(.invalidArgument, "invalid JSON at line \(line), column \(column): \(message)")
    }

    private mutating func expect(_ literal: StaticString) throws(StoreError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - position >= count,
              memcmpBytes(bytes.baseAddress! + position, UnsafeRawPointer(literal.utf8Start), count) else {
            throw error("expected '\(literal)'")
        }
        position += count
    }

    private mutating func parseValue(depth: Int) throws(StoreError) -> Document {
        guard let byte = current else { throw error("unexpected end of text") }
        switch byte {
        case UInt8(ascii: "{"):
            guard depth < Document.maximumDepth else { throw error("objects and arrays nest deeper than \(Document.maximumDepth)") }
            return try parseObject(depth: depth)
        case UInt8(ascii: "["):
            guard depth < Document.maximumDepth else { throw error("objects and arrays nest deeper than \(Document.maximumDepth)") }
            return try parseArray(depth: depth)
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return try parseNumber()
        default:
            throw error("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws(StoreError) -> Document {
        position += 1
        var keys: [String] = []
        var values: [Document] = []
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return .map(Document.Map())
        }
        var seen = Set<UTF8Key>()
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a key") }
            let keyPosition = position
            let key = try parseString()
            guard seen.insert(UTF8Key(key)).inserted else {
                position = keyPosition
                throw error("the key '\(key)' appears twice")
            }
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
            position += 1
            skipWhitespace()
            keys.append(key)
            values.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                return .map(Document.Map(uncheckedKeys: keys, values: values))
            default: throw error("expected ',' or '}'")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(StoreError) -> Document {
        position += 1
        var elements: [Document] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                return .array(elements)
            default: throw error("expected ',' or ']'")
            }
        }
    }

    private mutating func parseString() throws(StoreError) -> String {
        position += 1
        var utf8: [UInt8] = []
        while true {
            guard let byte = current else { throw error("unterminated string") }
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                guard let string = utf8.withUnsafeBytes({ makeString($0) }) else { throw error("invalid UTF-8 in a string") }
                return string
            case UInt8(ascii: "\\"):
                position += 1
                guard let escape = current else { throw error("unterminated string") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"): try appendEscapedScalar(to: &utf8)
                default: throw error("unknown escape")
                }
            case 0x00..<0x20:
                throw error("a control character must be escaped in a string")
            default:
                utf8.append(byte)
                position += 1
            }
        }
    }

    private mutating func parseHex4() throws(StoreError) -> UInt32 {
        guard bytes.count - position >= 4 else { throw error("expected four hex digits") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("expected a hex digit")
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    /// A `\uXXXX` escape (after the `u`), with a surrogate pair as one scalar.
    private mutating func appendEscapedScalar(to utf8: inout [UInt8]) throws(StoreError) {
        var value = try parseHex4()
        if (0xD800...0xDBFF).contains(value) {
            guard bytes.count - position >= 2, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") else {
                throw error("a high surrogate must be followed by a low one")
            }
            position += 2
            let low = try parseHex4()
            guard (0xDC00...0xDFFF).contains(low) else { throw error("a high surrogate must be followed by a low one") }
            value = 0x10000 + ((value - 0xD800) << 10) + (low - 0xDC00)
        } else if (0xDC00...0xDFFF).contains(value) {
            throw error("a low surrogate without a high one")
        }
        guard let scalar = Unicode.Scalar(value) else { throw error("not a Unicode scalar") }
        utf8.append(contentsOf: String(Character(scalar)).utf8)
    }

    private mutating func parseNumber() throws(StoreError) -> Document {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        guard let first = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { throw error("expected a digit") }
        if first == UInt8(ascii: "0") {
            position += 1
        } else {
            while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            position += 1
            guard let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
                throw error("expected a digit after '.'")
            }
            while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            position += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
            guard let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
                throw error("expected a digit in the exponent")
            }
            while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { position += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if isInteger {
            if let value = Int64(text) { return .integer(value) }
            if let parts = DecimalParts(parsing: text) { return .decimal(parts.decimal) }
        }
        guard let value = Double(text), value.isFinite else {
            position = start
            throw error("the number \(text) is out of range")
        }
        return .double(value)
    }
}
