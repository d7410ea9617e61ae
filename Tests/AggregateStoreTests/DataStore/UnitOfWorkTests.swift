import AggregateStore
import Testing

@Suite("Units of work: the boundary, all or nothing, own writes")
struct UnitOfWorkTests {
    @Test func aCommittedUnitOfWorkIsVisibleToLaterOnesAndSurvivesReopen() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in
            try store.create(order("so-1"), in: tx)
            try store.create(Buyer(id: "c-1", name: "Ada"), in: tx)
        }
        let reopened = try fixture.reopen()
        try UnitOfWork.run(on: reopened) { tx throws in
            #expect(try reopened.load(Order.self, id: "so-1", in: tx) == order("so-1"))
            #expect(try reopened.load(Buyer.self, id: "c-1", in: tx)?.name == "Ada")
        }
        try reopened.close()
    }

    struct ActionFailed: Error {}

    @Test func anActionThatThrowsWritesNothing() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let before = store.engine.lastSequence
        #expect(throws: ActionFailed.self) {
            try UnitOfWork.run(on: store) { tx throws in
                try store.create(order("so-1"), in: tx)
                try tx.emit(OrderPlaced(orderId: "so-1"), about: order("so-1"))
                throw ActionFailed()
            }
        }
        #expect(store.engine.lastSequence == before)
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Order.self, id: "so-1", in: tx) == nil)
        }
        #expect(try store.engine.events(after: 0, limit: 10).isEmpty)
    }

    @Test func explicitAbortAndADroppedUnitOfWorkWriteNothing() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let aborted = try UnitOfWork.begin(on: store)
        try store.create(order("so-1"), in: aborted.context)
        aborted.abort()
        do {
            let dropped = try UnitOfWork.begin(on: store)
            try store.create(order("so-2"), in: dropped.context)
        }
        #expect(store.engine.lastSequence == 0)
    }

    @Test func aCommitIsAllOrNothingWhenOneWriteConflicts() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        let error = #expect(throws: StoreError.self) {
            try UnitOfWork.run(on: store) { tx throws in
                try store.create(order("so-2"), in: tx)
                try store.create(Buyer(id: "c-9", name: "Bob"), in: tx)
                _ = try store.load(Order.self, id: "so-1", in: tx)
                // Another unit of work changes so-1 after this one read it.
                try UnitOfWork.run(on: store) { other throws in
                    try store.update(Order.self, id: "so-1", set: ["status": "paid"], in: other)
                }
                try store.save(order("so-1", status: "cancelled"), in: tx)
            }
        }
        #expect(error?.code == .conflict)
        #expect(error?.message.contains("SalesOrder/so-1") == true)
        try UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Order.self, id: "so-2", in: tx) == nil)
            #expect(try store.load(Buyer.self, id: "c-9", in: tx) == nil)
            #expect(try store.load(Order.self, id: "so-1", in: tx)?.status == "paid")
        }
    }

    @Test func readsSeeTheUnitOfWorksOwnWrites() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        try UnitOfWork.run(on: store) { tx throws in
            try store.create(order("so-2", customer: "c-2"), in: tx)
            #expect(try store.load(Order.self, id: "so-2", in: tx)?.customerId == "c-2")
            try store.delete(Order.self, id: "so-1", in: tx)
            #expect(try store.load(Order.self, id: "so-1", in: tx) == nil)
            #expect(try store.load(Order.self, ids: ["so-1", "so-2"], in: tx).map(\.id) == ["so-2"])
            #expect(try store.find(Order.self, where: \.customerId, equals: "c-2", in: tx).map(\.id) == ["so-2"])
            #expect(try store.find(Order.self, where: \.customerId, equals: "c-1", in: tx).isEmpty)
            // Outside this unit of work nothing has changed yet.
            try UnitOfWork.run(on: store) { other throws in
                #expect(try store.load(Order.self, id: "so-1", in: other) != nil)
                #expect(try store.load(Order.self, id: "so-2", in: other) == nil)
            }
        }
    }

    @Test func aUnitOfWorkThatStagedNothingWritesNoFrame() throws {
        let fixture = try StoreFixture()
        let uow = try UnitOfWork.begin(on: fixture.store)
        let receipt = try uow.commit()
        #expect(receipt.sequence == nil && receipt.eventPositions.isEmpty)
        #expect(fixture.store.engine.lastSequence == 0)
    }

    @Test func theReceiptNamesTheSequenceAndTheEventPositions() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let uow = try UnitOfWork.begin(on: store, id: "uow-explicit")
        try store.create(order("so-1"), in: uow.context)
        try uow.context.emit(OrderPlaced(orderId: "so-1"), about: order("so-1"))
        try uow.context.emit(OrderPlaced(orderId: "so-1"), about: order("so-1"))
        let receipt = try uow.commit()
        #expect(receipt.unitOfWorkId == "uow-explicit")
        #expect(receipt.sequence == 1)
        #expect(receipt.eventPositions == 1..<3)
    }

    @Test func theAsyncEntryPointCommitsAndAborts() async throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try await UnitOfWork.run(on: store) { tx async throws in
            await Task.yield()
            try store.create(order("so-1"), in: tx)
        }
        await #expect(throws: ActionFailed.self) {
            try await UnitOfWork.run(on: store) { tx async throws in
                try store.create(order("so-2"), in: tx)
                await Task.yield()
                throw ActionFailed()
            }
        }
        let found = try await UnitOfWork.run(on: store) { tx async throws in
            await Task.yield()
            return try store.load(Order.self, ids: ["so-1", "so-2"], in: tx)
        }
        #expect(found.map(\.id) == ["so-1"])
    }

    @Test func aContextOfAnotherStoreIsRefused() throws {
        let first = try StoreFixture(), second = try StoreFixture()
        let error = #expect(throws: StoreError.self) {
            try UnitOfWork.run(on: first.store) { tx throws in try second.store.create(order("so-1"), in: tx) }
        }
        #expect(error?.code == .invalidArgument)
    }

    @Test func aClosedStoreRefusesNewUnitsOfWork() throws {
        let fixture = try StoreFixture()
        try fixture.store.close()
        let error = #expect(throws: StoreError.self) { try UnitOfWork.run(on: fixture.store) { _ in } }
        #expect(error?.code == .closed)
    }
}
