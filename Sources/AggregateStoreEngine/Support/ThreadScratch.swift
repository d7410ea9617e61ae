#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffer of the calling thread's own, for bytes that are built up before their size is
/// known and then copied into an allocation of exactly that size.
///
/// The buffer is reused by its thread, warm in its core's cache, with no lock and no
/// allocation after its first use; it is freed when the thread exits.
package enum ThreadScratch {
    /// The largest buffer kept for a thread; larger requests get none.
    package static let maximumSize = 64 << 10

    /// The words before a buffer's bytes: its size, and whether a call is using it.
    private static let headerSize = 16

    /// Calls `body` with the calling thread's buffer of at least `count` bytes (uninitialized,
    /// and valid only during the call). Returns nil without calling it when `count` is over
    /// ``maximumSize``, when no memory can be had, or when the thread's buffer is in use by a
    /// call that has not returned: a nested call must not get the same bytes.
    package static func withBuffer<R, E: Error>(
        count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R? {
        guard count <= maximumSize, let block = threadBlock(count: count) else { return nil }
        block.storeBytes(of: true, toByteOffset: MemoryLayout<Int>.stride, as: Bool.self)
        defer { block.storeBytes(of: false, toByteOffset: MemoryLayout<Int>.stride, as: Bool.self) }
        return try body(UnsafeMutableRawBufferPointer(start: block + headerSize, count: block.load(as: Int.self)))
    }

    /// The calling thread's block, its buffer grown to `count` bytes (in powers of two from
    /// 4 KiB); nil if its buffer is in use or no memory can be had.
    private static func threadBlock(count: Int) -> UnsafeMutableRawPointer? {
        let old = pthread_getspecific(key)
        if let old {
            guard !old.load(fromByteOffset: MemoryLayout<Int>.stride, as: Bool.self) else { return nil }
            if old.load(as: Int.self) >= count { return old }
        }
        var size = 4096
        while size < count { size *= 2 }
        guard let block = malloc(headerSize + size) else { return nil }
        block.storeBytes(of: size, as: Int.self)
        block.storeBytes(of: false, toByteOffset: MemoryLayout<Int>.stride, as: Bool.self)
        guard pthread_setspecific(key, block) == 0 else {
            free(block)
            return nil
        }
        free(old)
        return block
    }

    /// The thread-specific slot, whose destructor frees a thread's block.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { block in
            // Optional on Glibc, not on Darwin.
            let block: UnsafeMutableRawPointer? = block
            free(block)
        }
        precondition(created == 0, "no thread-specific key for scratch buffers")
        return key
    }()
}
