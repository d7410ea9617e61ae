#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A `Decimal` as the record format stores it: a flags byte (negative, NaN), a power-of-ten
/// exponent in -128...127 and an unsigned 128-bit mantissa, normalized so that equal numbers
/// have equal parts: no trailing zero digits in the mantissa (unless the exponent is at its
/// maximum), and zero and NaN with exponent 0.
///
/// Foundation's public `Decimal` API has no exact accessor for a mantissa wider than 64 bits,
/// so the parts are read from and written to the value's memory when its layout is one of
/// the two known ones (swift-foundation and Darwin's `NSDecimal`), which is verified once at
/// first use; on any other layout they go through the exact decimal string instead.
struct DecimalParts: Hashable, Sendable {
    var flags: UInt8
    var exponent: Int8
    var mantissa: UInt128

    var isNegative: Bool { flags & RecordFormat.DecimalFlag.negative != 0 }
    var isNaN: Bool { flags & RecordFormat.DecimalFlag.nan != 0 }

    static let nan = DecimalParts(flags: RecordFormat.DecimalFlag.nan, exponent: 0, mantissa: 0)

    /// Parts as given, normalized.
    init(flags: UInt8, exponent: Int8, mantissa: UInt128) {
        if flags & RecordFormat.DecimalFlag.nan != 0 {
            self.flags = RecordFormat.DecimalFlag.nan
            self.exponent = 0
            self.mantissa = 0
            return
        }
        if mantissa == 0 {
            self.flags = 0
            self.exponent = 0
            self.mantissa = 0
            return
        }
        var mantissa = mantissa
        var exponent = exponent
        if mantissa >> 64 == 0 {
            var small = UInt64(truncatingIfNeeded: mantissa)
            while exponent < 127 {
                let (quotient, remainder) = small.quotientAndRemainder(dividingBy: 10)
                if remainder != 0 { break }
                small = quotient
                exponent += 1
            }
            mantissa = UInt128(small)
        } else {
            while exponent < 127 {
                let (quotient, remainder) = mantissa.quotientAndRemainder(dividingBy: 10)
                if remainder != 0 { break }
                mantissa = quotient
                exponent += 1
            }
        }
        self.flags = flags & RecordFormat.DecimalFlag.negative
        self.exponent = exponent
        self.mantissa = mantissa
    }

    /// The normalized parts of a decimal.
    init(_ decimal: Decimal) {
        if decimal.isNaN {
            self = .nan
            return
        }
        switch DecimalLayout.current {
        case .swiftFoundation, .darwin:
            let layout = DecimalLayout.current
            let (flags, exponent, mantissa) = withUnsafeBytes(of: decimal) { raw -> (UInt8, Int8, UInt128) in
                let exponent = Int8(bitPattern: raw[0])
                let (length, negative) = layout.lengthAndSign(raw[1])
                var mantissa: UInt128 = 0
                var word = min(length, 8)
                while word > 0 {
                    word -= 1
                    let value = UInt16(raw[4 + 2 * word]) | UInt16(raw[5 + 2 * word]) << 8
                    mantissa = mantissa << 16 | UInt128(value)
                }
                return (negative ? RecordFormat.DecimalFlag.negative : 0, exponent, mantissa)
            }
            self.init(flags: flags, exponent: exponent, mantissa: mantissa)
        case .unknown:
            self = DecimalParts(parsing: decimal.description) ?? .nan
        }
    }

    /// The decimal these parts describe.
    var decimal: Decimal {
        if isNaN { return .nan }
        if mantissa == 0 { return Decimal() }
        switch DecimalLayout.current {
        case .swiftFoundation, .darwin:
            return DecimalLayout.current.build(self)
        case .unknown:
            let high = Decimal(UInt64(truncatingIfNeeded: mantissa >> 64))
            let low = Decimal(UInt64(truncatingIfNeeded: mantissa))
            let significand = high * Decimal(UInt64(1) << 32) * Decimal(UInt64(1) << 32) + low
            return Decimal(sign: isNegative ? .minus : .plus, exponent: Int(exponent), significand: significand)
        }
    }

