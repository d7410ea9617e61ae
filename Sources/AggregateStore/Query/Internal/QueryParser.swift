/// A recursive-descent parser for the query text (grammar in `Docs/QUERY.md`), with the
/// nesting bounded by ``QuerySyntax/maximumDepth`` so no input can exhaust the stack.
struct QueryParser {
    private let lexer: QueryLexer
    private let tokens: [QueryToken]
    private var index = 0
    /// How many of the optional clauses (`where` ... `select`) are behind the parser.
    private var clausesSeen = 0

    private init(_ text: String, subject: String) throws(StoreError) {
        var lexer = QueryLexer(text, subject: subject)
        tokens = try lexer.tokenize()
        self.lexer = lexer
    }

    // MARK: Entry points

    static func parseQuery(_ text: String) throws(StoreError) -> Query {
        var parser = try QueryParser(text, subject: "query text")
        let query = try parser.query()
        let clauses = ["where", "order by", "limit", "offset", "after", "select"]
        var remaining = clauses.dropFirst(parser.clausesSeen).map { "'\($0)'" }
        if parser.clausesSeen == 1 { remaining.insert(contentsOf: ["'and'", "'or'"], at: 0) }
        try parser.expectEnd(remaining.joined(separator: ", "))
        return query
    }

    static func parsePredicate(_ text: String) throws(StoreError) -> Query.Predicate {
        var parser = try QueryParser(text, subject: "predicate text")
        let predicate = try parser.predicate(depth: 0)
        try parser.expectEnd("'and', 'or'")
        return predicate
    }

    /// A dotted field path, keywords allowed as bare names.
    static func parseFieldPath(_ text: String) throws(StoreError) -> [String] {
        var parser = try QueryParser(text, subject: "field path '\(text)'")
        var components = [try parser.name(what: "a field name", allowKeywords: true)]
        while parser.current.isSymbol(".") {
            parser.index += 1
            components.append(try parser.name(what: "a field name after '.'", allowKeywords: true))
        }
        try parser.expectEnd("'.'")
        return components
    }

    // MARK: Tokens

    private var current: QueryToken { tokens[index] }

    private var previousText: String {
        guard index > 0 else { return "" }
        switch tokens[index - 1].kind {
        case .word(let text), .number(let text), .symbol(let text): return text
        case .quotedName(let text): return QuerySyntax.name(text)
        case .string(let text): return QuerySyntax.quoted(text)
        case .bytes: return "x'...'"
        case .end: return ""
        }
    }

    private func error(_ message: String, at token: QueryToken? = nil) -> StoreError {
        lexer.error(message, at: (token ?? current).offset)
    }

    private func expected(_ what: String) -> StoreError {
        error("expected \(what), found \(current.quotedForMessage)")
    }

    private mutating func takeKeyword(_ word: String) -> Bool {
        guard current.isKeyword(word) else { return false }
        index += 1
        return true
    }

    private mutating func takeSymbol(_ symbol: String) -> Bool {
        guard current.isSymbol(symbol) else { return false }
        index += 1
        return true
    }

    private mutating func expectKeyword(_ word: String, after: String) throws(StoreError) {
        guard takeKeyword(word) else { throw expected("'\(word)' after '\(after)'") }
    }

    private mutating func expectSymbol(_ symbol: String, _ what: String) throws(StoreError) {
        guard takeSymbol(symbol) else { throw expected(what) }
    }

    private func expectEnd(_ alternatives: String) throws(StoreError) {
        guard current.kind == .end else {
            throw expected(alternatives.isEmpty ? "the end of the text" : "\(alternatives) or the end of the text")
        }
    }

    // MARK: Query

    private mutating func query() throws(StoreError) -> Query {
        guard takeKeyword("from") else { throw expected("'from'") }
        var query = Query(table: try name(what: "a table name after 'from'", allowKeywords: false))
        if takeKeyword("where") {
            query.predicate = try predicate(depth: 0)
            clausesSeen = 1
        }
        if takeKeyword("order") {
            try expectKeyword("by", after: "order")
            repeat {
                let field = try fieldPath(what: query.order.isEmpty ? "a field after 'order by'" : "a field after ','")
                if takeKeyword("desc") {
                    query.order.append(SortKey(field, descending: true))
                } else {
                    _ = takeKeyword("asc")
                    query.order.append(SortKey(field))
                }
            } while takeSymbol(",")
            clausesSeen = 2
        }
        if takeKeyword("limit") {
            query.limit = try count(after: "limit")
            clausesSeen = 3
        }
        if takeKeyword("offset") {
            query.offset = try count(after: "offset")
            clausesSeen = 4
        }
        if takeKeyword("after") {
            let token = current
            guard case .string(let text) = token.kind else { throw expected("a cursor string after 'after'") }
            index += 1
            do {
                query.after = try QueryCursor(token: text)
            } catch {
                throw self.error(error.message, at: token)
            }
            clausesSeen = 5
        }
        if takeKeyword("select") {
            var fields: [FieldPath] = []
            if takeSymbol("(") {
                if !takeSymbol(")") {
                    repeat { fields.append(try fieldPath(what: "a field")) } while takeSymbol(",")
                    try expectSymbol(")", "',' or ')'")
                }
            } else {
                repeat { fields.append(try fieldPath(what: "a field")) } while takeSymbol(",")
            }
            query.projection = fields
            clausesSeen = 6
        }
        return query
    }

