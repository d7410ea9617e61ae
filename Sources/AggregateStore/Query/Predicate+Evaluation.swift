#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension Query.Predicate {
    /// Whether a record satisfies the predicate: the one reference evaluation, which every
    /// access path (primary key, foreign key, scan) applies to its candidates.
    ///
    /// It never traps and never throws; `Docs/QUERY.md` states the rules for each operator.
    ///
    /// ```swift
    /// let order: Document = ["status": "paid", "total": 120]
    /// Query.Predicate.compare("total", .gt, .double(99.5)).matches(order)    // true
    /// Query.Predicate.compare("note", .ne, "x").matches(order)               // true: missing is null
    /// Query.Predicate.compare("total", .gt, "100").matches(order)            // false: other kinds
    /// ```
    ///
    /// - Parameter record: The record, usually a map.
    /// - Returns: Whether it matches.
    public func matches(_ record: Document) -> Bool {
        matches { $0.value(in: record) }
    }

    /// The fields the predicate reads.
    var fieldPaths: [FieldPath] {
        switch self {
        case .all, .none: return []
        case let .and(parts), let .or(parts): return parts.flatMap(\.fieldPaths)
        case let .not(operand): return operand.fieldPaths
        case let .compare(field, _, _), let .isIn(field, _), let .notIn(field, _), let .isNull(field),
             let .isNotNull(field), let .match(field, _, _, _):
            return [field]
        }
    }

    /// Whether the record whose fields `value` looks up satisfies the predicate; `value`
    /// returns nil for a missing field. Lets a scan test fields read straight from record bytes.
    func matches(_ value: (FieldPath) -> Document?) -> Bool {
        switch self {
        case .all:
            return true
        case .none:
            return false
        case .and(let parts):
            return parts.allSatisfy { $0.matches(value) }
        case .or(let parts):
            return parts.contains { $0.matches(value) }
        case .not(let operand):
            return !operand.matches(value)
        case .compare(let field, let comparison, let literal):
            return PredicateSemantics.compare(value(field) ?? .null, comparison, literal)
        case .isIn(let field, let values):
            let value = value(field) ?? .null
            return values.contains { PredicateSemantics.compare(value, .eq, $0) }
        case .notIn(let field, let values):
            let value = value(field) ?? .null
            return values.allSatisfy { PredicateSemantics.compare(value, .ne, $0) }
        case .isNull(let field):
            return (value(field) ?? .null).isNull
        case .isNotNull(let field):
            return !(value(field) ?? .null).isNull
        case .match(let field, let kind, let pattern, let caseInsensitive):
            guard case .string(let value) = value(field) else { return false }
            return StringMatching.matches(value, kind, pattern, caseInsensitive: caseInsensitive)
        }
    }
}

/// The comparison rules of ``Query/Predicate/compare(_:_:_:)``.
enum PredicateSemantics {
    /// Compares a field's value (null when missing) with a literal.
    static func compare(_ field: Document, _ comparison: Comparison, _ literal: Document) -> Bool {
        let fieldIsNull = field.isNull
        let literalIsNull = literal.isNull
        if fieldIsNull || literalIsNull {
            switch comparison {
            case .eq: return fieldIsNull && literalIsNull
            case .ne: return fieldIsNull != literalIsNull
            default: return false
            }
        }
        guard let order = order(field, literal) else { return comparison == .ne }
        switch comparison {
        case .eq: return order == .orderedSame
        case .ne: return order != .orderedSame
        case .gt: return order == .orderedDescending
        case .gte: return order != .orderedAscending
        case .lt: return order == .orderedAscending
        case .lte: return order != .orderedDescending
        }
    }

