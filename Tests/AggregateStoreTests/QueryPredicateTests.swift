import AggregateStore
import Foundation
import Testing

private typealias Reference = QueryFixtures.Reference
private typealias Random = QueryFixtures.Random

@Suite("Query predicates")
struct QueryPredicateTests {
    typealias P = Query.Predicate

    /// 2026-01-01T00:00:00Z.
    static let newYear: Int64 = 1_767_225_600_000_000

    static let record: Document = [
        "id": "SO-1",
        "status": "paid",
        "total": 120,
        "ratio": 0.5,
        "price": .decimal(Decimal(string: "12.50")!),
        "tenth": .decimal(Decimal(string: "0.1")!),
        "nan": .double(.nan),
        "negativeZero": .double(-0.0),
        "note": nil,
        "tags": ["a", "b"],
        "address": ["city": "Lisbon", "zip": nil],
        "placedAt": .timestamp(Timestamp(microsecondsSinceEpoch: newYear)),
        "isoText": "2026-01-01T00:00:00Z",
        "name": "Ana%_\\x",
        "path": "C:\\dir",
        "big": .integer(9_007_199_254_740_993),
        "blob": .bytes([0x00, 0xFF]),
        "flag": true,
        "precomposed": "\u{E9}",
        "decomposed": "e\u{301}",
        "upper": "\u{C9}COLE",
    ]

    static func path(_ text: String) -> FieldPath { try! FieldPath(text) }
    static func cmp(_ field: String, _ op: Comparison, _ value: Document) -> P { .compare(path(field), op, value) }
    static func str(_ field: String, _ kind: StringMatch, _ pattern: String, ci: Bool = false) -> P {
        .match(path(field), kind, pattern, caseInsensitive: ci)
    }
    static func ts(_ micros: Int64) -> Document { .timestamp(Timestamp(microsecondsSinceEpoch: micros)) }
    static func dec(_ text: String) -> Document { .decimal(Decimal(string: text)!) }

