/// Copying, comparing and checking the short runs of bytes that keys and field values are, inline
/// instead of calling `memcpy`/`memcmp` or looping byte by byte: two overlapping loads cover
/// any length from 4 to 8 bytes (32-bit loads) or 8 to 16 (64-bit loads), so a run of up to 16
/// bytes takes a handful of instructions and no loop.

/// Copies bytes.
@inline(__always)
func copyBytes(to destination: UnsafeMutableRawPointer, from source: UnsafeRawPointer, count: Int) {
    if count >= 8 {
        if count <= 16 {
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            destination.storeBytes(of: head, as: UInt64.self)
            destination.storeBytes(of: tail, toByteOffset: count &- 8, as: UInt64.self)
        } else if count <= 32 {
            let first = source.loadUnaligned(as: UInt64.self)
            let second = source.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
            let third = source.loadUnaligned(fromByteOffset: count &- 16, as: UInt64.self)
            let fourth = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            destination.storeBytes(of: first, as: UInt64.self)
            destination.storeBytes(of: second, toByteOffset: 8, as: UInt64.self)
            destination.storeBytes(of: third, toByteOffset: count &- 16, as: UInt64.self)
            destination.storeBytes(of: fourth, toByteOffset: count &- 8, as: UInt64.self)
        } else {
            destination.copyMemory(from: source, byteCount: count)
        }
    } else if count >= 4 {
        let head = source.loadUnaligned(as: UInt32.self)
        let tail = source.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
        destination.storeBytes(of: head, as: UInt32.self)
        destination.storeBytes(of: tail, toByteOffset: count &- 4, as: UInt32.self)
    } else if count > 0 {
        // Bytes 0, count / 2 and count - 1 are all of them for 1 to 3 bytes.
        let first = source.load(as: UInt8.self)
        let middle = source.load(fromByteOffset: count &>> 1, as: UInt8.self)
        let last = source.load(fromByteOffset: count &- 1, as: UInt8.self)
        destination.storeBytes(of: first, as: UInt8.self)
        destination.storeBytes(of: middle, toByteOffset: count &>> 1, as: UInt8.self)
        destination.storeBytes(of: last, toByteOffset: count &- 1, as: UInt8.self)
    }
}

/// Whether `count` bytes at two addresses are equal.
@inline(__always)
func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    if count >= 8 {
        if count <= 16 {
            let head = a.loadUnaligned(as: UInt64.self) ^ b.loadUnaligned(as: UInt64.self)
            let tail = a.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
                ^ b.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            return head | tail == 0
        }
        return longBytesEqual(a, b, count)
    }
    if count >= 4 {
        let head = a.loadUnaligned(as: UInt32.self) ^ b.loadUnaligned(as: UInt32.self)
        let tail = a.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            ^ b.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
        return head | tail == 0
    }
    if count == 0 { return true }
    return a.load(as: UInt8.self) == b.load(as: UInt8.self)
        && a.load(fromByteOffset: count &>> 1, as: UInt8.self) == b.load(fromByteOffset: count &>> 1, as: UInt8.self)
        && a.load(fromByteOffset: count &- 1, as: UInt8.self) == b.load(fromByteOffset: count &- 1, as: UInt8.self)
}

/// `memcmpBytes` for more than 16 bytes: 8 at a time, the last 8 overlapping.
@inline(never)
private func longBytesEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var difference: UInt64 = 0
    var offset = 0
    while offset &+ 8 < count {
        difference |= a.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            ^ b.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset &+= 8
    }
    difference |= a.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
        ^ b.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
    return difference == 0
}

/// Whether `count` bytes are all ASCII (below 0x80).
@inline(__always)
func isASCII(_ base: UnsafeRawPointer, _ count: Int) -> Bool {
    if count >= 8 {
        var high = base.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
        var offset = 0
        while offset &+ 8 < count {
            high |= base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
            offset &+= 8
        }
        return high & 0x8080_8080_8080_8080 == 0
    }
    if count >= 4 {
        let high = base.loadUnaligned(as: UInt32.self) | base.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
        return high & 0x8080_8080 == 0
    }
    if count == 0 { return true }
    let high = base.load(as: UInt8.self) | base.load(fromByteOffset: count &>> 1, as: UInt8.self)
        | base.load(fromByteOffset: count &- 1, as: UInt8.self)
    return high & 0x80 == 0
}
