/// Reads what ``ByteWriter`` writes, from a buffer it does not own, checking every bound.
///
/// Every read throws ``ByteReader/Failure`` instead of trapping, because the bytes come from
/// disk and may be damaged; callers turn it into a corruption error with a file and offset.
package struct ByteReader {
    /// A read ran past the end of the buffer, or a value was malformed.
    package struct Failure: Error, Sendable {
        /// What was wrong.
        package var reason: String
        /// Where in the buffer the bad value starts.
        package var offset: Int
    }

    private let buffer: UnsafeRawBufferPointer
    /// The offset of the next byte to read.
    package private(set) var offset: Int

    /// Reads `buffer` from `offset`. The buffer must outlive the reader.
    package init(_ buffer: UnsafeRawBufferPointer, offset: Int = 0) {
        self.buffer = buffer
        self.offset = offset
    }

    /// Bytes left to read.
    package var remaining: Int { buffer.count - offset }

    /// Whether every byte has been read.
    package var isAtEnd: Bool { offset == buffer.count }

    private mutating func take(_ count: Int, _ what: String) throws(Failure) -> Int {
        guard count >= 0, count <= remaining else {
            throw Failure(reason: "\(what) runs past the end (\(count) bytes, \(remaining) left)", offset: offset)
        }
        defer { offset += count }
        return offset
    }

    package mutating func readUInt8() throws(Failure) -> UInt8 {
        buffer[try take(1, "byte")]
    }

    package mutating func readUInt16() throws(Failure) -> UInt16 { try readFixed(UInt16.self) }

    package mutating func readUInt32() throws(Failure) -> UInt32 { try readFixed(UInt32.self) }

    package mutating func readUInt64() throws(Failure) -> UInt64 { try readFixed(UInt64.self) }

    package mutating func readInt64() throws(Failure) -> Int64 { Int64(bitPattern: try readFixed(UInt64.self)) }

    private mutating func readFixed<T: FixedWidthInteger>(_: T.Type) throws(Failure) -> T {
        let start = try take(MemoryLayout<T>.size, "integer")
        return T(littleEndian: buffer.loadUnaligned(fromByteOffset: start, as: T.self))
    }

    /// Unsigned LEB128, at most 10 bytes, rejecting overflow.
    package mutating func readVarint() throws(Failure) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < buffer.count else {
                throw Failure(reason: "varint runs past the end", offset: start)
            }
            let byte = buffer[offset]
            offset += 1
            if shift == 63 && byte > 1 {
                throw Failure(reason: "varint overflows 64 bits", offset: start)
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
    }

    /// A varint length, checked against the bytes left and `limit` before anything is allocated.
    package mutating func readLength(limit: Int = .max, _ what: String) throws(Failure) -> Int {
        let start = offset
        let length = try readVarint()
        guard length <= UInt64(min(limit, remaining)) else {
            throw Failure(reason: "\(what) length \(length) exceeds \(min(limit, remaining))", offset: start)
        }
        return Int(length)
    }

    /// A length-prefixed UTF-8 string of at most `limit` bytes.
    package mutating func readString(limit: Int = .max, _ what: String = "string") throws(Failure) -> String {
        let length = try readLength(limit: limit, what)
        let start = try take(length, what)
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[start..<start + length])
        guard let string = String(validating: bytes.bindMemory(to: UInt8.self), as: UTF8.self) else {
            throw Failure(reason: "\(what) is not valid UTF-8", offset: start)
        }
        return string
    }

    /// A length-prefixed byte run, returned as its range in the buffer (no copy).
    package mutating func readLengthPrefixedRange(limit: Int = .max, _ what: String) throws(Failure) -> Range<Int> {
        let length = try readLength(limit: limit, what)
        let start = try take(length, what)
        return start..<start + length
    }

    /// The next `count` bytes, in place: valid as long as the buffer.
    package mutating func readBytes(_ count: Int, _ what: String) throws(Failure) -> UnsafeRawBufferPointer {
        let start = try take(count, what)
        return UnsafeRawBufferPointer(rebasing: buffer[start..<start + count])
    }

    /// A length-prefixed byte run, in place: valid as long as the buffer.
    package mutating func readLengthPrefixedBytes(limit: Int = .max, _ what: String) throws(Failure) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: buffer[try readLengthPrefixedRange(limit: limit, what)])
    }

    /// A length-prefixed byte run, copied.
    package mutating func readLengthPrefixed(limit: Int = .max, _ what: String) throws(Failure) -> [UInt8] {
        let range = try readLengthPrefixedRange(limit: limit, what)
        return [UInt8](buffer[range])
    }
}

extension UnsafeRawBufferPointer {
    /// The little-endian integer at `offset`, for fixed layouts whose length was checked first.
    package func loadLittleEndian<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        precondition(offset >= 0 && offset + MemoryLayout<T>.size <= count, "fixed-layout read out of bounds")
        return T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
