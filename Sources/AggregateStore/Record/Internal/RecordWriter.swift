/// A growable byte buffer in memory it owns and frees explicitly, for writing records.
///
/// A plain struct over a raw pointer, so the encoders can keep it behind a pointer and append
/// without the copy-on-write and exclusivity checks of an `Array` stored in a class.
struct RecordWriter {
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// The number of bytes written.
    var count: Int

    init(capacity: Int = 512) {
        self.capacity = max(capacity, 16)
        base = .allocate(byteCount: self.capacity, alignment: 8)
        count = 0
    }

    /// Frees the memory; the writer must not be used afterwards.
    func deallocate() {
        base.deallocate()
    }

    /// The bytes written, as an array.
    func bytes() -> [UInt8] {
        // Not `init(unsafeUninitializedCapacity:)`: it calls the standard library's unspecialized
        // allocation, which looks the storage class up at runtime (about 450 instructions more).
        [UInt8](UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: count))
    }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if _slowPath(count &+ extra > capacity) { grow(extra) }
    }

    @inline(never)
    private mutating func grow(_ extra: Int) {
        var newCapacity = capacity * 2
        while newCapacity < count + extra { newCapacity *= 2 }
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 8)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// Appends a byte the caller has reserved room for.
    @inline(__always)
    mutating func appendReserved(_ byte: UInt8) {
        base.storeBytes(of: byte, toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// Appends an unsigned LEB128 varint.
    @inline(__always)
    mutating func appendVarint(_ value: UInt64) {
        reserve(10)
        appendVarintReserved(value)
    }

    /// Appends a varint the caller has reserved 10 bytes for.
    @inline(__always)
    mutating func appendVarintReserved(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: value) | 0x80, toByteOffset: count, as: UInt8.self)
            count &+= 1
            value >>= 7
        }
        base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: count, as: UInt8.self)
        count &+= 1
    }

    /// Writes a varint at `offset`, which must have room for it; returns its size.
    @inline(__always)
    func storeVarint(_ value: UInt64, at offset: Int) -> Int {
        var value = value
        var position = offset
        while value >= 0x80 {
            base.storeBytes(of: UInt8(truncatingIfNeeded: value) | 0x80, toByteOffset: position, as: UInt8.self)
            position &+= 1
            value >>= 7
        }
        base.storeBytes(of: UInt8(truncatingIfNeeded: value), toByteOffset: position, as: UInt8.self)
        return position &+ 1 &- offset
    }

    @inline(__always)
    mutating func append(_ source: UnsafeRawBufferPointer) {
        let length = source.count
        guard length > 0 else { return }
        reserve(length)
        copyBytes(to: base + count, from: source.baseAddress!, count: length)
        count &+= length
    }

    /// Appends up to 16 bytes given as two little-endian words (zero past `count`): two stores,
    /// whatever the count. Writes 16 bytes, of which the ones past `count` are overwritten later.
    @inline(__always)
    mutating func appendShortRun(_ head: UInt64, _ tail: UInt64, count runCount: Int) {
        reserve(16)
        base.storeBytes(of: head.littleEndian, toByteOffset: count, as: UInt64.self)
        base.storeBytes(of: tail.littleEndian, toByteOffset: count &+ 8, as: UInt64.self)
        count &+= runCount
    }

    /// Appends a varint length and the UTF-8 bytes of a string.
    @inline(__always)
    mutating func appendLengthPrefixed(_ string: String) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            appendLengthPrefixed(UnsafeRawBufferPointer(utf8))
        }
        if done == nil {
            var copy = string
            copy.withUTF8 { appendLengthPrefixed(UnsafeRawBufferPointer($0)) }
        }
    }

    /// Appends a varint length and the bytes.
    @inline(__always)
    mutating func appendLengthPrefixed(_ source: UnsafeRawBufferPointer) {
        let length = source.count
        reserve(10 &+ length)
        appendVarintReserved(UInt64(length))
        if length > 0 {
            copyBytes(to: base + count, from: source.baseAddress!, count: length)
            count &+= length
        }
    }

    /// Inserts `gap` bytes at `offset`, moving the bytes after it right.
    mutating func insertGap(_ gap: Int, at offset: Int) {
        reserve(gap)
        (base + offset + gap).copyMemory(from: base + offset, byteCount: count - offset)
        count += gap
    }

    /// Appends a tag and the varint of a zig-zag integer.
    @inline(__always)
    mutating func appendTagged(_ tag: UInt8, zigZag value: Int64) {
        reserve(11)
        appendReserved(tag)
        appendVarintReserved(RecordFormat.zigZag(value))
    }

    /// Appends a decimal value (tag included).
    mutating func appendDecimal(_ parts: DecimalParts) {
        reserve(3 + 19)
        appendReserved(RecordFormat.Tag.decimal)
        appendReserved(parts.flags)
        appendReserved(UInt8(bitPattern: parts.exponent))
        var value = parts.mantissa
        while value >= 0x80 {
            appendReserved(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        appendReserved(UInt8(truncatingIfNeeded: value))
    }

    /// Appends a double value (tag included).
    @inline(__always)
    mutating func appendDouble(_ value: Double) {
        reserve(9)
        appendReserved(RecordFormat.Tag.double)
        base.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: count, as: UInt64.self)
        count &+= 8
    }

    /// Begins a container: its tag and `headerSize` (at least 2) placeholder bytes for the
    /// length and the count. Returns the offset of the length placeholder, for
    /// ``endContainer(at:count:headerSize:)``.
    @inline(__always)
    mutating func beginContainer(tag: UInt8, headerSize: Int = 2) -> Int {
        reserve(1 &+ headerSize)
        appendReserved(tag)
        let start = count
        count &+= headerSize
        return start
    }

    /// Fills in the byte length and count of a container begun at `start` with `headerSize`
    /// placeholder bytes, moving its content when the varints need another size (the varints are
    /// always the shortest). Returns the header's size.
    @inline(__always)
    @discardableResult
    mutating func endContainer(at start: Int, count elements: Int, headerSize: Int = 2) -> Int {
        let contentStart = start &+ 2
        let contentLength = count &- contentStart
        if _fastPath(headerSize == 2 && elements < 0x80 && contentLength &+ 1 < 0x80) {
            base.storeBytes(of: UInt8(truncatingIfNeeded: contentLength &+ 1), toByteOffset: start, as: UInt8.self)
            base.storeBytes(of: UInt8(truncatingIfNeeded: elements), toByteOffset: start &+ 1, as: UInt8.self)
            return 2
        }
        return endWideContainer(at: start, count: elements, headerSize: headerSize)
    }

    @inline(never)
    private mutating func endWideContainer(at start: Int, count elements: Int, headerSize: Int) -> Int {
        let contentStart = start + headerSize
        let contentLength = count - contentStart
        let countSize = RecordFormat.varintSize(UInt64(elements))
        let length = contentLength + countSize
        let lengthSize = RecordFormat.varintSize(UInt64(length))
        let gap = countSize + lengthSize - headerSize
        if gap > 0 {
            insertGap(gap, at: contentStart)
        } else if gap < 0 {
            // More room was set aside than needed: the content moves back.
            (base + contentStart + gap).copyMemory(from: base + contentStart, byteCount: contentLength)
            count += gap
        }
        let written = storeVarint(UInt64(length), at: start)
        _ = storeVarint(UInt64(elements), at: start + written)
        return countSize + lengthSize
    }
}
