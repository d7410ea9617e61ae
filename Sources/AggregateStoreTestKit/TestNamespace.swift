#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AggregateStoreEngine

/// A directory as the test file systems keep it: its entries as reads see them.
protocol TestDirectory {
    /// Name to inode, as reads see them now.
    var volatile: [String: Int] { get }
}

/// The namespace walk the in-memory and simulated file systems share: inodes by number, the
/// root directory as inode 0, directories mapping names to inodes, and paths resolved
/// textually as the kernel would.
protocol TestNamespace {
    associatedtype File
    associatedtype Directory: TestDirectory
    /// File inodes.
    var files: [Int: File] { get }
    /// Directory inodes.
    var directories: [Int: Directory] { get }
}

extension TestNamespace {
    /// The root directory's inode.
    static var root: Int { 0 }

    /// Splits a path into components, resolving `.`, `..` and repeated slashes textually.
    static func components(_ path: String, call: String) throws(StoreError) -> [String] {
        // Like the kernel, an empty path names nothing (rather than the root).
        guard !path.isEmpty else { throw StoreError.pathSyscall(call, path: path, errno: ENOENT) }
        var result: [String] = []
        for part in path.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                _ = result.popLast()
            } else {
                result.append(String(part))
            }
        }
        return result
    }

    /// The inode a path names in the volatile namespace, or nil (also when a component is a file).
    func node(at components: [String]) -> Int? {
        var current = Self.root
        for name in components {
            guard let directory = directories[current], let child = directory.volatile[name] else { return nil }
            current = child
        }
        return current
    }

    /// The file inode at `path`, or nil.
    func fileNode(at path: String) -> Int? {
        guard let components = try? Self.components(path, call: "stat"), let node = node(at: components),
              files[node] != nil
        else { return nil }
        return node
    }

    /// The directory that holds the last component, which must exist.
    func parentDirectory(of components: [String], call: String, path: String) throws(StoreError) -> Int {
        var current = Self.root
        for name in components.dropLast() {
            guard let child = directories[current]!.volatile[name] else {
                throw StoreError.pathSyscall(call, path: path, errno: ENOENT)
            }
            guard directories[child] != nil else { throw StoreError.pathSyscall(call, path: path, errno: ENOTDIR) }
            current = child
        }
        return current
    }

    /// The directory at `path`, failing with `ENOENT` or `ENOTDIR`.
    func directory(at path: String, call: String) throws(StoreError) -> Int {
        let components = try Self.components(path, call: call)
        let parent = try parentDirectory(of: components, call: call, path: path)
        guard let node = components.last.map({ directories[parent]!.volatile[$0] }) ?? parent else {
            throw StoreError.pathSyscall(call, path: path, errno: ENOENT)
        }
        guard directories[node] != nil else { throw StoreError.pathSyscall(call, path: path, errno: ENOTDIR) }
        return node
    }
}

/// A `rename(2)` that passed its checks: where the entry moves, and what it replaces.
struct RenamePlan {
    var from: [String], to: [String]
    var fromParent: Int, fromName: String
    var toParent: Int, toName: String
    var node: Int
    var replaced: Int?
}

extension TestNamespace {
    /// Checks a rename as `rename(2)` does; nil when it is a no-op (both names already name the
    /// same inode, possible after a crash).
    func planRename(_ source: String, to destination: String) throws(StoreError) -> RenamePlan? {
        let from = try Self.components(source, call: "rename")
        let to = try Self.components(destination, call: "rename")
        guard let fromName = from.last, let toName = to.last else {
            throw StoreError.pathSyscall("rename", path: source, errno: EBUSY)
        }
        let fromParent = try parentDirectory(of: from, call: "rename", path: source)
        guard let node = directories[fromParent]!.volatile[fromName] else {
            throw StoreError.pathSyscall("rename", path: source, errno: ENOENT)
        }
        let toParent = try parentDirectory(of: to, call: "rename", path: destination)
        let isDirectory = directories[node] != nil
        if isDirectory && to.count > from.count && Array(to.prefix(from.count)) == from {
            throw StoreError.pathSyscall("rename", path: source, errno: EINVAL)  // into itself
        }
        let replaced = directories[toParent]!.volatile[toName]
        if let replaced {
            if replaced == node { return nil }
            if let target = directories[replaced] {
                guard isDirectory else { throw StoreError.pathSyscall("rename", path: source, errno: EISDIR) }
                guard target.volatile.isEmpty else {
                    throw StoreError.pathSyscall("rename", path: source, errno: ENOTEMPTY)
                }
            } else if isDirectory {
                throw StoreError.pathSyscall("rename", path: source, errno: ENOTDIR)
            }
        }
        return RenamePlan(from: from, to: to, fromParent: fromParent, fromName: fromName,
                          toParent: toParent, toName: toName, node: node, replaced: replaced)
    }
}
