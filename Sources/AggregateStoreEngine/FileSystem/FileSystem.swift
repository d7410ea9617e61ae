/// The file-system seam: every file operation the engine performs goes through this protocol,
/// so that tests can record operations, simulate crashes and inject faults (LevelDB's `Env`).
///
/// Implementations: ``PosixFileSystem`` (the real one) and, in AggregateStoreTestKit,
/// `InMemoryFileSystem`, which remembers what was synced.
///
/// Paths are plain absolute or relative strings; a directory's entries are file names.
/// Every method reports failure as a ``StoreError`` (``StoreError/Code/io`` or
/// ``StoreError/Code/noSpace``, with the `errno` and path).
package protocol FileSystem: Sendable {
    /// Opens (and with `create`, creates) a file for reading and writing.
    /// Creating a file does not make its directory entry durable: call ``syncDirectory(_:)``.
    func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any FileHandle

    /// Creates a directory (not its parents). Fails with `.duplicate` if it exists.
    func createDirectory(_ path: String) throws(StoreError)

    /// Makes the directory's entries (creations, renames, removals) durable: `fsync` of the directory.
    func syncDirectory(_ path: String) throws(StoreError)

    /// Atomically renames `source` to `destination`, replacing it (`rename(2)`).
    func rename(_ source: String, to destination: String) throws(StoreError)

    /// Removes a file (`unlink(2)`).
    func removeFile(_ path: String) throws(StoreError)

    /// Removes an empty directory (`rmdir(2)`). Only a backup's clean-up after a failure
    /// needs it; the default implementation fails with ``StoreError/Code/io`` (`ENOTSUP`).
    func removeDirectory(_ path: String) throws(StoreError)

    /// The names of the entries of a directory, without `.` and `..`, sorted.
    func listDirectory(_ path: String) throws(StoreError) -> [String]

    /// What is at `path`: nothing, a file or a directory.
    func kind(of path: String) throws(StoreError) -> FileKind

    /// Bytes available to an unprivileged user on the file system holding `path` (`statvfs`).
    func freeSpace(at path: String) throws(StoreError) -> UInt64
}

extension FileSystem {
    /// Fails: a file system that does not implement it (a test model) keeps the directory.
    package func removeDirectory(_ path: String) throws(StoreError) {
        throw StoreError(.io, "removing a directory is not supported by this file system", path: path, errno: 95 /* ENOTSUP */)
    }
}

/// How ``FileSystem/open(_:mode:)`` opens a file.
package enum FileOpenMode: Sendable, Equatable {
    /// Open an existing file for reading only.
    case readOnly
    /// Open an existing file for reading and writing.
    case readWrite
    /// Create the file for reading and writing; fail with `.duplicate` if it exists.
    case createNew
    /// Open for reading and writing, creating the file if it does not exist.
    case createIfMissing
}

/// What a path names.
package enum FileKind: Sendable, Equatable {
    case missing, file, directory
}

/// Whether ``FileHandle/sync(_:)`` flushes metadata too.
package enum SyncKind: Sendable, Equatable {
    /// `fdatasync`: the data and the metadata needed to read it (the size).
    case data
    /// `fsync`: the data and all metadata.
    case full
}

/// An open file. Reads and writes take explicit offsets (`pread`/`pwrite`), so one handle can
/// be shared by a writer and concurrent readers.
package protocol FileHandle: AnyObject, Sendable {
    /// The path the handle was opened with.
    var path: String { get }

    /// Reads up to `count` bytes at `offset`; returns fewer only at the end of the file.
    /// Retries `EINTR` and completes short reads.
    func read(at offset: UInt64, count: Int) throws(StoreError) -> [UInt8]

    /// Writes all of `bytes` at `offset`, retrying `EINTR` and completing short writes.
    /// On failure some prefix of the bytes may have been written.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError)

    /// Flushes the file's written data to stable storage. A failure is final: the caller
    /// must not retry and then trust the data (fsyncgate).
    func sync(_ kind: SyncKind) throws(StoreError)

    /// The file's current size in bytes.
    func size() throws(StoreError) -> UInt64

    /// Sets the file's size (`ftruncate`).
    func truncate(to size: UInt64) throws(StoreError)

    /// Takes an advisory lock on the whole file without waiting (`flock` with `LOCK_NB`).
    /// Returns false if another handle, in this process or another, holds a conflicting lock.
    func tryLock(exclusive: Bool) throws(StoreError) -> Bool

    /// Closes the handle, checking the result. Further use of the handle is a programming error.
    func close() throws(StoreError)
}

extension FileHandle {
    /// Writes all of `bytes` at `offset`.
    package func write(_ bytes: [UInt8], at offset: UInt64) throws(StoreError) {
        // `Array.withUnsafeBytes` only rethrows untyped errors; carry the typed one out in a `Result`.
        let result: Result<Void, StoreError> = bytes.withUnsafeBytes { buffer in
            Result { () throws(StoreError) in try write(buffer, at: offset) }
        }
        try result.get()
    }
}

/// Joins a directory and a file name.
package func joinPath(_ directory: String, _ name: String) -> String {
    directory.hasSuffix("/") ? directory + name : directory + "/" + name
}
