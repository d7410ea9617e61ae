// MARK: - Keyed container

struct StreamingKeyedEncodingContainer<Key: CodingKey, Owner>: KeyedEncodingContainerProtocol {
    let handle: UnsafeMutablePointer<KeyedEncodingHandle>
    /// What keeps the handle's memory alive: `Void` when a ``ContainerBoxCache`` owns it, so
    /// that copying the container (the standard library's box does, for every call) is a plain
    /// copy; a ``ContainerToken`` when the container owns it.
    let owner: Owner

    /// A container whose handle a ``ContainerBoxCache`` owns.
    init(handle: UnsafeMutablePointer<KeyedEncodingHandle>) where Owner == Void {
        self.handle = handle
        owner = ()
    }

    /// A container that owns its handle.
    init(token: ContainerToken<KeyedEncodingHandle>) where Owner == ContainerToken<KeyedEncodingHandle> {
        handle = token.handle
        owner = token
    }

    /// The encoder of the call using this container (set whenever the container is reachable).
    @inline(__always)
    private var encoder: StreamingEncoder { handle.pointee.encoder }

    @inline(__always)
    private var slot: Int { handle.pointee.slot }

    var codingPath: [any CodingKey] { encoder.path(prefix: handle.pointee.pathCount) }

    /// Checks that this container may write now and writes the key of a new entry; returns the
    /// entry's offset (the key's coding path entry).
    @inline(__always)
    @discardableResult
    private func begin(_ key: Key) throws -> Int {
        let state = handle.pointee.state
        let slot = handle.pointee.slot
        // Serials are never reused, so the innermost container's serial being this container's
        // says it is the innermost (in its slot) and of this call.
        if _slowPath(state.pointee.innermostSerial != handle.pointee.serial) {
            if slot == deadSlot { throw encoder.abandon() }
            try encoder.reactivate(slot: slot, serial: handle.pointee.serial)
        }
        let entryStart = state.pointee.writer.count
        if KeyBytesCache.applies(to: Key.self), let entry = handle.pointee.keys.entry(key) {
            let count = Int(entry.pointee.count)
            if _fastPath(count <= 16) {
                state.pointee.writer.appendShortRun(entry.pointee.head, entry.pointee.tail, count: count)
            } else {
                state.pointee.writer.append(UnsafeRawBufferPointer(start: handle.pointee.keys.prefixedBytes(entry), count: count))
            }
            let prefixLength = Int(entry.pointee.prefixLength)
            guard isFreshKey(
                UnsafeRawBufferPointer(start: state.pointee.writer.base + entryStart + prefixLength, count: count - prefixLength),
                bloomIndex: Int(entry.pointee.bloomIndex), slot: slot, state: state) else {
                throw encoder.abandon()
            }
            state.pointee.containers[slot].count &+= 1
            return entryStart
        }
        let string = key.stringValue
        let fresh: Bool? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            state.pointee.writer.appendLengthPrefixed(bytes)
            return isFreshKey(bytes, bloomIndex: KeyBloom.index(of: bytes), slot: slot, state: state)
        }
        guard fresh ?? slowFreshKey(string, slot: slot, state: state) else { throw encoder.abandon() }
        state.pointee.containers[slot].count &+= 1
        return entryStart
    }

    /// Records the key in the container's Bloom filter; on a possible repeat, looks for it.
    @inline(__always)
    private func isFreshKey(
        _ key: UnsafeRawBufferPointer, bloomIndex: Int, slot: Int, state: UnsafeMutablePointer<StreamingEncoderState>
    ) -> Bool {
        let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: bloomIndex & 63)
        if bloomIndex < 64 {
            if _slowPath(state.pointee.containers[slot].bloomLow & bit != 0) { return !containsKey(key, slot: slot, state: state) }
            state.pointee.containers[slot].bloomLow |= bit
        } else {
            if _slowPath(state.pointee.containers[slot].bloomHigh & bit != 0) { return !containsKey(key, slot: slot, state: state) }
            state.pointee.containers[slot].bloomHigh |= bit
        }
        return true
    }

    /// Whether an earlier entry of this container has the key, by reading the entries back.
    @inline(never)
    private func containsKey(_ key: UnsafeRawBufferPointer, slot: Int, state: UnsafeMutablePointer<StreamingEncoderState>) -> Bool {
        let container = state.pointee.containers[slot]
        let writer = state.pointee.writer
        var reader = RecordReader(UnsafeRawPointer(writer.base), count: writer.count, position: container.start + container.headerSize)
        do {
            for _ in 0..<container.count {
                let existing = try reader.readLengthPrefixed()
                if existing.count == key.count && (key.count == 0 || memcmpBytes(existing.baseAddress!, key.baseAddress!, key.count)) {
                    return true
                }
                let tag = try reader.readByte()
                try reader.skipValue(tag: tag)
            }
        } catch {
            return true
        }
        return false
    }

    @inline(never)
    private func slowFreshKey(_ string: String, slot: Int, state: UnsafeMutablePointer<StreamingEncoderState>) -> Bool {
        var copy = string
        return copy.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            state.pointee.writer.appendLengthPrefixed(bytes)
            return isFreshKey(bytes, bloomIndex: KeyBloom.index(of: bytes), slot: slot, state: state)
        }
    }

    mutating func encodeNil(forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.writeNil()
    }

    mutating func encode(_ value: Bool, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(value)
    }

    mutating func encode(_ value: String, forKey key: Key) throws {
        try begin(key)
        let state = handle.pointee.state
        if state.pointee.smallASCII, let (head, tail, count) = SmallASCII.words(of: value) {
            // A small string written here, from its two words: `write` stays an out-of-line call.
            state.pointee.writer.reserve(18)
            state.pointee.writer.appendReserved(RecordFormat.Tag.string)
            state.pointee.writer.appendReserved(UInt8(truncatingIfNeeded: count))
            state.pointee.writer.appendShortRun(head, tail, count: count)
            return
        }
        state.write(value)
    }

    mutating func encode(_ value: Double, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(value)
    }

    mutating func encode(_ value: Float, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Double(value))
    }

    mutating func encode(_ value: Int, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Int64(value))
    }

    mutating func encode(_ value: Int8, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Int64(value))
    }

    mutating func encode(_ value: Int16, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Int64(value))
    }

    mutating func encode(_ value: Int32, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Int64(value))
    }

    mutating func encode(_ value: Int64, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(value)
    }

    mutating func encode(_ value: UInt, forKey key: Key) throws {
        let entry = try begin(key)
        try encoder.write(unsigned: UInt64(value), path: entry)
    }

    mutating func encode(_ value: UInt8, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Int64(value))
    }

    mutating func encode(_ value: UInt16, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Int64(value))
    }

    mutating func encode(_ value: UInt32, forKey key: Key) throws {
        try begin(key)
        handle.pointee.state.write(Int64(value))
    }

    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        let entry = try begin(key)
        try encoder.write(unsigned: value, path: entry)
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        let entry = try begin(key)
        try encoder.encodeValue(value, path: entry)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let encoder = self.encoder
        let state = encoder.state
        let entry: Int
        do {
            entry = try begin(key)
        } catch {
            return encoder.keyedContainer(NestedKey.self, slot: deadSlot, serial: 0, pathCount: 0)
        }
        let pathBase = state.pointee.path.count
        state.pointee.path.push(entry)
        let (slot, serial) = encoder.openContainer(isMap: true, pathBase: pathBase)
        return encoder.keyedContainer(NestedKey.self, slot: slot, serial: serial, pathCount: pathBase + 1)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let encoder = self.encoder
        let state = encoder.state
        let entry: Int
        do {
            entry = try begin(key)
        } catch {
            return StreamingUnkeyedEncodingContainer(encoder: encoder, slot: deadSlot, serial: 0, pathCount: 0)
        }
        let pathBase = state.pointee.path.count
        state.pointee.path.push(entry)
        let (slot, serial) = encoder.openContainer(isMap: false, pathBase: pathBase)
        return StreamingUnkeyedEncodingContainer(encoder: encoder, slot: slot, serial: UInt32(truncatingIfNeeded: serial),
                                                 pathCount: pathBase + 1)
    }

    mutating func superEncoder() -> any Encoder {
        _ = encoder.abandon()
        return encoder
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        _ = encoder.abandon()
        return encoder
    }
}

