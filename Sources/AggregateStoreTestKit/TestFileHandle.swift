import AggregateStoreEngine
import Synchronization

/// A test file system, as its handles see it: every handle call is forwarded to it, and it
/// checks that the handle is still valid (not invalidated by a simulated crash).
protocol TestHandleOwner: AnyObject, Sendable {
    func read(_ handle: TestFileHandle<Self>, at offset: UInt64, count: Int) throws(StoreError) -> [UInt8]
    func write(_ handle: TestFileHandle<Self>, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError)
    func sync(_ handle: TestFileHandle<Self>) throws(StoreError)
    func size(_ handle: TestFileHandle<Self>) throws(StoreError) -> UInt64
    func truncate(_ handle: TestFileHandle<Self>, to size: UInt64) throws(StoreError)
    func tryLock(_ handle: TestFileHandle<Self>, exclusive: Bool) throws(StoreError) -> Bool
    func close(_ handle: TestFileHandle<Self>) throws(StoreError)
}

/// A handle on a test file system's file: an index into its handle table, stamped with the
/// crash generation it was opened in. The in-memory and simulated file systems share it.
final class TestFileHandle<Owner: TestHandleOwner>: FileHandle {
    let path: String
    let id: Int
    let generation: Int
    let writable: Bool
    let fileSystem: Owner
    private let closed = Atomic<Bool>(false)

    init(fileSystem: Owner, id: Int, generation: Int, path: String, writable: Bool) {
        self.fileSystem = fileSystem
        self.id = id
        self.generation = generation
        self.path = path
        self.writable = writable
    }

    /// A handle dropped without a close is closed, as the POSIX handle's deinit does.
    deinit {
        if !closed.load(ordering: .acquiring) { _ = try? fileSystem.close(self) }
    }

    func read(at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        checkOpen()
        precondition(count >= 0, "negative read count")
        return try fileSystem.read(self, at: offset, count: count)
    }

    func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        checkOpen()
        try fileSystem.write(self, bytes, at: offset)
    }

    func sync(_ kind: SyncKind) throws(StoreError) {
        checkOpen()
        try fileSystem.sync(self)
    }

    func size() throws(StoreError) -> UInt64 {
        checkOpen()
        return try fileSystem.size(self)
    }

    func truncate(to size: UInt64) throws(StoreError) {
        checkOpen()
        try fileSystem.truncate(self, to: size)
    }

    func tryLock(exclusive: Bool) throws(StoreError) -> Bool {
        checkOpen()
        return try fileSystem.tryLock(self, exclusive: exclusive)
    }

    func close() throws(StoreError) {
        let (exchanged, _) = closed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
        precondition(exchanged, "file handle closed twice: \(path)")
        try fileSystem.close(self)
    }

    private func checkOpen() {
        precondition(!closed.load(ordering: .acquiring), "use of a closed file handle: \(path)")
    }
}
