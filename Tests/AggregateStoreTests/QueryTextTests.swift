import AggregateStore
import Foundation
import Testing

private typealias Random = QueryFixtures.Random

@Suite("Query text")
struct QueryTextTests {
    typealias P = Query.Predicate

    static func path(_ text: String) -> FieldPath { try! FieldPath(text) }
    static func cmp(_ field: String, _ op: Comparison, _ value: Document) -> P { .compare(path(field), op, value) }

    // MARK: Round trip

    @Test func randomQueriesRoundTripExactly() throws {
        var random = Random(seed: 0x7E47_0001)
        for _ in 0..<3000 {
            let query = QueryFixtures.anyQuery(&random)
            let text = query.description
            let parsed = try Query(parsing: text)
            #expect(parsed == query, "\(text)")
            #expect(parsed.description == text)
        }
    }

    @Test func randomPredicatesRoundTripExactly() throws {
        var random = Random(seed: 0x7E47_0002)
        for _ in 0..<3000 {
            let predicate = QueryFixtures.anyPredicate(&random, depth: 6)
            let parsed = try P(parsing: predicate.description)
            #expect(parsed == predicate, "\(predicate)")
        }
    }

    @Test func everyDoubleAndDecimalRoundTripsBitForBit() throws {
        var random = Random(seed: 0x7E47_0003)
        for _ in 0..<5000 {
            let double = Double(bitPattern: random.next())
            let query = Query(table: "T", where: .compare("x", .eq, .double(double)))
            guard case .compare(_, _, .double(let back)) = try Query(parsing: query.description).predicate else {
                Issue.record("not a double: \(query)")
                continue
            }
            #expect(back.bitPattern == double.bitPattern, "\(query)")
            let mantissa = UInt128(random.next()) << 64 | UInt128(random.next())
            let decimal = QueryFixtures.decimal(negative: random.chance(50), exponent: Int8.random(in: -128...127, using: &random),
                                                mantissa: mantissa >> Int.random(in: 0...127, using: &random))
            let decimalQuery = Query(table: "T", where: .compare("x", .eq, decimal))
            #expect(try Query(parsing: decimalQuery.description) == decimalQuery, "\(decimalQuery)")
            let timestamp = Document.timestamp(Timestamp(microsecondsSinceEpoch: Int64(bitPattern: random.next())))
            let timestampQuery = Query(table: "T", where: .compare("x", .eq, timestamp))
            #expect(try Query(parsing: timestampQuery.description) == timestampQuery, "\(timestampQuery)")
        }
        for extreme in [Int64.min, Int64.max, 0, -1, 1] {
            let query = Query(table: "T", where: .isIn("x", [.integer(extreme), .timestamp(Timestamp(microsecondsSinceEpoch: extreme))]))
            #expect(try Query(parsing: query.description) == query, "\(query)")
        }
    }

    @Test func fieldPathsRoundTripThroughTheirDescription() throws {
        var random = Random(seed: 0x7E47_0004)
        for _ in 0..<2000 {
            let path = QueryFixtures.anyPath(&random)
            #expect(try FieldPath(path.description) == path, "\(path)")
        }
    }

    // MARK: Hand-written texts

    static let brief = """
        from SalesOrder where status = 'paid' and (total >= 100 or customerId in ('c-1', 'c-2')) \
        and not note is null and name like 'A\\%%' ci order by placedAt desc, total limit 20 offset 40 select id, status
        """

