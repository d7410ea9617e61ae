import AggregateStore
import Foundation

/// Helpers shared by the Query*Tests suites (this file holds no tests): an independent
/// reference evaluator of predicates, written from Docs/QUERY.md and not from the
/// implementation, and seeded generators of documents, predicates and queries.
enum QueryFixtures {
    /// SplitMix64, for reproducible randomized tests.
    /// The seeded generator the record tests use.
    typealias Random = RecordFixtures.TestRandom

    // MARK: - Reference evaluator

    /// The reference semantics, stated as plainly as possible.
    enum Reference {
        /// Walks maps only; anything else on the way, or an absent key, gives null.
        static func field(_ record: Document, _ path: FieldPath) -> Document {
            var value = record
            for name in path.components {
                guard case .map(let map) = value else { return .null }
                guard let index = map.keys.firstIndex(where: { Array($0.utf8) == Array(name.utf8) }) else { return .null }
                value = map.values[index]
            }
            return value
        }

        /// ISO strings the generator produced, with their instants: the reference "parses"
        /// only these, so it shares no parsing code with the implementation.
        nonisolated(unsafe) static var knownInstants: [String: Int64] = [:]
        static let lock = NSLock()

        static func instant(_ text: String) -> Int64? {
            lock.lock()
            defer { lock.unlock() }
            return knownInstants[text]
        }

        static func register(_ micros: Int64) -> String {
            let text = Timestamp(microsecondsSinceEpoch: micros).iso8601
            lock.lock()
            knownInstants[text] = micros
            lock.unlock()
            return text
        }

        enum Kind { case null, bool, number, string, timestamp, bytes, array, map }

        static func kind(_ value: Document) -> Kind {
            switch value {
            case .null: .null
            case .bool: .bool
            case .integer, .double, .decimal: .number
            case .string: .string
            case .timestamp: .timestamp
            case .bytes: .bytes
            case .array: .array
            case .map: .map
            }
        }

        /// -1, 0, 1, or nil when the two values are not comparable.
        static func order(_ a: Document, _ b: Document) -> Int? {
            var left = a
            var right = b
            if case .timestamp = a, case .string(let text) = b {
                guard let micros = instant(text) else { return nil }
                right = .timestamp(Timestamp(microsecondsSinceEpoch: micros))
            }
            if case .string(let text) = a, case .timestamp = b {
                guard let micros = instant(text) else { return nil }
                left = .timestamp(Timestamp(microsecondsSinceEpoch: micros))
            }
            guard kind(left) == kind(right) else { return nil }
            switch Document.compare(left, right) {
            case .orderedAscending: return -1
            case .orderedSame: return 0
            case .orderedDescending: return 1
            }
        }

        static func compare(_ value: Document, _ comparison: Comparison, _ literal: Document) -> Bool {
            switch (value.isNull, literal.isNull, comparison) {
            case (true, true, .eq): return true
            case (true, true, .ne): return false
            case (true, false, .ne), (false, true, .ne): return true
            case (true, _, _), (_, true, _): return false
            default: break
            }
            guard let order = order(value, literal) else { return comparison == .ne }
            switch comparison {
            case .eq: return order == 0
            case .ne: return order != 0
            case .gt: return order > 0
            case .gte: return order >= 0
            case .lt: return order < 0
            case .lte: return order <= 0
            }
        }

        /// A recursive LIKE matcher over Unicode scalars (a different algorithm from the
        /// implementation's iterative one).
        static func like(_ text: [Unicode.Scalar], _ pattern: [Unicode.Scalar]) -> Bool {
            enum Piece: Equatable { case literal(Unicode.Scalar), one, many }
            var pieces: [Piece] = []
            var index = 0
            while index < pattern.count {
                let scalar = pattern[index]
                if scalar == "\\", index + 1 < pattern.count, ["%", "_", "\\"].contains(pattern[index + 1]) {
                    pieces.append(.literal(pattern[index + 1]))
                    index += 2
                    continue
                }
                pieces.append(scalar == "%" ? .many : scalar == "_" ? .one : .literal(scalar))
                index += 1
            }
            var memo: [Int: Bool] = [:]
            func match(_ t: Int, _ p: Int) -> Bool {
                let key = t * (pieces.count + 1) + p
                if let known = memo[key] { return known }
                let result: Bool
                if p == pieces.count {
                    result = t == text.count
                } else {
                    switch pieces[p] {
                    case .many: result = match(t, p + 1) || (t < text.count && match(t + 1, p))
                    case .one: result = t < text.count && match(t + 1, p + 1)
                    case .literal(let scalar): result = t < text.count && text[t] == scalar && match(t + 1, p + 1)
                    }
                }
                memo[key] = result
                return result
            }
            return match(0, 0)
        }

