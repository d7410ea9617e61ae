#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The text of literal values: how the printer writes a ``Document`` and how the parser reads
/// numbers, decimals, doubles and ISO 8601 instants back, exactly.
enum LiteralText {
    // MARK: Printing

    /// Appends the literal form of a document; ``QueryParser`` reads it back to an equal document.
    static func write(_ value: Document, into text: inout String) {
        switch value {
        case .null: text += "null"
        case .bool(let flag): text += flag ? "true" : "false"
        case .integer(let number): text += String(number)
        case .double(let number): text += double(number)
        case .decimal(let number): text += decimal(number)
        case .string(let string): text += QuerySyntax.quoted(string)
        case .bytes(let bytes):
            text += "x'"
            let digits = Array("0123456789abcdef".utf8)
            var hex: [UInt8] = []
            hex.reserveCapacity(bytes.count * 2)
            for byte in bytes {
                hex.append(digits[Int(byte >> 4)])
                hex.append(digits[Int(byte & 0x0F)])
            }
            text += String(decoding: hex, as: UTF8.self) + "'"
        case .timestamp(let timestamp): text += "timestamp '\(timestamp.iso8601)'"
        case .array(let elements):
            text += "["
            for (position, element) in elements.enumerated() {
                if position > 0 { text += ", " }
                write(element, into: &text)
            }
            text += "]"
        case .map(let map):
            text += "{"
            for position in map.indices {
                if position > 0 { text += ", " }
                text += QuerySyntax.quoted(map.keys[position]) + ": "
                write(map.values[position], into: &text)
            }
            text += "}"
        }
    }

    /// A finite double in Swift's shortest round-trip form (always with `.` or `e`, so it reads
    /// back as a double); the others as `double '...'`.
    static func double(_ value: Double) -> String {
        if value.isFinite { return value.description }
        if value.isInfinite { return value < 0 ? "double '-infinity'" : "double 'infinity'" }
        if value.bitPattern == Double.nan.bitPattern { return "double 'nan'" }
        let hex = String(value.bitPattern, radix: 16)
        return "double '0x" + String(repeating: "0", count: 16 - hex.utf8.count) + hex + "'"
    }

    /// A decimal with the `d` suffix, in plain notation when that is short, else as
    /// `digits e exponent`; NaN as `decimal 'nan'`.
    static func decimal(_ value: Decimal) -> String {
        let parts = DecimalParts(value)
        if parts.isNaN { return "decimal 'nan'" }
        let digits = String(parts.mantissa)
        let sign = parts.isNegative ? "-" : ""
        let exponent = Int(parts.exponent)
        if parts.mantissa == 0 { return "0d" }
        if exponent >= 0 && exponent <= 6 {
            return sign + digits + String(repeating: "0", count: exponent) + "d"
        }
        if exponent < 0 {
            let fraction = -exponent
            let count = digits.utf8.count
            if fraction < count {
                let split = digits.utf8.index(digits.utf8.startIndex, offsetBy: count - fraction)
                return sign + String(digits[..<split]) + "." + String(digits[split...]) + "d"
            }
            if fraction - count <= 6 {
                return sign + "0." + String(repeating: "0", count: fraction - count) + digits + "d"
            }
        }
        return sign + digits + "e" + String(exponent) + "d"
    }

    // MARK: Parsing numbers

