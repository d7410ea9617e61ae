import CLZ4
import Synchronization

/// LZ4 block compression for stored values, through the system liblz4.
///
/// Only the block format is used: the store records the uncompressed length itself, so the
/// frame format's headers and checksums would be redundant.
package enum LZ4 {
    /// Compresses `input` as one LZ4 block, with liblz4's default acceleration.
    ///
    /// Returns nil when the block would not be smaller than the input, including for empty
    /// input, so the caller stores those bytes uncompressed and never pays to decompress them.
    package static func compress(_ input: UnsafeRawBufferPointer) -> [UInt8]? {
        guard input.count > 1 else { return nil }
        var written: Int?
        let output = [UInt8](unsafeUninitializedCapacity: input.count - 1) { buffer, initializedCount in
            written = compress(input, into: UnsafeMutableRawBufferPointer(buffer))
            initializedCount = written ?? 0
        }
        guard written != nil else { return nil }
        return output.trimmingSlack()
    }

    /// Compresses `input` as one LZ4 block into `output`, if the block fits there.
    ///
    /// Give `output` one byte less than the input to learn whether compression pays: liblz4
    /// gives up (nil) as soon as the block cannot fit, instead of finishing a block the caller
    /// would discard.
    /// - Returns: The block's length, or nil if it does not fit (or the input cannot be
    ///   compressed in one call, or no state can be allocated).
    package static func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        // Inputs liblz4 cannot take in one call are stored as is rather than split up.
        guard let source = input.baseAddress, let destination = output.baseAddress, input.count > 0,
              input.count <= Int(LZ4_MAX_INPUT_SIZE), output.count > 0 else {
            return nil
        }
        // Without memory for a state the bytes are stored as they are.
        guard let state = takeState() else { return nil }
        defer { returnState(state) }
        // Each block is a stream of its own: the reset drops the previous block as a dictionary.
        LZ4_resetStream_fast(state.stream)
        let written = LZ4_compress_fast_continue(
            state.stream,
            source.assumingMemoryBound(to: CChar.self),
            destination.assumingMemoryBound(to: CChar.self),
            Int32(input.count),
            Int32(min(output.count, Int(Int32.max))),
            1
        )
        return written > 0 ? Int(written) : nil
    }

    /// Compression states kept for reuse. A one-shot `LZ4_compress_default` clears a 16 KiB
    /// hash table before every block, which cost more than compressing a 1 KiB record
    /// (callgrind: 16 of 27 thousand instructions); `LZ4_resetStream_fast` on a used state
    /// only marks its old entries stale. Committers compress concurrently, so each takes a
    /// state of its own.
    private static let states = Mutex<[CompressionState]>([])

    /// A liblz4 compression state, used by one caller at a time: whoever took it from
    /// ``states``, which is what makes handing it between threads safe.
    private struct CompressionState: @unchecked Sendable {
        let stream: UnsafeMutablePointer<LZ4_stream_t>
    }

    /// States beyond this many are freed when returned rather than kept.
    private static var keptStates: Int { 8 }

    /// A kept state, or a new one; nil when liblz4 cannot allocate one.
    private static func takeState() -> CompressionState? {
        if let state = states.withLock({ $0.popLast() }) { return state }
        return LZ4_createStream().map(CompressionState.init)
    }

    private static func returnState(_ state: CompressionState) {
        let kept = states.withLock { states in
            guard states.count < keptStates else { return false }
            states.append(state)
            return true
        }
        if !kept { LZ4_freeStream(state.stream) }
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
