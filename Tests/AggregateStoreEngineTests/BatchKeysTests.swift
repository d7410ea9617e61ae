@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// A batch's keys: the state its earlier operations leave a key in, searched linearly among a
/// few entries and through a dictionary beyond that, must agree with a plain dictionary, and a
/// large batch that writes a key twice must chain its versions as a small one does.
@Suite("Batch keys")
struct BatchKeysTests {
    @Test func theStateBeforeAnEntryIsThatOfTheKeysLastEarlierEntryOnEitherSideOfTheLinearSearchLimit() {
        var generator = SplitMix64(seed: 11)
        for keyCount in [1, 3, BatchKeys.linearSearchLimit, 40] {
            var batch = WriteBatch(unitOfWorkId: "uow")
            for step in 0..<(4 * BatchKeys.linearSearchLimit) {
                let id = "k\(generator.next() % UInt64(keyCount))"
                if step % 3 == 2 { batch.delete(table: "A", id: id) } else { batch.put(table: step % 2 == 0 ? "A" : "B", id: id, record: [1]) }
                if step % 5 == 0 {
                    batch.append(OutboxEvent(id: "e\(step)", type: "E", aggregateTable: "A", aggregateId: id, occurredAt: 0, payload: []))
                }
            }
            var keys = BatchKeys(batch)
            var model: [TableKey: KeyState] = [:]
            #expect(keys.entries.count == 4 * BatchKeys.linearSearchLimit, "one entry per put or delete, none per event")
            for index in keys.entries.indices {
                let key = keys.key(at: index)
                #expect(keys.stateBefore(index) == model[key], "entry \(index) of \(keyCount) keys")
                let state = KeyState(version: UInt64(index + 1), isLive: generator.next() % 3 != 0)
                keys.record(state, at: index)
                model[key] = state
            }
        }
    }

    @Test func keysAreListedPerPutAndDeleteInBatchOrder() {
        var batch = WriteBatch(unitOfWorkId: "uow-1")
        batch.put(table: "T", id: "1", record: [1])
        batch.append(OutboxEvent(id: "e", type: "E", aggregateTable: "T", aggregateId: "1", occurredAt: 0, payload: []))
        batch.delete(table: "U", id: "2")
        batch.put(table: "T", id: "1", record: [2])
        #expect(BatchKeys(batch).entries.map(\.key) == [TableKey(table: "T", id: "1"), TableKey(table: "U", id: "2"), TableKey(table: "T", id: "1")])
    }

    @Test func aLargeBatchChainsTheVersionsOfAKeyItWritesTwice() throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        defer { try? engine.close() }
        try engine.commit(orderBatch(1))
        var batch = WriteBatch(unitOfWorkId: "uow-large")
        batch.put(table: "SalesOrder", id: "SO-1", record: [1], expecting: .version(1))
        for number in 2...(2 * BatchKeys.linearSearchLimit) {
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
        for number in 100..<(100 + 2 * BatchKeys.linearSearchLimit) {
            stale.put(table: "SalesOrder", id: "SO-\(number)", record: [1])
        }
        stale.put(table: "SalesOrder", id: "SO-100", record: [2], expecting: .version(2))
        stale.put(table: "SalesOrder", id: "SO-100", record: [3], expecting: .version(1))
        let error = #expect(throws: StoreError.self) { try engine.commit(stale) }
        #expect(error?.code == .conflict)
        #expect(try engine.record(table: "SalesOrder", id: "SO-100") == nil)
    }
}
