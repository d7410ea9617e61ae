/// The coding path of the value being encoded or decoded, kept as plain integers: a key is the
/// byte offset of its length-prefixed UTF-8 bytes, which are already in the record being written
/// or read, and an array position is stored as `-(index + 1)`. Pushing and popping is a store
/// and a count change; the path becomes `CodingKey`s only when asked for (`codingPath`, errors).
struct CodingPathStack {
    /// No entry: a value without a key (the root, a single-value container's value).
    static let none = Int.min

    /// The keys of the path above the first entry (a decoder made by `superDecoder()`).
    var basePath: [any CodingKey]
    private var entries: UnsafeMutablePointer<Int>
    private var capacity: Int
    /// The number of entries on the stack.
    private(set) var count: Int

    init(basePath: [any CodingKey] = [], capacity: Int = 16) {
        self.basePath = basePath
        self.capacity = capacity
        entries = .allocate(capacity: capacity)
        count = 0
    }

    /// Frees the memory; the stack must not be used afterwards.
    func deallocate() {
        entries.deallocate()
    }

    /// The entry of a key whose length varint starts at `offset`.
    @inline(__always)
    static func key(at offset: Int) -> Int { offset }

    /// The entry of an array position.
    @inline(__always)
    static func index(_ index: Int) -> Int { -(index + 1) }

    @inline(__always)
    mutating func push(_ entry: Int) {
        if _slowPath(count == capacity) { grow() }
        entries[count] = entry
        count &+= 1
    }

    @inline(__always)
    mutating func truncate(to newCount: Int) {
        if newCount < count { count = newCount }
    }

    @inline(never)
    private mutating func grow() {
        let newCapacity = capacity * 2
        let newEntries = UnsafeMutablePointer<Int>.allocate(capacity: newCapacity)
        newEntries.moveInitialize(from: entries, count: capacity)
        entries.deallocate()
        entries = newEntries
        capacity = newCapacity
    }

    /// The base path and the first `prefix` entries as keys, reading key names from `bytes`.
    func path(prefix: Int, bytes: UnsafeRawPointer, count end: Int) -> [any CodingKey] {
        basePath + (0..<min(prefix, count)).map { Self.codingKey(entries[$0], bytes: bytes, count: end) }
    }

    /// One entry as a key.
    static func codingKey(_ entry: Int, bytes: UnsafeRawPointer, count end: Int) -> any CodingKey {
        if entry < 0 { return IndexKey(-entry - 1) }
        var reader = RecordReader(bytes, count: end, position: entry)
        guard let name = try? reader.readLengthPrefixed() else { return PathKey(stringValue: "?") }
        return PathKey(stringValue: makeString(name) ?? "?")
    }
}

/// A key of a coding path rebuilt from a record's bytes.
struct PathKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }

    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
