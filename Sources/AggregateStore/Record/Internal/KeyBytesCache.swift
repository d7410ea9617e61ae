/// The bytes of the keys of one coding-key type as a record holds them, so a container need not
/// ask a key for its `stringValue` (a protocol call and a string) on every field.
///
/// It applies to key types one byte wide, which is every synthesized `CodingKeys` enum: such a
/// type has no references and at most 256 values, and the cache maps each value to the bytes its
/// `stringValue` gave the first time (a pure function of the value, as `CodingKey` requires).
/// A keyed container's handle keeps one cache, for the one key type its box serves.
///
/// Each cached key is an ``Entry`` that holds its first 16 bytes (the varint length, then the
/// UTF-8) in two words: most keys fit, so the encoder writes a key with two stores and the
/// decoder compares one with two loads.
struct KeyBytesCache {
    /// One cached key (48 bytes).
    struct Entry {
        /// Bytes 0..<8 and 8..<16 of the length-prefixed key, zero past its end.
        var head: UInt64
        var tail: UInt64
        /// The bits of `head` and `tail` that are the key's (for comparing 16 loaded bytes).
        var headMask: UInt64
        var tailMask: UInt64
        /// Where the whole length-prefixed key is in the cache's byte storage.
        var offset: UInt32
        /// The length-prefixed key's byte count; 0 for a value not cached yet.
        var count: UInt16
        /// The size of the varint length at its start.
        var prefixLength: UInt8
        /// The key's ``KeyBloom`` index.
        var bloomIndex: UInt8
    }

    /// The entries, indexed by key value; `entryCapacity` of them (grown to the largest value
    /// seen, so a type with a few keys takes a few entries).
    private var entries: UnsafeMutablePointer<Entry>?
    private var entryCapacity = 0
    /// Every cached key's length-prefixed bytes, for keys longer than 16 bytes and the slow paths.
    private var bytes: UnsafeMutableRawPointer?
    private var used = 0
    private var capacity = 0

    /// Whether keys of this type can be cached.
    @inline(__always)
    static func applies<CodingKeyType>(to type: CodingKeyType.Type) -> Bool {
        MemoryLayout<CodingKeyType>.size == 1 && MemoryLayout<CodingKeyType>.stride == 1
    }

    /// The entry of `key`, computing it on first use; `nil` when the cache is full (more than
    /// 64 KiB of keys). Valid until the next call.
    @inline(__always)
    mutating func entry<CodingKeyType: CodingKey>(_ key: CodingKeyType) -> UnsafePointer<Entry>? {
        // One byte wide (see `applies(to:)`): the key's value is that byte.
        let value = Int(unsafeBitCast(key, to: UInt8.self))
        if _fastPath(value < entryCapacity) {
            let entry = entries.unsafelyUnwrapped + value
            if _fastPath(entry.pointee.count != 0) { return UnsafePointer(entry) }
        }
        return add(key, value: value)
    }

    /// The length-prefixed bytes of a cached key.
    @inline(__always)
    func prefixedBytes(_ entry: UnsafePointer<Entry>) -> UnsafeRawPointer {
        UnsafeRawPointer(bytes.unsafelyUnwrapped) + Int(entry.pointee.offset)
    }

    @inline(never)
    private mutating func add<CodingKeyType: CodingKey>(_ key: CodingKeyType, value: Int) -> UnsafePointer<Entry>? {
        if value >= entryCapacity {
            let newCapacity = min(256, max(16, (value + 16) & ~15))
            let newEntries = UnsafeMutablePointer<Entry>.allocate(capacity: newCapacity)
            newEntries.initialize(
                repeating: Entry(head: 0, tail: 0, headMask: 0, tailMask: 0, offset: 0, count: 0, prefixLength: 0, bloomIndex: 0),
                count: newCapacity)
            if let entries {
                newEntries.moveInitialize(from: entries, count: entryCapacity)
                entries.deallocate()
            }
            entries = newEntries
            entryCapacity = newCapacity
        }
        var string = key.stringValue
        return string.withUTF8 { utf8 -> UnsafePointer<Entry>? in
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

    private mutating func store(_ prefix: [UInt8], _ utf8: UnsafeBufferPointer<UInt8>, value: Int) -> UnsafePointer<Entry> {
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
        var words: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &words) { $0.copyMemory(from: UnsafeRawBufferPointer(start: base + start, count: min(total, 16))) }
        let entry = entries! + value
        let headMask: UInt64 = total >= 8 ? .max : (1 << UInt64(total * 8)) - 1
        let tailMask: UInt64 = total <= 8 ? 0 : (total >= 16 ? .max : (1 << UInt64((total - 8) * 8)) - 1)
        entry.initialize(to: Entry(
            head: UInt64(littleEndian: words.0), tail: UInt64(littleEndian: words.1), headMask: headMask, tailMask: tailMask,
            offset: UInt32(start),
            count: UInt16(total), prefixLength: UInt8(prefix.count),
            bloomIndex: UInt8(KeyBloom.index(of: UnsafeRawBufferPointer(utf8)))))
        return UnsafePointer(entry)
    }

    /// Frees the memory.
    mutating func deallocate() {
        entries?.deallocate()
        bytes?.deallocate()
        entries = nil
        bytes = nil
        entryCapacity = 0
        used = 0
        capacity = 0
    }
}

/// The 128-bit Bloom filter an open map keeps of its keys, to tell a repeated key cheaply: the
/// bit of a key is a hash of its length and three of its bytes.
enum KeyBloom {
    @inline(__always)
    static func index(of key: UnsafeRawBufferPointer) -> Int {
        let count = key.count
        var hash = UInt(count) &* 0x9E37_79B9
        if count > 0 {
            hash ^= UInt(key[0]) &* 31 ^ UInt(key[count - 1]) &* 131 ^ UInt(key[count >> 1]) &* 7
        }
        return Int(truncatingIfNeeded: (hash ^ (hash >> 7)) & 127)
    }
}

/// The memory of a keyed container's handle that must be freed with it.
protocol ContainerHandle {
    /// Frees what the handle owns besides its reference-counted fields.
    mutating func releaseResources()

    /// Called when the cache lets go of the handle's box while someone else holds it: the
    /// container may outlive its call, so the handle must keep what it points at alive.
    mutating func holdOwner()
}
