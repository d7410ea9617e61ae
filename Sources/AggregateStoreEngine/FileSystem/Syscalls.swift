// Thin wrappers over the C library's file system calls, in the style of swift-nio's NIOFS
// `Syscalls.swift` and swift-system's `Internals/Syscalls.swift`: each wraps exactly one call
// and returns its raw result, so retrying `EINTR` and reading `errno` stay with the caller,
// where the policy for each call is decided. Keeping the C surface in one file also keeps the
// Glibc/Darwin differences in one place.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#else
#error("AggregateStore's file system layer needs Glibc or Darwin")
#endif

/// The C directory stream type, which Glibc imports as opaque and Darwin as typed.
#if canImport(Glibc)
typealias CDirectoryStream = OpaquePointer
#else
typealias CDirectoryStream = UnsafeMutablePointer<DIR>
#endif

/// The calling thread's `errno`, read right after a failed call.
var systemErrno: Int32 {
    errno
}

/// Resets `errno`, for calls such as `readdir` whose failure is only visible through it.
func resetSystemErrno() {
    errno = 0
}

/// A human-readable description of an `errno` value (`strerror`).
package func systemErrorMessage(_ errno: Int32) -> String {
    guard let message = strerror(errno) else { return "unknown error \(errno)" }
    return String(cString: message)
}

/// `open(2)` with a creation mode.
func system_open(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    open(path, flags, mode)
}

/// `close(2)`.
func system_close(_ fd: Int32) -> Int32 {
    close(fd)
}

/// `pread(2)`.
func system_pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ offset: off_t) -> Int {
    #if ENABLE_SYSCALL_MOCKING
    switch SyscallMock.next(.pread, fd) {
    case .interrupted?: errno = EINTR; return -1
    case let .failure(code)?: errno = code; return -1
    case let .short(limit)?: return pread(fd, buffer, min(count, limit), offset)
    case nil: break
    }
    #endif
    return pread(fd, buffer, count, offset)
}

/// `pwrite(2)`.
func system_pwrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ offset: off_t) -> Int {
    #if ENABLE_SYSCALL_MOCKING
    switch SyscallMock.next(.pwrite, fd) {
    case .interrupted?: errno = EINTR; return -1
    case let .failure(code)?: errno = code; return -1
    case let .short(limit)?: return pwrite(fd, buffer, min(count, limit), offset)
    case nil: break
    }
    #endif
    return pwrite(fd, buffer, count, offset)
}

/// `fsync(2)`.
func system_fsync(_ fd: Int32) -> Int32 {
    #if ENABLE_SYSCALL_MOCKING
    switch SyscallMock.next(.fsync, fd) {
    case .interrupted?: errno = EINTR; return -1
    case let .failure(code)?: errno = code; return -1
    case .short?, nil: break
    }
    #endif
    return fsync(fd)
}

/// `fdatasync(2)`. Darwin has no public `fdatasync`, so there it is `fsync`, which is
/// at least as strong.
func system_fdatasync(_ fd: Int32) -> Int32 {
    #if ENABLE_SYSCALL_MOCKING
    switch SyscallMock.next(.fdatasync, fd) {
    case .interrupted?: errno = EINTR; return -1
    case let .failure(code)?: errno = code; return -1
    case .short?, nil: break
    }
    #endif
    #if canImport(Glibc)
    return fdatasync(fd)
    #else
    return fsync(fd)
    #endif
}

/// `ftruncate(2)`.
func system_ftruncate(_ fd: Int32, _ length: off_t) -> Int32 {
    #if ENABLE_SYSCALL_MOCKING
    switch SyscallMock.next(.ftruncate, fd) {
    case .interrupted?: errno = EINTR; return -1
    case let .failure(code)?: errno = code; return -1
    case .short?, nil: break
    }
    #endif
    return ftruncate(fd, length)
}

/// `fstat(2)`.
func system_fstat(_ fd: Int32, _ info: inout stat) -> Int32 {
    fstat(fd, &info)
}

/// `stat(2)`, which follows symbolic links.
func system_stat(_ path: UnsafePointer<CChar>, _ info: inout stat) -> Int32 {
    stat(path, &info)
}

/// `flock(2)`.
func system_flock(_ fd: Int32, _ operation: Int32) -> Int32 {
    #if ENABLE_SYSCALL_MOCKING
    switch SyscallMock.next(.flock, fd) {
    case .interrupted?: errno = EINTR; return -1
    case let .failure(code)?: errno = code; return -1
    case .short?, nil: break
    }
    #endif
    return flock(fd, operation)
}

/// `rename(2)`.
func system_rename(_ old: UnsafePointer<CChar>, _ new: UnsafePointer<CChar>) -> Int32 {
    rename(old, new)
}

/// `unlink(2)`.
func system_unlink(_ path: UnsafePointer<CChar>) -> Int32 {
    unlink(path)
}

/// `rmdir(2)`.
func system_rmdir(_ path: UnsafePointer<CChar>) -> Int32 {
    rmdir(path)
}

/// `mkdir(2)`.
func system_mkdir(_ path: UnsafePointer<CChar>, _ mode: mode_t) -> Int32 {
    mkdir(path, mode)
}

/// `opendir(3)`.
func system_opendir(_ path: UnsafePointer<CChar>) -> CDirectoryStream? {
    opendir(path)
}

/// `readdir(3)`: nil at the end of the stream or on error, which only `errno` tells apart.
func system_readdir(_ stream: CDirectoryStream) -> UnsafeMutablePointer<dirent>? {
    readdir(stream)
}

/// `closedir(3)`.
func system_closedir(_ stream: CDirectoryStream) -> Int32 {
    closedir(stream)
}

/// `statvfs(3)`.
func system_statvfs(_ path: UnsafePointer<CChar>, _ info: inout statvfs) -> Int32 {
    statvfs(path, &info)
}