    static let parsed: [(String, Query)] = [
        ("from SalesOrder", Query(table: "SalesOrder")),
        (brief, Query(
            table: "SalesOrder",
            where: .and([
                cmp("status", .eq, "paid"),
                .or([cmp("total", .gte, 100), .isIn(path("customerId"), ["c-1", "c-2"])]),
                .not(.isNull(path("note"))),
                .match(path("name"), .like, "A\\%%", caseInsensitive: true),
            ]),
            order: [SortKey(path("placedAt"), descending: true), SortKey(path("total"))],
            offset: 40, limit: 20, projection: [.id, path("status")])),
        ("FROM t WHERE a IS NOT NULL ORDER BY b ASC, c DESC LIMIT 5 OFFSET 0",
         Query(table: "t", where: .isNotNull(path("a")), order: [SortKey(path("b")), SortKey(path("c"), descending: true)], limit: 5)),
        ("from t where a <> 1", Query(table: "t", where: cmp("a", .ne, 1))),
        ("from t where a != 1", Query(table: "t", where: cmp("a", .ne, 1))),
        ("from t where a < 1 or a <= 2 or a > 3 or a >= 4", Query(table: "t", where: .or([cmp("a", .lt, 1), cmp("a", .lte, 2), cmp("a", .gt, 3), cmp("a", .gte, 4)]))),
        ("from t where a = 'it''s'", Query(table: "t", where: cmp("a", .eq, "it's"))),
        ("from t where a = '日本 ''é'''", Query(table: "t", where: cmp("a", .eq, "日本 'é'"))),
        ("from t where a = -5", Query(table: "t", where: cmp("a", .eq, -5))),
        ("from t where a = -9223372036854775808", Query(table: "t", where: cmp("a", .eq, .integer(.min)))),
        ("from t where a = 1.5", Query(table: "t", where: cmp("a", .eq, 1.5))),
        ("from t where a = 1e3", Query(table: "t", where: cmp("a", .eq, .double(1000)))),
        ("from t where a = -2.5E-3", Query(table: "t", where: cmp("a", .eq, .double(-0.0025)))),
        ("from t where a = 12.50d", Query(table: "t", where: cmp("a", .eq, .decimal(Decimal(string: "12.5")!)))),
        ("from t where a = decimal '12.50'", Query(table: "t", where: cmp("a", .eq, .decimal(Decimal(string: "12.5")!)))),
        ("from t where a = 1e2d", Query(table: "t", where: cmp("a", .eq, .decimal(100)))),
        ("from t where a = DECIMAL 'NaN'", Query(table: "t", where: cmp("a", .eq, .decimal(.nan)))),
        ("from t where a = double 'nan'", Query(table: "t", where: cmp("a", .eq, .double(.nan)))),
        ("from t where a = double '-infinity'", Query(table: "t", where: cmp("a", .eq, .double(-.infinity)))),
        ("from t where a = timestamp '2026-01-01T00:00:00.123456Z'",
         Query(table: "t", where: cmp("a", .eq, .timestamp(Timestamp(microsecondsSinceEpoch: 1_767_225_600_123_456))))),
        ("from t where a = timestamp '1969-12-31T23:59:59.999999Z'",
         Query(table: "t", where: cmp("a", .eq, .timestamp(Timestamp(microsecondsSinceEpoch: -1))))),
        ("from t where a = x'00fF'", Query(table: "t", where: cmp("a", .eq, .bytes([0, 255])))),
        ("from t where a = X''", Query(table: "t", where: cmp("a", .eq, .bytes([])))),
        ("from t where a = null or a = true or a = FALSE", Query(table: "t", where: .or([cmp("a", .eq, nil), cmp("a", .eq, true), cmp("a", .eq, false)]))),
        ("from t where a = [1, 'a', [], {}]", Query(table: "t", where: cmp("a", .eq, [1, "a", [], [:]]))),
        ("from t where a = {'k': 1, 'j': [null]}", Query(table: "t", where: cmp("a", .eq, ["k": 1, "j": [nil]]))),
        ("from `my table` where `a-b`.c = 1 and `order`.`x``y` = 2",
         Query(table: "my table", where: .and([.compare(try! FieldPath(components: ["a-b", "c"]), .eq, 1),
                                               .compare(try! FieldPath(components: ["order", "x`y"]), .eq, 2)]))),
        ("from t where timestamp = 1", Query(table: "t", where: cmp("timestamp", .eq, 1))),
        ("from t where true", Query(table: "t")),
        ("from t where false", Query(table: "t", where: .none)),
        ("from t where and()", Query(table: "t", where: .and([]))),
        ("from t where or()", Query(table: "t", where: .or([]))),
        ("from t where or(a = 1)", Query(table: "t", where: .or([cmp("a", .eq, 1)]))),
        ("from t where and(a = 1 or b = 2, c = 3)", Query(table: "t", where: .and([.or([cmp("a", .eq, 1), cmp("b", .eq, 2)]), cmp("c", .eq, 3)]))),
        ("from t where a in (1) and b not in ()", Query(table: "t", where: .and([.isIn(path("a"), [1]), .notIn(path("b"), [])]))),
        ("from t where a starts with 'x' ci or a ends with '%' or a contains '_' CI",
         Query(table: "t", where: .or([.match(path("a"), .startsWith, "x", caseInsensitive: true), .match(path("a"), .endsWith, "%", caseInsensitive: false),
                                       .match(path("a"), .contains, "_", caseInsensitive: true)]))),
        ("from t where a = 1 or b = 2 and c = 3", Query(table: "t", where: .or([cmp("a", .eq, 1), .and([cmp("b", .eq, 2), cmp("c", .eq, 3)])]))),
        ("from t where not a = 1 and b = 2", Query(table: "t", where: .and([.not(cmp("a", .eq, 1)), cmp("b", .eq, 2)]))),
        ("from t where not (a = 1 and b = 2)", Query(table: "t", where: .not(.and([cmp("a", .eq, 1), cmp("b", .eq, 2)])))),
        ("from t where not not a is null", Query(table: "t", where: .not(.not(.isNull(path("a")))))),
        ("from t where (a = 1 or b = 2) or c = 3", Query(table: "t", where: .or([.or([cmp("a", .eq, 1), cmp("b", .eq, 2)]), cmp("c", .eq, 3)]))),
        ("from t where ((a = 1))", Query(table: "t", where: cmp("a", .eq, 1))),
        ("from t select ()", Query(table: "t", projection: [])),
        ("from t select (a, b.c)", Query(table: "t", projection: [path("a"), path("b.c")])),
        ("\n\tfrom\tt\n  where a=1\r\nlimit 0 ", Query(table: "t", where: cmp("a", .eq, 1), limit: 0)),
    ]