        static func stringMatch(_ value: Document, _ kind: StringMatch, _ pattern: String, _ ci: Bool) -> Bool {
            guard case .string(let raw) = value else { return false }
            let text = Array((ci ? raw.lowercased() : raw).unicodeScalars)
            let needle = Array((ci ? pattern.lowercased() : pattern).unicodeScalars)
            switch kind {
            case .startsWith: return text.count >= needle.count && Array(text.prefix(needle.count)) == needle
            case .endsWith: return text.count >= needle.count && Array(text.suffix(needle.count)) == needle
            case .contains:
                if needle.isEmpty { return true }
                if text.count < needle.count { return false }
                return (0...(text.count - needle.count)).contains { Array(text[$0..<($0 + needle.count)]) == needle }
            case .like: return like(text, needle)
            }
        }

        static func matches(_ predicate: Query.Predicate, _ record: Document) -> Bool {
            switch predicate {
            case .all: return true
            case .none: return false
            case .and(let parts):
                for part in parts where !matches(part, record) { return false }
                return true
            case .or(let parts):
                for part in parts where matches(part, record) { return true }
                return false
            case .not(let inner): return !matches(inner, record)
            case .compare(let path, let comparison, let literal): return compare(field(record, path), comparison, literal)
            case .isIn(let path, let list):
                let value = field(record, path)
                for item in list where compare(value, .eq, item) { return true }
                return false
            case .notIn(let path, let list):
                let value = field(record, path)
                for item in list where !compare(value, .ne, item) { return false }
                return true
            case .isNull(let path): return field(record, path) == .null
            case .isNotNull(let path): return field(record, path) != .null
            case .match(let path, let kind, let pattern, let ci): return stringMatch(field(record, path), kind, pattern, ci)
            }
        }
    }

    // MARK: - Generators

    /// A decimal built from its record encoding, so any mantissa and exponent are reachable
    /// without going through the code under test.
    static func decimal(negative: Bool, exponent: Int8, mantissa: UInt128) -> Document {
        var bytes: [UInt8] = [0x01, 0x05, negative ? 1 : 0, UInt8(bitPattern: exponent)]
        var rest = mantissa
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
        return try! Document(decoding: bytes)
    }

    static func randomString(_ random: inout Random) -> String {
        let pieces = ["a", "b", "A", "é", "e\u{301}", "%", "_", "\\", "'", "''", " ", "ß", "İ", "🇵🇹", "x", "-", "\n", "`", "日"]
        return (0..<Int.random(in: 0...5, using: &random)).map { _ in random.pick(pieces) }.joined()
    }

    /// A scalar value from a pool that mixes kinds, edge numbers and ISO strings.
    static func scalar(_ random: inout Random) -> Document {
        switch Int.random(in: 0..<16, using: &random) {
        case 0: return .null
        case 1: return .bool(random.chance(50))
        case 2: return .integer(Int64.random(in: -3...3, using: &random))
        case 3: return .integer(random.pick([Int64.max, Int64.min, 9_007_199_254_740_993, 9_007_199_254_740_992]))
        case 4: return .double(random.pick([0.5, -0.0, 0.0, 2.0, -1.5, .nan, .infinity, -.infinity, 9_007_199_254_740_992.0, 0x1p63]))
        case 5: return .double(Double(Int.random(in: -6...6, using: &random)) / 2)
        case 6: return decimal(negative: random.chance(30), exponent: Int8.random(in: -2...1, using: &random),
                               mantissa: UInt128(UInt64.random(in: 0...40, using: &random)))
        case 7, 8: return .string(randomString(&random))
        case 9: return .string(Reference.register(Int64.random(in: -3...3, using: &random) * 1_000_000))
        case 10: return .timestamp(Timestamp(microsecondsSinceEpoch: Int64.random(in: -3...3, using: &random) * 1_000_000))
        case 11: return .bytes(random.chance(50) ? [] : [UInt8.random(in: 0...2, using: &random)])
        case 12: return .array(random.chance(50) ? [] : [.integer(Int64.random(in: 0...2, using: &random))])
        case 13: return .map(random.chance(50) ? [:] : ["x": .integer(Int64.random(in: 0...2, using: &random))])
        case 14: return .string(random.pick(["a%", "A_", "%", "_", "a\\%b", "ab", "AB", "", "é", "e\u{301}"]))
        default: return .decimal(Decimal(Int.random(in: -3...3, using: &random)) / 2)
        }
    }

