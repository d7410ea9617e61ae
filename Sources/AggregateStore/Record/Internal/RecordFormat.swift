/// The constants of the record encoding, written down in `Docs/RECORD-FORMAT.md`.
///
/// A record is the format version byte followed by one value. A value is a tag byte followed by
/// its payload. Containers (arrays and maps) carry their payload's byte length and their element
/// count, so a reader can skip a container without reading it.
enum RecordFormat {
    /// The format version written as the first byte of every record.
    static let version: UInt8 = 1

    /// The deepest nesting of containers a record may have: a root array holding 63 arrays
    /// inside one another is at the limit, one more is rejected.
    static let maximumDepth = 64

    /// The tag bytes, one per value type.
    enum Tag {
        static let null: UInt8 = 0x00
        static let `false`: UInt8 = 0x01
        static let `true`: UInt8 = 0x02
        static let integer: UInt8 = 0x03
        static let double: UInt8 = 0x04
        static let decimal: UInt8 = 0x05
        static let string: UInt8 = 0x06
        static let bytes: UInt8 = 0x07
        static let timestamp: UInt8 = 0x08
        static let array: UInt8 = 0x09
        static let map: UInt8 = 0x0A
    }

    /// The bits of a decimal's flags byte.
    enum DecimalFlag {
        static let negative: UInt8 = 0x01
        static let nan: UInt8 = 0x02
        static let all: UInt8 = 0x03
    }

    /// Zig-zag maps signed integers to unsigned ones so small magnitudes stay short.
    @inline(__always)
    static func zigZag(_ value: Int64) -> UInt64 {
        UInt64(bitPattern: (value << 1) ^ (value >> 63))
    }

    /// The inverse of ``zigZag(_:)``.
    @inline(__always)
    static func unZigZag(_ value: UInt64) -> Int64 {
        Int64(bitPattern: (value >> 1) ^ (0 &- (value & 1)))
    }

    /// The number of bytes of the unsigned LEB128 varint of `value`.
    @inline(__always)
    static func varintSize(_ value: UInt64) -> Int {
        // 1 + (bits - 1) / 7, with 0 taking one byte.
        let bits = 64 - (value | 1).leadingZeroBitCount
        return (bits + 6) / 7
    }
}
