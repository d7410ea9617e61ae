#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
package import AggregateStoreEngine
import Synchronization

/// One mutation not yet made durable, in issue order (see ``SimulatedFileSystem``).
///
/// Paths are normalised (absolute, no `.`, `..`, repeated or trailing slashes). A write or
/// truncate names the path its handle was opened with; the inode is what the mutation
/// really applies to.
package enum SimulatedMutation: Sendable, Equatable {
    /// A `pwrite` of `bytes` at `offset`.
    case write(path: String, inode: Int, offset: UInt64, bytes: [UInt8])
    /// An `ftruncate` to `size`.
    case truncate(path: String, inode: Int, size: UInt64)
    /// A new file's directory entry (an `open` that created the file).
    case create(directory: String, name: String, inode: Int)
    /// A `rename`; pending in both directories when they differ.
    case rename(fromDirectory: String, fromName: String, toDirectory: String, toName: String, inode: Int)
    /// An `unlink`.
    case remove(directory: String, name: String, inode: Int)
    /// `createDirectory`'s entry in its parent.
    case makeDirectory(parent: String, name: String)

    /// Whether this is a write, the only kind the data fates (tear, zeros, garble) act on.
    package var isWrite: Bool {
        if case .write = self { return true }
        return false
    }

    /// Whether this is a directory operation (create, rename, remove, makeDirectory).
    package var isDirectoryOperation: Bool {
        switch self {
        case .write, .truncate: false
        case .create, .rename, .remove, .makeDirectory: true
        }
    }
}

/// What a crash does with one pending mutation (see ``SimulatedFileSystem/crash(_:)``).
///
/// The data fates `tear`, `zeros` and `garble` apply to writes only; given to any other
/// mutation they count as `apply`.
package enum CrashFate: Sendable, Hashable {
    /// Persisted whole.
    case apply
    /// Lost.
    case drop
    /// The write is cut at sector boundaries of the file (offset multiples of `sectorSize`):
    /// sector `i` of the sectors the write touches is persisted iff `keptSectors[i]` (missing
    /// elements count as false, extra ones are ignored). A write that extends the file extends
    /// it only as far as the end of its last kept piece; a gap before it reads as zeros.
    case tear(sectorSize: Int, keptSectors: [Bool])
    /// The file's size covers the write but the write's range reads as zeros (metadata
    /// persisted, data not). Also for a write inside the file: its range becomes zeros.
    case zeros
    /// The write's range holds garbage: the first bytes of `SplitMix64(seed:)`; the size covers it.
    case garble(seed: UInt64)
}