    /// A non-negative integer after `limit` or `offset`.
    private mutating func count(after keyword: String) throws(StoreError) -> Int {
        guard case .number(let text) = current.kind, let value = Int(text), value >= 0 else {
            throw expected("a non-negative integer after '\(keyword)'")
        }
        index += 1
        return value
    }

    /// A table or field name: a bare identifier (not a keyword, unless allowed) or a backquoted name.
    private mutating func name(what: String, allowKeywords: Bool) throws(StoreError) -> String {
        switch current.kind {
        case .word(let word) where allowKeywords || !QuerySyntax.isReserved(word):
            index += 1
            return word
        case .quotedName(let name):
            index += 1
            return name
        case .word(let word):
            throw error("expected \(what), found the keyword '\(word)' (write `\(word)` for a name)")
        default:
            throw expected(what)
        }
    }

    private mutating func fieldPath(what: String) throws(StoreError) -> FieldPath {
        var components = [try name(what: what, allowKeywords: false)]
        while takeSymbol(".") {
            components.append(try name(what: "a field name after '.'", allowKeywords: false))
        }
        return FieldPath(validated: components)
    }

    // MARK: Predicates

    private func checkDepth(_ depth: Int) throws(StoreError) {
        guard depth < QuerySyntax.maximumDepth else {
            throw error("the predicate nests deeper than \(QuerySyntax.maximumDepth) levels")
        }
    }

    /// `or`-chain of `and`-chains.
    private mutating func predicate(depth: Int) throws(StoreError) -> Query.Predicate {
        let first = try conjunction(depth: depth)
        guard current.isKeyword("or") else { return first }
        var parts = [first]
        while takeKeyword("or") { parts.append(try conjunction(depth: depth)) }
        return .or(parts)
    }

    private mutating func conjunction(depth: Int) throws(StoreError) -> Query.Predicate {
        let first = try negation(depth: depth)
        guard current.isKeyword("and") else { return first }
        var parts = [first]
        while takeKeyword("and") { parts.append(try negation(depth: depth)) }
        return .and(parts)
    }

    private mutating func negation(depth: Int) throws(StoreError) -> Query.Predicate {
        guard current.isKeyword("not") else { return try primary(depth: depth) }
        try checkDepth(depth)
        index += 1
        return .not(try negation(depth: depth + 1))
    }

    private mutating func primary(depth: Int) throws(StoreError) -> Query.Predicate {
        if takeSymbol("(") {
            try checkDepth(depth)
            let inner = try predicate(depth: depth + 1)
            try expectSymbol(")", "')' or 'and', 'or'")
            return inner
        }
        if takeKeyword("true") { return .all }
        if takeKeyword("false") { return .none }
        for word in ["and", "or"] where current.isKeyword(word) && tokens[index + 1].isSymbol("(") {
            try checkDepth(depth)
            index += 2
            var parts: [Query.Predicate] = []
            if !takeSymbol(")") {
                repeat { parts.append(try predicate(depth: depth + 1)) } while takeSymbol(",")
                try expectSymbol(")", "',' or ')' to close '\(word)('")
            }
            return word == "and" ? .and(parts) : .or(parts)
        }
        let field = try fieldPath(what: "a field, 'not', '(', 'true' or 'false'")
        return try condition(field, depth: depth)
    }

