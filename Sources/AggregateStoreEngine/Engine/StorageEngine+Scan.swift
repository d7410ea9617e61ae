extension StorageEngine {
    /// A live record met by ``scan(table:_:)``: its bytes are valid only during the call.
    package struct ScannedRecord {
        package var id: String
        package var version: UInt64
        /// The record's foreign keys; empty unless the scan was asked for them.
        package var foreignKeys: [ForeignKey]
        package var bytes: UnsafeRawBufferPointer
    }

    /// Calls `body` with every live record of `table`, in log order: each frame's payload is
    /// fetched (and verified, if it is not cached) once for all its records, and no record is
    /// copied. The index is copied first, so commits during the scan are not seen.
    ///
    /// `body` must not compact or close the store: the scan keeps the segments it reads open,
    /// and both wait for it.
    ///
    /// Foreign keys are looked up only `withForeignKeys` (an array per record).
    ///
    /// - Throws: ``StoreError/Code/closed``; ``StoreError/Code/corruption`` if a frame no
    ///   longer verifies; what `body` throws.
    package func scan(table: String, withForeignKeys: Bool = false,
                      _ body: (ScannedRecord) throws(StoreError) -> Void) throws(StoreError) {
        try pinned { (index: KeyIndex) -> [KeyIndex.LiveEntry] in
            index.liveEntries(table: table, withForeignKeys: withForeignKeys)
        } read: { entries throws(StoreError) in
            try scan(table: table, entries: entries, body)
        }
    }

    private func scan(table: String, entries: [KeyIndex.LiveEntry],
                      _ body: (ScannedRecord) throws(StoreError) -> Void) throws(StoreError) {
        var entries = entries
        entries.sort { ($0.location.segment, $0.location.frameOffset, $0.location.recordOffset)
            < ($1.location.segment, $1.location.frameOffset, $1.location.recordOffset) }
        var start = 0
        while start < entries.count {
            let frame = entries[start].location.frame
            var end = start + 1
            while end < entries.count, entries[end].location.frame == frame { end += 1 }
            let payload = try framePayload(entries[start].location)
            try payload.withUnsafeBytesTyped { buffer throws(StoreError) in
                for entry in entries[start..<end] {
                    let location = entry.location
                    let lower = Int(location.recordOffset), upper = lower + Int(location.recordLength)
                    guard upper <= buffer.count else {
                        throw .corruption("record \(table)/\(entry.id) lies outside its frame's payload",
                                          path: segmentPath(location.segment), offset: location.frameOffset)
                    }
                    try body(ScannedRecord(id: entry.id, version: entry.entry.version, foreignKeys: entry.foreignKeys,
                                           bytes: UnsafeRawBufferPointer(rebasing: buffer[lower..<upper])))
                }
            }
            start = end
        }
    }
}
