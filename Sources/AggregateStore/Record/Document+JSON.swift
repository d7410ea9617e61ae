#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Document {
    /// Renders the document as JSON text, for the `aggstore` CLI and for people.
    ///
    /// - Map keys keep their stored order.
    /// - Integers, doubles and decimals are JSON numbers; decimals with all their digits.
    ///   Non-finite doubles have no JSON number, so they become the strings `"NaN"`,
    ///   `"Infinity"` and `"-Infinity"`.
    /// - Bytes are base64 strings (RFC 4648, with padding).
    /// - Timestamps are ISO 8601 strings in UTC (see ``Timestamp/iso8601``).
    ///
    /// ```swift
    /// let document: Document = ["id": "SO-1", "lines": [1, 2], "paid": false]
    /// document.jsonString()              // {"id":"SO-1","lines":[1,2],"paid":false}
    /// print(document.jsonString(pretty: true))
    /// ```
    ///
    /// - Parameter pretty: Whether to break lines and indent by two spaces, with `": "` after keys.
    /// - Returns: The JSON text.
    public func jsonString(pretty: Bool = false) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        writeJSON(into: &output, pretty: pretty, indent: 0)
        return String(decoding: output, as: UTF8.self)
    }

    private func writeJSON(into output: inout [UInt8], pretty: Bool, indent: Int) {
        switch self {
        case .null:
            output.append(contentsOf: "null".utf8)
        case .bool(let value):
            output.append(contentsOf: (value ? "true" : "false").utf8)
        case .integer(let value):
            output.append(contentsOf: String(value).utf8)
        case .double(let value):
            if value.isNaN {
                writeJSONString("NaN", into: &output)
            } else if value.isInfinite {
                writeJSONString(value < 0 ? "-Infinity" : "Infinity", into: &output)
            } else {
                output.append(contentsOf: value.description.utf8)
            }
        case .decimal(let value):
            if value.isNaN {
                writeJSONString("NaN", into: &output)
            } else {
                output.append(contentsOf: value.description.utf8)
            }
        case .string(let value):
            writeJSONString(value, into: &output)
        case .bytes(let value):
            output.append(UInt8(ascii: "\""))
            appendBase64(value, to: &output)
            output.append(UInt8(ascii: "\""))
        case .timestamp(let value):
            writeJSONString(value.iso8601, into: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(&output, indent + 1) }
                element.writeJSON(into: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty && !elements.isEmpty { newline(&output, indent) }
            output.append(UInt8(ascii: "]"))
        case .map(let map):
            output.append(UInt8(ascii: "{"))
            for position in map.keys.indices {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(&output, indent + 1) }
                writeJSONString(map.keys[position], into: &output)
                output.append(UInt8(ascii: ":"))
                if pretty { output.append(UInt8(ascii: " ")) }
                map.values[position].writeJSON(into: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty && !map.isEmpty { newline(&output, indent) }
            output.append(UInt8(ascii: "}"))
        }
    }
}

private func newline(_ output: inout [UInt8], _ indent: Int) {
    output.append(UInt8(ascii: "\n"))
    output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: 2 * indent))
}

/// Appends a JSON string literal: quotes, `\"`, `\\` and the control characters escaped.
func writeJSONString(_ string: String, into output: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    output.append(UInt8(ascii: "\""))
    for byte in string.utf8 {
        switch byte {
        case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
        case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
        case 0x0A: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
        case 0x0D: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
        case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
        case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
        case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
        case 0x00..<0x20:
            output.append(contentsOf: Array("\\u00".utf8))
            output.append(hex[Int(byte >> 4)])
            output.append(hex[Int(byte & 0x0F)])
        default:
            output.append(byte)
        }
    }
    output.append(UInt8(ascii: "\""))
}

/// Appends the RFC 4648 base64 form of `bytes`, with padding.
func appendBase64(_ bytes: [UInt8], to output: inout [UInt8]) {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var index = 0
    while index + 3 <= bytes.count {
        let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
        output.append(alphabet[Int(chunk >> 18 & 63)])
        output.append(alphabet[Int(chunk >> 12 & 63)])
        output.append(alphabet[Int(chunk >> 6 & 63)])
        output.append(alphabet[Int(chunk & 63)])
        index += 3
    }
    let rest = bytes.count - index
    if rest > 0 {
        let chunk = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
        output.append(alphabet[Int(chunk >> 18 & 63)])
        output.append(alphabet[Int(chunk >> 12 & 63)])
        output.append(rest == 2 ? alphabet[Int(chunk >> 6 & 63)] : UInt8(ascii: "="))
        output.append(UInt8(ascii: "="))
    }
}
