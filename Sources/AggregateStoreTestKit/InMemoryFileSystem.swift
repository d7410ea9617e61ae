#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
package import AggregateStoreEngine
import Synchronization

/// An in-memory ``FileSystem`` that remembers what was synced, so tests can simulate power
/// loss (LevelDB's `helpers/memenv` plus `fault_injection_test`).
///
/// ## Persistence model
///
/// The namespace is a tree of inodes. Each file inode has two contents:
/// - **volatile** bytes, what reads see: every write and truncate changes only these;
/// - **durable** bytes, the volatile bytes as of the file's last successful
///   ``FileHandle/sync(_:)`` (`.data` and `.full` are the same here).
///
/// Each directory inode likewise has **volatile** entries (name → inode), changed by creating,
/// renaming and removing, and **durable** entries, copied from the volatile ones by
/// ``syncDirectory(_:)``. Syncing a file never makes its name durable and syncing a directory
/// never makes file contents durable: that is the strictest POSIX reading, and the one a
/// storage engine must survive.
///
/// ``crash()`` models power loss: every directory reachable from `/` through durable entries
/// gets its durable entries back as volatile ones, every reachable file gets its durable bytes
/// back, and everything else is gone: a file whose name was never made durable disappears,
/// even if its bytes were synced; a rename or removal not followed by a directory sync is
/// undone. Handles open at the crash are invalidated and all locks are released.
///
/// Locks follow `flock(2)`: they belong to an open handle (an open file description), so two
/// handles on one file conflict even in one process, and closing a handle releases its lock.
///
/// With a ``capacity``, the volatile bytes of all live files may not exceed it: a write or an
/// extending truncate that would pass it fails with `ENOSPC` (``StoreError/Code/noSpace``)
/// and changes nothing. Files are never sparse, so a write past the end counts the gap.
///
/// Paths are absolute or relative to `/`; empty components, `.` and `..` are resolved
/// textually and trailing slashes ignored. Every operation is serialised by one lock.
package final class InMemoryFileSystem: FileSystem, TestHandleOwner, Sendable {
    /// What ``freeSpace(at:)`` reports when neither a free space nor a capacity is set: 1 TiB.
    package static let defaultFreeSpace: UInt64 = 1 << 40

    private let state: Mutex<State>

    /// Creates a file system holding only the root directory `/`, durably.
    /// - Parameters:
    ///   - capacity: The most bytes all files together may hold; nil for no limit.
    ///   - freeSpace: What ``freeSpace(at:)`` reports; nil to derive it from `capacity`.
    package init(capacity: UInt64? = nil, freeSpace: UInt64? = nil) {
        var state = State()
        state.capacity = capacity
        state.reportedFreeSpace = freeSpace
        self.state = Mutex(state)
    }

    /// The most bytes all files together may hold; nil for no limit. Lowering it below what is
    /// stored only makes further growth fail.
    package var capacity: UInt64? {
        get { state.withLock { $0.capacity } }
        set { state.withLock { $0.capacity = newValue } }
    }

    /// What ``freeSpace(at:)`` reports; nil to derive it from ``capacity`` (or report
    /// ``defaultFreeSpace``). Setting it does not limit writes.
    package var reportedFreeSpace: UInt64? {
        get { state.withLock { $0.reportedFreeSpace } }
        set { state.withLock { $0.reportedFreeSpace = newValue } }
    }

    // MARK: FileSystem

    package func open(_ path: String, mode: FileOpenMode) throws(StoreError) -> any FileHandle {
        let (id, generation) = try state.withLock { state throws(StoreError) in
            let node = try state.openNode(path, mode: mode)
            let id = state.nextHandle
            state.nextHandle += 1
            state.handles[id] = OpenFile(node: node, lock: nil)
            return (id, state.generation)
        }
        return InMemoryFileHandle(
            fileSystem: self, id: id, generation: generation, path: path, writable: mode != .readOnly)
    }

    package func createDirectory(_ path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            let components = try State.components(path, call: "mkdir")
            guard let name = components.last else { throw StoreError.pathSyscall("mkdir", path: path, errno: EEXIST) }
            let parent = try state.parentDirectory(of: components, call: "mkdir", path: path)
            guard state.directories[parent]!.volatile[name] == nil else {
                throw StoreError.pathSyscall("mkdir", path: path, errno: EEXIST)
            }
            let node = state.newNode()
            state.directories[node] = DirectoryNode()
            state.directories[parent]!.volatile[name] = node
        }
    }

    package func syncDirectory(_ path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            let node = try state.directory(at: path, call: "open")
            let unlinked = Set(state.directories[node]!.durable.values)
                .subtracting(state.directories[node]!.volatile.values)
            state.directories[node]!.durable = state.directories[node]!.volatile
            // A removal just became durable: free the inode unless something else still names it.
            for child in unlinked { state.collect(child) }
        }
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
        }
    }

    package func removeFile(_ path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            let components = try State.components(path, call: "unlink")
            guard let name = components.last else { throw StoreError.pathSyscall("unlink", path: path, errno: EISDIR) }
            let parent = try state.parentDirectory(of: components, call: "unlink", path: path)
            guard let node = state.directories[parent]!.volatile[name] else {
                throw StoreError.pathSyscall("unlink", path: path, errno: ENOENT)
            }
            guard state.files[node] != nil else { throw StoreError.pathSyscall("unlink", path: path, errno: EISDIR) }
            state.directories[parent]!.volatile[name] = nil
            state.collect(node)
        }
    }

    package func listDirectory(_ path: String) throws(StoreError) -> [String] {
        try state.withLock { state throws(StoreError) in
            let node = try state.directory(at: path, call: "opendir")
            return state.directories[node]!.volatile.keys.sorted()
        }
    }

    package func kind(of path: String) throws(StoreError) -> FileKind {
        try state.withLock { state throws(StoreError) in
            guard let node = state.node(at: try State.components(path, call: "stat")) else { return .missing }
            return state.directories[node] != nil ? .directory : .file
        }
    }

    package func freeSpace(at path: String) throws(StoreError) -> UInt64 {
        try state.withLock { state throws(StoreError) in
            guard state.node(at: try State.components(path, call: "statvfs")) != nil else {
                throw StoreError.pathSyscall("statvfs", path: path, errno: ENOENT)
            }
            if let reported = state.reportedFreeSpace { return reported }
            guard let capacity = state.capacity else { return Self.defaultFreeSpace }
            return capacity > state.usedBytes ? capacity - state.usedBytes : 0
        }
    }

    // MARK: Crash simulation and inspection

    /// Simulates power loss: only what was synced survives (see the type's documentation).
    /// Handles opened before the crash throw on every later operation; all locks are released.
    package func crash() {
        state.withLock { $0.crash() }
    }

    /// A copy of the whole state, volatile and durable, without open handles or locks: one
    /// recorded point can then be crashed or failed in many ways.
    package func copy() -> InMemoryFileSystem {
        let copy = InMemoryFileSystem()
        let snapshot = state.withLock { state -> State in
            var snapshot = state
            snapshot.handles = [:]
            return snapshot
        }
        copy.state.withLock { $0 = snapshot }
        return copy
    }

    /// The files that would survive a crash now, by absolute path, with their durable bytes.
    /// Directories are not listed; ``crash()`` followed by ``kind(of:)`` tells about them.
    package func snapshotDurable() -> [String: [UInt8]] {
        state.withLock { state in
            var result: [String: [UInt8]] = [:]
            state.walkDurable { path, node in
                if let file = state.files[node] { result[path] = file.durable }
            }
            return result
        }
    }

    /// The sorted entry names of a directory, as reads see them or, with `durable`, as a crash
    /// would leave them; nil if `path` names no directory.
    package func fileNames(in path: String, durable: Bool = false) -> [String]? {
        state.withLock { state in
            guard let components = try? State.components(path, call: "stat"),
                let node = state.node(at: components), let directory = state.directories[node]
            else { return nil }
            return (durable ? directory.durable : directory.volatile).keys.sorted()
        }
    }

    /// The bytes reads see in the file at `path`; nil if there is no file there.
    package func bytes(of path: String) -> [UInt8]? {
        state.withLock { state in state.fileNode(at: path).map { state.files[$0]!.volatile } }
    }

    /// The bytes of the file at `path` as of its last sync (whether or not its name is durable);
    /// nil if there is no file there.
    package func durableBytes(of path: String) -> [UInt8]? {
        state.withLock { state in state.fileNode(at: path).map { state.files[$0]!.durable } }
    }

    /// Overwrites bytes of the file at `path` in both its volatile and durable contents,
    /// simulating damage at rest; either content shorter than `offset + bytes.count` is first
    /// extended with zeros. Ignores the capacity.
    package func corrupt(path: String, at offset: UInt64, with bytes: [UInt8]) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            guard let node = state.fileNode(at: path) else {
                throw StoreError.pathSyscall("open", path: path, errno: ENOENT)
            }
            guard let start = Int(exactly: offset), start <= Int.max - bytes.count else {
                throw StoreError(.invalidArgument, "offset out of range", path: path, offset: offset)
            }
            let oldSize = state.files[node]!.volatile.count
            // Both copies change alike, so where they agree is unchanged.
            FileNode.overwrite(&state.files[node]!.volatile, at: start, with: bytes)
            FileNode.overwrite(&state.files[node]!.durable, at: start, with: bytes)
            state.usedBytes += UInt64(state.files[node]!.volatile.count - oldSize)
        }
    }

    /// Replaces both the volatile and the durable contents of the file at `path`, for example to
    /// cut a torn tail at rest. Ignores the capacity.
    package func setBytes(_ bytes: [UInt8], of path: String) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            guard let node = state.fileNode(at: path) else {
                throw StoreError.pathSyscall("open", path: path, errno: ENOENT)
            }
            state.usedBytes = state.usedBytes - UInt64(state.files[node]!.volatile.count) + UInt64(bytes.count)
            state.files[node] = FileNode(volatile: bytes, durable: bytes, changedFrom: nil)
        }
    }

    /// How many handles are open (not closed, not invalidated by a crash): a leak check.
    package var openHandleCount: Int {
        state.withLock { $0.handles.count }
    }

    /// The bytes all live files hold, as counted against ``capacity``.
    package var usedBytes: UInt64 {
        state.withLock { $0.usedBytes }
    }

    // MARK: Handle operations

    /// Runs `body` on the state with the inode of an open handle, failing if a crash
    /// invalidated the handle.
    fileprivate func withOpenFile<Result: Sendable>(
        _ handle: InMemoryFileHandle,
        _ body: (inout State, NodeID) throws(StoreError) -> Result
    ) throws(StoreError) -> Result {
        try state.withLock { state throws(StoreError) in
            guard handle.generation == state.generation, let open = state.handles[handle.id] else {
                throw StoreError(.io, "handle invalidated by crash", path: handle.path)
            }
            return try body(&state, open.node)
        }
    }

    func write(_ handle: InMemoryFileHandle, _ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(StoreError) {
        try withOpenFile(handle) { state, node throws(StoreError) in
            guard handle.writable else { throw StoreError.syscall("pwrite", path: handle.path, errno: EBADF) }
            guard let start = Int(exactly: offset), start <= Int.max - bytes.count else {
                throw StoreError(.invalidArgument, "file offset out of range", path: handle.path, offset: offset)
            }
            let oldSize = state.files[node]!.volatile.count
            try state.reserve(growingFrom: oldSize, to: start + bytes.count, call: "pwrite", path: handle.path)
            state.files[node]!.write(bytes, at: start)
        }
    }

    func truncate(_ handle: InMemoryFileHandle, to size: UInt64) throws(StoreError) {
        try withOpenFile(handle) { state, node throws(StoreError) in
            guard handle.writable else { throw StoreError.syscall("ftruncate", path: handle.path, errno: EINVAL) }
            guard let newSize = Int(exactly: size) else {
                throw StoreError(.invalidArgument, "file size out of range", path: handle.path, offset: size)
            }
            let oldSize = state.files[node]!.volatile.count
            if newSize > oldSize {
                try state.reserve(growingFrom: oldSize, to: newSize, call: "ftruncate", path: handle.path)
            } else {
                state.usedBytes -= UInt64(oldSize - newSize)
            }
            state.files[node]!.truncate(to: newSize)
        }
    }

    func tryLock(_ handle: InMemoryFileHandle, exclusive: Bool) throws(StoreError) -> Bool {
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

    func read(_ handle: InMemoryFileHandle, at offset: UInt64, count: Int) throws(StoreError) -> [UInt8] {
        try withOpenFile(handle) { state, node in
            let content = state.files[node]!.volatile
            guard offset < UInt64(content.count) else { return [] }
            let start = Int(offset)
            return Array(content[start..<(start + min(count, content.count - start))])
        }
    }

    func size(_ handle: InMemoryFileHandle) throws(StoreError) -> UInt64 {
        try withOpenFile(handle) { state, node in UInt64(state.files[node]!.volatile.count) }
    }

    func sync(_ handle: InMemoryFileHandle) throws(StoreError) {
        try withOpenFile(handle) { state, node in
            state.files[node]!.sync()
        }
    }

    /// Forgets a handle; throws if a crash invalidated it first.
    func close(_ handle: InMemoryFileHandle) throws(StoreError) {
        try withOpenFile(handle) { state, node in
            state.handles[handle.id] = nil
            state.collect(node)
        }
    }
}

/// A handle on an ``InMemoryFileSystem`` file.
typealias InMemoryFileHandle = TestFileHandle<InMemoryFileSystem>

extension TestFileHandle where Owner == InMemoryFileSystem {
    /// Models a failed fsync on Linux: the file's unsynced pages are marked clean without being
    /// written, so they stay readable but no later sync writes them (until rewritten).
    func simulateFailedSync() {
        _ = try? fileSystem.withOpenFile(self) { state, node in
            state.files[node]!.failSync()
        }
    }
}

// MARK: - State

extension InMemoryFileSystem {
    /// Identifies an inode; the root directory is 0.
    fileprivate typealias NodeID = Int

    /// A file inode: what reads see, and what survives a crash.
    fileprivate struct FileNode: Sendable {
        var volatile: [UInt8] = []
        var durable: [UInt8] = []
        /// Where `volatile` may first differ from `durable` (nil: nowhere); `durable` is at least
        /// this long. Syncing copies only from here, so an appended log does not copy its whole
        /// content on every sync, and the two arrays never share storage that a write would copy.
        var changedFrom: Int?
        /// Ranges a failed sync marked clean without writing them (fsyncgate): reads still see
        /// their new bytes, but later syncs keep these older durable bytes there until the range
        /// is written again.
        var stuck: [(range: Range<Int>, bytes: [UInt8])] = []

        /// Writes at `start`, zero-filling any gap after the end.
        mutating func write(_ bytes: some Collection<UInt8>, at start: Int) {
            changedFrom = min(changedFrom ?? .max, start, volatile.count)
            Self.overwrite(&volatile, at: start, with: bytes)
            if !stuck.isEmpty { unstick(start..<start + bytes.count) }
        }

        /// A sync that failed: what it should have written is dropped from writeback, and the
        /// durable bytes of those positions (zeros past the old end) are what later syncs keep.
        mutating func failSync() {
            guard let start = changedFrom, start < volatile.count else { return }
            let range = start..<volatile.count
            let old = range.map { $0 < durable.count ? durable[$0] : 0 }
            unstick(range)
            stuck.append((range, old))
        }

        /// Forgets the stuck marks of positions that were written again.
        private mutating func unstick(_ written: Range<Int>) {
            stuck = stuck.flatMap { entry -> [(range: Range<Int>, bytes: [UInt8])] in
                guard entry.range.overlaps(written) else { return [entry] }
                var pieces: [(range: Range<Int>, bytes: [UInt8])] = []
                if entry.range.lowerBound < written.lowerBound {
                    let piece = entry.range.lowerBound..<written.lowerBound
                    pieces.append((piece, Array(entry.bytes[0..<piece.count])))
                }
                if written.upperBound < entry.range.upperBound {
                    let piece = written.upperBound..<entry.range.upperBound
                    let offset = piece.lowerBound - entry.range.lowerBound
                    pieces.append((piece, Array(entry.bytes[offset..<offset + piece.count])))
                }
                return pieces
            }
        }

        mutating func truncate(to size: Int) {
            changedFrom = min(changedFrom ?? .max, size, volatile.count)
            if size > volatile.count {
                volatile.append(contentsOf: repeatElement(0, count: size - volatile.count))
            } else {
                volatile.removeSubrange(size...)
            }
        }

        mutating func sync() {
            guard let start = changedFrom else { return }
            durable.removeSubrange(start...)
            durable.append(contentsOf: volatile[start...])
            changedFrom = nil
            for (range, bytes) in stuck where range.lowerBound < durable.count {
                let end = min(range.upperBound, durable.count)
                durable.replaceSubrange(range.lowerBound..<end, with: bytes[0..<(end - range.lowerBound)])
                changedFrom = min(changedFrom ?? .max, range.lowerBound)  // still differs from volatile
            }
        }

        /// What a crash leaves.
        mutating func revertToDurable() {
            volatile = durable
            changedFrom = nil
            stuck = []
        }

        static func overwrite(_ content: inout [UInt8], at start: Int, with bytes: some Collection<UInt8>) {
            let end = start + bytes.count
            if content.count < end { content.append(contentsOf: repeatElement(0, count: end - content.count)) }
            content.replaceSubrange(start..<end, with: bytes)
        }
    }

    /// A directory inode: its entries as seen, and as they survive a crash.
    fileprivate struct DirectoryNode: Sendable, TestDirectory {
        var volatile: [String: NodeID] = [:]
        var durable: [String: NodeID] = [:]
    }

    /// An entry of the handle table: which inode, and the `flock` lock the handle holds.
    fileprivate struct OpenFile: Sendable {
        enum Lock: Sendable { case shared, exclusive }
        var node: NodeID
        var lock: Lock?
    }

    /// Everything an ``InMemoryFileSystem`` holds, behind its one lock.
    fileprivate struct State: Sendable, TestNamespace {

        var files: [NodeID: FileNode] = [:]
        var directories: [NodeID: DirectoryNode] = [root: DirectoryNode()]
        var nextNode: NodeID = 1
        var handles: [Int: OpenFile] = [:]
        var nextHandle = 0
        /// Bumped by each crash, so handles from before it can be told apart.
        var generation = 0
        /// The volatile bytes of all live files.
        var usedBytes: UInt64 = 0
        var capacity: UInt64?
        var reportedFreeSpace: UInt64?


        mutating func newNode() -> NodeID {
            defer { nextNode += 1 }
            return nextNode
        }





        /// Finds or creates the file inode `open` would give.
        mutating func openNode(_ path: String, mode: FileOpenMode) throws(StoreError) -> NodeID {
            let components = try Self.components(path, call: "open")
            guard let name = components.last else { throw StoreError.pathSyscall("open", path: path, errno: EISDIR) }
            let parent = try parentDirectory(of: components, call: "open", path: path)
            if let node = directories[parent]!.volatile[name] {
                // Reading a directory as a file is not supported, so opening one fails in any mode.
                guard files[node] != nil else { throw StoreError.pathSyscall("open", path: path, errno: EISDIR) }
                if mode == .createNew { throw StoreError.pathSyscall("open", path: path, errno: EEXIST) }
                return node
            }
            guard mode == .createNew || mode == .createIfMissing else {
                throw StoreError.pathSyscall("open", path: path, errno: ENOENT)
            }
            let node = newNode()
            files[node] = FileNode()
            directories[parent]!.volatile[name] = node
            return node
        }

        /// Moves a volatile directory entry with `rename(2)`'s checks.
        mutating func rename(_ source: String, to destination: String) throws(StoreError) {
            guard let plan = try planRename(source, to: destination) else { return }
            let (fromParent, fromName) = (plan.fromParent, plan.fromName)
            let (toParent, toName, node, replaced) = (plan.toParent, plan.toName, plan.node, plan.replaced)
            directories[fromParent]!.volatile[fromName] = nil
            directories[toParent]!.volatile[toName] = node
            if let replaced { collect(replaced) }
        }

        /// Checks the capacity before a file grows from `oldSize` to `newSize` bytes, and counts
        /// the growth; fails with `ENOSPC` having counted nothing.
        mutating func reserve(growingFrom oldSize: Int, to newSize: Int, call: String, path: String) throws(StoreError) {
            guard newSize > oldSize else { return }
            let growth = UInt64(newSize - oldSize)
            if let capacity, growth > capacity || usedBytes > capacity - growth {
                throw StoreError.syscall(call, path: path, errno: ENOSPC)
            }
            usedBytes += growth
        }

        /// Frees what nothing can reach any more, after `node` lost a name or a handle.
        ///
        /// Volatile content that no name or handle reaches is dead even if a durable entry still
        /// names the inode (a crash would replace it with the durable content anyway), so it stops
        /// counting against the capacity; the inode itself goes once no durable entry names it.
        mutating func collect(_ node: NodeID) {
            guard node != Self.root else { return }
            if handles.values.contains(where: { $0.node == node }) { return }
            if directories.values.contains(where: { $0.volatile.values.contains(node) }) { return }
            let durablyNamed = directories.values.contains { $0.durable.values.contains(node) }
            if var file = files[node] {
                usedBytes -= UInt64(file.volatile.count)
                file.volatile = []
                file.changedFrom = 0
                files[node] = durablyNamed ? file : nil
            } else if let directory = directories[node], !durablyNamed {
                directories[node] = nil
                for child in Set(directory.durable.values).union(directory.volatile.values) { collect(child) }
            }
        }

        /// Calls `body` with each path and inode reachable from the root through durable entries.
        /// A file can have two durable names (a rename made durable only at its destination);
        /// a directory is entered once, so a cycle of renamed directories cannot loop.
        func walkDurable(_ body: (String, NodeID) -> Void) {
            var entered: Set<NodeID> = [Self.root]
            var pending: [(String, NodeID)] = [("", Self.root)]
            while let (path, node) = pending.popLast() {
                for (name, child) in directories[node]!.durable {
                    let childPath = path + "/" + name
                    body(childPath, child)
                    if directories[child] != nil, entered.insert(child).inserted { pending.append((childPath, child)) }
                }
            }
        }

        /// Replaces the volatile state with the durable one and drops everything else.
        mutating func crash() {
            generation += 1
            handles = [:]
            var reachable: Set<NodeID> = [Self.root]
            walkDurable { _, node in reachable.insert(node) }
            files = files.filter { reachable.contains($0.key) }
            directories = directories.filter { reachable.contains($0.key) }
            usedBytes = 0
            for node in files.keys {
                files[node]!.revertToDurable()
                usedBytes += UInt64(files[node]!.durable.count)
            }
            for node in directories.keys {
                directories[node]!.volatile = directories[node]!.durable
            }
        }
    }
}
