import AggregateStore
import Foundation
import Testing

private typealias Reference = QueryFixtures.Reference
private typealias Random = QueryFixtures.Random

@Suite("Query ordering and pagination")
struct QueryPaginationTests {
    typealias Row = (id: String, record: Document)

    static let small: [Row] = [
        ("r1", ["g": 2, "n": "b"]),
        ("r2", ["g": nil, "n": "a"]),
        ("r3", ["n": "c"]),
        ("r4", ["g": 1.5, "n": "a"]),
        ("r5", ["g": 2.0, "n": "a"]),
        ("r6", ["g": "x", "n": "z"]),
        ("r10", ["g": 2, "n": "b"]),
    ]

    static func ids(_ page: QueryPage) -> [String] { page.rows.map(\.id) }

    /// The order of Docs/QUERY.md, written out: keys in `Document.compare` order (missing is
    /// null), descending keys reversed, then ids by UTF-8 bytes.
    static func referenceSorted(_ rows: [Row], _ order: [SortKey]) -> [Row] {
        rows.sorted { left, right in referenceBefore(left, right, order) }
    }

    static func referenceBefore(_ left: Row, _ right: Row, _ order: [SortKey]) -> Bool {
        for key in order {
            let result = Document.compare(Reference.field(left.record, key.field), Reference.field(right.record, key.field))
            if result != .orderedSame { return key.descending ? result == .orderedDescending : result == .orderedAscending }
        }
        return Array(left.id.utf8).lexicographicallyPrecedes(Array(right.id.utf8))
    }

    @Test func severalKeysNullsMissingAndTheIdTieBreak() throws {
        let byGroupThenNameDescending = Query(table: "T", order: [.ascending("g"), .descending("n")])
        #expect(Self.ids(try byGroupThenNameDescending.apply(to: Self.small)) == ["r3", "r2", "r4", "r1", "r10", "r5", "r6"])
        let byGroupDescending = Query(table: "T", order: [.descending("g")])
        #expect(Self.ids(try byGroupDescending.apply(to: Self.small)) == ["r6", "r1", "r10", "r5", "r4", "r2", "r3"])
        #expect(Self.ids(try Query(table: "T").apply(to: Self.small.reversed())) == ["r1", "r10", "r2", "r3", "r4", "r5", "r6"])
    }

    @Test func offsetAndLimit() throws {
        let query = Query(table: "T", order: [.ascending("g"), .descending("n")])
        let middle = try query.offset(2).limit(3).apply(to: Self.small)
        #expect(Self.ids(middle) == ["r4", "r1", "r10"])
        #expect(middle.next != nil)
        let tail = try query.offset(5).limit(5).apply(to: Self.small)
        #expect(Self.ids(tail) == ["r5", "r6"])
        #expect(tail.next == nil)
        #expect(try query.offset(100).apply(to: Self.small).rows.isEmpty)
        #expect(try query.limit(0).apply(to: Self.small) == QueryPage(rows: [], next: nil))
        #expect(try query.offset(Int.max).limit(Int.max).apply(to: Self.small).rows.isEmpty)
        #expect(try query.limit(Int.max).apply(to: Self.small).rows.count == 7)
        #expect(throws: StoreError.self) { try query.offset(-1).apply(to: Self.small) }
        #expect(throws: StoreError.self) { try query.limit(-1).apply(to: Self.small) }
    }

    @Test func filteringSortingAndCountingMatchTheReference() throws {
        var random = Random(seed: 0xC0_0001)
        for _ in 0..<300 {
            let rows: [Row] = (0..<Int.random(in: 0...40, using: &random)).map { index in ("id-\(index)", QueryFixtures.record(&random)) }
            let order = (0..<Int.random(in: 0...3, using: &random)).map { _ in SortKey(random.pick(QueryFixtures.paths), descending: random.chance(50)) }
            let predicate = QueryFixtures.predicate(&random, depth: 2)
            let offset = random.chance(50) ? 0 : Int.random(in: 0...10, using: &random)
            let limit: Int? = random.chance(40) ? nil : Int.random(in: 0...15, using: &random)
            let query = Query(table: "T", where: predicate, order: order, offset: offset, limit: limit)
            let matching = rows.filter { Reference.matches(predicate, $0.record) }
            let expected = Array(Self.referenceSorted(matching, order).dropFirst(offset).prefix(limit ?? .max))
            let page = try query.apply(to: rows.shuffled(using: &random))
            #expect(Self.ids(page) == expected.map(\.id), "\(query)")
            #expect(page.rows.map(\.record) == expected.map(\.record))
            #expect((page.next != nil) == (offset + expected.count < matching.count && !expected.isEmpty))
            #expect(query.count(in: rows) == matching.count)
        }
    }

