@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// A batch's keys: the states it leaves them in, searched linearly for a few keys and through
/// a dictionary beyond that, must agree with a plain dictionary, and a large batch that writes
/// a key twice must chain its versions as a small one does.
@Suite("Batch keys")
struct BatchKeysTests {
    @Test func statesAgreeWithADictionaryOnEitherSideOfTheLinearSearchLimit() {
        var generator = SplitMix64(seed: 11)
        for keyCount in [1, BatchKeyStates.linearSearchLimit, BatchKeyStates.linearSearchLimit + 1, 40] {
            var states = BatchKeyStates(capacity: 4)
            var model: [TableKey: KeyState] = [:]
            var order: [TableKey] = []
            for step in 0..<(3 * keyCount) {
                let key = TableKey(table: step % 2 == 0 ? "A" : "B", id: "k\(generator.next() % UInt64(keyCount))")
                #expect(states[key] == model[key], "before step \(step) of \(keyCount) keys")
                let state = KeyState(version: UInt64(step + 1), isLive: generator.next() % 3 != 0)
                states.set(state, for: key)
                if model.updateValue(state, forKey: key) == nil { order.append(key) }
            }
            #expect(states.entries.map(\.key) == order, "each key once, in the order first written")
            #expect(states.entries.allSatisfy { model[$0.key] == $0.state })
        }
    }

    @Test func keysAreListedPerPutAndDeleteInBatchOrder() {
        var batch = WriteBatch(unitOfWorkId: "uow-1")
        batch.put(table: "T", id: "1", record: [1])
        batch.append(OutboxEvent(id: "e", type: "E", aggregateTable: "T", aggregateId: "1", occurredAt: 0, payload: []))
        batch.delete(table: "U", id: "2")
        batch.put(table: "T", id: "1", record: [2])
        #expect(BatchKeys(batch).keys == [TableKey(table: "T", id: "1"), TableKey(table: "U", id: "2"), TableKey(table: "T", id: "1")])
    }

    @Test func aLargeBatchChainsTheVersionsOfAKeyItWritesTwice() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        try engine.commit(orderBatch(1))
        var batch = WriteBatch(unitOfWorkId: "uow-large")
        batch.put(table: "SalesOrder", id: "SO-1", record: [1], expecting: .version(1))
        for number in 2...(2 * BatchKeyStates.linearSearchLimit) {
            batch.put(table: "SalesOrder", id: "SO-\(number)", record: [UInt8(number)], expecting: .absent)
        }
        batch.delete(table: "SalesOrder", id: "SO-1", expecting: .version(2))
        batch.put(table: "SalesOrder", id: "SO-1", record: [9], expecting: .version(3))
        let versions = try engine.commit(batch).versions
        #expect(versions.first == 2)
        #expect(versions.suffix(2) == [3, 4])
        #expect(try engine.version(table: "SalesOrder", id: "SO-1") == (4, true))

        // An expectation that the batch's own earlier write makes stale is refused.
        var stale = WriteBatch(unitOfWorkId: "uow-stale")
        for number in 100..<(100 + 2 * BatchKeyStates.linearSearchLimit) {
            stale.put(table: "SalesOrder", id: "SO-\(number)", record: [1])
        }
        stale.put(table: "SalesOrder", id: "SO-100", record: [2], expecting: .version(2))
        stale.put(table: "SalesOrder", id: "SO-100", record: [3], expecting: .version(1))
        let error = #expect(throws: StoreError.self) { try engine.commit(stale) }
        #expect(error?.code == .conflict)
        #expect(try engine.record(table: "SalesOrder", id: "SO-100") == nil)
    }
}
