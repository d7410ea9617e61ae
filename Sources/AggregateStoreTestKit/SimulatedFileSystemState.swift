#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AggregateStoreEngine

/// Everything a ``SimulatedFileSystem`` holds, behind its one lock. A value type, so a copy is
/// a deep copy (with copy-on-write storage).
struct SimulatedState: Sendable, TestNamespace {
    typealias NodeID = Int

    /// A file inode: what reads see, and what survives a crash if nothing pending does.
    struct FileNode: Sendable {
        var volatile: [UInt8] = []
        var durable: [UInt8] = []
    }

    /// A directory inode: its entries as seen, and as they survive a crash.
    struct DirectoryNode: Sendable, TestDirectory {
        var volatile: [String: NodeID] = [:]
        var durable: [String: NodeID] = [:]
    }

    /// An entry of the handle table: which inode, and the `flock` lock the handle holds.
    struct OpenFile: Sendable {
        enum Lock: Sendable { case shared, exclusive }
        var node: NodeID
        var lock: Lock?
    }

    /// A pending mutation by inode, as the crash applies it.
    enum Operation: Sendable {
        case write(node: NodeID, offset: Int, bytes: [UInt8])
        case truncate(node: NodeID, size: Int)
        /// A create or makeDirectory: `name` in `directory` comes to name `node`.
        case link(directory: NodeID, name: String, node: NodeID)
        case rename(fromDirectory: NodeID, fromName: String, toDirectory: NodeID, toName: String, node: NodeID)
        case remove(directory: NodeID, name: String, node: NodeID)

        /// The file inode of a write or truncate.
        var dataNode: NodeID? {
            switch self {
            case let .write(node, _, _), let .truncate(node, _): node
            case .link, .rename, .remove: nil
            }
        }

        /// Every inode the operation mentions.
        var nodes: [NodeID] {
            switch self {
            case let .write(node, _, _), let .truncate(node, _): [node]
            case let .link(directory, _, node), let .remove(directory, _, node): [directory, node]
            case let .rename(from, _, to, _, node): [from, to, node]
            }
        }
    }

    /// One pending mutation: what the public list shows, what a crash applies, and for a
    /// directory operation the directories still to be synced before it is durable.
    struct Pending: Sendable {
        var mutation: SimulatedMutation
        var operation: Operation
        var awaiting: Set<NodeID> = []
    }

    var files: [NodeID: FileNode] = [:]
    var directories: [NodeID: DirectoryNode] = [root: DirectoryNode()]
    var pending: [Pending] = []
    var nextNode: NodeID = 1
    var handles: [Int: OpenFile] = [:]
    var nextHandle = 0
    /// Bumped by each crash, so handles from before it can be told apart.
    var generation = 0
    var operationCount = 0

    // MARK: Paths


    /// The normalised absolute path of components.
    static func normalized(_ components: some Collection<String>) -> String {
        "/" + components.joined(separator: "/")
    }

    /// The normalised path of `path`, or `path` itself if it names nothing.
    static func normalized(_ path: String) -> String {
        (try? components(path, call: "stat")).map { normalized($0) } ?? path
    }

    mutating func newNode() -> NodeID {
        defer { nextNode += 1 }
        return nextNode
    }





    // MARK: Volatile operations

    /// Finds or creates the file inode `open` would give; true if it created one.
    mutating func openNode(_ path: String, mode: FileOpenMode) throws(StoreError) -> (NodeID, Bool) {
        let components = try Self.components(path, call: "open")
        guard let name = components.last else { throw StoreError.pathSyscall("open", path: path, errno: EISDIR) }
        let parent = try parentDirectory(of: components, call: "open", path: path)
        if let node = directories[parent]!.volatile[name] {
            // Reading a directory as a file is not supported, so opening one fails in any mode.
            guard files[node] != nil else { throw StoreError.pathSyscall("open", path: path, errno: EISDIR) }
            if mode == .createNew { throw StoreError.pathSyscall("open", path: path, errno: EEXIST) }
            return (node, false)
        }
        guard mode == .createNew || mode == .createIfMissing else {
            throw StoreError.pathSyscall("open", path: path, errno: ENOENT)
        }
        let node = newNode()
        files[node] = FileNode()
        directories[parent]!.volatile[name] = node
        pending.append(Pending(
            mutation: .create(directory: Self.normalized(components.dropLast()), name: name, inode: node),
            operation: .link(directory: parent, name: name, node: node), awaiting: [parent]))
        return (node, true)
    }

