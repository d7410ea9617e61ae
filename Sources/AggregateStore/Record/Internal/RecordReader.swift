/// Reads record bytes from memory it does not own, checking every bound: damaged or hostile
/// input makes it throw a ``StoreError/Code/corruption`` error naming the byte offset, never
/// trap or read out of bounds.
struct RecordReader {
    let base: UnsafeRawPointer
    /// The offset one past the last readable byte.
    let end: Int
    /// The offset of the next byte to read.
    var position: Int

    init(_ base: UnsafeRawPointer, count: Int, position: Int = 0) {
        self.base = base
        end = count
        self.position = position
    }

    init(_ buffer: UnsafeRawBufferPointer) {
        // A dangling but non-nil base for an empty buffer: nothing is ever read through it.
        base = buffer.baseAddress.map { UnsafeRawPointer($0) } ?? UnsafeRawPointer(bitPattern: 0x10)!
        end = buffer.count
        position = 0
    }

    var remaining: Int { end &- position }

    @inline(never)
    static func corruption(_ what: String, at offset: Int) -> StoreError {
        StoreError(.corruption, "malformed record: \(what) at byte \(offset)", offset: UInt64(max(offset, 0)))
    }

    @inline(__always)
    mutating func readByte() throws(StoreError) -> UInt8 {
        guard _fastPath(position < end) else { throw Self.corruption("unexpected end of record", at: position) }
        let byte = base.load(fromByteOffset: position, as: UInt8.self)
        position &+= 1
        return byte
    }

    @inline(__always)
    func peekByte() throws(StoreError) -> UInt8 {
        guard _fastPath(position < end) else { throw Self.corruption("unexpected end of record", at: position) }
        return base.load(fromByteOffset: position, as: UInt8.self)
    }

    /// An unsigned LEB128 varint of at most 10 bytes that fits in 64 bits.
    @inline(__always)
    mutating func readVarint() throws(StoreError) -> UInt64 {
        if _fastPath(position &+ 1 < end) {
            let first = base.load(fromByteOffset: position, as: UInt8.self)
            if first < 0x80 {
                position &+= 1
                return UInt64(first)
            }
            let second = base.load(fromByteOffset: position &+ 1, as: UInt8.self)
            if second < 0x80 {
                position &+= 2
                return UInt64(first & 0x7F) | UInt64(second) << 7
            }
        } else if position < end {
            let first = base.load(fromByteOffset: position, as: UInt8.self)
            if first < 0x80 {
                position &+= 1
                return UInt64(first)
            }
        }
        return try readLongVarint()
    }

    @inline(never)
    mutating func readLongVarint() throws(StoreError) -> UInt64 {
        if end &- position >= 8 {
            // Up to 8 bytes (56 bits: timestamps, most integers) from one load: the first byte
            // without its high bit ends the varint; its 7-bit groups are gathered by shifts.
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let ends = ~word & 0x8080_8080_8080_8080
            if ends != 0 {
                let length = (ends.trailingZeroBitCount &+ 1) &>> 3
                let bits = length == 8 ? word : word & ((1 &<< UInt64(truncatingIfNeeded: length &* 8)) &- 1)
                var value = bits & 0x7F
                value |= (bits &>> 1) & 0x3F80
                value |= (bits &>> 2) & 0x1F_C000
                value |= (bits &>> 3) & 0xFE0_0000
                value |= (bits &>> 4) & 0x7_F000_0000
                value |= (bits &>> 5) & 0x3F8_0000_0000
                value |= (bits &>> 6) & 0x1_FC00_0000_0000
                value |= (bits &>> 7) & 0xFE_0000_0000_0000
                position &+= length
                return value
            }
        } else if end &- position >= 3 {
            // Near the end of a map (its last field's value): a 3-byte varint (to 2^21, most
            // prices and counts) without the loop.
            let first = base.load(fromByteOffset: position, as: UInt8.self)
            let second = base.load(fromByteOffset: position &+ 1, as: UInt8.self)
            let third = base.load(fromByteOffset: position &+ 2, as: UInt8.self)
            if first & second & 0x80 != 0 && third < 0x80 {
                position &+= 3
                return UInt64(first & 0x7F) | UInt64(second & 0x7F) << 7 | UInt64(third) << 14
            }
        }
        if end &- position >= 10 {
            // Enough bytes for any varint: no bound check per byte.
            var result: UInt64 = 0
            var shift: UInt64 = 0
            var offset = position
            while shift < 63 {
                let byte = base.load(fromByteOffset: offset, as: UInt8.self)
                offset &+= 1
                result |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 {
                    position = offset
                    return result
                }
                shift &+= 7
            }
            let last = base.load(fromByteOffset: offset, as: UInt8.self)
            guard last <= 1 else { throw Self.corruption("varint overflows 64 bits", at: position) }
            position = offset &+ 1
            return result | UInt64(last) << 63
        }
        let start = position
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            if shift == 63 && byte > 1 { throw Self.corruption("varint overflows 64 bits", at: start) }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
    }

