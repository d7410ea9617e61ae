#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

extension Document {
    /// Compares two documents in the deterministic total order used to sort mixed values.
    ///
    /// Values are ordered first by kind, then within the kind:
    ///
    /// 1. ``null``;
    /// 2. booleans, `false` before `true`;
    /// 3. numbers (``integer(_:)``, ``double(_:)`` and ``decimal(_:)`` together), by exact numeric
    ///    value: `.integer(1)`, `.double(1.0)` and `.decimal(1)` are the same place. NaN (double or
    ///    decimal) sorts before every other number, `-infinity` next; `-0.0` equals `0.0`;
    /// 4. strings, by their UTF-8 bytes (so by Unicode scalar value, not by locale);
    /// 5. timestamps, chronologically;
    /// 6. bytes, lexicographically;
    /// 7. arrays, element by element, a prefix first;
    /// 8. maps, entry by entry in stored order (key bytes, then value), a prefix first.
    ///
    /// The order is total and consistent: it never traps, it is transitive, and values of
    /// different kinds never compare equal. It is coarser than `==` only for numbers
    /// (`1 == 1.0` here, not for `==`) and NaNs.
    ///
    /// ```swift
    /// Document.compare(.integer(2), .double(2.5))          // .orderedAscending
    /// Document.compare(.null, .bool(false))                // .orderedAscending
    /// let sorted = values.sorted(by: Document.sortsBefore)
    /// ```
    ///
    /// - Parameters:
    ///   - lhs: The first value.
    ///   - rhs: The second value.
    /// - Returns: `.orderedAscending` when `lhs` sorts first, `.orderedSame` when they hold the same
    ///   place, `.orderedDescending` when `rhs` sorts first.
    public static func compare(_ lhs: Document, _ rhs: Document) -> ComparisonResult {
        let leftRank = lhs.orderRank
        let rightRank = rhs.orderRank
        if leftRank != rightRank { return leftRank < rightRank ? .orderedAscending : .orderedDescending }
        switch (lhs, rhs) {
        case (.null, .null):
            return .orderedSame
        case (.bool(let a), .bool(let b)):
            return a == b ? .orderedSame : (b ? .orderedAscending : .orderedDescending)
        case (.string(let a), .string(let b)):
            return compareBytes(a.utf8, b.utf8)
        case (.timestamp(let a), .timestamp(let b)):
            return compareOrdered(a.microsecondsSinceEpoch, b.microsecondsSinceEpoch)
        case (.bytes(let a), .bytes(let b)):
            return compareBytes(a, b)
        case (.array(let a), .array(let b)):
            for position in 0..<min(a.count, b.count) {
                let result = compare(a[position], b[position])
                if result != .orderedSame { return result }
            }
            return compareOrdered(a.count, b.count)
        case (.map(let a), .map(let b)):
            for position in 0..<min(a.count, b.count) {
                let keys = compareBytes(a.keys[position].utf8, b.keys[position].utf8)
                if keys != .orderedSame { return keys }
                let values = compare(a.values[position], b.values[position])
                if values != .orderedSame { return values }
            }
            return compareOrdered(a.count, b.count)
        default:
            return compareNumbers(lhs, rhs)
        }
    }

    /// Whether `lhs` sorts before `rhs` in the order of ``compare(_:_:)``; a predicate for
    /// `sorted(by:)`.
    ///
    /// - Parameters:
    ///   - lhs: The first value.
    ///   - rhs: The second value.
    /// - Returns: `true` when ``compare(_:_:)`` returns `.orderedAscending`.
    public static func sortsBefore(_ lhs: Document, _ rhs: Document) -> Bool {
        compare(lhs, rhs) == .orderedAscending
    }

    /// The kind's place in the total order; numbers share one.
    var orderRank: Int {
        switch self {
        case .null: return 0
        case .bool: return 1
        case .integer, .double, .decimal: return 2
        case .string: return 3
        case .timestamp: return 4
        case .bytes: return 5
        case .array: return 6
        case .map: return 7
        }
    }
}

