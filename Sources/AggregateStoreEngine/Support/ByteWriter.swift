/// Appends little-endian integers, varints, strings and byte runs to a growing buffer.
package struct ByteWriter {
    /// The bytes written so far.
    package private(set) var bytes: [UInt8]

    /// Creates an empty writer with room for `capacity` bytes.
    package init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// The number of bytes written so far.
    package var count: Int { bytes.count }

    package mutating func writeUInt8(_ value: UInt8) { bytes.append(value) }

    package mutating func writeUInt16(_ value: UInt16) { writeFixed(value) }

    package mutating func writeUInt32(_ value: UInt32) { writeFixed(value) }

    package mutating func writeUInt64(_ value: UInt64) { writeFixed(value) }

    package mutating func writeInt64(_ value: Int64) { writeFixed(UInt64(bitPattern: value)) }

    private mutating func writeFixed<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// Unsigned LEB128.
    package mutating func writeVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
    }

    /// A varint byte count followed by the UTF-8 bytes.
    package mutating func writeString(_ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    /// A varint byte count followed by the bytes. Returns the offset of the first byte.
    @discardableResult
    package mutating func writeLengthPrefixed(_ value: [UInt8]) -> Int {
        writeVarint(UInt64(value.count))
        let start = bytes.count
        bytes.append(contentsOf: value)
        return start
    }

    /// A varint byte count followed by the bytes.
    package mutating func writeLengthPrefixed(_ value: UnsafeRawBufferPointer) {
        writeVarint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    /// Raw bytes, without a length.
    package mutating func writeRaw(_ value: some Sequence<UInt8>) { bytes.append(contentsOf: value) }
}