    mutating func makeDirectory(_ path: String) throws(StoreError) {
        let components = try Self.components(path, call: "mkdir")
        guard let name = components.last else { throw StoreError.pathSyscall("mkdir", path: path, errno: EEXIST) }
        let parent = try parentDirectory(of: components, call: "mkdir", path: path)
        guard directories[parent]!.volatile[name] == nil else {
            throw StoreError.pathSyscall("mkdir", path: path, errno: EEXIST)
        }
        let node = newNode()
        directories[node] = DirectoryNode()
        directories[parent]!.volatile[name] = node
        pending.append(Pending(
            mutation: .makeDirectory(parent: Self.normalized(components.dropLast()), name: name),
            operation: .link(directory: parent, name: name, node: node), awaiting: [parent]))
    }

    mutating func removeFile(_ path: String) throws(StoreError) {
        let components = try Self.components(path, call: "unlink")
        guard let name = components.last else { throw StoreError.pathSyscall("unlink", path: path, errno: EISDIR) }
        let parent = try parentDirectory(of: components, call: "unlink", path: path)
        guard let node = directories[parent]!.volatile[name] else {
            throw StoreError.pathSyscall("unlink", path: path, errno: ENOENT)
        }
        guard files[node] != nil else { throw StoreError.pathSyscall("unlink", path: path, errno: EISDIR) }
        directories[parent]!.volatile[name] = nil
        pending.append(Pending(
            mutation: .remove(directory: Self.normalized(components.dropLast()), name: name, inode: node),
            operation: .remove(directory: parent, name: name, node: node), awaiting: [parent]))
        collectGarbage()
    }

    /// Moves a volatile directory entry with `rename(2)`'s checks.
    mutating func rename(_ source: String, to destination: String) throws(StoreError) {
        guard let plan = try planRename(source, to: destination) else { return }
        let (from, to, fromParent, fromName) = (plan.from, plan.to, plan.fromParent, plan.fromName)
        let (toParent, toName, node, replaced) = (plan.toParent, plan.toName, plan.node, plan.replaced)
        directories[fromParent]!.volatile[fromName] = nil
        directories[toParent]!.volatile[toName] = node
        pending.append(Pending(
            mutation: .rename(fromDirectory: Self.normalized(from.dropLast()), fromName: fromName,
                              toDirectory: Self.normalized(to.dropLast()), toName: toName, inode: node),
            operation: .rename(fromDirectory: fromParent, fromName: fromName, toDirectory: toParent, toName: toName, node: node),
            awaiting: [fromParent, toParent]))
        if replaced != nil { collectGarbage() }
    }

    mutating func write(_ bytes: [UInt8], at start: Int, node: NodeID, path: String) {
        guard !bytes.isEmpty else { return }
        Self.overwrite(&files[node]!.volatile, at: start, with: bytes)
        pending.append(Pending(
            mutation: .write(path: Self.normalized(path), inode: node, offset: UInt64(start), bytes: bytes),
            operation: .write(node: node, offset: start, bytes: bytes)))
    }

    mutating func truncate(_ node: NodeID, to size: Int, path: String) {
        Self.resize(&files[node]!.volatile, to: size)
        pending.append(Pending(
            mutation: .truncate(path: Self.normalized(path), inode: node, size: UInt64(size)),
            operation: .truncate(node: node, size: size)))
    }

    // MARK: Durability

    /// `fsync` of a file: its pending writes and truncates become durable, in order.
    mutating func syncFile(_ node: NodeID) {
        guard pending.contains(where: { $0.operation.dataNode == node }) else { return }
        var remaining: [Pending] = []
        remaining.reserveCapacity(pending.count)
        for entry in pending {
            if entry.operation.dataNode == node {
                applyDurably(entry.operation, fate: .apply)
            } else {
                remaining.append(entry)
            }
        }
        pending = remaining
    }

    /// `fsync` of a directory: its pending operations become durable, in order; a rename
    /// between directories once both have been synced.
    mutating func syncDirectory(_ node: NodeID) {
        guard pending.contains(where: { $0.awaiting.contains(node) }) else { return }
        var remaining: [Pending] = []
        remaining.reserveCapacity(pending.count)
        for var entry in pending {
            guard entry.awaiting.remove(node) != nil else {
                remaining.append(entry)
                continue
            }
            if entry.awaiting.isEmpty {
                applyDurably(entry.operation, fate: .apply)
            } else {
                remaining.append(entry)
            }
        }
        pending = remaining
        collectGarbage()
    }

