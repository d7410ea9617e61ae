/// The UTF-8 bytes of the keys of one coding-key type, so a container need not ask a key for its
/// `stringValue` (a protocol call and a string) on every field.
///
/// It applies to key types one byte wide, which is every synthesized `CodingKeys` enum: such a
/// type has no references and at most 256 values, and the cache maps each value to the bytes its
/// `stringValue` gave the first time (a pure function of the value, as `CodingKey` requires).
/// A keyed container's handle keeps one cache, for the one key type its box serves.
struct KeyBytesCache {
    /// Per key value: where its bytes are in `bytes` (offset + 1; 0 when not cached yet) and
    /// how many there are, packed as `offset << 16 | count`.
    private var slots: UnsafeMutablePointer<UInt32>?
    /// The key bytes, each key's preceded by its varint length.
    private var bytes: UnsafeMutableRawPointer?
    private var used = 0
    private var capacity = 0

    /// Whether keys of this type can be cached.
    @inline(__always)
    static func applies<Key>(to type: Key.Type) -> Bool {
        MemoryLayout<Key>.size == 1 && MemoryLayout<Key>.stride == 1
    }

    /// The length-prefixed bytes of `key`, computing them on first use; `nil` when the cache is
    /// full (more than 64 KiB of keys).
    @inline(__always)
    mutating func lengthPrefixedBytes<Key: CodingKey>(of key: Key) -> UnsafeRawBufferPointer? {
        // One byte wide (see `applies(to:)`): the key's value is that byte.
        let value = Int(unsafeBitCast(key, to: UInt8.self))
        if let slots {
            let slot = slots[value]
            if _fastPath(slot != 0) {
                return UnsafeRawBufferPointer(start: bytes! + Int(slot >> 16) - 1, count: Int(slot & 0xFFFF))
            }
        }
        return add(key, value: value)
    }

    @inline(never)
    private mutating func add<Key: CodingKey>(_ key: Key, value: Int) -> UnsafeRawBufferPointer? {
        if slots == nil {
            let slots = UnsafeMutablePointer<UInt32>.allocate(capacity: 256)
            slots.initialize(repeating: 0, count: 256)
            self.slots = slots
        }
        var string = key.stringValue
        return string.withUTF8 { utf8 -> UnsafeRawBufferPointer? in
            var prefix: [UInt8] = []
            var length = utf8.count
            while length >= 0x80 {
                prefix.append(UInt8(truncatingIfNeeded: length) | 0x80)
                length >>= 7
            }
            prefix.append(UInt8(length))
            guard used + prefix.count + utf8.count < 0xFFFF else { return nil }
            return store(prefix, utf8, value: value)
        }
    }

    private mutating func store(_ prefix: [UInt8], _ utf8: UnsafeBufferPointer<UInt8>, value: Int) -> UnsafeRawBufferPointer {
        let total = prefix.count + utf8.count
        if used + total > capacity {
            let newCapacity = max(capacity * 2, used + total, 256)
            let newBytes = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
            if let bytes {
                newBytes.copyMemory(from: bytes, byteCount: used)
                bytes.deallocate()
            }
            bytes = newBytes
            capacity = newCapacity
        }
        let start = used
        let base = bytes!
        prefix.withUnsafeBytes { (base + start).copyMemory(from: $0.baseAddress!, byteCount: prefix.count) }
        if !utf8.isEmpty { (base + start + prefix.count).copyMemory(from: utf8.baseAddress!, byteCount: utf8.count) }
        used += total
        slots?[value] = UInt32(start + 1) << 16 | UInt32(total)
        return UnsafeRawBufferPointer(start: base + start, count: total)
    }

    /// Frees the memory.
    mutating func deallocate() {
        slots?.deallocate()
        bytes?.deallocate()
        slots = nil
        bytes = nil
        used = 0
        capacity = 0
    }
}

/// The memory of a keyed container's handle that must be freed with it.
protocol ContainerHandle {
    /// Frees what the handle owns besides its reference-counted fields.
    mutating func releaseResources()
}

/// The key bytes of a length-prefixed key: `prefixed` without its varint length.
@inline(__always)
func keyBytes(ofPrefixed prefixed: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    var start = 0
    while start < prefixed.count && prefixed[start] >= 0x80 { start += 1 }
    start += 1
    return UnsafeRawBufferPointer(rebasing: prefixed[start...])
}