    /// A varint that must be a length or count no larger than the bytes left.
    @inline(__always)
    mutating func readLength() throws(StoreError) -> Int {
        let start = position
        let value = try readVarint()
        guard _fastPath(value <= UInt64(remaining)) else {
            throw Self.corruption("length \(value) exceeds the \(remaining) bytes left", at: start)
        }
        return Int(truncatingIfNeeded: value)
    }

    @inline(__always)
    mutating func readZigZag() throws(StoreError) -> Int64 {
        RecordFormat.unZigZag(try readVarint())
    }

    @inline(__always)
    mutating func readDoubleBits() throws(StoreError) -> UInt64 {
        guard _fastPath(remaining >= 8) else { throw Self.corruption("truncated double", at: position) }
        let bits = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
        position &+= 8
        return bits
    }

    /// The payload of a decimal, after its tag.
    mutating func readDecimal() throws(StoreError) -> DecimalParts {
        let start = position
        let flags = try readByte()
        guard flags & ~RecordFormat.DecimalFlag.all == 0 else { throw Self.corruption("unknown decimal flags", at: start) }
        let exponent = Int8(bitPattern: try readByte())
        var mantissa: UInt128 = 0
        var shift: UInt128 = 0
        while true {
            let byte = try readByte()
            if shift == 126 && byte > 3 { throw Self.corruption("decimal mantissa overflows 128 bits", at: start) }
            mantissa |= UInt128(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
            if shift > 126 { throw Self.corruption("decimal mantissa overflows 128 bits", at: start) }
        }
        return DecimalParts(flags: flags, exponent: exponent, mantissa: mantissa)
    }

    /// A length-prefixed run of bytes, returned in place.
    @inline(__always)
    mutating func readLengthPrefixed() throws(StoreError) -> UnsafeRawBufferPointer {
        let length = try readLength()
        let bytes = UnsafeRawBufferPointer(start: base + position, count: length)
        position &+= length
        return bytes
    }

    /// A length-prefixed UTF-8 string.
    @inline(__always)
    mutating func readString() throws(StoreError) -> String {
        try readString(smallASCII: SmallASCII.isAvailable)
    }

    /// A length-prefixed UTF-8 string; `smallASCII` is ``SmallASCII/isAvailable``, which a caller
    /// reading many strings keeps at hand (a global costs a call per read).
    @inline(__always)
    mutating func readString(smallASCII: Bool) throws(StoreError) -> String {
        let start = position
        let length = try readLength()
        if _fastPath(smallASCII && length <= 15 && end &- position >= 16),
           let string = SmallASCII.string(base + position, count: length) {
            position &+= length
            return string
        }
        let bytes = UnsafeRawBufferPointer(start: base + position, count: length)
        position &+= length
        guard let string = makeString(bytes) else { throw Self.corruption("invalid UTF-8 in a string", at: start) }
        return string
    }

    /// The header of a container after its tag: returns the element count and sets `end` to the
    /// offset one past the container's last byte.
    @inline(__always)
    mutating func readContainerHeader(minimumElementSize: Int) throws(StoreError) -> (count: Int, end: Int) {
        let length = try readLength()
        let end = position &+ length
        let countStart = position
        let count = try readVarint()
        guard _fastPath(position <= end && count <= UInt64((end &- position) / minimumElementSize)) else {
            throw Self.corruption("container count \(count) does not fit its \(length) bytes", at: countStart)
        }
        return (Int(truncatingIfNeeded: count), end)
    }

    /// Moves past the value whose tag has been read, without looking inside containers.
    @inline(__always)
    mutating func skipValue(tag: UInt8) throws(StoreError) {
        switch tag {
        case RecordFormat.Tag.null, RecordFormat.Tag.false, RecordFormat.Tag.true:
            return
        case RecordFormat.Tag.integer, RecordFormat.Tag.timestamp:
            _ = try readVarint()
        case RecordFormat.Tag.double:
            _ = try readDoubleBits()
        case RecordFormat.Tag.decimal:
            _ = try readDecimal()
        case RecordFormat.Tag.string, RecordFormat.Tag.bytes, RecordFormat.Tag.array, RecordFormat.Tag.map:
            let length = try readLength()
            position &+= length
        default:
            throw Self.corruption("unknown tag \(tag)", at: position &- 1)
        }
    }
}

/// A string from UTF-8 bytes, or `nil` when they are not valid UTF-8.
///
/// ASCII (every key and most values) is checked here, a word at a time, and needs no repair;
/// other text goes through the validating initializer.
@inline(__always)
func makeString(_ bytes: UnsafeRawBufferPointer) -> String? {
    let count = bytes.count
    if count == 0 { return "" }
    let base = bytes.baseAddress!
    guard _fastPath(isASCII(base, count)) else {
        return makeNonASCIIString(bytes.assumingMemoryBound(to: UInt8.self))
    }
    return makeASCIIString(base, count)
}

/// A string from ASCII bytes. Up to 15 bytes (a small string, stored inline) through
/// `init(unsafeUninitializedCapacity:)`, which builds it on the stack and costs about a third
/// less than `init(decoding:as:)`; longer ones through `init(decoding:as:)`, which is the
/// cheaper of the two once the string needs its own storage.
@inline(never)
private func makeASCIIString(_ base: UnsafeRawPointer, _ count: Int) -> String {
    if count <= 15 {
        return String(unsafeUninitializedCapacity: count) { buffer in
            copyBytes(to: UnsafeMutableRawPointer(buffer.baseAddress!), from: base, count: count)
            return count
        }
    }
    return String(decoding: UnsafeBufferPointer(start: base.assumingMemoryBound(to: UInt8.self), count: count), as: UTF8.self)
}

@inline(never)
private func makeNonASCIIString(_ utf8: UnsafeBufferPointer<UInt8>) -> String? {
    String(validating: utf8, as: UTF8.self)
}

/// Short ASCII strings built straight from their bits: a string of up to 15 ASCII bytes is
/// stored inline (a "small string"), the bytes in its two words and the count in the top byte
/// with the small and ASCII flags. Building it with `init(unsafeUninitializedCapacity:)` costs
/// a call through the standard library and a validation; this costs two loads and a few masks.
/// The layout is the standard library's ABI, checked once against strings it builds itself;
/// where it differs (``isAvailable`` false) strings are built the ordinary way.
enum SmallASCII {
    /// Whether the layout check passed.
    static let isAvailable: Bool = {
        guard MemoryLayout<String>.size == 16 else { return false }
        var bytes: [UInt8] = Array(repeating: 0, count: 16)
        for count in 0...15 {
            for index in 0..<16 { bytes[index] = index < count ? UInt8(0x61 &+ index) : 0xFF }
            let matches = bytes.withUnsafeBytes { buffer -> Bool in
                let reference = String(decoding: buffer.prefix(count), as: UTF8.self)
                let built = build(buffer.baseAddress!, count: count)
                let (a, b) = unsafeBitCast(reference, to: (UInt64, UInt64).self)
                return reference.utf8.count == count && a == built.0 && b == built.1
            }
            if !matches { return false }
        }
        return true
    }()