    /// Applies one operation to the durable state with a fate; a directory operation whose
    /// precondition fails there is skipped.
    mutating func applyDurably(_ operation: Operation, fate: CrashFate) {
        if fate == .drop { return }
        switch operation {
        case let .write(node, offset, bytes):
            guard files[node] != nil else { return }
            Self.applyWrite(bytes, at: offset, fate: fate, to: &files[node]!.durable)
        case let .truncate(node, size):
            guard files[node] != nil else { return }
            Self.resize(&files[node]!.durable, to: size)
        case let .link(directory, name, node):
            guard directories[directory]?.durable[name] == nil, directories[directory] != nil else { return }
            directories[directory]!.durable[name] = node
        case let .rename(fromDirectory, fromName, toDirectory, toName, node):
            guard directories[fromDirectory]?.durable[fromName] != nil, directories[toDirectory] != nil else { return }
            directories[fromDirectory]!.durable[fromName] = nil
            directories[toDirectory]!.durable[toName] = node
        case let .remove(directory, name, _):
            guard directories[directory]?.durable[name] != nil else { return }
            directories[directory]!.durable[name] = nil
        }
    }

    /// Power loss: the durable state with the pending mutations applied with their fates
    /// becomes the whole state; everything unreachable is gone.
    mutating func crash(fates: [CrashFate]) {
        precondition(fates.count == pending.count)
        for (entry, fate) in zip(pending, fates) { applyDurably(entry.operation, fate: fate) }
        pending = []
        generation += 1
        handles = [:]
        var reachable: Set<NodeID> = [Self.root]
        var queue: [NodeID] = [Self.root]
        while let node = queue.popLast() {
            for child in directories[node]!.durable.values where reachable.insert(child).inserted {
                if directories[child] != nil { queue.append(child) }
            }
        }
        files = files.filter { reachable.contains($0.key) }
        directories = directories.filter { reachable.contains($0.key) }
        for node in files.keys { files[node]!.volatile = files[node]!.durable }
        for node in directories.keys { directories[node]!.volatile = directories[node]!.durable }
    }

    /// Forgets inodes that nothing refers to any more: no volatile or durable entry, no handle
    /// and no pending mutation (which a crash could still apply).
    mutating func collectGarbage() {
        while true {
            var referenced: Set<NodeID> = [Self.root]
            for directory in directories.values {
                referenced.formUnion(directory.volatile.values)
                referenced.formUnion(directory.durable.values)
            }
            for handle in handles.values { referenced.insert(handle.node) }
            for entry in pending {
                referenced.formUnion(entry.operation.nodes)
                referenced.formUnion(entry.awaiting)
            }
            let before = files.count + directories.count
            files = files.filter { referenced.contains($0.key) }
            directories = directories.filter { referenced.contains($0.key) }
            if files.count + directories.count == before { return }
        }
    }

    // MARK: Bytes

    /// The number of sectors of size `sectorSize` that a write of `count` bytes at `offset` touches.
    static func touchedSectors(offset: Int, count: Int, sectorSize: Int) -> Int {
        guard count > 0 else { return 0 }
        return (offset + count - 1) / sectorSize - offset / sectorSize + 1
    }

    /// Applies a write to durable bytes with its fate (see ``CrashFate``).
    static func applyWrite(_ bytes: [UInt8], at offset: Int, fate: CrashFate, to content: inout [UInt8]) {
        switch fate {
        case .apply:
            overwrite(&content, at: offset, with: bytes)
        case .drop:
            break
        case .zeros:
            overwrite(&content, at: offset, with: repeatElement(0, count: bytes.count))
        case let .garble(seed):
            var generator = SplitMix64(seed: seed)
            overwrite(&content, at: offset, with: generator.bytes(bytes.count))
        case let .tear(sectorSize, keptSectors):
            precondition(sectorSize > 0, "tear with a sector size of \(sectorSize)")
            guard !bytes.isEmpty else { return }
            let end = offset + bytes.count
            let first = offset / sectorSize
            let last = (end - 1) / sectorSize
            for (index, sector) in (first...last).enumerated() where index < keptSectors.count && keptSectors[index] {
                let low = max(offset, sector * sectorSize)
                let high = min(end, (sector + 1) * sectorSize)
                overwrite(&content, at: low, with: bytes[(low - offset)..<(high - offset)])
            }
        }
    }

    /// Writes at `start`, zero-filling any gap after the end.
    static func overwrite(_ content: inout [UInt8], at start: Int, with bytes: some Collection<UInt8>) {
        let end = start + bytes.count
        if content.count < end { content.append(contentsOf: repeatElement(0, count: end - content.count)) }
        content.replaceSubrange(start..<end, with: bytes)
    }

    static func resize(_ content: inout [UInt8], to size: Int) {
        if size > content.count {
            content.append(contentsOf: repeatElement(0, count: size - content.count))
        } else {
            content.removeSubrange(size...)
        }
    }
}
