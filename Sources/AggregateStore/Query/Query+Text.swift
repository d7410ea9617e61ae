/// Prints queries and predicates in the canonical text form that ``QueryParser`` reads back to
/// equal values.
///
/// Precedence is `not` > `and` > `or`. The parser turns `a and b and c` into one `and` of three
/// parts and keeps a parenthesized group as one part, so the printer parenthesizes exactly the
/// parts whose structure would otherwise be lost: an `or` inside an `and`, `not` or `or`, and an
/// `and` inside an `and` or `not`. An `and` or `or` of fewer than two parts prints in the
/// function form `and()`, `and(p)`, `or()`, `or(p)`.
enum QueryPrinter {
    /// Where a predicate is printed, which decides whether it needs parentheses.
    enum Context {
        /// The whole `where` clause, or an argument of `and(...)`/`or(...)`.
        case top
        /// A part of an `or` chain.
        case orPart
        /// A part of an `and` chain.
        case andPart
        /// The operand of `not`.
        case notOperand
    }

    static func query(_ query: Query) -> String {
        var text = "from " + QuerySyntax.name(query.table)
        if query.predicate != .all {
            text += " where "
            write(query.predicate, context: .top, into: &text)
        }
        if !query.order.isEmpty {
            text += " order by " + query.order.map(\.description).joined(separator: ", ")
        }
        if let limit = query.limit { text += " limit \(limit)" }
        if query.offset != 0 { text += " offset \(query.offset)" }
        if let cursor = query.after { text += " after " + QuerySyntax.quoted(cursor.token) }
        if let projection = query.projection {
            text += projection.isEmpty ? " select ()" : " select " + projection.map(\.description).joined(separator: ", ")
        }
        return text
    }

    static func write(_ predicate: Query.Predicate, context: Context, into text: inout String) {
        switch predicate {
        case .all:
            text += "true"
        case .none:
            text += "false"
        case .and(let parts) where parts.count >= 2:
            let parenthesize = context == .andPart || context == .notOperand
            if parenthesize { text += "(" }
            for (position, part) in parts.enumerated() {
                if position > 0 { text += " and " }
                write(part, context: .andPart, into: &text)
            }
            if parenthesize { text += ")" }
        case .or(let parts) where parts.count >= 2:
            let parenthesize = context != .top
            if parenthesize { text += "(" }
            for (position, part) in parts.enumerated() {
                if position > 0 { text += " or " }
                write(part, context: .orPart, into: &text)
            }
            if parenthesize { text += ")" }
        case .and(let parts), .or(let parts):
            if case .and = predicate { text += "and(" } else { text += "or(" }
            for (position, part) in parts.enumerated() {
                if position > 0 { text += ", " }
                write(part, context: .top, into: &text)
            }
            text += ")"
        case .not(let operand):
            text += "not "
            write(operand, context: .notOperand, into: &text)
        case .compare(let field, let comparison, let value):
            text += field.description + " " + comparison.symbol + " "
            LiteralText.write(value, into: &text)
        case .isIn(let field, let values), .notIn(let field, let values):
            if case .isIn = predicate { text += field.description + " in (" } else { text += field.description + " not in (" }
            for (position, value) in values.enumerated() {
                if position > 0 { text += ", " }
                LiteralText.write(value, into: &text)
            }
            text += ")"
        case .isNull(let field):
            text += field.description + " is null"
        case .isNotNull(let field):
            text += field.description + " is not null"
        case .match(let field, let kind, let pattern, let caseInsensitive):
            text += field.description + " " + kind.keyword + " " + QuerySyntax.quoted(pattern)
            if caseInsensitive { text += " ci" }
        }
    }
}
