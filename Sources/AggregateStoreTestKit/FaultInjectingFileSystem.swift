package import AggregateStoreEngine
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Wraps a file system and makes chosen operations fail, after SQLite's I/O-error tests and
/// redb's countdown backend: "fail the 3rd fsync of a segment with EIO, and every one after".
///
/// A failing operation does not reach the wrapped file system, so over an
/// `InMemoryFileSystem` a failed `sync` leaves the written data visible but not durable, the
/// state that fsyncgate is about: the in-memory file system then marks those pages clean without
/// writing them, so even a later successful fsync does not persist them. A failing `write` is
/// the exception to "nothing reaches the base": it writes the first half of its bytes before
/// failing, as a write that runs out of space midway does.
package final class FaultInjectingFileSystem: FileSystem {
    /// The operations a fault can target.
    package enum Operation: String, Sendable, CaseIterable {
        case open, createDirectory, syncDirectory, rename, removeFile, removeDirectory, listDirectory, kind, freeSpace
        case read, write, sync, size, truncate, lock, close
    }

    /// One planned fault.
    package struct Fault: Sendable {
        /// The operation that fails.
        package var operation: Operation
        /// Only operations on paths containing this string count (nil: all).
        package var pathContains: String?
        /// How many matching operations succeed before the first failure.
        package var skip: Int
        /// The `errno` of the failure (`EIO` = 5, `ENOSPC` = 28, `EDQUOT` = 122).
        package var errno: Int32
        /// Whether every later matching operation fails too, or only one.
        package var persistent: Bool
    }

    private struct State {
        var faults: [Fault] = []
        var counts: [Operation: Int] = [:]
        var injected = 0
        var syncsPaused = false
        var syncsWaiting = 0
    }

    private let base: any FileSystem
    private let state = Mutex(State())

    /// Wraps `base`; no fault is planned yet.
    package init(wrapping base: any FileSystem) {
        self.base = base
    }

    /// Plans a fault: the `skip + 1`-th matching operation fails with `errno` (and, when
    /// `persistent`, every one after it).
    package func inject(_ operation: Operation, errno: Int32 = 5, skip: Int = 0, persistent: Bool = false, pathContains: String? = nil) {
        state.withLock { $0.faults.append(Fault(operation: operation, pathContains: pathContains, skip: skip, errno: errno, persistent: persistent)) }
    }

    /// Removes every planned fault.
    package func clearFaults() {
        state.withLock { $0.faults.removeAll() }
    }

    /// How many operations of a kind have been attempted.
    package func count(_ operation: Operation) -> Int {
        state.withLock { $0.counts[operation, default: 0] }
    }

    /// Makes every file `sync` wait (before it reaches the wrapped file system) until
    /// ``resumeSyncs()``: a test holds a commit group in its fsync while others queue up.
    package func pauseSyncs() {
        state.withLock { $0.syncsPaused = true }
    }

    /// Lets the waiting and later syncs go on.
    package func resumeSyncs() {
        state.withLock { $0.syncsPaused = false }
    }

    /// How many file syncs are waiting on ``pauseSyncs()``.
    package var syncsWaiting: Int { state.withLock { $0.syncsWaiting } }

    /// Waits while syncs are paused.
    fileprivate func waitWhileSyncsPaused() {
        guard state.withLock({ state in
            if state.syncsPaused { state.syncsWaiting += 1 }
            return state.syncsPaused
        }) else { return }
        while state.withLock({ $0.syncsPaused }) { usleep(200) }
        state.withLock { $0.syncsWaiting -= 1 }
    }

    /// How many faults have fired.
    package var injectedFaults: Int { state.withLock { $0.injected } }

    /// Counts the operation and throws if a planned fault matches it.
    fileprivate func check(_ operation: Operation, _ path: String) throws(StoreError) {
        let failure: Int32? = state.withLock { state in
            state.counts[operation, default: 0] += 1
            for index in state.faults.indices where state.faults[index].operation == operation {
                if let fragment = state.faults[index].pathContains, !path.contains(fragment) { continue }
                if state.faults[index].skip > 0 {
                    state.faults[index].skip -= 1
                    continue
                }
                let errno = state.faults[index].errno
                if !state.faults[index].persistent { state.faults.remove(at: index) }
                state.injected += 1
                return errno
            }
            return nil
        }
        if let failure { throw StoreError.syscall("injected \(operation.rawValue)", path: path, errno: failure) }
    }

    package func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any FileHandle {
        try check(.open, path)
        return FaultInjectingFileHandle(base: try base.open(path, mode: mode), fileSystem: self)
    }

    package func createDirectory(_ path: String) throws(StoreError) {
        try check(.createDirectory, path)
        try base.createDirectory(path)
    }

    package func syncDirectory(_ path: String) throws(StoreError) {
        try check(.syncDirectory, path)
        try base.syncDirectory(path)
    }

    package func rename(_ source: String, to destination: String) throws(StoreError) {
        try check(.rename, source)
        try base.rename(source, to: destination)
    }

    package func removeFile(_ path: String) throws(StoreError) {
        try check(.removeFile, path)
        try base.removeFile(path)
    }

    package func removeDirectory(_ path: String) throws(StoreError) {
        try check(.removeDirectory, path)
        try base.removeDirectory(path)
    }

    package func listDirectory(_ path: String) throws(StoreError) -> [String] {
        try check(.listDirectory, path)
        return try base.listDirectory(path)
    }

    package func kind(of path: String) throws(StoreError) -> FileKind {
        try check(.kind, path)
        return try base.kind(of: path)
    }

    package func freeSpace(at path: String) throws(StoreError) -> UInt64 {
        try check(.freeSpace, path)
        return try base.freeSpace(at: path)
    }
}

/// A handle whose operations consult the owning ``FaultInjectingFileSystem`` first.
private final class FaultInjectingFileHandle: FileHandle {
    let base: any FileHandle
    let fileSystem: FaultInjectingFileSystem

    init(base: any FileHandle, fileSystem: FaultInjectingFileSystem) {
        self.base = base
        self.fileSystem = fileSystem
    }

    var path: String { base.path }

    func read(at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        try fileSystem.check(.read, path)
        return try base.read(at: offset, count: count)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        do {
            try fileSystem.check(.write, path)
        } catch {
            try? base.write(UnsafeRawBufferPointer(rebasing: bytes[..<(bytes.count / 2)]), at: offset)
            throw error
        }
        try base.write(bytes, at: offset)
    }

    func sync(_ kind: SyncKind) throws(StoreError) {
        fileSystem.waitWhileSyncsPaused()
        do {
            try fileSystem.check(.sync, path)
        } catch {
            // Over the in-memory file system, a failed fsync also loses the unsynced data for
            // good while leaving it readable, as Linux does (fsyncgate).
            (base as? InMemoryFileHandle)?.simulateFailedSync()
            throw error
        }
        try base.sync(kind)
    }

    func size() throws(StoreError) -> UInt64 {
        try fileSystem.check(.size, path)
        return try base.size()
    }

    func truncate(to size: UInt64) throws(StoreError) {
        try fileSystem.check(.truncate, path)
        try base.truncate(to: size)
    }

    func tryLock(exclusive: Bool) throws(StoreError) -> Bool {
        try fileSystem.check(.lock, path)
        return try base.tryLock(exclusive: exclusive)
    }

    func close() throws(StoreError) {
        do {
            try fileSystem.check(.close, path)
        } catch {
            try? base.close()  // the descriptor is released even when close reports an error
            throw error
        }
        try base.close()
    }
}