    fileprivate static func randomRows(_ random: inout Random, count: Int, prefix: String) -> [Row] {
        (0..<count).map { index in
            var record = Document.Map()
            if random.chance(85) { record["g"] = random.pick([nil, 1, 2, 2.5, .decimal(3), "a", "b", true] as [Document]) }
            record["n"] = .string(String(Int.random(in: 0...5, using: &random)))
            return ("\(prefix)\(index)", .map(record))
        }
    }

    @Test func keysetPagesCoverEveryRowOnce() throws {
        var random = Random(seed: 0xC0_0002)
        let rows = Self.randomRows(&random, count: 200, prefix: "r")
        for order in [[SortKey.ascending("g"), .descending("n")], [], [.descending("g")], [.ascending("missing")]] {
            let expected = Self.referenceSorted(rows, order).map(\.id)
            var query = Query(table: "T", order: order, limit: 7)
            var seen: [String] = []
            var pages = 0
            while true {
                let page = try query.apply(to: rows)
                seen += Self.ids(page)
                pages += 1
                guard let next = page.next else { break }
                #expect(try QueryCursor(token: next.token) == next)
                // The cursor survives the text form too.
                query = try Query(parsing: query.after(next).description)
                #expect(query.after == next)
            }
            #expect(seen == expected)
            #expect(pages == 29)
        }
    }

    @Test func offsetCountsFromTheCursor() throws {
        let query = Query(table: "T", order: [.ascending("g"), .descending("n")], limit: 2)
        let first = try query.apply(to: Self.small)
        #expect(Self.ids(first) == ["r3", "r2"])
        let skipped = try query.after(first.next).offset(1).apply(to: Self.small)
        #expect(Self.ids(skipped) == ["r1", "r10"])
    }