    /// A number token: `d` suffix → decimal, `.` or `e` → double, else a 64-bit integer; a
    /// failure says why the value does not fit.
    static func number(_ text: String) -> Result<Document, NumberError> {
        if let last = text.utf8.last, last == UInt8(ascii: "d") || last == UInt8(ascii: "D") {
            guard let value = decimal(parsing: Substring(text.dropLast())) else { return .failure(.decimalRange) }
            return .success(.decimal(value))
        }
        if text.utf8.contains(where: { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) {
            guard let value = Double(text), value.isFinite else { return .failure(.doubleRange) }
            return .success(.double(value))
        }
        guard let value = Int64(text) else { return .failure(.integerRange) }
        return .success(.integer(value))
    }

    enum NumberError: Error {
        case integerRange, doubleRange, decimalRange

        var message: String {
            switch self {
            case .integerRange: return "the integer does not fit in 64 bits (a 'd' suffix makes it a decimal)"
            case .doubleRange: return "the number is out of the range of a double"
            case .decimalRange: return "the decimal has more than 38 digits or an exponent outside -128...127"
            }
        }
    }

    /// The text of `double '...'`: `nan`, `infinity`, `-infinity`, `0x` and 16 hexadecimal
    /// digits of the bit pattern, or a decimal number.
    static func double(parsing text: String) -> Double? {
        switch QuerySyntax.asciiLowercased(text) {
        case "nan": return .nan
        case "infinity", "inf": return .infinity
        case "-infinity", "-inf": return -.infinity
        default: break
        }
        if text.hasPrefix("0x") || text.hasPrefix("0X") {
            let hex = text.dropFirst(2)
            guard hex.utf8.count == 16, let bits = UInt64(hex, radix: 16) else { return nil }
            return Double(bitPattern: bits)
        }
        guard case .success(let value) = number(text) else { return nil }
        switch value {
        case .double(let number): return number
        case .integer(let number): return Double(exactly: number)
        default: return nil
        }
    }

    /// An exact decimal from `-? digits (. digits)? ([eE] [+-]? digits)?` or `nan`; `nil` when the
    /// text is malformed or the value needs more than 128 bits of mantissa or an exponent outside
    /// -128...127.
    static func decimal(parsing text: Substring) -> Decimal? {
        if QuerySyntax.asciiLowercased(String(text)) == "nan" { return .nan }
        var bytes = Array(text.utf8)[...]
        var negative = false
        if bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes = bytes.dropFirst()
        }
        var digits: [UInt8] = []
        var fractionDigits = 0
        var sawPoint = false
        var sawDigit = false
        while let byte = bytes.first {
            if byte >= 0x30 && byte <= 0x39 {
                sawDigit = true
                if sawPoint { fractionDigits += 1 }
                if !(digits.isEmpty && byte == 0x30) { digits.append(byte - 0x30) }
            } else if byte == UInt8(ascii: ".") && !sawPoint {
                sawPoint = true
            } else {
                break
            }
            bytes = bytes.dropFirst()
        }
        guard sawDigit else { return nil }
        var exponent = 0
        if let byte = bytes.first, byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var exponentNegative = false
            if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                exponentNegative = sign == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            guard !bytes.isEmpty else { return nil }
            for byte in bytes {
                guard byte >= 0x30 && byte <= 0x39 else { return nil }
                exponent = min(exponent * 10 + Int(byte - 0x30), 100_000)
            }
            if exponentNegative { exponent = -exponent }
            bytes = bytes[bytes.endIndex...]
        }
        guard bytes.isEmpty else { return nil }
        exponent -= fractionDigits
        while let last = digits.last, last == 0 {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty { return Decimal() }
        var mantissa: UInt128 = 0
        for digit in digits {
            let (times, overflow) = mantissa.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt128(digit))
            guard !overflow, !carry else { return nil }
            mantissa = sum
        }
        // An exponent above the maximum is absorbed into the mantissa while it fits.
        while exponent > 127 {
            let (times, overflow) = mantissa.multipliedReportingOverflow(by: 10)
            guard !overflow else { return nil }
            mantissa = times
            exponent -= 1
        }
        guard exponent >= -128 else { return nil }
        let flags: UInt8 = negative ? RecordFormat.DecimalFlag.negative : 0
        return DecimalParts(flags: flags, exponent: Int8(exponent), mantissa: mantissa).decimal
    }

    // MARK: ISO 8601

    /// An ISO 8601 instant: `[+-]YYYY-MM-DD`, optionally followed by `T` (or `t` or a space),
    /// `HH:MM`, optionally `:SS` and a fraction of up to 9 digits (digits past the sixth must be
    /// 0), and an offset `Z`, `+HH:MM`, `-HH:MM` or `+HHMM`; without an offset the time is UTC.
    /// A year has exactly four digits unless it has a sign. `nil` when malformed or out of range.
    static func instant(_ text: some StringProtocol) -> Timestamp? {
        var scanner = DigitScanner(bytes: Array(text.utf8))
        var yearSign: Int128 = 1
        var yearDigitsMaximum = 4
        if let sign = scanner.peek, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            yearSign = sign == UInt8(ascii: "-") ? -1 : 1
            scanner.position += 1
            yearDigitsMaximum = 9
        }
        guard let yearMagnitude = scanner.digits(min: 4, max: yearDigitsMaximum) else { return nil }
        let year = yearSign * yearMagnitude
        guard scanner.take(UInt8(ascii: "-")), let month = scanner.digits(min: 2, max: 2),
              scanner.take(UInt8(ascii: "-")), let day = scanner.digits(min: 2, max: 2),
              (1...12).contains(month), day >= 1, day <= daysIn(month: Int(month), year: year) else { return nil }
        var seconds: Int128 = 0
        var micros: Int128 = 0
        var offsetSeconds: Int128 = 0
        if let separator = scanner.peek {
            guard separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || separator == UInt8(ascii: " ") else {
                return nil
            }
            scanner.position += 1
            guard let hour = scanner.digits(min: 2, max: 2), hour <= 23, scanner.take(UInt8(ascii: ":")),
                  let minute = scanner.digits(min: 2, max: 2), minute <= 59 else { return nil }
            seconds = hour * 3600 + minute * 60
            if scanner.take(UInt8(ascii: ":")) {
                guard let second = scanner.digits(min: 2, max: 2), second <= 59 else { return nil }
                seconds += second
                if scanner.take(UInt8(ascii: ".")) || scanner.take(UInt8(ascii: ",")) {
                    let start = scanner.position
                    guard let fraction = scanner.digits(min: 1, max: 9) else { return nil }
                    let count = scanner.position - start
                    var scaled = fraction
                    if count < 6 {
                        for _ in count..<6 { scaled *= 10 }
                    } else if count > 6 {
                        var divisor: Int128 = 1
                        for _ in 6..<count { divisor *= 10 }
                        guard scaled % divisor == 0 else { return nil }
                        scaled /= divisor
                    }
                    micros = scaled
                }
            }
            if let zone = scanner.peek {
                scanner.position += 1
                switch zone {
                case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                    break
                case UInt8(ascii: "+"), UInt8(ascii: "-"):
                    guard let offsetHours = scanner.digits(min: 2, max: 2), offsetHours <= 23 else { return nil }
                    _ = scanner.take(UInt8(ascii: ":"))
                    guard let offsetMinutes = scanner.digits(min: 2, max: 2), offsetMinutes <= 59 else { return nil }
                    offsetSeconds = (offsetHours * 3600 + offsetMinutes * 60) * (zone == UInt8(ascii: "-") ? -1 : 1)
                default:
                    return nil
                }
            }
        }
        guard scanner.atEnd else { return nil }
        let days = Int128(Timestamp.daysSinceEpoch(year: Int64(year), month: Int(month), day: Int(day)))
        let total = (days * 86_400 + seconds - offsetSeconds) * 1_000_000 + micros
        guard total >= Int128(Int64.min), total <= Int128(Int64.max) else { return nil }
        return Timestamp(microsecondsSinceEpoch: Int64(total))
    }

    private static func daysIn(month: Int, year: Int128) -> Int128 {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private struct DigitScanner {
        let bytes: [UInt8]
        var position = 0

        var peek: UInt8? { position < bytes.count ? bytes[position] : nil }
        var atEnd: Bool { position == bytes.count }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek == byte else { return false }
            position += 1
            return true
        }

        /// Between `min` and `max` decimal digits as a number.
        mutating func digits(min: Int, max: Int) -> Int128? {
            var value: Int128 = 0
            var count = 0
            while count < max, let byte = peek, byte >= 0x30 && byte <= 0x39 {
                value = value * 10 + Int128(byte - 0x30)
                count += 1
                position += 1
            }
            return count >= min && count > 0 ? value : nil
        }
    }
}
