#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif

/// A point in time with microsecond precision: the ``Document/timestamp(_:)`` value of a record.
///
/// A timestamp counts microseconds since 1970-01-01T00:00:00Z (the Unix epoch), as a signed
/// 64-bit integer, which covers about 292,000 years either side of the epoch. It converts
/// to and from `Date`; a `Date` is rounded to the nearest microsecond, so a `Date` with a finer
/// fraction (such as `Date()`) does not come back bit-for-bit, while every whole-microsecond
/// `Date` does.
///
/// ```swift
/// let placed = Timestamp(Date(timeIntervalSince1970: 1_790_000_000))
/// print(placed.microsecondsSinceEpoch)   // 1790000000000000
/// print(placed.iso8601)                  // 2026-09-21T14:13:20Z
/// let back: Date = placed.date
/// ```
public struct Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z; negative before it.
    public var microsecondsSinceEpoch: Int64

    /// Creates a timestamp from microseconds since the Unix epoch.
    ///
    /// - Parameter microsecondsSinceEpoch: Microseconds since 1970-01-01T00:00:00Z.
    public init(microsecondsSinceEpoch: Int64) {
        self.microsecondsSinceEpoch = microsecondsSinceEpoch
    }

    /// Microseconds between the Unix epoch and `Date`'s reference date (2001-01-01T00:00:00Z).
    static let referenceDateMicroseconds: Int64 = 978_307_200_000_000

    /// Creates a timestamp from a date, rounded to the nearest microsecond.
    ///
    /// Returns `nil` when the date is not finite or lies outside the range of
    /// ``microsecondsSinceEpoch``.
    ///
    /// - Parameter date: The date to convert.
    public init?(exactly date: Date) {
        // Counting from the reference date keeps the one rounding step on `Date`'s own value,
        // so every whole-microsecond `Date` converts back exactly.
        let micros = (date.timeIntervalSinceReferenceDate * 1_000_000).rounded()
        guard micros.isFinite, micros > -9.2e18, micros < 9.2e18 else { return nil }
        let (sum, overflow) = Int64(micros).addingReportingOverflow(Self.referenceDateMicroseconds)
        guard !overflow else { return nil }
        microsecondsSinceEpoch = sum
    }

    /// Creates a timestamp from a date, rounded to the nearest microsecond.
    ///
    /// - Parameter date: A finite date within about 292,000 years of 1970.
    /// - Precondition: The date is representable (see ``init(exactly:)``).
    public init(_ date: Date) {
        guard let timestamp = Timestamp(exactly: date) else {
            preconditionFailure("the date \(date.timeIntervalSince1970) is outside the range of a Timestamp")
        }
        self = timestamp
    }

    /// The timestamp as a `Date`.
    public var date: Date {
        let sinceReference = microsecondsSinceEpoch &- Self.referenceDateMicroseconds
        return Date(timeIntervalSinceReferenceDate: Double(sinceReference) / 1_000_000)
    }

    /// Whether this timestamp is earlier than another.
    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.microsecondsSinceEpoch < rhs.microsecondsSinceEpoch
    }

    /// The timestamp in ISO 8601 form, UTC, with a fraction only when it has one:
    /// `2026-09-21T14:13:20Z` or `2026-09-21T14:13:20.250000Z`.
    public var iso8601: String {
        let micros = microsecondsSinceEpoch
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            fraction += 1_000_000
            seconds -= 1
        }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        let (year, month, day) = Self.civilDate(daysSinceEpoch: days)
        var text = ""
        text.reserveCapacity(27)
        if year < 0 {
            text += "-"
        } else if year > 9999 {
            text += "+"
        }
        Self.appendPadded(&text, year.magnitude, width: 4)
        text += "-"
        Self.appendPadded(&text, UInt64(month), width: 2)
        text += "-"
        Self.appendPadded(&text, UInt64(day), width: 2)
        text += "T"
        Self.appendPadded(&text, UInt64(secondOfDay / 3600), width: 2)
        text += ":"
        Self.appendPadded(&text, UInt64(secondOfDay / 60 % 60), width: 2)
        text += ":"
        Self.appendPadded(&text, UInt64(secondOfDay % 60), width: 2)
        if fraction != 0 {
            text += "."
            Self.appendPadded(&text, UInt64(fraction), width: 6)
        }
        text += "Z"
        return text
    }

    /// The ``iso8601`` form.
    public var description: String { iso8601 }

    private static func appendPadded(_ text: inout String, _ value: UInt64, width: Int) {
        let digits = String(value)
        if digits.utf8.count < width { text += String(repeating: "0", count: width - digits.utf8.count) }
        text += digits
    }

    /// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
    /// `civil_from_days`).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = Int(dayOfYear - (153 * monthIndex + 2) / 5 + 1)
        let month = Int(monthIndex < 10 ? monthIndex + 3 : monthIndex - 9)
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        return (year, month, day)
    }

    /// The day count since 1970-01-01 of a proleptic Gregorian date (`days_from_civil`).
    static func daysSinceEpoch(year: Int64, month: Int, day: Int) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