    static let fieldNames = ["a", "b", "c"]
    static let paths: [FieldPath] = ["a", "b", "c", "n.x", "n.y", "a.z", "missing"]

    /// A record with each field present (possibly null) or missing, and a nested map `n`.
    static func record(_ random: inout Random) -> Document {
        var map = Document.Map()
        for name in fieldNames where random.chance(80) { map[name] = scalar(&random) }
        if random.chance(70) {
            var inner = Document.Map()
            for name in ["x", "y"] where random.chance(70) { inner[name] = scalar(&random) }
            map["n"] = random.chance(85) ? .map(inner) : scalar(&random)
        }
        return .map(map)
    }

    static func predicate(_ random: inout Random, depth: Int) -> Query.Predicate {
        let leaf = depth <= 0 || random.chance(55)
        if !leaf {
            switch Int.random(in: 0..<3, using: &random) {
            case 0: return .and((0..<Int.random(in: 0...3, using: &random)).map { _ in predicate(&random, depth: depth - 1) })
            case 1: return .or((0..<Int.random(in: 0...3, using: &random)).map { _ in predicate(&random, depth: depth - 1) })
            default: return .not(predicate(&random, depth: depth - 1))
            }
        }
        let path = random.pick(paths)
        switch Int.random(in: 0..<9, using: &random) {
        case 0: return random.chance(50) ? .all : .none
        case 1, 2: return .compare(path, random.pick(Comparison.allCases), scalar(&random))
        case 3: return .isIn(path, (0..<Int.random(in: 0...3, using: &random)).map { _ in scalar(&random) })
        case 4: return .notIn(path, (0..<Int.random(in: 0...3, using: &random)).map { _ in scalar(&random) })
        case 5: return .isNull(path)
        case 6: return .isNotNull(path)
        default:
            let pattern = random.chance(50) ? randomString(&random) : random.pick(["a%", "%b", "_", "%", "\\%", "a\\_%", "A", "é%", "%\\"])
            return .match(path, random.pick(StringMatch.allCases), pattern, caseInsensitive: random.chance(40))
        }
    }

    // MARK: - Generators for the text round trip

