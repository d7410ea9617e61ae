/// A comparison operator of ``Query/Predicate/compare(_:_:_:)``.
///
/// See ``Query/Predicate`` for how nulls, missing fields and values of different kinds compare.
public enum Comparison: String, Hashable, Sendable, CaseIterable {
    /// Equal (`=`).
    case eq
    /// Not equal (`!=` or `<>`); always the negation of ``eq``.
    case ne
    /// Greater than (`>`).
    case gt
    /// Greater than or equal (`>=`).
    case gte
    /// Less than (`<`).
    case lt
    /// Less than or equal (`<=`).
    case lte

    /// The operator in the query text: `=`, `!=`, `>`, `>=`, `<`, `<=`.
    public var symbol: String {
        switch self {
        case .eq: return "="
        case .ne: return "!="
        case .gt: return ">"
        case .gte: return ">="
        case .lt: return "<"
        case .lte: return "<="
        }
    }
}

/// A string operator of ``Query/Predicate/match(_:_:_:caseInsensitive:)``.
public enum StringMatch: String, Hashable, Sendable, CaseIterable {
    /// The SQL pattern: `%` any run of characters, `_` exactly one Unicode scalar, `\` escapes
    /// `%`, `_` and `\`; it must match the whole string.
    case like
    /// The string begins with the value, taken literally.
    case startsWith
    /// The string ends with the value, taken literally.
    case endsWith
    /// The string contains the value, taken literally.
    case contains

    /// Escapes `%`, `_` and `\` with `\`, so that a ``like`` pattern built around user text
    /// matches that text literally.
    ///
    /// ```swift
    /// let pattern = StringMatch.escapeLike("50%_off") + "%"    // 50\%\_off%
    /// ```
    ///
    /// - Parameter text: The literal text.
    /// - Returns: The pattern fragment.
    public static func escapeLike(_ text: String) -> String {
        LikePattern.escape(text)
    }

    /// The operator in the query text: `like`, `starts with`, `ends with`, `contains`.
    public var keyword: String {
        switch self {
        case .like: return "like"
        case .startsWith: return "starts with"
        case .endsWith: return "ends with"
        case .contains: return "contains"
        }
    }
}

extension Query {
    /// A condition on one record: the `where` of a ``Query``.
    ///
    /// It is a plain value: build it in code, print it (``description``) or parse it from the
    /// query text, and evaluate it with ``matches(_:)``, the one reference evaluation every
    /// access path re-applies. `Docs/QUERY.md` gives the semantics in full; in short:
    ///
    /// - A missing field is null.
    /// - With a null on either side, `eq` holds only when both are null, `ne` when exactly one
    ///   is; ordering comparisons are false. `ne` is always the negation of `eq`.
    /// - Numbers compare by exact value across integer, double and decimal. A timestamp compares
    ///   with a timestamp or an ISO 8601 string. Other kinds that differ are never equal and never
    ///   ordered. Strings compare by UTF-8 bytes (Unicode scalar order).
    /// - String matches apply to string fields only; `caseInsensitive` lowercases both sides.
    ///
    /// (The type is nested in ``Query`` because Foundation has a `Predicate` too: a top-level
    /// name would be ambiguous in every file that imports both modules.)
    ///
    /// ```swift
    /// let paid: Query.Predicate = .and([
    ///     .compare("status", .eq, "paid"),
    ///     .or([.compare("total", .gte, 100), .isIn("customerId", ["c-1", "c-2"])]),
    ///     .not(.isNull("note")),
    ///     .match("name", .like, #"A\%%"#, caseInsensitive: true),
    /// ])
    /// paid.description   // status = 'paid' and (total >= 100 or customerId in ('c-1', 'c-2')) and ...
    /// paid.matches(order)
    /// let same = try Query.Predicate(parsing: paid.description)   // == paid
    /// ```
    public indirect enum Predicate: Hashable, Sendable, CustomStringConvertible {
        /// Always true (`true` in the text).
        case all
        /// Always false (`false` in the text).
        case none
        /// True when every predicate is; `and([])` is true.
        case and([Predicate])
        /// True when any predicate is; `or([])` is false.
        case or([Predicate])
        /// The negation.
        case not(Predicate)
        /// Compares the field with a literal value.
        case compare(FieldPath, Comparison, Document)
        /// True when the field is `eq` to any of the values; false for an empty list.
        case isIn(FieldPath, [Document])
        /// True when the field is `ne` to every value; true for an empty list, and for a missing
        /// field unless the list holds null.
        case notIn(FieldPath, [Document])
        /// True when the field is missing or null.
        case isNull(FieldPath)
        /// True when the field is present and not null.
        case isNotNull(FieldPath)
        /// Matches a string field against a pattern or literal text; false on any other kind.
        case match(FieldPath, StringMatch, String, caseInsensitive: Bool)

        /// Parses a predicate in the text form of a query's `where` clause, such as
        /// `status = 'paid' and total >= 100`.
        ///
        /// - Parameter text: The predicate.
        /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` naming the column
        ///   and what was expected.
        public init(parsing text: String) throws(StoreError) {
            self = try QueryParser.parsePredicate(text)
        }

        /// The canonical text form, with the fewest parentheses that keep the structure:
        /// `Predicate(parsing: p.description) == p`.
        public var description: String {
            var text = ""
            QueryPrinter.write(self, context: .top, into: &text)
            return text
        }

        /// The conjunction of two predicates, flattening `and`s of two or more parts.
        ///
        /// ```swift
        /// let filter: Query.Predicate = .compare("status", .eq, "paid") && .isNotNull("paidAt")
        /// ```
        public static func && (lhs: Predicate, rhs: Predicate) -> Predicate {
            .and(lhs.flattened(and: true) + rhs.flattened(and: true))
        }

        /// The disjunction of two predicates, flattening `or`s of two or more parts.
        public static func || (lhs: Predicate, rhs: Predicate) -> Predicate {
            .or(lhs.flattened(and: false) + rhs.flattened(and: false))
        }

        /// The negation of a predicate.
        public static prefix func ! (operand: Predicate) -> Predicate {
            .not(operand)
        }

        private func flattened(and: Bool) -> [Predicate] {
            switch self {
            case .and(let parts) where and && parts.count >= 2: return parts
            case .or(let parts) where !and && parts.count >= 2: return parts
            default: return [self]
            }
        }
    }
}