    @Test func pagesStayStableUnderConcurrentInsertsAndDeletes() throws {
        var random = Random(seed: 0xC0_0003)
        let order: [SortKey] = [.ascending("g"), .descending("n")]
        for round in 0..<20 {
            var table = Self.randomRows(&random, count: 100, prefix: "old-")
            let original = Set(table.map(\.id))
            var deleted: Set<String> = []
            var behind: Set<String> = []
            var seen: [String] = []
            var query = Query(table: "T", order: order, limit: 10)
            var lastRow: Row?
            var batch = 0
            while true {
                let page = try query.apply(to: table.shuffled(using: &random))
                for row in page.rows {
                    if let lastRow { #expect(Self.referenceBefore(lastRow, (row.id, row.record), order), "page order broken in round \(round)") }
                    lastRow = (row.id, row.record)
                }
                seen += Self.ids(page)
                guard let next = page.next, let last = lastRow else { break }
                // Insert rows anywhere, some before the cursor position.
                for new in Self.randomRows(&random, count: 5, prefix: "new-\(batch)-") {
                    table.append(new)
                    if !Self.referenceBefore(last, new, order) { behind.insert(new.id) }
                }
                // Delete a row not yet seen, and sometimes the cursor's own row.
                if random.chance(50), let victim = table.first(where: { original.contains($0.id) && !seen.contains($0.id) }) {
                    deleted.insert(victim.id)
                    table.removeAll { $0.id == victim.id }
                }
                if random.chance(30) { table.removeAll { $0.id == last.id } }
                batch += 1
                query.after = next
            }
            #expect(Set(seen).count == seen.count, "a row was returned twice in round \(round)")
            #expect(original.subtracting(deleted).isSubset(of: Set(seen)), "a row was skipped in round \(round)")
            #expect(behind.isDisjoint(with: Set(seen)), "a row inserted before the cursor was returned in round \(round)")
            #expect(!behind.isEmpty)
        }
    }

    @Test func hostileCursorTokensAreRejectedWithoutTrapping() throws {
        let query = Query(table: "T", order: [.ascending("g"), .descending("n")], limit: 2)
        let token = try #require(try query.apply(to: Self.small).next).token
        for bad in ["", "!", "====", "a", "AA", "AAAA", "AQ", "_-_-", token + "A", token + "!", "\u{0}", "é", String(repeating: "A", count: 2_000_000)] {
            #expect(throws: StoreError.self, "\(bad.prefix(20))") { try QueryCursor(token: bad) }
        }
        for length in 0..<token.count {
            #expect(throws: StoreError.self) { try QueryCursor(token: String(token.prefix(length))) }
        }
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        var random = Random(seed: 0xC0_0004)
        var characters = Array(token)
        for position in characters.indices {
            let saved = characters[position]
            characters[position] = random.pick(alphabet)
            do {
                let cursor = try QueryCursor(token: String(characters))
                do {
                    _ = try query.after(cursor).apply(to: Self.small)
                } catch {
                    #expect(error.code == .invalidArgument)
                }
            } catch {
                #expect(error.code == .invalidArgument)
            }
            characters[position] = saved
        }
        for _ in 0..<5000 {
            let text = String((0..<Int.random(in: 0...60, using: &random)).map { _ in random.pick(alphabet) })
            do {
                _ = try QueryCursor(token: text)
            } catch {
                #expect(error.code == .invalidArgument)
            }
        }
    }

    @Test func aCursorBelongsToItsOrder() throws {
        let query = Query(table: "T", order: [.ascending("g"), .descending("n")], limit: 2)
        let cursor = try #require(try query.apply(to: Self.small).next)
        for other in [Query(table: "T", limit: 2), Query(table: "T", order: [.ascending("g"), .ascending("n")]),
                      Query(table: "T", order: [.ascending("g")]), Query(table: "T", order: [.ascending("n"), .descending("g")])] {
            #expect(throws: StoreError.self) { try other.after(cursor).apply(to: Self.small) }
        }
        // The table and predicate may differ: the cursor is only a position.
        #expect(throws: Never.self) { try Query(table: "U", where: .isNotNull("n"), order: query.order).after(cursor).apply(to: Self.small) }
    }

    @Test func projectionKeepsTheIdAndNestsPaths() throws {
        let order: Document = ["id": "SO-1", "status": "paid", "address": ["city": "Lisbon", "zip": "1000"], "note": nil, "items": [1, 2]]
        let rows: [Row] = [("SO-1", order), ("SO-2", ["status": "new"]), ("SO-3", 7)]
        let projected = try Query(table: "T").select("address.city", "status", "missing", "note", "items.`0`").apply(to: rows)
        #expect(projected.rows.map(\.record) == [
            ["id": "SO-1", "address": ["city": "Lisbon"], "status": "paid", "note": nil],
            ["status": "new"],
            [:],
        ])
        #expect(projected.rows.map(\.id) == ["SO-1", "SO-2", "SO-3"])
        let idOnly = try Query(table: "T", projection: []).apply(to: rows)
        #expect(idOnly.rows.map(\.record) == [["id": "SO-1"], [:], [:]])
        let whole = try Query(table: "T").select("address", "address.city").apply(to: rows)
        #expect(whole.rows[0].record == ["id": "SO-1", "address": ["city": "Lisbon", "zip": "1000"]])
    }

    @Test func projectionDoesNotChangeTheOrderOrTheCursor() throws {
        var random = Random(seed: 0xC0_0005)
        let rows = Self.randomRows(&random, count: 50, prefix: "p")
        var query = Query(table: "T", order: [.descending("g"), .ascending("n")], limit: 6, projection: [])
        var seen: [String] = []
        while true {
            let page = try query.apply(to: rows)
            seen += Self.ids(page)
            #expect(page.rows.allSatisfy { $0.record == [:] })
            guard let next = page.next else { break }
            query.after = next
        }
        #expect(seen == Self.referenceSorted(rows, query.order).map(\.id))
    }

    @Test func buildersComposeAQuery() {
        let built = Query(table: "SalesOrder")
            .where(.compare("status", .eq, "paid"))
            .where(.compare("total", .gte, 100))
            .orderBy("placedAt", descending: true)
            .orderBy("id")
            .limit(20)
            .offset(40)
            .select("id", "status")
        let expected = Query(table: "SalesOrder", where: .and([.compare("status", .eq, "paid"), .compare("total", .gte, 100)]),
                             order: [SortKey("placedAt", descending: true), SortKey("id")], offset: 40, limit: 20,
                             projection: ["id", "status"])
        #expect(built == expected)
        #expect(built.description == "from SalesOrder where status = 'paid' and total >= 100 order by placedAt desc, id limit 20 offset 40 select id, status")
    }
}
