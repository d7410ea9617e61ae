/// SipHash-1-3 (Aumasson and Bernstein; the variant Swift's `Hasher` and Rust's `HashMap`
/// use): a keyed hash, so ids chosen by users cannot be picked to collide without the key.
///
/// The index uses it instead of `Hasher` because `Hasher`'s key is per process: with a key of
/// its own, an intern table's slots mean the same in the next process, and a snapshot can
/// store them instead of hashing every key again at open.
package struct SipHash13: Sendable {
    /// The 128-bit key.
    package var key: (UInt64, UInt64)

    /// A hasher with a random key.
    package static func random() -> SipHash13 {
        var generator = SystemRandomNumberGenerator()
        return SipHash13(key: (generator.next(), generator.next()))
    }

    package init(key: (UInt64, UInt64)) {
        self.key = key
    }

    /// The hash of `bytes`.
    package func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        sipHash(bytes, compressionRounds: 1, finalizationRounds: 3)
    }

    /// SipHash-2-4 of `bytes`: the paper's variant, whose published test vectors check the
    /// shared code.
    package func hash24(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        sipHash(bytes, compressionRounds: 2, finalizationRounds: 4)
    }

    @inline(__always)
    private func sipHash(_ bytes: UnsafeRawBufferPointer, compressionRounds: Int, finalizationRounds: Int) -> UInt64 {
        var v0 = key.0 ^ 0x736f_6d65_7073_6575
        var v1 = key.1 ^ 0x646f_7261_6e64_6f6d
        var v2 = key.0 ^ 0x6c79_6765_6e65_7261
        var v3 = key.1 ^ 0x7465_6462_7974_6573

        @inline(__always) func round() {
            v0 &+= v1; v1 = v1.rotated(13); v1 ^= v0; v0 = v0.rotated(32)
            v2 &+= v3; v3 = v3.rotated(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotated(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotated(17); v1 ^= v2; v2 = v2.rotated(32)
        }

        let count = bytes.count
        var offset = 0
        while offset + 8 <= count {
            let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            v3 ^= word
            for _ in 0..<compressionRounds { round() }
            v0 ^= word
            offset += 8
        }
        var last = UInt64(truncatingIfNeeded: count) << 56
        var shift: UInt64 = 0
        while offset < count {
            last |= UInt64(bytes[offset]) << shift
            shift += 8
            offset += 1
        }
        v3 ^= last
        for _ in 0..<compressionRounds { round() }
        v0 ^= last
        v2 ^= 0xFF
        for _ in 0..<finalizationRounds { round() }
        return v0 ^ v1 ^ v2 ^ v3
    }
}

extension UInt64 {
    @inline(__always) fileprivate func rotated(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 - count))
    }
}
