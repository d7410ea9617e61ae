@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Synchronization
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

    /// A store of one small commit per record, overwrites and deletes mixed in, with the read
    /// cache off: the scan reads its frames many at a time, and across the gaps the dead
    /// records leave.
    private func storeOfSmallCommits(_ directory: TemporaryDirectory) throws -> StorageEngine {
        var configuration = EngineConfiguration()
        configuration.readCacheSize = 0
        configuration.segmentSize = 256 << 10
        let engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        for n in 0..<600 {
            var batch = WriteBatch(unitOfWorkId: "uow-\(n)")
            // Every seventh commit writes a large record of another table: a gap in the scan.
            if n.isMultiple(of: 7) {
                batch.put(table: "Other", id: "O-\(n)", record: recordBytes("O-\(n)", size: 20_000 + n))
            }
            batch.put(table: "SalesOrder", id: "SO-\(n % 400)", record: recordBytes("SO-\(n % 400)", round: n / 400, size: 80 + n % 50))
            if n.isMultiple(of: 11) { batch.delete(table: "SalesOrder", id: "SO-\((n + 3) % 400)") }
            try engine.commit(batch)
        }
        return engine
    }

    @Test func aScanReadingManyFramesAtATimeMatchesTheLookups() throws {
        let directory = TemporaryDirectory()
        let engine = try storeOfSmallCommits(directory)
        #expect(try engine.statistics().segments.count > 3)
        let ids = try engine.ids(table: "SalesOrder")
        let expected = try engine.records(table: "SalesOrder", ids: ids)
        let seen = try scanned(engine, "SalesOrder")
        #expect(seen.count == expected.count && expected.count > 300)
        for record in expected {
            #expect(seen[record.id]?.0 == record.version && seen[record.id]?.1 == record.bytes, "\(record.id)")
        }
        try engine.close()
    }

    @Test func aScanReportsAFrameDamagedInTheMiddleOfAWindow() throws {
        let directory = TemporaryDirectory()
        var engine = try storeOfSmallCommits(directory)
        // A live record's frame, in a segment the scan reads many frames of at a time.
        let index = engine.state.withLock { $0.index }
        let locations = (0..<400).compactMap { index.entry(table: "SalesOrder", id: "SO-\($0)")?.location }
        let busiest = Dictionary(grouping: locations, by: \.segment).max { $0.value.count < $1.value.count }!
        let inSegment = busiest.value.sorted { $0.frameOffset < $1.frameOffset }
        #expect(inSegment.count > 20)
        let location = inSegment[inSegment.count / 2]
        try engine.close()
        let path = segmentPath(directory.path, UInt64(location.segment))
        try editFile(path) { bytes in bytes[Int(location.frameOffset) + 40] ^= 0x01 }
        var configuration = EngineConfiguration()
        configuration.readCacheSize = 0
        configuration.segmentSize = 256 << 10
        configuration.writesIndexSnapshot = false
        // The index comes from the snapshot the close wrote, so the open does not read the frame.
        engine = try StorageEngine.open(at: directory.path, configuration: configuration, logger: quietLogger)
        let error = #expect(throws: StoreError.self) { try self.scanned(engine, "SalesOrder") }
        #expect(error?.code == .corruption)
        #expect(error?.offset == location.frameOffset)
        try engine.close()
    }
}
