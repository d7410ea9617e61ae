import Synchronization

/// A few workspaces (buffers, container stacks, container boxes) kept between encodings or
/// decodings, so a call allocates almost nothing of its own. A workspace is used by one call at
/// a time; the pool hands it out and takes it back under a mutex.
final class WorkspacePool<Workspace: AnyObject>: Sendable {
    private let free: Mutex<[UnsafeSendable<Workspace>]>
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
        free = Mutex([])
    }

    /// A workspace from the pool, or `nil` when it is empty.
    func take() -> Workspace? {
        free.withLock { $0.popLast()?.value }
    }

    /// Returns a workspace; `false` when the pool is full and the caller should drop it.
    func give(_ workspace: Workspace) -> Bool {
        let boxed = UnsafeSendable(workspace)
        return free.withLock { list in
            guard list.count < limit else { return false }
            list.append(boxed)
            return true
        }
    }
}

/// A workspace crossing threads through the pool: only one call uses it at a time.
struct UnsafeSendable<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
