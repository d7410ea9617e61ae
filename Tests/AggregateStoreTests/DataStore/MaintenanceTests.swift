import AggregateStore
import AggregateStoreMaintenance
import Testing

@Suite("Maintenance: the raw escape hatch runs inside a unit of work")
struct MaintenanceTests {
    struct ActionFailed: Error {}

    @Test func rewriteMigratesRecordsAndAnAbortUndoesIt() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let maintenance = Maintenance(store)
        try UnitOfWork.run(on: store) { tx throws in
            for n in 1...4 { try store.create(order("so-\(n)", status: n == 4 ? "void" : "canceled"), in: tx) }
        }
        let migrate = { (tx: borrowing TransactionContext) throws(StoreError) -> Int in
            try maintenance.rewrite(table: "SalesOrder", in: tx) { record throws(StoreError) in
                if record.document[field: "status"] == "void" { return .delete }
                guard case var .map(map) = record.document else { return .keep }
                map["status"] = "cancelled"
                return .replace(.map(map))
            }
        }
        #expect(throws: ActionFailed.self) {
            try UnitOfWork.run(on: store) { tx throws in
                _ = try migrate(tx)
                throw ActionFailed()
            }
        }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try maintenance.scan(table: "SalesOrder", in: tx).map { $0.document[field: "status"] } == ["canceled", "canceled", "canceled", "void"])
        }
        #expect(try UnitOfWork.run(on: store) { tx throws in try migrate(tx) } == 4)
        try UnitOfWork.run(on: store) { tx throws in
            let orders = try store.fetch(Order.query, in: tx).items
            #expect(orders.map(\.id) == ["so-1", "so-2", "so-3"])
            #expect(orders.allSatisfy { $0.status == "cancelled" })
            // Foreign keys are kept by a rewrite.
            #expect(try store.find(Order.self, where: \.customerId, equals: "c-1", in: tx).count == 3)
        }
    }

    @Test func rebuildForeignKeysIndexesAFieldDeclaredLater() throws {
        struct Before: Aggregate { static let table = "Invoice"; var id: String; var customerId: String }
        struct After: Aggregate {
            static let table = "Invoice"
            static let foreignKeys: [ForeignKeyField<After>] = [.field(\.customerId)]
            var id: String
            var customerId: String
        }
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            for n in 1...3 { try store.create(Before(id: "inv-\(n)", customerId: "c-7"), in: tx) }
        }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.find(After.self, where: \.customerId, equals: "c-7", in: tx).isEmpty)
            #expect(try Maintenance(store).rebuildForeignKeys(After.self, in: tx) == 3)
        }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.find(After.self, where: \.customerId, equals: "c-7", in: tx).map(\.id) == ["inv-1", "inv-2", "inv-3"])
            #expect(try Maintenance(store).rebuildForeignKeys(After.self, in: tx) == 0)
        }
    }

    @Test func aRewriteMustKeepTheId() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        let error = #expect(throws: StoreError.self) {
            try UnitOfWork.run(on: store) { tx throws in
                try Maintenance(store).rewrite(table: "SalesOrder", in: tx) { _ throws(StoreError) in .replace(["id": "other"]) }
            }
        }
        #expect(error?.code == .invalidArgument)
    }
}
