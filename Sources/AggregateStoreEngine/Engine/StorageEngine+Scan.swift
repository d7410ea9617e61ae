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
    /// fetched (and verified, if it is not cached) once for all its records, frames that are
    /// not cached many at a time, and no record is copied. The index is copied first, so
    /// commits during the scan are not seen.
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
        var reader = ScanReader(engine: self)
        var start = 0
        while start < entries.count {
            let frame = entries[start].location.frame
            var end = start + 1
            while end < entries.count, entries[end].location.frame == frame { end += 1 }
            let payload = try reader.payload(entries[start].location, following: entries[end...])
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

/// Reads the frames of a scan, in log order: from the read cache when they are there, and
/// otherwise many at a time, with one `pread` for a run of nearby frames (a log of small
/// commits has a frame per aggregate). What it reads is not cached: a scan would only push
/// the working set out.
private struct ScanReader {
    /// A run is read whole while the next frame starts at most this far after the last.
    static let maximumGap = 16 << 10
    /// The most bytes one read takes.
    static let maximumWindow = 1 << 20

    let engine: StorageEngine
    /// The bytes last read: `segment`, from `offset`.
    private var window: [UInt8] = []
    private var segment: UInt32 = 0
    private var offset: UInt64 = 0

    init(engine: StorageEngine) {
        self.engine = engine
    }

    /// The payload of the frame at `location`; `following` are the entries after its frame's,
    /// in log order, whose frames a window read may include.
    mutating func payload(_ location: RecordLocation, following: ArraySlice<KeyIndex.LiveEntry>) throws(StoreError) -> [UInt8] {
        if let cached = engine.cache.payload(for: location.frame) { return cached }
        let length = Format.frameHeaderLength + Int(location.storedLength)
        if !contains(location.segment, location.frameOffset, length) {
            try read(from: location, length: length, following: following)
        }
        let lower = Int(location.frameOffset - offset)
        return try window.withUnsafeBytesTyped { bytes throws(StoreError) in
            try engine.decodeFrame(UnsafeRawBufferPointer(rebasing: bytes[lower..<lower + length]), at: location.frame,
                                   storedLength: location.storedLength)
        }
    }

    private func contains(_ segment: UInt32, _ start: UInt64, _ length: Int) -> Bool {
        segment == self.segment && start >= offset && start + UInt64(length) <= offset + UInt64(window.count)
    }

    /// Reads from the frame at `location` to the end of the last nearby frame that follows.
    private mutating func read(from location: RecordLocation, length: Int, following: ArraySlice<KeyIndex.LiveEntry>)
        throws(StoreError) {
        var end = location.frameOffset + UInt64(length)
        for entry in following {
            let next = entry.location
            guard next.segment == location.segment, next.frameOffset <= end + UInt64(Self.maximumGap) else { break }
            let nextEnd = next.frameOffset + UInt64(Format.frameHeaderLength) + UInt64(next.storedLength)
            guard nextEnd - location.frameOffset <= UInt64(Self.maximumWindow) else { break }
            end = max(end, nextEnd)
        }
        window = try engine.readSegment(location.segment, at: location.frameOffset, count: Int(end - location.frameOffset))
        segment = location.segment
        offset = location.frameOffset
        guard window.count >= length else {
            throw .corruption("frame is cut short (\(window.count) of \(length) bytes)", path: engine.segmentPath(location.segment),
                              offset: location.frameOffset)
        }
    }
}
