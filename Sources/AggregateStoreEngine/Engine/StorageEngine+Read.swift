import Synchronization

extension StorageEngine {
    /// The latest version of a record, or nil if it was never written or is deleted.
    ///
    /// Served by the primary index; the record's frame is read with one `pread`, its CRC
    /// verified and its payload decompressed, unless the payload is in the read cache.
    /// - Throws: ``StoreError/Code/closed``; ``StoreError/Code/corruption`` if the frame no
    ///   longer verifies; ``StoreError/Code/io``.
    public func record(table: String, id: String) throws(StoreError) -> StoredRecord? {
        try pinned { $0.liveEntry(table: table, id: id) } read: { entry throws(StoreError) -> StoredRecord? in
            guard let entry else { return nil }
            return try load(table: table, entry)
        }
    }

    /// The records with the given ids (an IN lookup), in the order of `ids`, skipping ids that
    /// do not exist and repeated ids.
    public func records(table: String, ids: [String]) throws(StoreError) -> [StoredRecord] {
        try pinned { index in
            var seen = Set<String>()
            return ids.compactMap { id -> KeyIndex.LiveEntry? in
                guard seen.insert(id).inserted else { return nil }
                return index.liveEntry(table: table, id: id)
            }
        } read: { entries throws(StoreError) -> [StoredRecord] in
            var records: [StoredRecord] = []
            records.reserveCapacity(entries.count)
            for entry in entries {
                records.append(try load(table: table, entry))
            }
            return records
        }
    }

    /// The ids of the live records of `table` whose foreign key `field` is `value`, sorted.
    /// Served by the foreign-key index.
    public func ids(table: String, field: String, value: String) throws(StoreError) -> [String] {
        try readIndex { $0.ids(table: table, field: field, value: value) }
    }

    /// The live records of `table` whose foreign key `field` is `value`, sorted by id.
    public func records(table: String, field: String, value: String) throws(StoreError) -> [StoredRecord] {
        try records(table: table, ids: ids(table: table, field: field, value: value))
    }

    /// The ids of the live records of `table`, sorted: a scan of the table through the primary
    /// index (deleted records are left out).
    /// - Throws: ``StoreError/Code/closed``.
    public func ids(table: String) throws(StoreError) -> [String] {
        try readIndex { $0.liveIds(table: table) }
    }

    /// The tables that hold at least one live record, sorted.
    /// - Throws: ``StoreError/Code/closed``.
    public func tables() throws(StoreError) -> [String] {
        try readIndex { $0.liveTables() }
    }

    /// The number of live records of `table` (0 for a table never written or whose records are
    /// all deleted). Kept by the index, so it costs one dictionary lookup.
    /// - Throws: ``StoreError/Code/closed``.
    public func liveRecordCount(table: String) throws(StoreError) -> Int {
        try readIndex { $0.liveCount(table: table) }
    }

    /// The latest version of a key, tombstones included (0 if never written), and whether it is live.
    public func version(table: String, id: String) throws(StoreError) -> (version: UInt64, isLive: Bool) {
        try readIndex { index in
            index.entry(table: table, id: id).map { ($0.version, $0.isLive) } ?? (0, false)
        }
    }

    /// Looks something up in the index (under the index lock), then reads the frames it points
    /// at (after the lock is released): the segments the lookup saw stay open until `read`
    /// returns, even if a compaction replaces them meanwhile.
    package func pinned<Found, Value>(_ lookup: (KeyIndex) -> Found,
                                      read: (Found) throws(StoreError) -> Value) throws(StoreError) -> Value {
        try pinned({ state in lookup(state.index) }, read: read)
    }

    /// ``pinned(_:read:)`` with a lookup in the whole read state.
    package func pinned<Found, Value>(_ lookup: (ReadState) -> Found,
                                      read: (Found) throws(StoreError) -> Value) throws(StoreError) -> Value {
        let (found, epoch) = try state.withLock { state throws(StoreError) -> (Found, UInt64) in
            guard !state.isClosed else { throw StoreError(.closed, "the store is closed") }
            state.pins[state.epoch, default: 0] += 1
            return (lookup(state), state.epoch)
        }
        defer {
            state.withLock { state in
                let remaining = state.pins[epoch, default: 1] - 1
                state.pins[epoch] = remaining > 0 ? remaining : nil
            }
        }
        return try read(found)
    }

    /// Runs `body` on the index under the index lock, after checking the store is open.
    package func readIndex<T>(_ body: (KeyIndex) -> T) throws(StoreError) -> T {
        try state.withLock { state throws(StoreError) -> T in
            guard !state.isClosed else { throw StoreError(.closed, "the store is closed") }
            return body(state.index)
        }
    }

