import AggregateStore
import Testing

@Suite("Optimistic concurrency: conflicts and duplicates at commit")
struct OptimisticConcurrencyTests {
    @Test func aWriteAfterAConcurrentChangeFailsWithConflictAndWritesNothing() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        for write in ["save", "delete", "update"] {
            let first = try UnitOfWork.begin(on: store)
            _ = try store.load(Order.self, id: "so-1", in: first.context)
            try UnitOfWork.run(on: store) { tx throws in try store.update(Order.self, id: "so-1", set: ["status": "\(write)-winner"], in: tx) }
            switch write {
            case "save": try store.save(order("so-1", status: "loser"), in: first.context)
            case "delete": try store.delete(Order.self, id: "so-1", in: first.context)
            default: try store.update(Order.self, id: "so-1", set: ["status": "loser"], in: first.context)
            }
            let sequence = store.engine.lastSequence
            let error = commitError(first)
            #expect(error?.code == .conflict, "\(write)")
            #expect(store.engine.lastSequence == sequence)
            try UnitOfWork.run(on: store) { tx throws in
                #expect(try store.load(Order.self, id: "so-1", in: tx)?.status == "\(write)-winner")
            }
        }
    }

    @Test func twoConcurrentCreatesOfOneIdLeaveOneAndADuplicateError() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        let first = try UnitOfWork.begin(on: store)
        let second = try UnitOfWork.begin(on: store)
        try store.create(order("so-1", status: "first"), in: first.context)
        try store.create(order("so-1", status: "second"), in: second.context)
        try first.commit()
        let error = commitError(second)
        #expect(error?.code == .duplicate)
        try UnitOfWork.run(on: store) { tx throws in #expect(try store.load(Order.self, id: "so-1", in: tx)?.status == "first") }
    }

    @Test func aBlindSaveWithoutARead() throws {
        let fixture = try StoreFixture()
        let store = fixture.store
        try UnitOfWork.run(on: store) { tx throws in try store.create(order("so-1"), in: tx) }
        let blind = try UnitOfWork.begin(on: store)
        try UnitOfWork.run(on: store) { tx throws in try store.update(Order.self, id: "so-1", set: ["status": "paid"], in: tx) }
        try store.save(order("so-1", status: "overwritten"), in: blind.context)
        try blind.commit()
        try UnitOfWork.run(on: store) { tx throws in #expect(try store.load(Order.self, id: "so-1", in: tx)?.status == "overwritten") }
    }

    @Test func manyThreadsIncrementingOneCounterLoseNoUpdate() async throws {
        struct Counter: Aggregate { static let table = "Counter"; var id: String; var value: Int }
        let fixture = try StoreFixture()
        let store = fixture.store
        try await UnitOfWork.run(on: store) { tx throws in try store.create(Counter(id: "n", value: 0), in: tx) }
        let workers = 8, increments = 25
        let conflicts = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<workers {
                group.addTask {
                    var conflicts = 0, done = 0
                    while done < increments {
                        do {
                            try UnitOfWork.run(on: store) { tx throws in
                                var counter = try store.load(Counter.self, id: "n", in: tx)!
                                counter.value += 1
                                try store.save(counter, in: tx)
                            }
                            done += 1
                        } catch let error as StoreError where error.code == .conflict {
                            conflicts += 1
                        }
                    }
                    return conflicts
                }
            }
            return try await group.reduce(0, +)
        }
        try await UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Counter.self, id: "n", in: tx)?.value == workers * increments)
        }
        #expect(store.engine.lastSequence == UInt64(1 + workers * increments))
        _ = conflicts
    }

    /// The error a commit fails with, or nil (recorded as an issue) if it succeeds.
    private func commitError(_ unitOfWork: consuming UnitOfWork) -> StoreError? {
        do {
            try unitOfWork.commit()
            Issue.record("the commit succeeded")
            return nil
        } catch {
            return error
        }
    }
}