    /// Hand-written expectations, one per rule of Docs/QUERY.md.
    static let table: [(P, Bool, String)] = [
        // Equality and order on present values.
        (cmp("status", .eq, "paid"), true, "string eq"),
        (cmp("status", .ne, "paid"), false, "string ne"),
        (cmp("status", .eq, "PAID"), false, "eq is case-sensitive"),
        (cmp("status", .gt, "PAID"), true, "strings order by bytes: lowercase after uppercase"),
        (cmp("status", .lt, "pay"), true, "prefix order"),
        (cmp("precomposed", .eq, "e\u{301}"), false, "no Unicode normalization: bytes differ"),
        // Null and missing.
        (cmp("missing", .eq, nil), true, "missing = null"),
        (cmp("note", .eq, nil), true, "null = null"),
        (cmp("missing", .ne, "x"), true, "missing != value"),
        (cmp("note", .ne, "x"), true, "null != value"),
        (cmp("note", .ne, nil), false, "null != null is false"),
        (cmp("status", .ne, nil), true, "value != null"),
        (cmp("status", .eq, nil), false, "value = null"),
        (cmp("missing", .gt, 1), false, "ordering with missing"),
        (cmp("missing", .lt, 1), false, "ordering with missing"),
        (cmp("note", .gte, nil), false, "ordering with null, even null"),
        (cmp("note", .lte, nil), false, "ordering with null, even null"),
        (cmp("status", .gt, nil), false, "ordering against a null literal"),
        (cmp("address.zip", .eq, nil), true, "nested null"),
        (cmp("address.city.x", .eq, nil), true, "a path through a string is missing"),
        (cmp("tags.`0`", .eq, "a"), false, "paths do not index arrays"),
        (cmp("tags.`0`", .eq, nil), true, "paths do not index arrays: missing"),
        // Numbers across kinds.
        (cmp("total", .eq, 120.0), true, "integer = double"),
        (cmp("total", .eq, dec("120.00")), true, "integer = decimal"),
        (cmp("total", .gt, 119.5), true, "integer > double"),
        (cmp("total", .gte, 120), true, "gte equal"),
        (cmp("total", .lt, 120), false, "lt equal"),
        (cmp("total", .lte, 120), true, "lte equal"),
        (cmp("ratio", .eq, dec("0.5")), true, "double = decimal exactly"),
        (cmp("ratio", .lt, 1), true, "double < integer"),
        (cmp("price", .eq, 12.5), true, "decimal = double"),
        (cmp("price", .gt, 12.49), true, "decimal > double"),
        (cmp("tenth", .eq, 0.1), false, "decimal 0.1 is not the double nearest 0.1"),
        (cmp("tenth", .lt, 0.1), true, "the double 0.1 is above 1/10"),
        (cmp("big", .eq, 9_007_199_254_740_992.0), false, "2^53+1 is not 2^53 (no rounding through Double)"),
        (cmp("big", .gt, 9_007_199_254_740_992.0), true, "2^53+1 > 2^53"),
        (cmp("negativeZero", .eq, 0), true, "-0.0 = 0"),
        (cmp("nan", .eq, .double(.nan)), true, "NaN = NaN in the total order"),
        (cmp("nan", .lt, .double(-.infinity)), true, "NaN sorts below every number"),
        (cmp("nan", .eq, dec("0")), false, "NaN is not zero"),
        // Other kinds.
        (cmp("total", .eq, "120"), false, "number = string"),
        (cmp("total", .ne, "120"), true, "number != string"),
        (cmp("total", .gt, "1"), false, "number > string is false"),
        (cmp("total", .lt, "1"), false, "number < string is false"),
        (cmp("flag", .eq, true), true, "bool"),
        (cmp("flag", .eq, 1), false, "bool is not a number"),
        (cmp("flag", .gt, false), true, "false < true"),
        (cmp("blob", .eq, .bytes([0x00, 0xFF])), true, "bytes"),
        (cmp("blob", .eq, "AP8="), false, "bytes are not their base64"),
        (cmp("tags", .eq, ["a", "b"]), true, "arrays compare as a whole"),
        (cmp("tags", .eq, ["a"]), false, "arrays compare as a whole, not element-contains"),
        (cmp("tags", .eq, "a"), false, "an array is not its element"),
        (cmp("tags", .gt, ["a"]), true, "arrays order element by element"),
        (cmp("address", .eq, ["city": "Lisbon", "zip": nil]), true, "maps compare as a whole"),
        (cmp("address", .eq, ["zip": nil, "city": "Lisbon"]), false, "maps compare in key order"),
        // Timestamps.
        (cmp("placedAt", .eq, ts(newYear)), true, "timestamp = timestamp"),
        (cmp("placedAt", .eq, "2026-01-01T00:00:00Z"), true, "timestamp = ISO string"),
        (cmp("placedAt", .eq, "2026-01-01T01:00:00+01:00"), true, "ISO string with an offset"),
        (cmp("placedAt", .eq, "2026-01-01T00:00:00.000Z"), true, "ISO string with milliseconds"),
        (cmp("placedAt", .eq, "2026-01-01 00:00:00Z"), true, "ISO string with a space"),
        (cmp("placedAt", .eq, "2026-01-01T00:00Z"), true, "ISO string without seconds"),
        (cmp("placedAt", .eq, "2026-01-01T00:00:00"), true, "ISO string without offset is UTC"),
        (cmp("placedAt", .eq, "2026-01-01"), true, "ISO date is midnight UTC"),
        (cmp("placedAt", .gt, "2025-12-31T23:59:59.999999Z"), true, "ISO ordering"),
        (cmp("placedAt", .gte, "2026-01-01T00:00:00.000001Z"), false, "microsecond precision"),
        (cmp("placedAt", .eq, "2026-01-01T00:00:00.000000001Z"), false, "sub-microsecond digits: unparsable"),
        (cmp("placedAt", .eq, "2026-02-30"), false, "impossible date: unparsable"),
        (cmp("placedAt", .eq, "2026-01-01T24:00:00Z"), false, "hour 24: unparsable"),
        (cmp("placedAt", .lt, "garbage"), false, "unparsable: ordering false"),
        (cmp("placedAt", .eq, "garbage"), false, "unparsable: eq false"),
        (cmp("placedAt", .ne, "garbage"), true, "unparsable: ne true"),
        (cmp("placedAt", .eq, 1_767_225_600), false, "a timestamp is not a number"),
        (cmp("isoText", .eq, ts(newYear)), true, "ISO string field = timestamp literal"),
        (cmp("isoText", .lt, ts(newYear + 1)), true, "ISO string field < timestamp literal"),
        (cmp("status", .eq, ts(newYear)), false, "non-ISO string field against a timestamp"),
        // in / not in.
        (.isIn(path("status"), ["new", "paid"]), true, "in"),
        (.isIn(path("status"), []), false, "empty in"),
        (.isIn(path("missing"), ["a"]), false, "missing in"),
        (.isIn(path("missing"), [nil]), true, "missing in (null)"),
        (.isIn(path("note"), [nil, "x"]), true, "null in (null, x)"),
        (.isIn(path("total"), ["120", 120.0]), true, "in uses numeric eq"),
        (.notIn(path("status"), ["new"]), true, "not in"),
        (.notIn(path("status"), ["paid"]), false, "not in, present"),
        (.notIn(path("status"), []), true, "empty not in"),
        (.notIn(path("missing"), ["a"]), true, "missing not in (a)"),
        (.notIn(path("missing"), ["a", nil]), false, "missing not in (a, null)"),
        (.notIn(path("total"), [dec("120")]), false, "not in uses numeric ne"),
        // is null.
        (.isNull(path("missing")), true, "missing is null"),
        (.isNull(path("note")), true, "null is null"),
        (.isNull(path("status")), false, "value is null"),
        (.isNotNull(path("missing")), false, "missing is not null"),
        (.isNotNull(path("note")), false, "null is not null"),
        (.isNotNull(path("tags")), true, "array is not null"),
        // like.
        (str("name", .like, "Ana\\%\\_\\\\x"), true, "escaped %, _ and backslash"),
        (str("name", .like, "Ana%"), true, "trailing %"),
        (str("name", .like, "ana%"), false, "case-sensitive"),
        (str("name", .like, "ana%", ci: true), true, "ci"),
        (str("name", .like, "A_a%"), true, "_ is one character"),
        (str("name", .like, "An"), false, "anchored at the end"),
        (str("name", .like, "na%"), false, "anchored at the start"),
        (str("name", .like, "%\\\\x"), true, "escaped backslash"),
        (str("name", .like, "Ana__\\\\x"), true, "_ matches % and _"),
        (str("name", .like, "Ana\\%"), false, "escaped % is literal"),
        (str("name", .like, "%%%"), true, "runs of %"),
        (str("name", .like, ""), false, "empty pattern matches only the empty string"),
        (str("path", .like, "C:\\d%"), true, "a backslash before another character is literal"),
        (str("path", .like, "C:\\"), false, "a trailing backslash is literal, and anchored"),
        (str("total", .like, "1%"), false, "like on a number is false"),
        (str("missing", .like, "%"), false, "like on missing is false"),
        (str("note", .like, "%"), false, "like on null is false"),
        (str("precomposed", .like, "_"), true, "_ is one Unicode scalar"),
        (str("decomposed", .like, "_"), false, "a decomposed é is two scalars"),
        (str("decomposed", .like, "__"), true, "a decomposed é is two scalars"),
        // starts with / ends with / contains are literal.
        (str("name", .startsWith, "Ana%"), true, "starts with: % is literal"),
        (str("name", .startsWith, "An_"), false, "starts with: _ is literal"),
        (str("name", .startsWith, "ana", ci: true), true, "starts with ci"),
        (str("name", .endsWith, "\\x"), true, "ends with: backslash literal"),
        (str("name", .endsWith, "X", ci: true), true, "ends with ci"),
        (str("name", .contains, "%_"), true, "contains: literal %_"),
        (str("name", .contains, "a_"), false, "contains: _ is not a wildcard"),
        (str("status", .contains, ""), true, "contains empty"),
        (str("upper", .startsWith, "\u{E9}c", ci: true), true, "ci lowercases non-ASCII"),
        (str("precomposed", .startsWith, "e"), false, "no normalization in starts with"),
        (str("decomposed", .startsWith, "e"), true, "decomposed é starts with e"),
        (str("tags", .contains, "a"), false, "contains on an array is false"),
        // Combinators.
        (.and([]), true, "and() is true"),
        (.or([]), false, "or() is false"),
        (.all, true, "true"),
        (.none, false, "false"),
        (.not(.all), false, "not true"),
        (.and([cmp("status", .eq, "paid"), .or([cmp("total", .gte, 100), cmp("missing", .eq, 1)])]), true, "nested"),
        (.and([cmp("status", .eq, "paid"), .not(.isNull(path("note")))]), false, "not is null"),
    ]