// MARK: - Unkeyed container

struct StreamingUnkeyedEncodingContainer: UnkeyedEncodingContainer {
    let encoder: StreamingEncoder
    /// The slot (8 bits), low 32 bits of the serial and coding path length (16 bits), packed so
    /// the container fits an existential's inline buffer and costs no allocation. (A container
    /// of another call is told apart by its encoder's generation.)
    private let packed: UInt64

    init(encoder: StreamingEncoder, slot: Int, serial: UInt32, pathCount: Int) {
        self.encoder = encoder
        packed = UInt64(slot & 0xFF) | UInt64(serial) << 8 | UInt64(min(pathCount, 0xFFFF)) << 40
    }

    private var slot: Int { Int(packed & 0xFF) }
    private var serial: UInt32 { UInt32(truncatingIfNeeded: packed >> 8) }
    private var pathCount: Int { Int(packed >> 40) }

    var codingPath: [any CodingKey] { encoder.path(prefix: pathCount) }

    var count: Int {
        let state = encoder.state
        guard encoder.isCurrent, slot < state.pointee.containerCount,
              UInt32(truncatingIfNeeded: state.pointee.containers[slot].serial) == serial else { return 0 }
        return state.pointee.containers[slot].count
    }

    /// Checks that this container may write now and counts a new element; returns its index.
    @inline(__always)
    @discardableResult
    private func begin() throws -> Int {
        let state = encoder.state
        let slot = self.slot
        if _slowPath(!(state.pointee.containerCount == slot &+ 1
                       && UInt32(truncatingIfNeeded: state.pointee.containers[slot].serial) == serial && encoder.isCurrent)) {
            guard slot != deadSlot, encoder.isCurrent, slot < state.pointee.containerCount,
                  UInt32(truncatingIfNeeded: state.pointee.containers[slot].serial) == serial else { throw encoder.abandon() }
            try encoder.reactivate(slot: slot, serial: state.pointee.containers[slot].serial)
        }
        let index = state.pointee.containers[slot].count
        state.pointee.containers[slot].count = index &+ 1
        return index
    }

