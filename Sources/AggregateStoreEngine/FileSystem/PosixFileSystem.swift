#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The real file system, on POSIX system calls.
///
/// Every call that can be interrupted by a signal is retried on `EINTR`; reads and writes are
/// completed across short transfers; every result is checked, `close` included; descriptors are
/// opened with `O_CLOEXEC` so a child process cannot keep a store file (or its lock) alive.
package struct PosixFileSystem: FileSystem {
    /// New files get `rw-r--r--`; the umask may narrow it further.
    static let fileMode: mode_t = 0o644
    /// New directories get `rwxr-xr-x`.
    static let directoryMode: mode_t = 0o755

    /// Creates the file system; it has no state of its own.
    package init() {}

    package func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any FileHandle {
        var flags = O_CLOEXEC
        switch mode {
        case .readOnly: flags |= O_RDONLY
        case .readWrite: flags |= O_RDWR
        case .createNew: flags |= O_RDWR | O_CREAT | O_EXCL
        case .createIfMissing: flags |= O_RDWR | O_CREAT
        }
        let fd = try openRetryingEINTR(path, flags: flags)
        return PosixFileHandle(fd: fd, path: path)
    }

    package func createDirectory(_ path: String) throws(StoreError) {
        try withCPath(path) { cPath throws(StoreError) in
            if system_mkdir(cPath, Self.directoryMode) != 0 {
                throw StoreError.pathSyscall("mkdir", path: path, errno: systemErrno)
            }
        }
    }

    package func syncDirectory(_ path: String) throws(StoreError) {
        let fd = try openRetryingEINTR(path, flags: O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        var failure: StoreError?
        if let code = fsyncRetryingEINTR(fd, kind: .full) {
            failure = StoreError.syscall("fsync", path: path, errno: code)
        }
        // Close even when the fsync failed, and report the fsync failure first: it is the one
        // that says the entries may not be durable.
        if let code = closeDescriptor(fd), failure == nil {
            failure = StoreError.syscall("close", path: path, errno: code)
        }
        if let failure { throw failure }
    }

    package func rename(_ source: String, to destination: String) throws(StoreError) {
        try withCPath(source) { cSource throws(StoreError) in
            try withCPath(destination) { cDestination throws(StoreError) in
                if system_rename(cSource, cDestination) != 0 {
                    let code = systemErrno
                    var error = StoreError.pathSyscall("rename", path: source, errno: code)
                    error.message += " (renaming to \(destination))"
                    throw error
                }
            }
        }
    }

    package func removeFile(_ path: String) throws(StoreError) {
        try withCPath(path) { cPath throws(StoreError) in
            if system_unlink(cPath) != 0 {
                throw StoreError.pathSyscall("unlink", path: path, errno: systemErrno)
            }
        }
    }

    package func removeDirectory(_ path: String) throws(StoreError) {
        try withCPath(path) { cPath throws(StoreError) in
            if system_rmdir(cPath) != 0 {
                throw StoreError.pathSyscall("rmdir", path: path, errno: systemErrno)
            }
        }
    }

    package func listDirectory(_ path: String) throws(StoreError) -> [String] {
        let stream = try withCPath(path) { cPath throws(StoreError) in
            guard let stream = system_opendir(cPath) else {
                throw StoreError.pathSyscall("opendir", path: path, errno: systemErrno)
            }
            return stream
        }
        // `d_name` is a fixed-size C array imported as a tuple; read it through its offset.
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        var names: [String] = []
        var failure: StoreError?
        while true {
            // readdir returns nil both at the end and on failure; only errno tells them apart.
            resetSystemErrno()
            guard let entry = system_readdir(stream) else {
                let code = systemErrno
                if code != 0 { failure = StoreError.syscall("readdir", path: path, errno: code) }
                break
            }
            let name = String(cString: (UnsafeRawPointer(entry) + nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        if system_closedir(stream) != 0, failure == nil {
            failure = StoreError.syscall("closedir", path: path, errno: systemErrno)
        }
        if let failure { throw failure }
        return names.sorted()
    }

    package func kind(of path: String) throws(StoreError) -> FileKind {
        try withCPath(path) { cPath throws(StoreError) in
            var info = stat()
            if system_stat(cPath, &info) != 0 {
                let code = systemErrno
                // ENOTDIR: a component of the path is a file, so nothing can be there.
                if code == ENOENT || code == ENOTDIR { return .missing }
                throw StoreError.syscall("stat", path: path, errno: code)
            }
            return (info.st_mode & mode_t(S_IFMT)) == mode_t(S_IFDIR) ? .directory : .file
        }
    }

    package func freeSpace(at path: String) throws(StoreError) -> UInt64 {
        try withCPath(path) { cPath throws(StoreError) in
            var info = statvfs()
            if system_statvfs(cPath, &info) != 0 {
                throw StoreError.pathSyscall("statvfs", path: path, errno: systemErrno)
            }
            let (bytes, overflow) = UInt64(info.f_bavail).multipliedReportingOverflow(by: UInt64(info.f_frsize))
            return overflow ? UInt64.max : bytes
        }
    }
}

/// An open file descriptor.
///
/// The descriptor never changes, so the handle is `Sendable` without a lock; only the closed
/// flag is shared mutable state. Using a handle after closing it is a programming error and
/// stops the process, because by then the descriptor number may name another file.
package final class PosixFileHandle: FileHandle {
    package let path: String
    private let fd: Int32

    /// The file descriptor, for tests that plan faults with `SyscallMock`.
    package var fileDescriptor: Int32 { fd }
    private let closed = Atomic<Bool>(false)

    /// Takes ownership of `fd`.
    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        // A handle dropped on an error path must not leak its descriptor (or hold its lock);
        // nobody is left to hear about a failure here.
        if !closed.load(ordering: .acquiring) { _ = closeDescriptor(fd) }
    }

    package func read(at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        checkOpen()
        precondition(count >= 0, "negative read count")
        guard count > 0 else { return [] }
        let start = try fileOffset(offset, count: count)
        var failure: StoreError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let result = system_pread(fd, buffer.baseAddress! + done, count - done, start + off_t(done))
                if result > 0 {
                    done += result
                } else if result == 0 {
                    break  // end of file
                } else {
                    let code = systemErrno
                    if code == EINTR { continue }
                    failure = StoreError.syscall("pread", path: path, errno: code)
                    failure?.offset = offset + UInt64(done)
                    break
                }
            }
            initialized = done
        }
        if let failure { throw failure }
        return bytes
    }

    package func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        checkOpen()
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        let start = try fileOffset(offset, count: bytes.count)
        var done = 0
        while done < bytes.count {
            let result = system_pwrite(fd, base + done, bytes.count - done, start + off_t(done))
            if result > 0 {
                done += result
            } else if result == 0 {
                // Retrying would spin forever; POSIX allows this only for a zero-length write.
                throw StoreError(.io, "pwrite wrote no bytes", path: path, offset: offset + UInt64(done))
            } else {
                let code = systemErrno
                if code == EINTR { continue }
                var error = StoreError.syscall("pwrite", path: path, errno: code)
                error.offset = offset + UInt64(done)
                throw error
            }
        }
    }

    package func sync(_ kind: SyncKind) throws(StoreError) {
        checkOpen()
        if let code = fsyncRetryingEINTR(fd, kind: kind) {
            throw StoreError.syscall(kind == .full ? "fsync" : "fdatasync", path: path, errno: code)
        }
    }

    package func size() throws(StoreError) -> UInt64 {
        checkOpen()
        var info = stat()
        if system_fstat(fd, &info) != 0 {
            throw StoreError.syscall("fstat", path: path, errno: systemErrno)
        }
        return UInt64(info.st_size)
    }

    package func truncate(to size: UInt64) throws(StoreError) {
        checkOpen()
        let length = try fileOffset(size, count: 0)
        while system_ftruncate(fd, length) != 0 {
            let code = systemErrno
            if code != EINTR { throw StoreError.syscall("ftruncate", path: path, errno: code) }
        }
    }

    package func tryLock(exclusive: Bool) throws(StoreError) -> Bool {
        checkOpen()
        let operation = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB
        while system_flock(fd, operation) != 0 {
            let code = systemErrno
            if code == EWOULDBLOCK { return false }
            if code != EINTR { throw StoreError.syscall("flock", path: path, errno: code) }
        }
        return true
    }

    package func close() throws(StoreError) {
        let (exchanged, _) = closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
        precondition(exchanged, "file handle closed twice: \(path)")
        if let code = closeDescriptor(fd) {
            throw StoreError.syscall("close", path: path, errno: code)
        }
    }

    private func checkOpen() {
        precondition(!closed.load(ordering: .acquiring), "use of a closed file handle: \(path)")
    }

    /// Converts a byte position to `off_t`, rejecting ranges past what the kernel can address.
    private func fileOffset(_ offset: UInt64, count: Int) throws(StoreError) -> off_t {
        guard let start = off_t(exactly: offset), start <= off_t.max - off_t(count) else {
            throw StoreError(.invalidArgument, "file offset out of range", path: path, offset: offset)
        }
        return start
    }
}

