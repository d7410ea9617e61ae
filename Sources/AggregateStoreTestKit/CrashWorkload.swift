package import AggregateStoreEngine

/// Deterministic workloads for the crash suite: batch *k* is a function of the seed and *k*,
/// so a failure replays exactly from its seed. Keys come from a small key space, so later
/// batches overwrite and delete what earlier ones wrote, and tombstones matter.
package struct CrashWorkload: Sendable {
    /// The seed every batch derives from.
    package let seed: UInt64
    /// Distinct ids per table.
    package let keySpace: Int
    /// Largest record, in bytes.
    package let maximumRecordSize: Int
    /// The tables written.
    package static let tables = ["SalesOrder", "Customer"]
    /// The foreign-key field every SalesOrder record carries.
    package static let foreignKeyField = "customerId"

    /// A workload; small records by default, so many frames fit in a small segment.
    package init(seed: UInt64, keySpace: Int = 12, maximumRecordSize: Int = 300) {
        self.seed = seed
        self.keySpace = keySpace
        self.maximumRecordSize = maximumRecordSize
    }

    /// The batch committed as the `number`-th commit (from 1): 1-4 puts or deletes and 0-2 events.
    package func batch(_ number: UInt64) -> WriteBatch {
        var random = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 &+ number)
        var batch = WriteBatch(unitOfWorkId: "uow-\(seed)-\(number)")
        for index in 0..<Int.random(in: 1...4, using: &random) {
            let table = Self.tables[Int.random(in: 0..<Self.tables.count, using: &random)]
            let id = "K-\(Int.random(in: 0..<keySpace, using: &random))"
            if Int.random(in: 0..<5, using: &random) == 0 {
                batch.delete(table: table, id: id)
            } else {
                let size = Int.random(in: 0...maximumRecordSize, using: &random)
                // Half-compressible bytes that name their batch, so a stale version never matches.
                var record = Array("\(table)/\(id)@\(number).\(index);".utf8)
                record += random.bytes(size / 2) + [UInt8](repeating: UInt8(number % 251), count: size - size / 2)
                let keys = table == "SalesOrder"
                    ? [ForeignKey(field: Self.foreignKeyField, value: "C-\(Int.random(in: 0..<4, using: &random))")] : []
                batch.put(table: table, id: id, record: record, foreignKeys: keys)
            }
        }
        for index in 0..<Int.random(in: 0...2, using: &random) {
            batch.append(OutboxEvent(id: "ev-\(number)-\(index)", type: "Changed", aggregateTable: "SalesOrder",
                                     aggregateId: "K-\(index)", occurredAt: Int64(number), payload: random.bytes(index * 20)))
        }
        return batch
    }
}