    /// The order of two non-null values, or `nil` when they are not comparable: different
    /// kinds, except numbers among themselves and a timestamp with an ISO 8601 string.
    static func order(_ lhs: Document, _ rhs: Document) -> ComparisonResult? {
        switch (lhs, rhs) {
        case (.timestamp(let instant), .string(let text)):
            guard let other = LiteralText.instant(text) else { return nil }
            return Document.compare(.timestamp(instant), .timestamp(other))
        case (.string(let text), .timestamp(let instant)):
            guard let other = LiteralText.instant(text) else { return nil }
            return Document.compare(.timestamp(other), .timestamp(instant))
        default:
            guard lhs.orderRank == rhs.orderRank else { return nil }
            return Document.compare(lhs, rhs)
        }
    }
}

/// The string operators: on UTF-8 bytes for the literal ones, on Unicode scalars for `like`.
enum StringMatching {
    static func matches(_ value: String, _ kind: StringMatch, _ pattern: String, caseInsensitive: Bool) -> Bool {
        let subject = caseInsensitive ? value.lowercased() : value
        let needle = caseInsensitive ? pattern.lowercased() : pattern
        switch kind {
        case .startsWith:
            return subject.utf8.starts(with: needle.utf8)
        case .endsWith:
            let count = needle.utf8.count
            return subject.utf8.count >= count && subject.utf8.suffix(count).elementsEqual(needle.utf8)
        case .contains:
            return contains(Array(subject.utf8), Array(needle.utf8))
        case .like:
            return like(Array(subject.unicodeScalars), LikePattern(needle).tokens)
        }
    }

    /// Whether `needle` occurs in `haystack` as a run of bytes. Both are valid UTF-8, so a match
    /// always starts and ends on scalar boundaries.
    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var start = 0
        while start <= haystack.count - needle.count {
            if haystack[start] == first {
                var offset = 1
                while offset < needle.count && haystack[start + offset] == needle[offset] { offset += 1 }
                if offset == needle.count { return true }
            }
            start += 1
        }
        return false
    }

    /// Wildcard matching with one backtracking point, the last `%` seen: linear in the common
    /// case and at worst the product of the two lengths.
    private static func like(_ text: [Unicode.Scalar], _ pattern: [LikePattern.Token]) -> Bool {
        var textIndex = 0
        var patternIndex = 0
        var starPattern = -1
        var starText = 0
        while textIndex < text.count {
            if patternIndex < pattern.count {
                switch pattern[patternIndex] {
                case .scalar(let scalar) where scalar == text[textIndex]:
                    textIndex += 1
                    patternIndex += 1
                    continue
                case .one:
                    textIndex += 1
                    patternIndex += 1
                    continue
                case .any:
                    starPattern = patternIndex
                    starText = textIndex
                    patternIndex += 1
                    continue
                case .scalar:
                    break
                }
            }
            guard starPattern >= 0 else { return false }
            patternIndex = starPattern + 1
            starText += 1
            textIndex = starText
        }
        while patternIndex < pattern.count, pattern[patternIndex] == .any { patternIndex += 1 }
        return patternIndex == pattern.count
    }
}

/// A `like` pattern split into literal scalars, `_` and `%`.
struct LikePattern {
    enum Token: Equatable {
        case scalar(Unicode.Scalar)
        case one
        case any
    }

    var tokens: [Token] = []

    /// `\` before `%`, `_` or `\` makes that character literal; a `\` before anything else, or
    /// at the end, is itself literal.
    init(_ pattern: String) {
        var scalars = pattern.unicodeScalars.makeIterator()
        var pending = scalars.next()
        while let scalar = pending {
            pending = scalars.next()
            switch scalar {
            case "%":
                if tokens.last != .any { tokens.append(.any) }
            case "_":
                tokens.append(.one)
            case "\\":
                if let next = pending, next == "%" || next == "_" || next == "\\" {
                    tokens.append(.scalar(next))
                    pending = scalars.next()
                } else {
                    tokens.append(.scalar(scalar))
                }
            default:
                tokens.append(.scalar(scalar))
            }
        }
    }

    /// Escapes `%`, `_` and `\` so that a `like` pattern matches the text literally.
    static func escape(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar == "%" || scalar == "_" || scalar == "\\" { result.unicodeScalars.append("\\") }
            result.unicodeScalars.append(scalar)
        }
        return result
    }
}