/// An in-memory ``FileSystem`` with a weak persistence model and crash injection: the `SimIO`
/// of `crash-testing.md`. Deterministic and thread-safe (one lock).
///
/// ## Persistence model
///
/// **Files are inodes.** Each has *volatile* bytes (what reads see now) and *durable* bytes
/// (what survives a power loss if nothing pending survives). Every write and truncate changes
/// the volatile bytes at once and is also queued as a *pending mutation* of its inode.
/// ``FileHandle/sync(_:)`` (`.data` and `.full` alike) applies the inode's pending writes and
/// truncates, in order, to its durable bytes and removes them from the pending list. A file
/// sync never makes the file's directory entry durable.
///
/// **Directories** have volatile and durable entries (name → file or subdirectory inode).
/// Creating a file (``open(_:mode:)`` with `.createNew` or `.createIfMissing`, when it
/// creates), ``createDirectory(_:)``, ``rename(_:to:)`` and ``removeFile(_:)`` change the
/// volatile entries at once and are queued as pending operations of the directory they
/// change. ``syncDirectory(_:)`` makes that directory's pending operations durable, in order.
/// A rename between two directories is pending in both and becomes durable only once *both*
/// have been synced since it was issued (until then a crash may still lose it whole).
///
/// **A crash** (``crash(_:)``) starts from the durable state and applies every pending
/// mutation, in issue order, with the fate chosen for it (apply, drop, tear, zeros, garble).
/// Because each mutation gets an independent fate, writes to different files are unordered,
/// directory operations are unordered unless their directory was synced, and a file's data
/// and its name are independent. A directory operation whose precondition fails in the
/// durable state at that moment is skipped:
/// - create and makeDirectory need the name to be absent;
/// - rename needs the source name to be present (whatever inode it names); it removes that
///   name and points the destination name at the rename's inode, replacing any entry there;
/// - remove needs the name to be present and removes it.
///
/// Identity is the inode's, not the name's: an inode keeps its durable bytes even if its
/// creation was dropped and a kept rename links it again. After the mutations, everything not
/// reachable from `/` through durable entries is gone, the volatile state becomes the durable
/// one, the pending list is empty, open handles are invalidated (their later use throws
/// ``StoreError/Code/io``) and all locks are released. ``processCrash()`` is the mild case:
/// handles and locks go, nothing else changes (the page cache survives).
///
/// Operations are atomic: a process crash or power loss falls between two operations, never
/// inside a `pwrite` (a torn write is a fate at power loss, not a half-done volatile write).
/// There is no fault injection here (wrap it in `FaultInjectingFileSystem` for `EIO`/`ENOSPC`)
/// and ``freeSpace(at:)`` reports a constant.
///
/// Locks follow `flock(2)`: they belong to a handle, so two handles on one file conflict even
/// in one process. Paths are absolute or relative to `/`, resolved textually. Errors are
/// ``StoreError``s carrying the `errno` the real call would give (`ENOENT` is
/// ``StoreError/Code/notFound``, `EEXIST` ``StoreError/Code/duplicate``).
package final class SimulatedFileSystem: FileSystem, TestHandleOwner, Sendable {
    /// What ``freeSpace(at:)`` reports: 1 TiB.
    package static let reportedFreeSpace: UInt64 = 1 << 40

    let state: Mutex<SimulatedState>
    private let hook = Mutex<(@Sendable (String, String) -> Void)?>(nil)

    /// Creates a file system holding only the root directory `/`, durably.
    package init() {
        state = Mutex(SimulatedState())
    }

    private init(state: SimulatedState) {
        self.state = Mutex(state)
    }

    /// A deep copy of the whole state (volatile, durable, pending, operation count), with no
    /// open handles and no ``onOperation`` hook; used to crash one recorded point in many ways.
    package func copy() -> SimulatedFileSystem {
        let snapshot = state.withLock { state in
            var copy = state
            copy.handles = [:]
            copy.collectGarbage()
            return copy
        }
        return SimulatedFileSystem(state: snapshot)
    }

    /// Called after every successful operation that mutates state or syncs, with the
    /// operation's name and the path it was given: `write`, `truncate` and `sync` (the handle's
    /// path), `syncDirectory`, `create` (an open that created the file), `createDirectory`,
    /// `rename` (the source path) and `removeFile`. It runs outside the file system's lock, so
    /// it may call ``copy()``; with several threads issuing operations, such a copy may already
    /// hold operations issued after the one reported. Set it before use.
    package var onOperation: (@Sendable (String, String) -> Void)? {
        get { hook.withLock { $0 } }
        set { hook.withLock { $0 = newValue } }
    }

    private func notify(_ operation: String, _ path: String) {
        if let body = hook.withLock({ $0 }) { body(operation, path) }
    }

    // MARK: FileSystem

    package func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any FileHandle {
        let (id, generation, created) = try state.withLock { state throws(StoreError) in
            let (node, created) = try state.openNode(path, mode: mode)
            let id = state.nextHandle
            state.nextHandle += 1
            state.handles[id] = SimulatedState.OpenFile(node: node, lock: nil)
            if created { state.operationCount += 1 }
            return (id, state.generation, created)
        }
        let handle = SimulatedFileHandle(
            fileSystem: self, id: id, generation: generation, path: path, writable: mode != .readOnly)
        if created { notify("create", path) }
        return handle
    }

    package func createDirectory(_ path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            try state.makeDirectory(path)
            state.operationCount += 1
        }
        notify("createDirectory", path)
    }

    package func syncDirectory(_ path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            let node = try state.directory(at: path, call: "open")
            state.syncDirectory(node)
            state.operationCount += 1
        }
        notify("syncDirectory", path)
    }

    package func rename(_ source: String, to destination: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            do throws(StoreError) {
                try state.rename(source, to: destination)
            } catch {
                var error = error
                error.message += " (renaming to \(destination))"
                throw error
            }
            state.operationCount += 1
        }
        notify("rename", source)
    }

    package func removeFile(_ path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            try state.removeFile(path)
            state.operationCount += 1
        }
        notify("removeFile", path)
    }

    package func listDirectory(_ path: String) throws(StoreError) -> [String] {
        try state.withLock { state throws(StoreError) in
            let node = try state.directory(at: path, call: "opendir")
            return state.directories[node]!.volatile.keys.sorted()
        }
    }

    package func kind(of path: String) throws(StoreError) -> FileKind {
        try state.withLock { state throws(StoreError) in
            guard let node = state.node(at: try SimulatedState.components(path, call: "stat")) else { return .missing }
            return state.directories[node] != nil ? .directory : .file
        }
    }

    package func freeSpace(at path: String) throws(StoreError) -> UInt64 {
        try state.withLock { state throws(StoreError) in
            guard state.node(at: try SimulatedState.components(path, call: "statvfs")) != nil else {
                throw StoreError.pathSyscall("statvfs", path: path, errno: ENOENT)
            }
            return Self.reportedFreeSpace
        }
    }

    // MARK: Crashes

    /// Pending (unsynced) mutations, in issue order across all files and directories.
    package var pendingMutations: [SimulatedMutation] {
        state.withLock { $0.pending.map(\.mutation) }
    }

    /// Power loss: pending mutation `i` meets `fate(i, mutation)`; the durable state after
    /// applying the chosen fates in issue order becomes the new state (see the type's
    /// documentation). Pending is cleared, handles are invalidated, locks are released.
    ///
    /// `fate` runs under the file system's lock, so the crash is atomic with respect to
    /// concurrent operations; it must not call back into this file system.
    package func crash(_ fate: (Int, SimulatedMutation) -> CrashFate) {
        state.withLock { state in
            let fates = state.pending.enumerated().map { fate($0.offset, $0.element.mutation) }
            state.crash(fates: fates)
        }
    }

    /// Power loss with fates drawn from `SplitMix64(seed:)`, one mutation after another in issue
    /// order: a write is applied, dropped, torn (sector size 512 or 4096, each touched sector
    /// kept with odds 1/2), zero-filled or garbled with the weights of `rates`; a directory
    /// operation is kept with probability `rates.keepDirectoryOperation` and a truncate with
    /// `rates.keepTruncate`. The same seed and pending list give the same result.
    package func crash(seed: UInt64, rates: CrashRates = CrashRates()) {
        var generator = SplitMix64(seed: seed)
        crash { _, mutation in rates.fate(for: mutation, using: &generator) }
    }

    /// Process crash only (the page cache survives): handles are invalidated and locks
    /// released; nothing is lost and nothing becomes durable.
    package func processCrash() {
        state.withLock { state in
            state.generation += 1
            state.handles = [:]
            state.collectGarbage()
        }
    }

    /// The odds ``crash(seed:rates:)`` draws fates with. The five write weights need not add
    /// up to 1; they are relative to their sum.
    package struct CrashRates: Sendable, Hashable {
        package var apply = 0.4
        package var drop = 0.3
        package var tear = 0.15
        package var zeros = 0.05
        package var garble = 0.1
        /// The probability that a create, rename, remove or makeDirectory survives.
        package var keepDirectoryOperation = 0.5
        /// The probability that a truncate survives.
        package var keepTruncate = 0.5

        package init(apply: Double = 0.4, drop: Double = 0.3, tear: Double = 0.15, zeros: Double = 0.05,
                     garble: Double = 0.1, keepDirectoryOperation: Double = 0.5, keepTruncate: Double = 0.5) {
            self.apply = apply
            self.drop = drop
            self.tear = tear
            self.zeros = zeros
            self.garble = garble
            self.keepDirectoryOperation = keepDirectoryOperation
            self.keepTruncate = keepTruncate
        }

        /// Draws the fate of one mutation.
        package func fate(for mutation: SimulatedMutation, using generator: inout SplitMix64) -> CrashFate {
            switch mutation {
            case let .write(_, _, offset, bytes):
                let total = apply + drop + tear + zeros + garble
                precondition(total > 0, "CrashRates: the write weights add up to nothing")
                var draw = Self.unit(&generator) * total
                if draw < apply { return .apply }
                draw -= apply
                if draw < drop { return .drop }
                draw -= drop
                if draw < tear {
                    let sectorSize = generator.next() & 1 == 0 ? 512 : 4096
                    let count = SimulatedState.touchedSectors(offset: Int(offset), count: bytes.count, sectorSize: sectorSize)
                    return .tear(sectorSize: sectorSize, keptSectors: (0..<count).map { _ in generator.next() & 1 == 1 })
                }
                draw -= tear
                if draw < zeros { return .zeros }
                return .garble(seed: generator.next())
            case .truncate:
                return Self.unit(&generator) < keepTruncate ? .apply : .drop
            case .create, .rename, .remove, .makeDirectory:
                return Self.unit(&generator) < keepDirectoryOperation ? .apply : .drop
            }
        }

        /// A uniform double in [0, 1).
        private static func unit(_ generator: inout SplitMix64) -> Double {
            Double(generator.next() >> 11) * 0x1p-53
        }
    }

    // MARK: Inspection

    /// How many operations that mutate state or sync have succeeded (those ``onOperation``
    /// reports); carried over by ``copy()``.
    package var operationCount: Int {
        state.withLock { $0.operationCount }
    }

    /// How many handles are open (not closed, not invalidated by a crash): a leak check.
    package var openHandleCount: Int {
        state.withLock { $0.handles.count }
    }

    /// The bytes reads see in the file at `path`; nil if there is no file there.
    package func bytes(of path: String) -> [UInt8]? {
        state.withLock { state in state.fileNode(at: path).map { state.files[$0]!.volatile } }
    }

    /// The files that would survive a crash that drops every pending mutation, by normalised
    /// absolute path, with their durable bytes: those reachable from `/` through durable
    /// entries. Right after a crash this is the whole state. Directories are not listed.
    package func snapshotDurable() -> [String: [UInt8]] {
        state.withLock { state in
            var result: [String: [UInt8]] = [:]
            var entered: Set<Int> = [SimulatedState.root]
            var queue: [(String, Int)] = [("", SimulatedState.root)]
            while let (path, node) = queue.popLast() {
                for (name, child) in state.directories[node]!.durable {
                    let childPath = path + "/" + name
                    if let file = state.files[child] {
                        result[childPath] = file.durable
                    } else if entered.insert(child).inserted {
                        queue.append((childPath, child))
                    }
                }
            }
            return result
        }
    }

    /// The inode of the file or directory at `path`, as ``SimulatedMutation`` names it; nil if
    /// there is nothing there.
    package func inode(of path: String) -> Int? {
        state.withLock { state in (try? SimulatedState.components(path, call: "stat")).flatMap { state.node(at: $0) } }
    }

    /// The durable bytes of the file at `path` (as of its syncs, whether or not its name is
    /// durable); nil if there is no file there.
    package func durableBytes(of path: String) -> [UInt8]? {
        state.withLock { state in state.fileNode(at: path).map { state.files[$0]!.durable } }
    }

    /// The sorted entry names of the directory at `path`, as reads see them or, with
    /// `durable`, its durable entries; nil if `path` names no directory.
    package func fileNames(in path: String, durable: Bool = false) -> [String]? {
        state.withLock { state in
            guard let components = try? SimulatedState.components(path, call: "stat"),
                let node = state.node(at: components), let directory = state.directories[node]
            else { return nil }
            return (durable ? directory.durable : directory.volatile).keys.sorted()
        }
    }

    /// Replaces both the volatile and the durable bytes of the file at `path` (damage at rest,
    /// or a cut tail); the file's pending writes and truncates are discarded.
    package func setBytes(_ bytes: [UInt8], of path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            guard let node = state.fileNode(at: path) else {
                throw StoreError.pathSyscall("open", path: path, errno: ENOENT)
            }
            state.files[node] = SimulatedState.FileNode(volatile: bytes, durable: bytes)
            state.pending.removeAll { $0.operation.dataNode == node }
        }
    }

    // MARK: Handle operations

    /// Runs `body` with the inode of an open handle, failing if a crash invalidated the handle.
    fileprivate func withOpenFile<Result: Sendable>(
        _ handle: SimulatedFileHandle,
        _ body: (inout SimulatedState, Int) throws(StoreError) -> Result
    ) throws(StoreError) -> Result {
        try state.withLock { state throws(StoreError) in
            guard handle.generation == state.generation, let open = state.handles[handle.id] else {
                throw StoreError(.io, "handle invalidated by crash", path: handle.path, errno: EIO)
            }
            return try body(&state, open.node)
        }
    }

    func write(_ handle: SimulatedFileHandle, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        try withOpenFile(handle) { state, node throws(StoreError) in
            guard handle.writable else { throw StoreError.syscall("pwrite", path: handle.path, errno: EBADF) }
            guard let start = Int(exactly: offset), start <= Int.max - bytes.count else {
                throw StoreError(.invalidArgument, "file offset out of range", path: handle.path, offset: offset)
            }
            state.write(Array(bytes), at: start, node: node, path: handle.path)
            state.operationCount += 1
        }
        notify("write", handle.path)
    }

    func truncate(_ handle: SimulatedFileHandle, to size: UInt64) throws(StoreError) {
        try withOpenFile(handle) { state, node throws(StoreError) in
            guard handle.writable else { throw StoreError.syscall("ftruncate", path: handle.path, errno: EINVAL) }
            guard let newSize = Int(exactly: size) else {
                throw StoreError(.invalidArgument, "file size out of range", path: handle.path, offset: size)
            }
            state.truncate(node, to: newSize, path: handle.path)
            state.operationCount += 1
        }
        notify("truncate", handle.path)
    }

    func sync(_ handle: SimulatedFileHandle) throws(StoreError) {
        try withOpenFile(handle) { state, node in
            state.syncFile(node)
            state.operationCount += 1
        }
        notify("sync", handle.path)
    }

    func tryLock(_ handle: SimulatedFileHandle, exclusive: Bool) throws(StoreError) -> Bool {
        try withOpenFile(handle) { state, node in
            let conflict = state.handles.contains { id, other in
                id != handle.id && other.node == node && other.lock.map { exclusive || $0 == .exclusive } == true
            }
            if conflict { return false }
            // Like flock, a handle converts its own lock rather than conflicting with it.
            state.handles[handle.id]!.lock = exclusive ? .exclusive : .shared
            return true
        }
    }

    func read(_ handle: SimulatedFileHandle, at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        try withOpenFile(handle) { state, node in
            let content = state.files[node]!.volatile
            guard offset < UInt64(content.count) else { return [] }
            let start = Int(offset)
            return Array(content[start..<(start + min(count, content.count - start))])
        }
    }

    func size(_ handle: SimulatedFileHandle) throws(StoreError) -> UInt64 {
        try withOpenFile(handle) { state, node in UInt64(state.files[node]!.volatile.count) }
    }

    /// Forgets a handle; throws if a crash invalidated it first.
    func close(_ handle: SimulatedFileHandle) throws(StoreError) {
        try withOpenFile(handle) { state, _ in
            state.handles[handle.id] = nil
            state.collectGarbage()
        }
    }
}

/// A handle on a ``SimulatedFileSystem`` file.
typealias SimulatedFileHandle = TestFileHandle<SimulatedFileSystem>
