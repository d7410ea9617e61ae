#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A buffer of the calling thread's own, for bytes that are built up before their size is
/// known and then copied into an allocation of exactly that size.
///
/// A staged commit's payload and frame were encoded into an allocation sized for their bounds,
/// about twice their length (1,088-2,432 bytes for the demo's orders), and held it while the
/// commit waited. Encoding here and copying the result out allocates their length only: a
/// quarter of the demo's commits then fit the 1,032 bytes that glibc serves from a per-thread
/// cache, without an arena's lock. A thread reuses its buffer, warm in its core's cache; it
/// is freed when the thread exits.
package enum ThreadScratch {
    /// The largest buffer kept for a thread; larger requests get none.
    package static let maximumSize = 64 << 10

    /// Calls `body` with the calling thread's buffer of at least `count` bytes (uninitialized,
    /// and valid only during the call), or returns nil without calling it when `count` is over
    /// ``maximumSize`` or no memory can be had. `body` must not call this again.
    package static func withBuffer<R, E: Error>(
        count: Int, _ body: (UnsafeMutableRawBufferPointer) throws(E) -> R
    ) throws(E) -> R? {
        guard count <= maximumSize, let buffer = threadBuffer(count: count) else { return nil }
        return try body(buffer)
    }

    /// The calling thread's buffer, grown to `count` bytes (in powers of two from 4 KiB).
    private static func threadBuffer(count: Int) -> UnsafeMutableRawBufferPointer? {
        if let header = pthread_getspecific(key)?.assumingMemoryBound(to: Int.self), header.pointee >= count {
            return UnsafeMutableRawBufferPointer(start: header + 1, count: header.pointee)
        }
        var size = 4096
        while size < count { size *= 2 }
        // The size is kept in a word before the bytes, so that the thread's slot is one pointer.
        guard let header = malloc(MemoryLayout<Int>.stride + size)?.assumingMemoryBound(to: Int.self) else { return nil }
        header.pointee = size
        let old = pthread_getspecific(key)
        guard pthread_setspecific(key, header) == 0 else {
            free(header)
            return nil
        }
        free(old)
        return UnsafeMutableRawBufferPointer(start: header + 1, count: size)
    }

    /// The thread-specific slot, whose destructor frees a thread's buffer.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { buffer in
            // Optional on Glibc, not on Darwin.
            let buffer: UnsafeMutableRawPointer? = buffer
            free(buffer)
        }
        precondition(created == 0, "no thread-specific key for scratch buffers")
        return key
    }()
}