    private func load(table: String, _ live: KeyIndex.LiveEntry) throws(StoreError) -> StoredRecord {
        let (id, entry, location) = (live.id, live.entry, live.location)
        let start = Int(location.recordOffset)
        let end = start + Int(location.recordLength)
        // From the cache only the record's bytes are copied out; nil inside: out of bounds.
        let cached = cache.withPayload(for: location.frame) { payload in
            end <= payload.count ? Array(UnsafeRawBufferPointer(rebasing: payload[start..<end])) : nil
        }
        var bytes: [UInt8]?
        if let cached {
            bytes = cached
        } else {
            let payload = try readFramePayload(at: location.frame, storedLength: location.storedLength)
            if end <= payload.count { bytes = Array(payload[start..<end]) }
        }
        guard let bytes else {
            throw .corruption("record \(table)/\(id) lies outside its frame's payload",
                              path: segmentPath(location.segment), offset: location.frameOffset)
        }
        return StoredRecord(table: table, id: id, version: entry.version, sequence: entry.sequence,
                            foreignKeys: live.foreignKeys, bytes: bytes)
    }

    /// The uncompressed payload of the frame at `location`, from the cache or from disk.
    package func framePayload(_ location: RecordLocation) throws(StoreError) -> [UInt8] {
        try framePayload(at: location.frame, storedLength: location.storedLength)
    }

    /// The uncompressed payload of the frame at `address`, whose stored payload has
    /// `storedLength` bytes, from the cache or from disk (one `pread`, CRCs verified).
    package func framePayload(at address: FrameAddress, storedLength: UInt32) throws(StoreError) -> [UInt8] {
        if let cached = cache.payload(for: address) { return cached }
        return try readFramePayload(at: address, storedLength: storedLength)
    }

    /// The uncompressed payload of a frame read from disk (one `pread`, CRCs verified), which
    /// then goes into the cache.
    private func readFramePayload(at address: FrameAddress, storedLength: UInt32) throws(StoreError) -> [UInt8] {
        let frameLength = Format.frameHeaderLength + Int(storedLength)
        let bytes = try readSegment(address.segment, at: address.offset, count: frameLength)
        guard bytes.count == frameLength else {
            throw .corruption("frame is cut short (\(bytes.count) of \(frameLength) bytes)", path: segmentPath(address.segment),
                              offset: address.offset)
        }
        let payload = try bytes.withUnsafeBytesTyped { buffer throws(StoreError) in
            try decodeFrame(buffer, at: address, storedLength: storedLength)
        }
        cache.insert(payload, for: address)
        return payload
    }

    /// Reads `count` bytes of a segment at `offset` with one `pread` (fewer at its end).
    func readSegment(_ segment: UInt32, at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        // The pread happens under the segments lock so that close() cannot release the
        // descriptor (and the kernel reuse its number) while it is being read.
        try segments.withLock { handles throws(StoreError) -> [UInt8] in
            guard let handle = handles[segment] else { throw StoreError(.closed, "the store is closed") }
            return try handle.read(at: offset, count: count)
        }
    }

    /// Checks a frame read from disk (its header, its length, its CRCs) and returns its
    /// uncompressed payload.
    func decodeFrame(_ bytes: UnsafeRawBufferPointer, at address: FrameAddress, storedLength: UInt32) throws(StoreError) -> [UInt8] {
        let path = segmentPath(address.segment)
        guard bytes.count == Format.frameHeaderLength + Int(storedLength) else {
            throw .corruption("frame is cut short (\(bytes.count) bytes)", path: path, offset: address.offset)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[..<Format.frameHeaderLength])
        guard case let .success(header) = Frame.parseHeader(headerBytes), header.storedLength == Int(storedLength) else {
            throw .corruption("frame header no longer verifies", path: path, offset: address.offset)
        }
        let stored = UnsafeRawBufferPointer(rebasing: bytes[Format.frameHeaderLength...])
        guard Frame.verify(header, headerBytes: headerBytes, stored: stored, salt: salt) else {
            throw .corruption("frame CRC mismatch on read", path: path, offset: address.offset)
        }
        do throws(StoreError) {
            return try Frame.payload(of: header, stored: stored)
        } catch {
            throw .corruption("frame does not decompress: \(error.message)", path: path, offset: address.offset)
        }
    }

    /// The path of a segment file.
    package func segmentPath(_ segment: UInt32) -> String {
        joinPath(path, SegmentHeader.fileName(for: UInt64(segment)))
    }
}
