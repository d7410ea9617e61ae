/// Writes the same encodings as ``ByteWriter`` into a buffer whose size is known in advance,
/// such as an array's uninitialized capacity: no growth and no uniqueness check per write.
///
/// For the payload of every commit, where appending to an array byte by byte cost a
/// twentieth of a committer's instructions. Each write checks the room left and traps past
/// it, so a size computed too small is a crash, never a write out of bounds.
package struct BoundedByteWriter {
    private let base: UnsafeMutableRawPointer
    private let capacity: Int
    /// The number of bytes written so far.
    package private(set) var count = 0

    /// A writer into `buffer`, from its start.
    package init(_ buffer: UnsafeMutableBufferPointer<UInt8>) {
        base = UnsafeMutableRawPointer(buffer.baseAddress!)
        capacity = buffer.count
    }

    private mutating func reserve(_ length: Int) -> UnsafeMutableRawPointer {
        precondition(length <= capacity - count, "a bounded write past the room reckoned for it")
        defer { count += length }
        return base + count
    }

    package mutating func writeUInt8(_ value: UInt8) {
        reserve(1).storeBytes(of: value, as: UInt8.self)
    }

    package mutating func writeInt64(_ value: Int64) {
        reserve(8).storeBytes(of: value.littleEndian, as: Int64.self)
    }

    /// Unsigned LEB128.
    package mutating func writeVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            writeUInt8(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        writeUInt8(UInt8(value))
    }

    /// A varint byte count followed by the UTF-8 bytes.
    package mutating func writeString(_ value: String) {
        // A native string's bytes are read in place; only a bridged one is made contiguous.
        let written = value.utf8.withContiguousStorageIfAvailable { writeLengthPrefixed(UnsafeRawBufferPointer($0)) }
        guard written == nil else { return }
        var value = value
        value.withUTF8 { _ = writeLengthPrefixed(UnsafeRawBufferPointer($0)) }
    }

    /// A varint byte count followed by the bytes. Returns the offset of the first byte.
    @discardableResult
    package mutating func writeLengthPrefixed(_ value: UnsafeRawBufferPointer) -> Int {
        writeVarint(UInt64(value.count))
        let start = count
        if let source = value.baseAddress { reserve(value.count).copyMemory(from: source, byteCount: value.count) }
        return start
    }

    /// A varint byte count followed by the bytes. Returns the offset of the first byte.
    @discardableResult
    package mutating func writeLengthPrefixed(_ value: [UInt8]) -> Int {
        value.withUnsafeBytes { writeLengthPrefixed($0) }
    }
}
