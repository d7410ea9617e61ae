import AggregateStore
import AggregateStoreTestKit
import Testing

/// Uses only what `import AggregateStore` makes public, as a component developer would.
@Suite("The public API")
struct PublicAPITests {
    @Test func aComponentCanCommitReadAndInspectThroughThePublicModule() throws {
        let directory = TemporaryDirectory()
        var configuration = EngineConfiguration()
        configuration.segmentSize = 1 << 20
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration)
        var batch = WriteBatch(unitOfWorkId: "uow-1")
        batch.put(table: "SalesOrder", id: "SO-1", record: Array("order".utf8),
                  foreignKeys: [ForeignKey(field: "customerId", value: "C-1")], expecting: .absent)
        batch.append(OutboxEvent(id: "ev-1", type: "SalesOrderPlaced", aggregateTable: "SalesOrder",
                                 aggregateId: "SO-1", occurredAt: 0, payload: []))
        let receipt = try engine.commit(batch)
        #expect(receipt.sequence == 1 && receipt.versions == [1])
        #expect(try engine.record(table: "SalesOrder", id: "SO-1")?.bytes == Array("order".utf8))
        #expect(try engine.ids(table: "SalesOrder", field: "customerId", value: "C-1") == ["SO-1"])
        #expect(try engine.records(table: "SalesOrder", ids: ["SO-1", "SO-2"]).count == 1)
        let statistics = try engine.statistics()
        #expect(statistics.frames == 1 && statistics.events == 1 && statistics.liveRecords == 1)
        #expect(try engine.verify().isHealthy)
        try engine.close()

        let error = #expect(throws: StoreError.self) { try engine.commit(batch) }
        #expect(error?.code == .closed)
        #expect(error.map { "\($0)" }?.contains("closed") == true)
    }
}
