import AggregateStore
import AggregateStoreMaintenance
import Synchronization
import Testing

/// Defects found in review of the DataStore change, each with the scenario that showed it.
@Suite("DataStore review regressions")
struct ReviewRegressionTests {
    @Test func anIdAQueryFoundMissingIsCheckedAtCommit() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        for read in ["query", "in", "load"] {
            let id = "so-\(read)"
            let reader = try UnitOfWork.begin(on: store)
            switch read {
            case "query": #expect(try store.fetch(Order.query.filter(\.id == id), in: reader.context).items.isEmpty)
            case "in": #expect(try store.load(Order.self, ids: [id], in: reader.context).isEmpty)
            default: #expect(try store.load(Order.self, id: id, in: reader.context) == nil)
            }
            try UnitOfWork.run(on: store) { tx throws in try store.create(order(id, status: "created by another"), in: tx) }
            try store.save(order(id, status: "overwrite"), in: reader.context)
            do {
                try reader.commit()
                Issue.record("\(read): a save after reading the id as missing overwrote a concurrent create")
            } catch {
                #expect(error.code == .conflict, "\(read)")
            }
        }
    }

    @Test func aPoisonedEventIsSkippedAloneAndTheOthersAreDelivered() async throws {
        let fixture = try StoreFixture {
            EventEngineTests.fastRetry(&$0)
            $0.delivery.batchSize = 5
            $0.delivery.maximumAttempts = 2
        }
        let store = fixture.store
        let inbox = Inbox()
        try store.events.subscribe("picky") { event in
            if event.position == 1 { throw CancellationError() }
            inbox.add(event)
        }
        for n in 1...5 { try EventEngineTests.place(n, on: store) }
        await store.events.waitForDelivery(to: "picky", through: 5)
        #expect(inbox.positions == [2, 3, 4, 5])
    }

    @Test func anUnsubscribedNameNeverDeliversAgain() async throws {
        let fixture = try StoreFixture(configure: EventEngineTests.fastRetry)
        let store = fixture.store
        let late = Inbox()
        for round in 0..<100 {
            try store.events.subscribe("s-\(round)") { late.add($0) }
            await store.events.unsubscribe("s-\(round)")
        }
        try EventEngineTests.place(1, on: store)
        try await Task.sleep(for: .milliseconds(50))
        #expect(late.all.isEmpty)
        // The name is free again, and resumes after its stored cursor (none: from the start).
        try store.events.subscribe("s-0") { late.add($0) }
        await store.events.waitForDelivery(to: "s-0", through: 1)
        #expect(late.positions == [1])
    }

    @Test func aClosedStoreRefusesSubscribers() throws {
        let fixture = try StoreFixture()
        try fixture.store.close()
        let error = #expect(throws: StoreError.self) { try fixture.store.events.subscribe("late") { _ in } }
        #expect(error?.code == .closed)
    }

    struct Shipment: Aggregate {
        static let table = "Shipment"
        static let foreignKeys: [ForeignKeyField<Shipment>] = [.field(\.order)]
        var id: String
        var order: String
        var weight: Int
        var heavy: Bool { weight > 10 }
    }

    @Test func aForeignKeyNamedLikeAKeywordIsFound() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(Shipment(id: "sh-1", order: "so-1", weight: 3), in: tx) }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.find(Shipment.self, where: \.order, equals: "so-1", in: tx).map(\.id) == ["sh-1"])
        }
    }

    @Test func aQueryOnAComputedPropertyThrowsInsteadOfCrashing() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            let error = #expect(throws: StoreError.self) { try store.fetch(Shipment.query.filter(\.heavy == true), in: tx) }
            #expect(error?.code == .invalidArgument)
            #expect(throws: StoreError.self) { try store.count(Shipment.query.order(by: \.heavy), in: tx) }
        }
    }

    @Test func aMaintenanceScanSeesTheUnitOfWorksOwnCreatesAndARewriteCanMoveForeignKeys() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let maintenance = Maintenance(store)
        try UnitOfWork.run(on: store) { tx throws in
            try store.create(order("so-1", customer: "c-1"), in: tx)
            #expect(try maintenance.scan(table: "SalesOrder", in: tx).map(\.id) == ["so-1"])
        }
        try UnitOfWork.run(on: store) { tx throws in
            try maintenance.rewrite(table: "SalesOrder", in: tx) { record throws(StoreError) in
                guard case var .map(map) = record.document else { return .keep }
                map["customerId"] = "c-2"
                return .replace(.map(map), foreignKeys: [ForeignKey(field: "customerId", value: "c-2")])
            }
        }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.find(Order.self, where: \.customerId, equals: "c-2", in: tx).map(\.id) == ["so-1"])
            #expect(try store.fetch(Order.query.filter(\.customerId == "c-2"), in: tx).items.map(\.id) == ["so-1"])
        }
    }

    actor Counter {
        var commits = 0
        func record(on store: DataStore) async throws {
            try await UnitOfWork.run(on: store) { tx in
                try store.create(order("so-actor-\(commits)"), in: tx)
                commits += 1                 // the body runs on this actor
            }
        }
    }

    @Test func theAsyncEntryPointRunsInTheCallersIsolation() async throws {
        let fixture = try StoreFixture()
        let counter = Counter()
        try await counter.record(on: fixture.store)
        try await counter.record(on: fixture.store)
        #expect(await counter.commits == 2)
        #expect(fixture.store.engine.lastSequence == 2)
    }

    @Test func createThenDeleteInOneUnitOfWorkWritesNothing() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let receipt = try UnitOfWork.run(on: store) { tx throws -> Bool in
            try store.create(order("so-1"), in: tx)
            return try store.delete(Order.self, id: "so-1", in: tx)
        }
        #expect(receipt)
        #expect(store.engine.lastSequence == 0)
        // With a concurrent create of the same id in between, the delete stays and conflicts.
        let first = try UnitOfWork.begin(on: store)
        try store.create(order("so-2"), in: first.context)
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-2", status: "theirs"), in: tx) }
        try store.delete(Order.self, id: "so-2", in: first.context)
        do {
            try first.commit()
            Issue.record("the delete overwrote a concurrent create")
        } catch {
            #expect(error.code == .conflict || error.code == .duplicate)
        }
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Order.self, id: "so-2", in: tx)?.status == "theirs")
        }
    }
}