    mutating func encodeNil() throws {
        try begin()
        encoder.writeNil()
    }

    mutating func encode(_ value: Bool) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: String) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: Double) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: Float) throws {
        try begin()
        encoder.write(Double(value))
    }

    mutating func encode(_ value: Int) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int8) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int16) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int32) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int64) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: UInt) throws {
        let index = try begin()
        try encoder.write(unsigned: UInt64(value), path: CodingPathStack.index(index))
    }

    mutating func encode(_ value: UInt8) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: UInt16) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: UInt32) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: UInt64) throws {
        let index = try begin()
        try encoder.write(unsigned: value, path: CodingPathStack.index(index))
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let index = try begin()
        try encoder.encodeValue(value, path: CodingPathStack.index(index))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let state = encoder.state
        let index: Int
        do {
            index = try begin()
        } catch {
            return encoder.keyedContainer(NestedKey.self, slot: deadSlot, serial: 0, pathCount: 0)
        }
        let pathBase = state.pointee.path.count
        state.pointee.path.push(CodingPathStack.index(index))
        let (slot, serial) = encoder.openContainer(isMap: true, pathBase: pathBase)
        return encoder.keyedContainer(NestedKey.self, slot: slot, serial: serial, pathCount: pathBase + 1)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let state = encoder.state
        let index: Int
        do {
            index = try begin()
        } catch {
            return StreamingUnkeyedEncodingContainer(encoder: encoder, slot: deadSlot, serial: 0, pathCount: 0)
        }
        let pathBase = state.pointee.path.count
        state.pointee.path.push(CodingPathStack.index(index))
        let (slot, serial) = encoder.openContainer(isMap: false, pathBase: pathBase)
        return StreamingUnkeyedEncodingContainer(encoder: encoder, slot: slot, serial: UInt32(truncatingIfNeeded: serial),
                                                 pathCount: pathBase + 1)
    }

    mutating func superEncoder() -> any Encoder {
        _ = encoder.abandon()
        return encoder
    }
}

// MARK: - Single-value container

struct StreamingSingleValueEncodingContainer: SingleValueEncodingContainer {
    let encoder: StreamingEncoder

    var codingPath: [any CodingKey] { encoder.codingPath }

    /// Checks that the value being encoded has written nothing yet.
    @inline(__always)
    private func begin() throws {
        let state = encoder.state
        guard _fastPath(encoder.isCurrent && !state.pointee.abandoned
                        && state.pointee.writer.count == state.pointee.frameStart
                        && state.pointee.containerCount == state.pointee.frameBase) else {
            throw encoder.abandon()
        }
    }

    mutating func encodeNil() throws {
        try begin()
        encoder.writeNil()
    }

    mutating func encode(_ value: Bool) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: String) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: Double) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: Float) throws {
        try begin()
        encoder.write(Double(value))
    }

    mutating func encode(_ value: Int) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int8) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int16) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int32) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: Int64) throws {
        try begin()
        encoder.write(value)
    }

    mutating func encode(_ value: UInt) throws {
        try begin()
        try encoder.write(unsigned: UInt64(value), path: CodingPathStack.none)
    }

    mutating func encode(_ value: UInt8) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: UInt16) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: UInt32) throws {
        try begin()
        encoder.write(Int64(value))
    }

    mutating func encode(_ value: UInt64) throws {
        try begin()
        try encoder.write(unsigned: value, path: CodingPathStack.none)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try begin()
        // The value takes this frame's place: write it here without a new frame or key.
        let state = encoder.state
        if let special = SpecialType(T.self, filter: state.pointee.specialTypes) {
            try encoder.encodeSpecial(special, value, path: CodingPathStack.none)
            return
        }
        let savedBase = state.pointee.frameBase
        let savedStart = state.pointee.frameStart
        try encoder.encodeValue(value, path: CodingPathStack.none)
        state.pointee.frameBase = savedBase
        state.pointee.frameStart = savedStart
    }
}

