import AggregateStoreEngine
import Dispatch
import Foundation
import Synchronization

/// A disk model for comparing commit pipelines repeatably: real files (on tmpfs, say), whose
/// `fdatasync` takes a fixed time, plus a time per KiB written since the last one, plus some
/// processor time, the way a virtual disk's does. The real disk of a shared machine varies by
/// 10-20 % from run to run, more than the differences being compared.
struct ModelDisk: FileSystem {
    /// The time of an `fdatasync` of a small write, in microseconds.
    var syncMicroseconds: Double
    /// What each KiB written since the last sync adds, in microseconds.
    var microsecondsPerKiB: Double = 4
    /// The processor time of each sync (a virtual disk's notifications), in microseconds.
    var processorMicroseconds: Double = 40
    let base = PosixFileSystem()

    func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any AggregateStoreEngine.FileHandle {
        ModelDiskHandle(wrapping: try base.open(path, mode: mode), disk: self)
    }
    func createDirectory(_ path: String) throws(StoreError) { try base.createDirectory(path) }
    func syncDirectory(_ path: String) throws(StoreError) { try base.syncDirectory(path) }
    func rename(_ source: String, to destination: String) throws(StoreError) { try base.rename(source, to: destination) }
    func removeFile(_ path: String) throws(StoreError) { try base.removeFile(path) }
    func listDirectory(_ path: String) throws(StoreError) -> [String] { try base.listDirectory(path) }
    func kind(of path: String) throws(StoreError) -> FileKind { try base.kind(of: path) }
    func freeSpace(at path: String) throws(StoreError) -> UInt64 { try base.freeSpace(at: path) }
}

private final class ModelDiskHandle: AggregateStoreEngine.FileHandle {
    let handle: any AggregateStoreEngine.FileHandle
    let disk: ModelDisk
    private let unsynced = Mutex(0)

    init(wrapping handle: any AggregateStoreEngine.FileHandle, disk: ModelDisk) {
        self.handle = handle
        self.disk = disk
    }

    var path: String { handle.path }
    func read(at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] { try handle.read(at: offset, count: count) }
    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        try handle.write(bytes, at: offset)
        unsynced.withLock { $0 += bytes.count }
    }
    func sync(_ kind: SyncKind) throws(StoreError) {
        let bytes = unsynced.withLock { bytes in
            defer { bytes = 0 }
            return bytes
        }
        let busyUntil = DispatchTime.now().uptimeNanoseconds + UInt64(disk.processorMicroseconds * 1000)
        while DispatchTime.now().uptimeNanoseconds < busyUntil {}
        let wait = disk.syncMicroseconds + disk.microsecondsPerKiB * Double(bytes) / 1024 - disk.processorMicroseconds
        if wait > 0 { usleep(UInt32(wait)) }
        try handle.sync(kind)
    }
    func size() throws(StoreError) -> UInt64 { try handle.size() }
    func truncate(to size: UInt64) throws(StoreError) { try handle.truncate(to: size) }
    func tryLock(exclusive: Bool) throws(StoreError) -> Bool { try handle.tryLock(exclusive: exclusive) }
    func close() throws(StoreError) { try handle.close() }
}