extension StoreError {
    /// Builds the error for a failed call on a path: like ``syscall(_:path:errno:)``, but
    /// `ENOENT` becomes ``Code/notFound`` and `EEXIST` ``Code/duplicate``, the codes callers
    /// branch on. `InMemoryFileSystem` uses it too, so both file systems fail alike.
    package static func pathSyscall(_ name: String, path: String, errno: Int32) -> StoreError {
        var error = syscall(name, path: path, errno: errno)
        if errno == ENOENT {
            error.code = .notFound
        } else if errno == EEXIST {
            error.code = .duplicate
        }
        return error
    }
}

/// Runs `body` with `path` as a C string, rejecting paths the kernel would silently cut short.
private func withCPath<Result>(
    _ path: String,
    _ body: (UnsafePointer<CChar>) throws(StoreError) -> Result
) throws(StoreError) -> Result {
    guard !path.utf8.contains(0) else {
        throw StoreError(.invalidArgument, "path contains a NUL byte", path: path)
    }
    // `withCString` only rethrows untyped errors; carry the typed one out in a `Result`.
    let result: Swift.Result<Result, StoreError> = path.withCString { cPath in
        Swift.Result { () throws(StoreError) in try body(cPath) }
    }
    return try result.get()
}

/// `open` with `EINTR` retried (a signal can interrupt an open of a FIFO or a slow NFS file).
private func openRetryingEINTR(_ path: String, flags: Int32) throws(StoreError) -> Int32 {
    try withCPath(path) { cPath throws(StoreError) in
        while true {
            let fd = system_open(cPath, flags, PosixFileSystem.fileMode)
            if fd >= 0 { return fd }
            let code = systemErrno
            if code != EINTR { throw StoreError.pathSyscall("open", path: path, errno: code) }
        }
    }
}

/// `fsync` or `fdatasync` with `EINTR` retried; returns the `errno` of a failure.
private func fsyncRetryingEINTR(_ fd: Int32, kind: SyncKind) -> Int32? {
    while (kind == .full ? system_fsync(fd) : system_fdatasync(fd)) != 0 {
        let code = systemErrno
        if code != EINTR { return code }
    }
    return nil
}

/// Closes a descriptor; returns the `errno` of a failure.
///
/// `EINTR` is success: Linux releases the descriptor before it can be interrupted, so a retry
/// could close a descriptor another thread has just been given.
private func closeDescriptor(_ fd: Int32) -> Int32? {
    guard system_close(fd) != 0 else { return nil }
    let code = systemErrno
    return code == EINTR ? nil : code
}