    @Test func handWrittenTextsParseToTheirQueries() throws {
        for (text, expected) in Self.parsed {
            let query = try Query(parsing: text)
            #expect(query == expected, "\(text)")
            #expect(try Query(parsing: query.description) == query)
        }
    }

    @Test func theCanonicalFormHasMinimalParentheses() throws {
        let a = Self.cmp("a", .eq, 1), b = Self.cmp("b", .eq, 2), c = Self.cmp("c", .eq, 3)
        let expectations: [(P, String)] = [
            (.and([a, .or([b, c])]), "a = 1 and (b = 2 or c = 3)"),
            (.or([a, .and([b, c])]), "a = 1 or b = 2 and c = 3"),
            (.not(.or([a, b])), "not (a = 1 or b = 2)"),
            (.not(.and([a, b])), "not (a = 1 and b = 2)"),
            (.and([.not(a), b]), "not a = 1 and b = 2"),
            (.and([.and([a, b]), c]), "(a = 1 and b = 2) and c = 3"),
            (.or([.or([a, b]), c]), "(a = 1 or b = 2) or c = 3"),
            (.and([a]), "and(a = 1)"),
            (.or([]), "or()"),
            (.not(.not(.isNull("a"))), "not not a is null"),
            (.match("name", .like, "A\\%%", caseInsensitive: true), "name like 'A\\%%' ci"),
            (.compare(try! FieldPath(components: ["order", "a b"]), .eq, "x"), "`order`.`a b` = 'x'"),
            (.compare("a", .eq, .decimal(Decimal(string: "12.50")!)), "a = 12.5d"),
            (.compare("a", .eq, .decimal(Decimal(string: "-0.001")!)), "a = -0.001d"),
            (.compare("a", .eq, .double(1)), "a = 1.0"),
            (.compare("a", .eq, .double(-0.0)), "a = -0.0"),
            (.compare("a", .eq, .timestamp(Timestamp(microsecondsSinceEpoch: 0))), "a = timestamp '1970-01-01T00:00:00Z'"),
            (.notIn("a", [.bytes([0xAB]), "x"]), "a not in (x'ab', 'x')"),
        ]
        for (predicate, text) in expectations {
            #expect(predicate.description == text)
        }
        #expect(try Query(parsing: Self.brief).description == Self.brief)
    }

