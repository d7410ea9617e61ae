import AggregateStore
import Foundation
import Testing

private typealias Random = QueryFixtures.Random

@Suite("Query access plan and field paths")
struct QueryPlanTests {
    static let foreignKeys: Set<String> = ["customerId", "warehouse.id"]

    static func plan(_ text: String) throws -> AccessPath {
        try Query(parsing: "from SalesOrder " + text).accessPath(foreignKeyFields: foreignKeys)
    }

    @Test func handWrittenPlans() throws {
        let cases: [(String, AccessPath)] = [
            ("", .scan),
            ("where id = 'SO-1'", .primaryKeys(["SO-1"])),
            ("where id in ('SO-1', 'SO-2', 'SO-1')", .primaryKeys(["SO-1", "SO-2"])),
            ("where id in ()", .primaryKeys([])),
            ("where id in ('a', 'b', 'c') and id in ('c', 'a')", .primaryKeys(["a", "c"])),
            ("where id = 'a' and id = 'b'", .primaryKeys([])),
            ("where status = 'paid' and id = 'SO-1' and customerId = 'C-1'", .primaryKeys(["SO-1"])),
            ("where (id = 'SO-1' and total > 3) and status = 'x'", .primaryKeys(["SO-1"])),
            ("where id = 7", .scan),
            ("where id in ('a', 7)", .scan),
            ("where id in ('a', 7) and id = 'b'", .primaryKeys(["b"])),
            ("where id != 'SO-1'", .scan),
            ("where id >= 'SO-1'", .scan),
            ("where `id`.x = 'SO-1'", .scan),
            ("where customerId = 'C-1'", .foreignKey(field: "customerId", value: "C-1")),
            ("where total > 5 and customerId = 'C-1' and warehouse.id = 'W'", .foreignKey(field: "customerId", value: "C-1")),
            ("where warehouse.id = 'W'", .foreignKey(field: "warehouse.id", value: "W")),
            ("where customerId = 7", .scan),
            ("where customerId in ('C-1')", .scan),
            ("where customerId != 'C-1'", .scan),
            ("where status = 'paid'", .scan),
            ("where id = 'SO-1' or status = 'paid'", .scan),
            ("where customerId = 'C-1' or id = 'SO-1'", .scan),
            ("where not id = 'SO-1'", .scan),
            ("where not customerId = 'C-1'", .scan),
            ("where false", .primaryKeys([])),
            ("where status = 'x' and false", .primaryKeys([])),
            ("where true and customerId = 'C-1'", .foreignKey(field: "customerId", value: "C-1")),
            ("where or(id = 'a')", .scan),
            ("where and(id = 'a')", .primaryKeys(["a"])),
        ]
        for (text, expected) in cases {
            #expect(try Self.plan(text) == expected, "\(text)")
        }
    }

    /// The plan may over-fetch but never under-fetch: every record the predicate matches is
    /// among the candidates the access path supplies.
    @Test func plansNeverUnderFetch() {
        var random = Random(seed: 0x9_1A4)
        let ids = ["a", "b", "c", "d"]
        let customers = ["C-1", "C-2"]
        let records: [(id: String, record: Document)] = ids.flatMap { id in
            customers.map { customer in (id: id + customer, record: ["id": .string(id + customer), "customerId": .string(customer), "n": 1]) }
        }
        let leaves: [Query.Predicate] = ids.flatMap { id in customers.map { Query.Predicate.compare("id", .eq, .string(id + $0)) } }
            + [.isIn("id", ["aC-1", "bC-2", "zz"]), .compare("customerId", .eq, "C-1"), .compare("customerId", .eq, "C-2"),
               .compare("n", .eq, 1), .none, .all]
        func make(_ depth: Int, _ generator: inout Random) -> Query.Predicate {
            if depth == 0 || generator.chance(40) { return generator.pick(leaves) }
            let parts = (0..<Int.random(in: 0...3, using: &generator)).map { _ in make(depth - 1, &generator) }
            switch Int.random(in: 0..<3, using: &generator) {
            case 0: return .and(parts)
            case 1: return .or(parts)
            default: return .not(parts.first ?? .all)
            }
        }
        for _ in 0..<3000 {
            let predicate = make(3, &random)
            let matching = Set(records.filter { predicate.matches($0.record) }.map(\.id))
            let candidates: Set<String>
            switch Query(table: "T", where: predicate).accessPath(foreignKeyFields: ["customerId"]) {
            case .primaryKeys(let keys): candidates = Set(keys)
            case .foreignKey(let field, let value):
                candidates = Set(records.filter { $0.record[field: field] == .string(value) }.map(\.id))
            case .scan: candidates = Set(records.map(\.id))
            }
            #expect(matching.isSubset(of: candidates), "\(predicate)")
        }
    }

    // MARK: Field paths

    struct Address { var city: String; var zip: String? }
    struct Note { var text: String }
    struct SalesOrder {
        var id: String
        var address: Address
        var note: Note?
        var billing: Address!
        var lines: [Int]
        var lineCount: Int { lines.count }
    }

    @Test func fieldPathsFromKeyPaths() throws {
        #expect(try FieldPath(keyPath: \SalesOrder.id) == .id)
        #expect(try FieldPath(keyPath: \SalesOrder.address.city).components == ["address", "city"])
        #expect(try FieldPath(keyPath: \SalesOrder.note?.text).components == ["note", "text"])
        #expect(try FieldPath(keyPath: \SalesOrder.address.zip).components == ["address", "zip"])
        #expect(try FieldPath(keyPath: \SalesOrder.billing.zip!).components == ["billing", "zip"])
        #expect(try FieldPath(keyPath: \SalesOrder.billing!.city).components == ["billing", "city"])
        #expect(throws: StoreError.self) { try FieldPath(keyPath: \SalesOrder.lineCount) }
        #expect(throws: StoreError.self) { try FieldPath(keyPath: \SalesOrder.lines[0]) }
        #expect(throws: StoreError.self) { try FieldPath(keyPath: \SalesOrder.self) }
        #expect(throws: StoreError.self) { try FieldPath(keyPath: \SalesOrder.note?.text.count) }
    }

    @Test func fieldPathsWalkMapsOnly() {
        let record: Document = ["a": ["b": ["c": 1]], "list": [["x": 1]], "n": nil]
        #expect(FieldPath("a.b.c").value(in: record) == 1)
        #expect(FieldPath("a.b").value(in: record) == ["c": 1])
        #expect(FieldPath("a.x").value(in: record) == nil)
        #expect(FieldPath("a.b.c.d").value(in: record) == nil)
        #expect(FieldPath("list.x").value(in: record) == nil)
        #expect(FieldPath("n").value(in: record) == .null)
        #expect(FieldPath("n.x").value(in: record) == nil)
    }

    @Test func fieldPathsCompareByBytes() throws {
        let precomposed = try FieldPath(components: ["\u{E9}"])
        let decomposed = try FieldPath(components: ["e\u{301}"])
        #expect(precomposed != decomposed)
        #expect(Set([precomposed, decomposed]).count == 2)
        #expect(FieldPath("a") < FieldPath("a.b"))
        #expect(FieldPath("a.b") < FieldPath("b"))
        #expect(FieldPath("B") < FieldPath("a"))
        #expect(Query.Predicate.compare(precomposed, .eq, 1).matches(["e\u{301}": 1]) == false)
    }
}
