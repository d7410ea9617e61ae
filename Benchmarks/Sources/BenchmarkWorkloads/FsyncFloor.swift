#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The physical floor of a durable commit: the same number of bytes appended to a file with one
/// `pwrite` and made durable with one `fdatasync`, by plain code, nothing else.
public final class FsyncFloor {
    private let fd: Int32
    private var end: Int = 0
    private var buffer: [UInt8] = []

    /// Creates (truncating) the file at `path`.
    public init(path: String) throws {
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw BenchmarkError("open \(path): errno \(errno)") }
    }

    deinit { close(fd) }

    /// Appends `count` bytes and fdatasyncs them.
    public func commit(bytes count: Int) throws {
        if buffer.count < count { buffer = [UInt8](repeating: 0x5A, count: count) }
        let written = buffer.withUnsafeBytes { pwrite(fd, $0.baseAddress, count, off_t(end)) }
        guard written == count else { throw BenchmarkError("pwrite: \(written), errno \(errno)") }
        end += count
        guard fdatasync(fd) == 0 else { throw BenchmarkError("fdatasync: errno \(errno)") }
    }
}
