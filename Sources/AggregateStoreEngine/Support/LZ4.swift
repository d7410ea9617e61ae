import CLZ4

/// LZ4 block compression for stored values, through the system liblz4.
///
/// Only the block format is used: the store records the uncompressed length itself, so the
/// frame format's headers and checksums would be redundant.
package enum LZ4 {
    /// Compresses `input` as one LZ4 block (`LZ4_compress_default`).
    ///
    /// Returns nil when the block would not be smaller than the input, including for empty
    /// input, so the caller stores those bytes uncompressed and never pays to decompress them.
    package static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        // Inputs liblz4 cannot take in one call are stored as is rather than split up.
        guard let source = input.baseAddress, input.count > 1, input.count <= Int(LZ4_MAX_INPUT_SIZE) else {
            return nil
        }
        // Capping the output one byte below the input makes liblz4 give up (return 0) as soon
        // as compression stops paying, instead of finishing a block the caller would discard.
        let capacity = input.count - 1
        var written: Int32 = 0
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initializedCount in
            written = buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: capacity) { destination in
                LZ4_compress_default(
                    source.assumingMemoryBound(to: CChar.self),
                    destination,
                    Int32(input.count),
                    Int32(capacity)
                )
            }
            initializedCount = Int(max(written, 0))
        }
        guard written > 0 else { return nil }
        // The array was sized for the worst case; a block that may be kept around (a cache,
        // a pending batch) should not pin that slack, and copying the small block is cheap.
        if output.capacity - output.count > 4096 && output.count < output.capacity / 2 {
            return Array(output[...])
        }
        return output
    }

    /// Decompresses a block that must expand to exactly `uncompressedLength` bytes.
    ///
    /// Uses `LZ4_decompress_safe`, which stays within both buffers whatever the input, because
    /// stored blocks can be damaged or hostile. Throws ``StoreError/Code/corruption`` without a
    /// path or offset (the caller knows them) when the block is malformed, expands to a
    /// different length, or `uncompressedLength` is outside what liblz4 can produce.
    package static func decompress(
        _ input: UnsafeRawBufferPointer,
        uncompressedLength: Int
    ) throws(StoreError) -> [UInt8] {
        // liblz4 takes Int32 lengths; a larger claim can only come from damaged metadata.
        guard uncompressedLength >= 0, uncompressedLength <= Int(Int32.max) else {
            throw StoreError(.corruption, "LZ4 block claims an impossible uncompressed length \(uncompressedLength)")
        }
        guard input.count <= Int(Int32.max) else {
            throw StoreError(.corruption, "LZ4 block of \(input.count) bytes is larger than liblz4 accepts")
        }
        guard let source = input.baseAddress, input.count > 0 else {
            if uncompressedLength == 0 { return [] }
            throw StoreError(.corruption, "LZ4 block is empty but should expand to \(uncompressedLength) bytes")
        }
        if uncompressedLength == 0 {
            // LZ4 encodes nothing as the single token 0x00; checking it here spares liblz4 a
            // zero-capacity destination that has no base address.
            if input.count == 1 && input[0] == 0 { return [] }
            throw StoreError(.corruption, "LZ4 block of \(input.count) bytes should expand to nothing")
        }
        var produced: Int32 = 0
        let output = [UInt8](unsafeUninitializedCapacity: uncompressedLength) { buffer, initializedCount in
            let start = buffer.baseAddress!
            produced = start.withMemoryRebound(to: CChar.self, capacity: uncompressedLength) { destination in
                LZ4_decompress_safe(
                    source.assumingMemoryBound(to: CChar.self),
                    destination,
                    Int32(input.count),
                    Int32(uncompressedLength)
                )
            }
            initializedCount = Int(max(produced, 0))
        }
        guard produced >= 0 else {
            throw StoreError(.corruption, "LZ4 block of \(input.count) bytes is malformed")
        }
        guard Int(produced) == uncompressedLength else {
            throw StoreError(.corruption, "LZ4 block expands to \(produced) bytes, expected \(uncompressedLength)")
        }
        return output
    }
}