private func compareOrdered<T: Comparable>(_ a: T, _ b: T) -> ComparisonResult {
    a < b ? .orderedAscending : (a == b ? .orderedSame : .orderedDescending)
}

private func compareBytes<A: Sequence<UInt8>, B: Sequence<UInt8>>(_ a: A, _ b: B) -> ComparisonResult {
    var left = a.makeIterator()
    var right = b.makeIterator()
    while true {
        switch (left.next(), right.next()) {
        case (nil, nil): return .orderedSame
        case (nil, _): return .orderedAscending
        case (_, nil): return .orderedDescending
        case (let x?, let y?):
            if x != y { return x < y ? .orderedAscending : .orderedDescending }
        }
    }
}

// MARK: - Numbers

/// Compares two numeric documents by exact value.
private func compareNumbers(_ lhs: Document, _ rhs: Document) -> ComparisonResult {
    switch (lhs, rhs) {
    case (.integer(let a), .integer(let b)):
        return compareOrdered(a, b)
    case (.double(let a), .double(let b)):
        if a.isNaN || b.isNaN { return compareOrdered(a.isNaN ? 0 : 1, b.isNaN ? 0 : 1) }
        return compareOrdered(a, b)
    case (.integer(let a), .double(let b)):
        return compareIntegerToDouble(a, b)
    case (.double(let a), .integer(let b)):
        return reverse(compareIntegerToDouble(b, a))
    default:
        return ExactNumber(lhs).compare(to: ExactNumber(rhs))
    }
}

private func reverse(_ result: ComparisonResult) -> ComparisonResult {
    switch result {
    case .orderedAscending: return .orderedDescending
    case .orderedDescending: return .orderedAscending
    case .orderedSame: return .orderedSame
    }
}

private func compareIntegerToDouble(_ integer: Int64, _ double: Double) -> ComparisonResult {
    if double.isNaN { return .orderedDescending }
    // 2^63 is exactly representable; every double at or beyond it is outside Int64's range.
    if double >= 9_223_372_036_854_775_808.0 { return .orderedAscending }
    if double < -9_223_372_036_854_775_808.0 { return .orderedDescending }
    let whole = double.rounded(.down)
    let wholeInteger = Int64(whole)
    if integer != wholeInteger { return compareOrdered(integer, wholeInteger) }
    return double > whole ? .orderedAscending : .orderedSame
}

/// A finite number as `mantissa × 2^binaryExponent × 10^decimalExponent`, or NaN or an infinity,
/// compared exactly with arbitrary-precision integers when the quick checks cannot decide.
private struct ExactNumber {
    enum Kind { case nan, negativeInfinity, finite, positiveInfinity }
    var kind: Kind
    var negative = false
    var mantissa: UInt128 = 0
    var binaryExponent = 0
    var decimalExponent = 0

    init(_ document: Document) {
        switch document {
        case .integer(let value):
            kind = .finite
            negative = value < 0
            mantissa = UInt128(value.magnitude)
        case .double(let value):
            if value.isNaN {
                kind = .nan
            } else if value.isInfinite {
                kind = value < 0 ? .negativeInfinity : .positiveInfinity
            } else {
                kind = .finite
                negative = value < 0
                if value.isNormal {
                    mantissa = UInt128(value.significandBitPattern | (1 << 52))
                    binaryExponent = Int(value.exponent) - 52
                } else {
                    mantissa = UInt128(value.significandBitPattern)
                    binaryExponent = -1074
                }
            }
        case .decimal(let value):
            let parts = DecimalParts(value)
            if parts.isNaN {
                kind = .nan
            } else {
                kind = .finite
                negative = parts.isNegative
                mantissa = parts.mantissa
                decimalExponent = Int(parts.exponent)
            }
        default:
            kind = .nan
        }
        if mantissa == 0 { negative = false }
    }

    private var signRank: Int {
        switch kind {
        case .nan: return 0
        case .negativeInfinity: return 1
        case .finite: return mantissa == 0 ? 3 : (negative ? 2 : 4)
        case .positiveInfinity: return 5
        }
    }