    static let isoStrings: [String: Int64] = [
        "2026-01-01T00:00:00Z": newYear, "2026-01-01T01:00:00+01:00": newYear, "2026-01-01T00:00:00.000Z": newYear,
        "2026-01-01 00:00:00Z": newYear, "2026-01-01T00:00Z": newYear, "2026-01-01T00:00:00": newYear,
        "2026-01-01": newYear, "2025-12-31T23:59:59.999999Z": newYear - 1, "2026-01-01T00:00:00.000001Z": newYear + 1,
    ]

    @Test func everyRuleMatchesItsHandWrittenExpectation() {
        for (text, micros) in Self.isoStrings {
            Reference.lock.lock()
            Reference.knownInstants[text] = micros
            Reference.lock.unlock()
        }
        for (predicate, expected, rule) in Self.table {
            #expect(predicate.matches(Self.record) == expected, "\(rule): \(predicate)")
            #expect(Reference.matches(predicate, Self.record) == expected, "reference disagrees on \(rule): \(predicate)")
        }
    }

    @Test func neIsAlwaysTheNegationOfEq() {
        var random = Random(seed: 0x5EED_0001)
        for _ in 0..<3000 {
            let record = QueryFixtures.record(&random)
            let path = random.pick(QueryFixtures.paths)
            let literal = QueryFixtures.scalar(&random)
            let eq = P.compare(path, .eq, literal).matches(record)
            let ne = P.compare(path, .ne, literal).matches(record)
            #expect(eq != ne, "\(path) vs \(literal) in \(record)")
            // in/not in of one element are eq/ne.
            #expect(P.isIn(path, [literal]).matches(record) == eq)
            #expect(P.notIn(path, [literal]).matches(record) == ne)
        }
    }