    // MARK: Errors

    static let malformed: [(String, Int, String)] = [
        ("", 1, "expected 'from', found the end of the text"),
        ("select x", 1, "expected 'from', found 'select'"),
        ("from", 5, "expected a table name after 'from', found the end of the text"),
        ("from T where", 13, "expected a field"),
        ("from T where a = and b = 1", 18, "expected a value after '=', found 'and'"),
        ("from T where a = 'x", 18, "unterminated string"),
        ("from T where a == 1", 17, "expected a value after '=', found '='"),
        ("from T where a", 15, "expected an operator after 'a'"),
        ("from T where (a = 1", 20, "expected ')'"),
        ("from T where a in (1, 2", 24, "expected ',' or ')'"),
        ("from T limit -1", 14, "expected a non-negative integer after 'limit'"),
        ("from T limit 1 where a = 1", 16, "expected 'offset', 'after', 'select' or the end of the text"),
        ("from T where é = 1", 14, "unexpected character 'é'"),
        ("from T where a = 1 ci", 20, "found 'ci'"),
        ("from T where a = 99999999999999999999", 18, "does not fit in 64 bits"),
        ("from T where a = x'0'", 18, "even number of hexadecimal digits"),
        ("from T where a = x'zz'", 20, "expected a hexadecimal digit"),
        ("from T where a = timestamp '2026-13-01'", 28, "expected an ISO 8601 instant"),
        ("from T after 'abc!'", 14, "malformed query cursor"),
        ("from T order x", 14, "expected 'by' after 'order', found 'x'"),
        ("from T where order = 1", 14, "found the keyword 'order'"),
        ("from `` where", 6, "must not be empty"),
        ("from T where a = 1.5.3", 21, "after the number"),
        ("from T where a = 1 and", 23, "expected a field"),
        ("from T where not", 17, "expected a field"),
        ("from T where a is", 18, "expected 'null' or 'not null' after 'is'"),
        ("from T where a like 5", 21, "expected a string after 'like'"),
        ("from T where s = 'éé' 1", 23, "found '1'"),
        ("from T where a = 1 order by", 28, "expected a field after 'order by'"),
        ("from T where a ! 1", 16, "expected '!='"),
        ("from T where a = decimal '1e999'", 26, "expected a decimal"),
        ("from T where a = [1, 2", 23, "expected ',' or ']'"),
        ("from T where a = {'k': 1, 'k': 2}", 27, "repeated"),
        ("from T select", 14, "expected a field"),
        ("from T where a = 1e999", 18, "out of the range of a double"),
        ("from T where a not like 'x'", 20, "expected 'in' after 'not', found 'like'"),
        ("from T where a starts 'x'", 23, "expected 'with' after 'starts'"),
    ]

