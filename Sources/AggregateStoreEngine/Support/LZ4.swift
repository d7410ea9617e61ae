import CLZ4
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        guard let stream = threadState() else { return nil }
        // Each block is a stream of its own: the reset drops the previous block as a dictionary.
        LZ4_resetStream_fast(stream)
        let written = LZ4_compress_fast_continue(
            stream,
            source.assumingMemoryBound(to: CChar.self),
            destination.assumingMemoryBound(to: CChar.self),
            Int32(input.count),
            Int32(min(output.count, Int(Int32.max))),
            1
        )
        return written > 0 ? Int(written) : nil
    }

    /// The calling thread's compression state, created on its first block and freed when the
    /// thread exits.
    ///
    /// A one-shot `LZ4_compress_default` clears a 16 KiB hash table before every block, which
    /// cost more than compressing a 1 KiB record (callgrind: 16 of 27 thousand instructions);
    /// `LZ4_resetStream_fast` on a used state only marks its old entries stale. One state per
    /// thread (16 KiB each) rather than a shared pool: no lock is taken, and the table stays
    /// in the cache of the core that last used it, where from a pool a committer could take a
    /// state last used on another core (compression was 11 % of a committing thread's time at
    /// 64 committers). A thread compresses one block at a time, so its state is never used
    /// twice at once.
    private static func threadState() -> UnsafeMutablePointer<LZ4_stream_t>? {
        if let state = pthread_getspecific(stateKey) { return state.assumingMemoryBound(to: LZ4_stream_t.self) }
        guard let state = LZ4_createStream() else { return nil }
        guard pthread_setspecific(stateKey, state) == 0 else {
            LZ4_freeStream(state)
            return nil
        }
        return state
    }

    /// The thread-specific slot of ``threadState()``, whose destructor frees a thread's state.
    private static let stateKey: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { state in
            // Optional on Glibc, not on Darwin.
            let state: UnsafeMutableRawPointer? = state
            if let state { LZ4_freeStream(state.assumingMemoryBound(to: LZ4_stream_t.self)) }
        }
        precondition(created == 0, "no thread-specific key for LZ4 states")
        return key
    }()

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