    func compare(to other: ExactNumber) -> ComparisonResult {
        let (a, b) = (signRank, other.signRank)
        if a != b { return compareOrdered(a, b) }
        guard a == 2 || a == 4 else { return .orderedSame }
        let magnitude = compareMagnitudes(self, other)
        return negative ? reverse(magnitude) : magnitude
    }

    /// An estimate of log2 of the magnitude, within one of the truth.
    private var log2Estimate: Double {
        Double(128 - mantissa.leadingZeroBitCount) + Double(binaryExponent) + Double(decimalExponent) * 3.321928094887362
    }

    private func compareMagnitudes(_ x: ExactNumber, _ y: ExactNumber) -> ComparisonResult {
        if x.binaryExponent == y.binaryExponent && x.decimalExponent == y.decimalExponent {
            return compareOrdered(x.mantissa, y.mantissa)
        }
        let estimate = x.log2Estimate - y.log2Estimate
        if estimate > 2 { return .orderedDescending }
        if estimate < -2 { return .orderedAscending }
        // x = mx·2^(bx+dx)·5^dx and y likewise: multiply out the fives, then align the twos.
        var left = BigUInt(x.mantissa)
        var right = BigUInt(y.mantissa)
        let fives = x.decimalExponent - y.decimalExponent
        if fives >= 0 { left.multiply(byPowerOfFive: fives) } else { right.multiply(byPowerOfFive: -fives) }
        let twos = (x.binaryExponent + x.decimalExponent) - (y.binaryExponent + y.decimalExponent)
        if twos >= 0 { left.shiftLeft(twos) } else { right.shiftLeft(-twos) }
        return left.compare(to: right)
    }
}

/// An unsigned arbitrary-precision integer, just enough for exact number comparison.
private struct BigUInt {
    /// Little-endian 64-bit limbs.
    var limbs: [UInt64]

    init(_ value: UInt128) {
        limbs = [UInt64(truncatingIfNeeded: value), UInt64(truncatingIfNeeded: value >> 64)]
        trim()
    }

    mutating func trim() {
        while let last = limbs.last, last == 0 { limbs.removeLast() }
    }

    mutating func multiply(by factor: UInt64) {
        var carry: UInt64 = 0
        for index in limbs.indices {
            let (high, low) = limbs[index].multipliedFullWidth(by: factor)
            let (sum, overflow) = low.addingReportingOverflow(carry)
            limbs[index] = sum
            carry = high &+ (overflow ? 1 : 0)
        }
        if carry != 0 { limbs.append(carry) }
    }

    mutating func multiply(byPowerOfFive exponent: Int) {
        var remaining = exponent
        // 5^27 is the largest power of five below 2^64.
        while remaining >= 27 {
            multiply(by: 7_450_580_596_923_828_125)
            remaining -= 27
        }
        var factor: UInt64 = 1
        for _ in 0..<remaining { factor *= 5 }
        if factor != 1 { multiply(by: factor) }
    }

    mutating func shiftLeft(_ bits: Int) {
        guard bits > 0, !limbs.isEmpty else { return }
        let whole = bits / 64
        let partial = bits % 64
        if partial != 0 {
            var carry: UInt64 = 0
            for index in limbs.indices {
                let value = limbs[index]
                limbs[index] = value << partial | carry
                carry = value >> (64 - partial)
            }
            if carry != 0 { limbs.append(carry) }
        }
        if whole > 0 { limbs.insert(contentsOf: repeatElement(0, count: whole), at: 0) }
    }

    func compare(to other: BigUInt) -> ComparisonResult {
        if limbs.count != other.limbs.count { return compareOrdered(limbs.count, other.limbs.count) }
        for index in limbs.indices.reversed() where limbs[index] != other.limbs[index] {
            return limbs[index] < other.limbs[index] ? .orderedAscending : .orderedDescending
        }
        return .orderedSame
    }
}