    /// The string of `count` (at most 15) bytes at `base`, of which 16 are readable; `nil` when
    /// they are not all ASCII. Only when ``isAvailable``.
    @inline(__always)
    static func string(_ base: UnsafeRawPointer, count: Int) -> String? {
        var bits = build(base, count: count)
        // The top byte of the second word is the count and flags, not text.
        guard _fastPath((bits.0 | bits.1 & 0x00FF_FFFF_FFFF_FFFF) & 0x8080_8080_8080_8080 == 0) else { return nil }
        // Taken out of the words rather than bit-cast, which would retain the new string.
        return withUnsafeMutableBytes(of: &bits) { $0.baseAddress.unsafelyUnwrapped.assumingMemoryBound(to: String.self).move() }
    }

    /// The bytes of `string` as two words (zero past its count) and its count, when it is a
    /// small ASCII string (the layout ``isAvailable`` checks).
    @inline(__always)
    static func words(of string: String) -> (head: UInt64, tail: UInt64, count: Int)? {
        let (head, tail) = unsafeBitCast(string, to: (UInt64, UInt64).self)
        // Immortal, ASCII, small, not foreign: the top nibble 0xE.
        guard tail &>> 60 == 0xE else { return nil }
        return (head, tail & 0x00FF_FFFF_FFFF_FFFF, Int(truncatingIfNeeded: tail &>> 56) & 0xF)
    }

    /// The two words of the small string of `count` (at most 15) bytes at `base`, 16 of them
    /// readable; its high bits set where a byte is not ASCII.
    @inline(__always)
    private static func build(_ base: UnsafeRawPointer, count: Int) -> (UInt64, UInt64) {
        let bits = UInt64(truncatingIfNeeded: count) &* 8
        let headMask: UInt64 = count >= 8 ? .max : (1 &<< bits) &- 1
        let tailMask: UInt64 = count <= 8 ? 0 : (1 &<< (bits &- 64)) &- 1
        let head = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self)) & headMask
        let tail = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) & tailMask
        // Small, ASCII, immortal, and the count.
        return (head, tail | (0xE0 | UInt64(truncatingIfNeeded: count)) &<< 56)
    }
}