    @Test func randomPredicatesAgreeWithTheReference() {
        var random = Random(seed: 0x5EED_0002)
        var matched = 0
        for _ in 0..<4000 {
            let record = QueryFixtures.record(&random)
            let predicate = QueryFixtures.predicate(&random, depth: 3)
            let actual = predicate.matches(record)
            if actual { matched += 1 }
            #expect(actual == Reference.matches(predicate, record), "\(predicate) on \(record)")
        }
        // Both outcomes are well represented, so the comparison means something.
        #expect(matched > 800 && matched < 3200)
    }

    @Test func randomLikePatternsAgreeWithTheReference() {
        var random = Random(seed: 0x5EED_0003)
        let alphabet: [String] = ["a", "b", "%", "_", "\\", "é"]
        for _ in 0..<5000 {
            let text = (0..<Int.random(in: 0...6, using: &random)).map { _ in random.pick(["a", "b", "%", "_", "\\"]) }.joined()
            let pattern = (0..<Int.random(in: 0...5, using: &random)).map { _ in random.pick(alphabet) }.joined()
            let record: Document = ["s": .string(text)]
            let ci = random.chance(30)
            let predicate = P.match("s", .like, pattern, caseInsensitive: ci)
            #expect(predicate.matches(record) == Reference.stringMatch(.string(text), .like, pattern, ci), "'\(text)' like '\(pattern)'")
        }
    }

    @Test func likeOnLongInputsStaysFast() {
        let text = String(repeating: "a", count: 20_000) + "b"
        let record: Document = ["s": .string(text)]
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            #expect(!P.match("s", .like, "%a%a%a%a%c", caseInsensitive: false).matches(record))
            #expect(P.match("s", .like, "%a%b", caseInsensitive: false).matches(record))
        }
        #expect(elapsed < .seconds(5))
    }

    @Test func escapeLikeMakesAPatternLiteral() {
        for text in ["50%_off", "a\\b", "%", "_", "\\", "plain", ""] {
            let record: Document = ["s": .string(text)]
            #expect(P.match("s", .like, StringMatch.escapeLike(text), caseInsensitive: false).matches(record))
            #expect(!P.match("s", .like, StringMatch.escapeLike(text) + "x", caseInsensitive: false).matches(record))
        }
        #expect(!P.match("s", .like, StringMatch.escapeLike("a_c"), caseInsensitive: false).matches(["s": "abc"]))
    }

    @Test func operatorsBuildFlatConjunctionsAndDisjunctions() {
        let a = Self.cmp("a", .eq, 1), b = Self.cmp("b", .eq, 2), c = Self.cmp("c", .eq, 3)
        #expect((a && b && c) == .and([a, b, c]))
        #expect((a || b || c) == .or([a, b, c]))
        #expect((a && (b || c)) == .and([a, .or([b, c])]))
        #expect(!a == .not(a))
    }

    @Test func nonMapRecordsHaveOnlyMissingFields() {
        for record: Document in [nil, 1, "x", ["a"], .bytes([1])] {
            #expect(P.isNull("a").matches(record))
            #expect(P.compare("a", .ne, 1).matches(record))
            #expect(!P.compare("a", .eq, 1).matches(record))
        }
    }
}