    /// Any document, with the awkward values of every kind, nested up to `depth`.
    static func anyDocument(_ random: inout Random, depth: Int) -> Document {
        switch Int.random(in: 0..<(depth > 0 ? 12 : 10), using: &random) {
        case 0: return .null
        case 1: return .bool(random.chance(50))
        case 2: return .integer(random.chance(30) ? random.pick([Int64.min, Int64.max, 0, -1]) : Int64.random(in: -1_000_000...1_000_000, using: &random))
        case 3:
            if random.chance(30) {
                return .double(random.pick([-0.0, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 0.1, 1e16, 1e-7,
                                            Double(bitPattern: 0x7FF0_0000_0000_0001), Double(bitPattern: 0xFFF8_0000_0000_00FF)]))
            }
            return .double(Double(bitPattern: random.next()))
        case 4:
            let mantissa = UInt128(random.next()) << 64 | UInt128(random.next())
            let bits = Int.random(in: 0...127, using: &random)
            return decimal(negative: random.chance(50), exponent: Int8.random(in: -128...127, using: &random), mantissa: mantissa >> bits)
        case 5: return .decimal(random.chance(50) ? .nan : Decimal(string: random.pick(["12.50", "-0.001", "1e20", "0", "123456789012345678901234567890.123"]))!)
        case 6, 7: return .string(randomString(&random))
        case 8: return .bytes((0..<Int.random(in: 0...4, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
        case 9: return .timestamp(Timestamp(microsecondsSinceEpoch: random.chance(20) ? random.pick([Int64.min, Int64.max, 0, -1]) : Int64(bitPattern: random.next())))
        case 10: return .array((0..<Int.random(in: 0...3, using: &random)).map { _ in anyDocument(&random, depth: depth - 1) })
        default:
            var map = Document.Map()
            for _ in 0..<Int.random(in: 0...3, using: &random) { map[randomString(&random)] = anyDocument(&random, depth: depth - 1) }
            return .map(map)
        }
    }

    /// A name that needs backquotes about half of the time.
    static func anyName(_ random: inout Random) -> String {
        let pool = ["status", "total", "customerId", "_x1", "order", "LIMIT", "Select", "not", "true", "in", "ci", "timestamp",
                    "x", "count", "a b", "a.b", "`", "a`b", "é", "日本", "1st", "-", "null", "with"]
        return random.pick(pool)
    }

    static func anyPath(_ random: inout Random) -> FieldPath {
        try! FieldPath(components: (0..<Int.random(in: 1...3, using: &random)).map { _ in anyName(&random) })
    }

    static func anyPredicate(_ random: inout Random, depth: Int) -> Query.Predicate {
        if depth > 0 && random.chance(45) {
            let count = random.pick([0, 1, 2, 2, 3, 4])
            switch Int.random(in: 0..<3, using: &random) {
            case 0: return .and((0..<count).map { _ in anyPredicate(&random, depth: depth - 1) })
            case 1: return .or((0..<count).map { _ in anyPredicate(&random, depth: depth - 1) })
            default: return .not(anyPredicate(&random, depth: depth - 1))
            }
        }
        let path = anyPath(&random)
        switch Int.random(in: 0..<8, using: &random) {
        case 0: return random.chance(50) ? .all : .none
        case 1, 2: return .compare(path, random.pick(Comparison.allCases), anyDocument(&random, depth: 2))
        case 3: return .isIn(path, (0..<Int.random(in: 0...3, using: &random)).map { _ in anyDocument(&random, depth: 1) })
        case 4: return .notIn(path, (0..<Int.random(in: 0...3, using: &random)).map { _ in anyDocument(&random, depth: 1) })
        case 5: return random.chance(50) ? .isNull(path) : .isNotNull(path)
        default: return .match(path, random.pick(StringMatch.allCases), randomString(&random), caseInsensitive: random.chance(50))
        }
    }

    /// A cursor for `order`, obtained the only public way: from a page.
    static func cursor(for order: [SortKey], values: [Document], id: String) -> QueryCursor {
        var record = Document.Map()
        var other = Document.Map()
        for (key, value) in zip(order, values) where key.field.components.count == 1 {
            record[key.field.components[0]] = value
            other[key.field.components[0]] = value
        }
        let query = Query(table: "T", order: order, limit: 1)
        let page = try! query.apply(to: [(id: id, record: .map(record)), (id: id + "\u{10FFFF}", record: .map(other))])
        return page.next!
    }

    static func anyQuery(_ random: inout Random) -> Query {
        var query = Query(table: anyName(&random))
        if random.chance(80) { query.predicate = anyPredicate(&random, depth: 4) }
        query.order = (0..<random.pick([0, 0, 1, 2, 3])).map { _ in SortKey(anyPath(&random), descending: random.chance(50)) }
        if random.chance(50) { query.limit = random.pick([0, 1, 20, Int.max]) }
        if random.chance(40) { query.offset = random.pick([1, 40, Int.max]) }
        if random.chance(30) {
            let values = query.order.map { _ in anyDocument(&random, depth: 1) }
            query.after = cursor(for: query.order, values: values, id: randomString(&random))
        }
        if random.chance(40) { query.projection = (0..<random.pick([0, 1, 2, 3])).map { _ in anyPath(&random) } }
        return query
    }
}

extension RecordFixtures.TestRandom {
    mutating func pick<T>(_ choices: [T]) -> T { choices[Int.random(in: 0..<choices.count, using: &self)] }
    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }
}
