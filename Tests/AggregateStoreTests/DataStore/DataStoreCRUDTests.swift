import AggregateStore
import Foundation
import Testing

@Suite("DataStore: the CRUD contract")
struct DataStoreCRUDTests {
    @Test func createRejectsAnExistingIdAndLoadOfAMissingIdIsNil() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        let error = #expect(throws: StoreError.self) {
            try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        }
        #expect(error?.code == .duplicate)
        #expect(error?.message.contains("SalesOrder/so-1") == true)
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Order.self, id: "nope", in: tx) == nil)
            #expect(try store.load(Buyer.self, id: "so-1", in: tx) == nil)
        }
    }

    @Test func createAfterADeleteSucceeds() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        try UnitOfWork.run(on: store) { tx throws in #expect(try store.delete(Order.self, id: "so-1", in: tx)) }
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1", status: "again"), in: tx) }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Order.self, id: "so-1", in: tx)?.status == "again")
            #expect(try store.version(of: Order.self, id: "so-1", in: tx) == 3)
        }
    }

    @Test func saveUpsertsAndDeleteIsTolerant() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            try store.save(order("so-1"), in: tx)
            try store.save(order("so-1", status: "paid"), in: tx)
            #expect(try store.delete(Order.self, id: "missing", in: tx) == false)
        }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Order.self, id: "so-1", in: tx)?.status == "paid")
            #expect(try store.version(of: Order.self, id: "so-1", in: tx) == 1)
            #expect(try store.version(of: Order.self, id: "missing", in: tx) == nil)
        }
        // The tolerant delete of a missing id wrote nothing.
        #expect(try store.engine.statistics().deletes == 0)
    }

    @Test func updateMergesFieldsAndSetNullRemovesOne() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        var original = order("so-1")
        original.note = "leave at the door"
        try UnitOfWork.run(on: store) { [original] tx in try store.create(original, in: tx) }
        let updated = try UnitOfWork.run(on: store) { tx throws in
            try store.update(Order.self, id: "so-1", set: ["status": "paid", "note": .setNull], in: tx)
        }
        var expected = original
        expected.status = "paid"
        expected.note = nil
        #expect(updated == expected)
        try UnitOfWork.run(on: store) { tx throws in #expect(try store.load(Order.self, id: "so-1", in: tx) == expected) }
    }

    @Test func updateRequiresExistenceAndKnownFieldsOfTheRightType() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        let cases: [(String, [String: FieldUpdate], StoreError.Code, String)] = [
            ("missing", ["status": "paid"], .notFound, "SalesOrder/missing"),
            ("so-1", ["statsu": "paid"], .invalidArgument, "statsu"),
            ("so-1", ["status": 12], .invalidArgument, "status"),
            ("so-1", ["status": .setNull], .invalidArgument, "status"),
            ("so-1", ["id": "so-2"], .invalidArgument, "id cannot be changed"),
            ("so-1", ["status.inner": "x"], .invalidArgument, "not a map"),
        ]
        for (id, changes, code, mention) in cases {
            let error = #expect(throws: StoreError.self, "\(changes)") {
                try UnitOfWork.run(on: store) { tx throws in try store.update(Order.self, id: id, set: changes, in: tx) }
            }
            #expect(error?.code == code, "\(changes)")
            #expect(error?.message.contains(mention) == true, "\(error?.message ?? "")")
        }
        try UnitOfWork.run(on: store) { tx throws in #expect(try store.load(Order.self, id: "so-1", in: tx) == order("so-1")) }
    }

    @Test func updateOfANestedValueWithAnEncodableValue() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        let items = [OrderLine(sku: "new", quantity: 7, price: Decimal(string: "1.25")!)]
        let updated = try UnitOfWork.run(on: store) { tx throws in
            try store.update(Order.self, id: "so-1", set: ["items": .value(items)], in: tx)
        }
        #expect(updated.items == items)
    }

    @Test func inLookupKeepsTheOrderOfIdsAndSkipsMissingAndRepeated() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            for n in 1...5 { try store.create(order("so-\(n)"), in: tx) }
        }
        try UnitOfWork.run(on: store) { tx throws in
            let found = try store.load(Order.self, ids: ["so-4", "x", "so-2", "so-4", "so-1"], in: tx)
            #expect(found.map(\.id) == ["so-4", "so-2", "so-1"])
        }
    }

    @Test func foreignKeyLookupUsesTheIndexIncludingArrayFields() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            for n in 1...6 {
                var o = order("so-\(n)", customer: n.isMultiple(of: 2) ? "c-even" : "c-odd")
                o.tags = n > 4 ? ["t-big", "t-late"] : []
                try store.create(o, in: tx)
            }
        }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.find(Order.self, where: \.customerId, equals: "c-even", in: tx).map(\.id) == ["so-2", "so-4", "so-6"])
            #expect(try store.find(Order.self, where: \.tags, equals: "t-late", in: tx).map(\.id) == ["so-5", "so-6"])
            let error = #expect(throws: StoreError.self) { try store.find(Order.self, where: \.status, equals: "open", in: tx) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("status") == true)
        }
        #expect(try store.engine.ids(table: "SalesOrder", field: "customerId", value: "c-odd") == ["so-1", "so-3", "so-5"])
    }

    @Test func badNamesAndIdsAreRefusedAndChangeNothing() throws {
        struct Reserved: Aggregate { static let table = "_secret"; var id: String }
        struct WrongId: Aggregate {
            static let table = "WrongId"
            var id: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id + "-other", forKey: .id)
            }
        }
        let fixture = try StoreFixture()
        let store = fixture.store
        let attempts: [(String, (borrowing TransactionContext) throws -> Void)] = [
            ("empty id", { tx in try store.create(order(""), in: tx) }),
            ("NUL in id", { tx in try store.create(order("a\u{0}b"), in: tx) }),
            ("long id", { tx in try store.create(order(String(repeating: "x", count: 2000)), in: tx) }),
            ("reserved table", { tx in try store.create(Reserved(id: "x"), in: tx) }),
            ("id field differs", { tx in try store.create(WrongId(id: "x"), in: tx) }),
            ("empty FK value", { tx in try store.create(order("so-1", customer: ""), in: tx) }),
        ]
        for (name, attempt) in attempts {
            let error = #expect(throws: StoreError.self, "\(name)") { try UnitOfWork.run(on: store) { tx throws in try attempt(tx) } }
            #expect(error?.code == .invalidArgument, "\(name): \(String(describing: error))")
        }
        #expect(store.engine.lastSequence == 0)
    }

    @Test func anOversizedAggregateIsRefusedWithRecordTooLarge() throws {
        let fixture = try StoreFixture { $0.engine.maximumRecordSize = 4096 }
        let store = fixture.store
        var big = order("so-1")
        big.note = String(repeating: "n", count: 10_000)
        let error = #expect(throws: StoreError.self) { try UnitOfWork.run(on: store) { [big] tx in try store.create(big, in: tx) } }
        #expect(error?.code == .recordTooLarge)
        #expect(store.engine.lastSequence == 0)
    }

    @Test func aRecordThatDoesNotDecodeNamesTableIdAndField() throws {
        struct Narrow: Aggregate { static let table = "SalesOrder"; var id: String; var status: Int }
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        let error = #expect(throws: StoreError.self) {
            try UnitOfWork.run(on: store) { tx throws in _ = try store.load(Narrow.self, id: "so-1", in: tx) }
        }
        #expect(error?.message.contains("SalesOrder/so-1") == true)
        #expect(error?.message.contains("status") == true)
    }
}
