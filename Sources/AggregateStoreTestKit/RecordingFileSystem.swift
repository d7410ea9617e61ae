package import AggregateStoreEngine
import Synchronization

/// Wraps a file system and records every operation in order, for syscall audits: "the new
/// segment and its directory entry are synced before the manifest names it".
package final class RecordingFileSystem: FileSystem {
    /// One recorded operation: its name (`open`, `write`, `sync`, `syncDirectory`, `rename`, ...)
    /// and the file name it concerned (the last path component; both names for a rename).
    package struct Entry: Sendable, Equatable, CustomStringConvertible {
        package var operation: String
        package var name: String
        package var description: String { "\(operation) \(name)" }
    }

    private let base: any FileSystem
    private let entries = Mutex<[Entry]>([])

    /// Wraps `base`.
    package init(wrapping base: any FileSystem) {
        self.base = base
    }

    /// The operations recorded so far.
    package var log: [Entry] { entries.withLock { $0 } }

    /// Forgets the operations recorded so far.
    package func clearLog() { entries.withLock { $0.removeAll() } }

    fileprivate func record(_ operation: String, _ path: String) {
        let name = path.split(separator: "/").last.map(String.init) ?? path
        entries.withLock { $0.append(Entry(operation: operation, name: name)) }
    }

    package func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any FileHandle {
        record(mode == .createNew ? "create" : "open", path)
        return RecordingFileHandle(base: try base.open(path, mode: mode), fileSystem: self)
    }

    package func createDirectory(_ path: String) throws(StoreError) {
        record("createDirectory", path)
        try base.createDirectory(path)
    }

    package func syncDirectory(_ path: String) throws(StoreError) {
        record("syncDirectory", path)
        try base.syncDirectory(path)
    }

    package func rename(_ source: String, to destination: String) throws(StoreError) {
        let target = destination.split(separator: "/").last.map(String.init) ?? destination
        record("rename", source + "->" + target)
        try base.rename(source, to: destination)
    }

    package func removeFile(_ path: String) throws(StoreError) {
        record("remove", path)
        try base.removeFile(path)
    }

    package func removeDirectory(_ path: String) throws(StoreError) {
        record("removeDirectory", path)
        try base.removeDirectory(path)
    }

    package func listDirectory(_ path: String) throws(StoreError) -> [String] {
        try base.listDirectory(path)
    }

    package func kind(of path: String) throws(StoreError) -> FileKind {
        try base.kind(of: path)
    }

    package func freeSpace(at path: String) throws(StoreError) -> UInt64 {
        try base.freeSpace(at: path)
    }
}

/// A handle that records writes, syncs, truncations and closes.
private final class RecordingFileHandle: FileHandle {
    let base: any FileHandle
    let fileSystem: RecordingFileSystem

    init(base: any FileHandle, fileSystem: RecordingFileSystem) {
        self.base = base
        self.fileSystem = fileSystem
    }

    var path: String { base.path }

    func read(at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        try base.read(at: offset, count: count)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        fileSystem.record("write", path)
        try base.write(bytes, at: offset)
    }

    func sync(_ kind: SyncKind) throws(StoreError) {
        fileSystem.record(kind == .data ? "fdatasync" : "fsync", path)
        try base.sync(kind)
    }

    func size() throws(StoreError) -> UInt64 { try base.size() }

    func truncate(to size: UInt64) throws(StoreError) {
        fileSystem.record("truncate", path)
        try base.truncate(to: size)
    }

    func tryLock(exclusive: Bool) throws(StoreError) -> Bool {
        fileSystem.record(exclusive ? "lockExclusive" : "lockShared", path)
        return try base.tryLock(exclusive: exclusive)
    }

    func close() throws(StoreError) {
        fileSystem.record("close", path)
        try base.close()
    }
}
