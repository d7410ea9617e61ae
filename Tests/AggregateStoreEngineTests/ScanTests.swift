@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

@Suite("Table scans read each frame once and see exactly the live records")
struct ScanTests {
    private func scanned(_ engine: StorageEngine, _ table: String) throws -> [String: (UInt64, [UInt8])] {
        var seen: [String: (UInt64, [UInt8])] = [:]
        try engine.scan(table: table) { record throws(StoreError) in
            #expect(seen[record.id] == nil, "\(record.id) met twice")
            seen[record.id] = (record.version, Array(record.bytes))
        }
        return seen
    }

    @Test func aScanMatchesTheLookupsAcrossFramesSegmentsDeletesAndReopen() throws {
        let memory = InMemoryFileSystem()
        var configuration = EngineConfiguration()
        configuration.segmentSize = 16 << 10
        var engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: memory, logger: quietLogger)
        for round in 0..<3 {
            for first in stride(from: 0, to: 60, by: 6) {
                var batch = WriteBatch(unitOfWorkId: "uow-\(round)-\(first)")
                for n in first..<first + 6 {
                    batch.put(table: n.isMultiple(of: 5) ? "Other" : "SalesOrder", id: "SO-\(n)",
                              record: recordBytes("SO-\(n)", round: round, size: 100 + n))
                }
                if round == 2 { batch.delete(table: "SalesOrder", id: "SO-\(first + 1)") }
                try engine.commit(batch)
            }
        }
        for _ in 0..<2 {
            let ids = try engine.ids(table: "SalesOrder")
            let expected = try engine.records(table: "SalesOrder", ids: ids)
            let seen = try scanned(engine, "SalesOrder")
            #expect(seen.count == expected.count && expected.count == 40)   // 48 SalesOrder ids, 8 of them deleted
            for record in expected {
                #expect(seen[record.id]?.0 == record.version && seen[record.id]?.1 == record.bytes, "\(record.id)")
            }
            #expect(try scanned(engine, "Missing").isEmpty)
            try engine.close()
            engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: memory, logger: quietLogger)
        }
        try engine.close()
        let error = #expect(throws: StoreError.self) { try self.scanned(engine, "SalesOrder") }
        #expect(error?.code == .closed)
    }
}