    private mutating func condition(_ field: FieldPath, depth: Int) throws(StoreError) -> Query.Predicate {
        let comparisons: [(String, Comparison)] = [
            ("=", .eq), ("!=", .ne), ("<>", .ne), ("<", .lt), ("<=", .lte), (">", .gt), (">=", .gte),
        ]
        if let (_, comparison) = comparisons.first(where: { current.isSymbol($0.0) }) {
            index += 1
            return .compare(field, comparison, try value(depth: depth))
        }
        if takeKeyword("in") {
            return .isIn(field, try valueList(after: "in", depth: depth))
        }
        if takeKeyword("not") {
            guard takeKeyword("in") else { throw expected("'in' after 'not'") }
            return .notIn(field, try valueList(after: "not in", depth: depth))
        }
        if takeKeyword("is") {
            let negated = takeKeyword("not")
            guard takeKeyword("null") else { throw expected(negated ? "'null' after 'is not'" : "'null' or 'not null' after 'is'") }
            return negated ? .isNotNull(field) : .isNull(field)
        }
        let kind: StringMatch
        if takeKeyword("like") {
            kind = .like
        } else if takeKeyword("contains") {
            kind = .contains
        } else if takeKeyword("starts") {
            try expectKeyword("with", after: "starts")
            kind = .startsWith
        } else if takeKeyword("ends") {
            try expectKeyword("with", after: "ends")
            kind = .endsWith
        } else {
            throw expected("an operator after '\(field)' (=, !=, <, <=, >, >=, in, not in, is, like, starts with, "
                           + "ends with, contains)")
        }
        guard case .string(let pattern) = current.kind else { throw expected("a string after '\(kind.keyword)'") }
        index += 1
        return .match(field, kind, pattern, caseInsensitive: takeKeyword("ci"))
    }

    private mutating func valueList(after keyword: String, depth: Int) throws(StoreError) -> [Document] {
        try expectSymbol("(", "'(' after '\(keyword)'")
        var values: [Document] = []
        if takeSymbol(")") { return values }
        repeat { values.append(try value(depth: depth)) } while takeSymbol(",")
        try expectSymbol(")", "',' or ')' in the list after '\(keyword)'")
        return values
    }

    // MARK: Values

    private mutating func value(depth: Int) throws(StoreError) -> Document {
        let token = current
        switch token.kind {
        case .string(let text):
            index += 1
            return .string(text)
        case .bytes(let bytes):
            index += 1
            return .bytes(bytes)
        case .number(let text):
            index += 1
            switch LiteralText.number(text) {
            case .success(let value): return value
            case .failure(let failure): throw error(failure.message, at: token)
            }
        case .symbol("["):
            try checkDepth(depth)
            index += 1
            var elements: [Document] = []
            if takeSymbol("]") { return .array(elements) }
            repeat { elements.append(try value(depth: depth + 1)) } while takeSymbol(",")
            try expectSymbol("]", "',' or ']' in the array")
            return .array(elements)
        case .symbol("{"):
            try checkDepth(depth)
            index += 1
            var map = Document.Map()
            if takeSymbol("}") { return .map(map) }
            repeat {
                let keyToken = current
                guard case .string(let key) = keyToken.kind else { throw expected("a string key in the map") }
                index += 1
                guard map.index(forKey: key) == nil else { throw error("the key \(QuerySyntax.quoted(key)) is repeated", at: keyToken) }
                try expectSymbol(":", "':' after the key")
                map[key] = try value(depth: depth + 1)
            } while takeSymbol(",")
            try expectSymbol("}", "',' or '}' in the map")
            return .map(map)
        case .word(let word):
            switch QuerySyntax.asciiLowercased(word) {
            case "null":
                index += 1
                return .null
            case "true":
                index += 1
                return .bool(true)
            case "false":
                index += 1
                return .bool(false)
            case "timestamp", "decimal", "double":
                return try typedLiteral(QuerySyntax.asciiLowercased(word))
            default:
                break
            }
        default:
            break
        }
        throw expected("a value after '\(previousText)'")
    }

    /// `timestamp '...'`, `decimal '...'` or `double '...'`.
    private mutating func typedLiteral(_ type: String) throws(StoreError) -> Document {
        index += 1
        let token = current
        guard case .string(let text) = token.kind else { throw expected("a string after '\(type)'") }
        index += 1
        switch type {
        case "timestamp":
            guard let instant = LiteralText.instant(text) else {
                throw error("expected an ISO 8601 instant such as '2026-01-01T00:00:00.123456Z'", at: token)
            }
            return .timestamp(instant)
        case "decimal":
            guard let decimal = LiteralText.decimal(parsing: Substring(text)) else {
                throw error("expected a decimal number of at most 38 digits, or 'nan'", at: token)
            }
            return .decimal(decimal)
        default:
            guard let double = LiteralText.double(parsing: text) else {
                throw error("expected a double: a number, 'nan', 'infinity', '-infinity' or '0x' and 16 hex digits", at: token)
            }
            return .double(double)
        }
    }
}
