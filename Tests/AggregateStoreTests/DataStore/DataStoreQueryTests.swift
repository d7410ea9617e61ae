import AggregateStore
import Foundation
import Testing

@Suite("DataStore: queries through the indexes and scans")
struct DataStoreQueryTests {
    /// Orders so-01…so-30: customer c-(n % 3), status paid for even n, a note on every fifth.
    static func seeded() throws -> StoreFixture {
        let fixture = try StoreFixture()
        try UnitOfWork.run(on: fixture.store) { tx throws in
            for n in 1...30 {
                var o = order(String(format: "so-%02d", n), customer: "c-\(n % 3)", status: n.isMultiple(of: 2) ? "paid" : "open", items: n % 4)
                o.note = n.isMultiple(of: 5) ? "Note \(n)" : nil
                try fixture.store.create(o, in: tx)
            }
        }
        return fixture
    }

    @Test func aTypedFilterWithSeveralSortKeysAndPaging() throws {
        let fixture = try Self.seeded()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            let query = Order.query
                .filter(\.status == "paid" && \.customerId != "c-0")
                .order(by: \.customerId, descending: true)
                .order(by: \.id)
            let all = try store.fetch(query, in: tx).items
            let expected = (1...30).filter { $0.isMultiple(of: 2) && $0 % 3 != 0 }
                .map { (customer: "c-\($0 % 3)", id: String(format: "so-%02d", $0)) }
                .sorted { ($0.customer, $1.id) > ($1.customer, $0.id) }
                .map(\.id)
            #expect(all.map(\.id) == expected)
            #expect(try store.count(query, in: tx) == expected.count)
            let second = try store.fetch(query.offset(3).limit(3), in: tx).items
            #expect(second.map(\.id) == Array(expected[3..<6]))
        }
    }

    @Test func stringMatchesNullsAndInThroughTheTypedFront() throws {
        let fixture = try Self.seeded()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.fetch(Order.query.filter(.isNotNull(\.note)), in: tx).items.map(\.id) == ["so-05", "so-10", "so-15", "so-20", "so-25", "so-30"])
            #expect(try store.count(Order.query.filter(.isNull(\.note)), in: tx) == 24)
            #expect(try store.fetch(Order.query.filter(.like(\.id, "so-1_")), in: tx).items.count == 10)
            #expect(try store.fetch(Order.query.filter(.startsWith(\.status, "PA", caseInsensitive: true)), in: tx).items.count == 15)
            #expect(try store.fetch(Order.query.filter(.isIn(\.id, ["so-03", "so-01", "nope"])), in: tx).items.map(\.id) == ["so-01", "so-03"])
            #expect(try store.fetch(Order.query.filter(.contains(\.note, "note 2", caseInsensitive: true)), in: tx).items.map(\.id) == ["so-20", "so-25"])
        }
    }

    @Test func theTextFormRunsTheSameQuery() throws {
        let fixture = try Self.seeded()
        let store = fixture.store
        let typed = Order.query.filter(\.status == "open" && \.customerId == "c-1").order(by: \.id, descending: true).limit(2)
        let parsed = try Query(parsing: typed.description)
        #expect(parsed == typed.query)
        try UnitOfWork.run(on: store) { tx throws in
            let rows = try store.fetch(parsed, in: tx).rows
            #expect(rows.map(\.id) == ["so-25", "so-19"])
            #expect(rows.first?.record[field: "status"] == "open")
            let projected = try store.fetch(parsed.select("status"), in: tx).rows
            #expect(projected.first?.record == ["id": "so-25", "status": "open"])
        }
    }

    @Test func queriesSeeTheUnitOfWorksOwnWrites() throws {
        let fixture = try Self.seeded()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            try store.create(order("so-99", customer: "c-1", status: "open"), in: tx)
            try store.delete(Order.self, id: "so-01", in: tx)
            try store.update(Order.self, id: "so-04", set: ["customerId": "c-2"], in: tx)
            let byCustomer = try store.fetch(Order.query.filter(\.customerId == "c-1"), in: tx).items.map(\.id)
            #expect(byCustomer.contains("so-99") && !byCustomer.contains("so-01") && !byCustomer.contains("so-04"))
            #expect(try store.fetch(Order.query.filter(\.customerId == "c-2"), in: tx).items.map(\.id).contains("so-04"))
        }
    }

    @Test func keysetPagesStayStableUnderConcurrentInserts() throws {
        let fixture = try Self.seeded()
        let store = fixture.store
        let query = Order.query.order(by: \.status).limit(7)
        var seen: [String] = []
        var cursor: QueryCursor?
        var inserted = 0
        repeat {
            let page = try UnitOfWork.run(on: store) { tx throws in try store.fetch(query.after(cursor), in: tx) }
            seen += page.items.map(\.id)
            cursor = page.next
            // Another unit of work inserts one row before the cursor and one after it.
            try UnitOfWork.run(on: store) { tx throws in
                inserted += 1
                try store.create(order("aa-\(inserted)", status: "open"), in: tx)   // sorts before every "paid"
                try store.create(order("zz-\(inserted)", status: "zzz"), in: tx)    // sorts last
            }
        } while cursor != nil
        let original = (1...30).map { String(format: "so-%02d", $0) }
        #expect(Set(seen).count == seen.count, "a row was returned twice")
        #expect(Set(original).isSubset(of: Set(seen)), "an existing row was skipped")
    }

    @Test func aQueryOnAReservedOrMalformedTableIsRefused() throws {
        let fixture = try StoreFixture()
        try UnitOfWork.run(on: fixture.store) { tx throws in
            let error = #expect(throws: StoreError.self) { try fixture.store.fetch(Query(table: "_subscribers"), in: tx) }
            #expect(error?.code == .invalidArgument)
        }
    }

    @Test func aPageDecodedFromPartialRecordsEqualsTheSameRowsOfTheFullResult() throws {
        let fixture = try Self.seeded()
        let store = fixture.store
        let texts = [
            "from SalesOrder order by status desc, customerId",
            "from SalesOrder where note is not null or status = 'paid' order by note, id desc",
            "from SalesOrder where items != null and customerId in ('c-1', 'c-2') order by items desc",
            "from SalesOrder where not status like 'o%' order by tags, customerId desc select customerId, note",
        ]
        try UnitOfWork.run(on: store) { tx throws in
            try store.update(Order.self, id: "so-07", set: ["note": "in this unit of work"], in: tx)
            for text in texts {
                let query = try Query(parsing: text)
                let all = try store.fetch(query, in: tx).rows
                #expect(!all.isEmpty, "\(text)")
                var paged: [QueryRow] = []
                var cursor: QueryCursor?
                repeat {
                    let page = try store.fetch(query.limit(4).after(cursor), in: tx)
                    paged += page.rows
                    cursor = page.next
                } while cursor != nil
                #expect(paged == all, "\(text)")
            }
        }
    }
}