    @Test func malformedTextsNameTheColumnAndWhatWasExpected() {
        for (text, column, fragment) in Self.malformed {
            do {
                let query = try Query(parsing: text)
                Issue.record("parsed \(text) as \(query)")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.hasPrefix("query text, column \(column): "), "\(text): \(error.message)")
                #expect(error.message.contains(fragment), "\(text): \(error.message)")
            }
        }
    }

    @Test func nestingIsLimitedTo64Levels() throws {
        func parens(_ depth: Int) -> String { "from T where " + String(repeating: "(", count: depth) + "a = 1" + String(repeating: ")", count: depth) }
        func nots(_ depth: Int) -> String { "from T where " + String(repeating: "not ", count: depth) + "a = 1" }
        func arrays(_ depth: Int) -> String { "from T where a = " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) }
        func ands(_ depth: Int) -> String { "from T where " + String(repeating: "and(", count: depth) + String(repeating: ")", count: depth) }
        for make in [parens, nots, arrays, ands] {
            #expect(throws: Never.self) { try Query(parsing: make(64)) }
            #expect { try Query(parsing: make(65)) } throws: { error in
                (error as? StoreError)?.message.contains("deeper than 64") == true
            }
            #expect(throws: StoreError.self) { try Query(parsing: make(200_000)) }
        }
        let deepest = try Query(parsing: arrays(64))
        guard case .compare(_, _, let value) = deepest.predicate else { throw StoreError(.invalidArgument, "not a comparison") }
        #expect(value.depth == 64)
    }

    @Test func hostileTextNeverTraps() {
        var random = Random(seed: 0x7E47_0005)
        let fragments = ["from", "where", "order", "by", "limit", "offset", "after", "select", "and", "or", "not", "(", ")", ",",
                         "'", "''", "`", "=", "!=", "<>", "<", ">=", "in", "is", "null", "like", "starts", "with", "ci", "x'",
                         "1", "-", "1.5e", "9d", "timestamp", "decimal", "double", "[", "]", "{", "}", ":", ".", "a", "é", "\u{0}",
                         " ", "\n", "true", "false", "\\", "%", "_"]
        var valid = 0
        for _ in 0..<20_000 {
            let text = (0..<Int.random(in: 0...14, using: &random)).map { _ in random.pick(fragments) }.joined(separator: random.chance(70) ? " " : "")
            do {
                let query = try Query(parsing: "from T " + text)
                valid += 1
                #expect(try Query(parsing: query.description) == query, "\(text)")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.hasPrefix("query text, column "))
            }
        }
        #expect(valid > 100)
        // Mutations of valid text: drop, duplicate or replace one character.
        let seeds = Self.parsed.map(\.0)
        for _ in 0..<20_000 {
            var characters = Array(random.pick(seeds))
            guard !characters.isEmpty else { continue }
            let position = Int.random(in: 0..<characters.count, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0: characters.remove(at: position)
            case 1: characters.insert(characters[position], at: position)
            default: characters[position] = random.pick(["'", "(", ")", "`", "-", "x", "0", " ", "é", "["])
            }
            do {
                let query = try Query(parsing: String(characters))
                #expect(try Query(parsing: query.description) == query)
            } catch {
                #expect(error.code == .invalidArgument)
            }
        }
    }

    @Test func predicateAndFieldPathTextErrors() throws {
        #expect { try P(parsing: "a = 1 b") } throws: { error in
            (error as? StoreError)?.message == "predicate text, column 7: expected 'and', 'or' or the end of the text, found 'b'"
        }
        func parse(_ text: String) throws(StoreError) -> FieldPath { try FieldPath(text) }
        for bad in ["", "a..b", "a.", ".a", "items.0", "a-b", "`a", "a b", "é"] {
            #expect(throws: StoreError.self, "\(bad)") { try parse(bad) }
        }
        #expect(throws: StoreError.self) { try FieldPath(components: []) }
        #expect(throws: StoreError.self) { try FieldPath(components: ["a", ""]) }
        #expect(try parse("order.limit").components == ["order", "limit"])
        #expect(try parse("`a.b`.c").components == ["a.b", "c"])
        #expect(try parse(" a . b ").components == ["a", "b"])
        #expect(FieldPath.id.description == "id")
        #expect(try FieldPath(components: ["order"]).description == "`order`")
    }
}