    /// Parses the exact plain form `Decimal.description` prints (`-123.45`, `1000`), rejecting
    /// anything else or a value outside the parts' range.
    init?(parsing text: String) {
        var negative = false
        var mantissa: UInt128 = 0
        var digits = 0
        var fractionDigits = 0
        var trailingZeros = 0
        var seenPoint = false
        for (offset, byte) in text.utf8.enumerated() {
            switch byte {
            case UInt8(ascii: "-") where offset == 0:
                negative = true
            case UInt8(ascii: "."):
                guard !seenPoint else { return nil }
                seenPoint = true
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                let digit = UInt128(byte - UInt8(ascii: "0"))
                if seenPoint { fractionDigits += 1 }
                if mantissa == 0 && digit == 0 {
                    continue
                }
                let (times, overflow1) = mantissa.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(digit)
                if overflow1 || overflow2 {
                    // Only zeros may follow the 38-39 significant digits, as integer places.
                    guard digit == 0, !seenPoint else { return nil }
                    trailingZeros += 1
                    continue
                }
                mantissa = sum
                digits += 1
            default:
                return nil
            }
        }
        let exponent = trailingZeros - fractionDigits
        guard exponent >= -128, exponent <= 127 else { return nil }
        self.init(flags: negative ? RecordFormat.DecimalFlag.negative : 0, exponent: Int8(exponent), mantissa: mantissa)
    }
}

/// Which memory layout `Decimal` has on this platform, checked once against known values.
enum DecimalLayout: Sendable {
    /// swift-foundation: byte 1 holds the length in its high nibble, then negative, then compact.
    case swiftFoundation
    /// Darwin's `NSDecimal` bit fields: length in the low nibble, then negative, then compact.
    case darwin
    /// Neither: go through the decimal's string form.
    case unknown

    static let current: DecimalLayout = detect()

    func lengthAndSign(_ byte: UInt8) -> (length: Int, negative: Bool) {
        switch self {
        case .swiftFoundation: return (Int(byte >> 4), byte & 0x08 != 0)
        default: return (Int(byte & 0x0F), byte & 0x10 != 0)
        }
    }

    func flagsByte(length: Int, negative: Bool, compact: Bool) -> UInt8 {
        switch self {
        case .swiftFoundation:
            return UInt8(length) << 4 | (negative ? 0x08 : 0) | (compact ? 0x04 : 0)
        default:
            return UInt8(length) | (negative ? 0x10 : 0) | (compact ? 0x20 : 0)
        }
    }

    /// Writes normalized parts into a `Decimal` of this layout.
    func build(_ parts: DecimalParts) -> Decimal {
        var decimal = Decimal()
        var length = 0
        var rest = parts.mantissa
        while rest != 0 {
            length += 1
            rest >>= 16
        }
        // Compact: no trailing zero digit left to strip (what `NSDecimalCompact` produces).
        let compact = parts.mantissa != 0 && (parts.mantissa % 10 != 0 || parts.exponent == 127)
        let flags = flagsByte(length: length, negative: parts.isNegative, compact: compact)
        withUnsafeMutableBytes(of: &decimal) { raw in
            raw[0] = UInt8(bitPattern: parts.exponent)
            raw[1] = flags
            raw[2] = 0
            raw[3] = 0
            var value = parts.mantissa
            for word in 0..<8 {
                raw[4 + 2 * word] = UInt8(truncatingIfNeeded: value)
                raw[5 + 2 * word] = UInt8(truncatingIfNeeded: value >> 8)
                value >>= 16
            }
        }
        return decimal
    }

    private static func detect() -> DecimalLayout {
        guard MemoryLayout<Decimal>.size == 20 else { return .unknown }
        // -123.45 (one mantissa word) and 2^64 - 1 (four words).
        let small = Decimal(sign: .minus, exponent: -2, significand: Decimal(12_345))
        let wide = Decimal(UInt64.max)
        for candidate in [DecimalLayout.swiftFoundation, .darwin] {
            if candidate.matches(small, exponent: -2, length: 1, negative: true, words: [12_345])
                && candidate.matches(wide, exponent: 0, length: 4, negative: false, words: [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF]) {
                // Writing must work too: build both values from their parts and compare.
                let builtSmall = candidate.build(DecimalParts(flags: RecordFormat.DecimalFlag.negative,
                                                              exponent: -2, mantissa: 12_345))
                let builtWide = candidate.build(DecimalParts(flags: 0, exponent: 0, mantissa: UInt128(UInt64.max)))
                if builtSmall == small && builtWide == wide && builtSmall.description == "-123.45"
                    && builtWide.description == "18446744073709551615" {
                    return candidate
                }
            }
        }
        return .unknown
    }

    private func matches(_ decimal: Decimal, exponent: Int8, length: Int, negative: Bool, words: [UInt16]) -> Bool {
        withUnsafeBytes(of: decimal) { raw in
            guard Int8(bitPattern: raw[0]) == exponent else { return false }
            let (readLength, readNegative) = lengthAndSign(raw[1])
            guard readLength == length, readNegative == negative else { return false }
            for word in 0..<8 {
                let value = UInt16(raw[4 + 2 * word]) | UInt16(raw[5 + 2 * word]) << 8
                if value != (word < words.count ? words[word] : 0) { return false }
            }
            return true
        }
    }
}

