import Synchronization

/// A few workspaces (buffers, container stacks, container boxes) kept between encodings or
/// decodings, so a call allocates almost nothing of its own. A workspace is used by one call at
/// a time; the pool hands it out and takes it back.
///
/// One workspace waits in an atomic slot, taken and given back with one atomic operation each:
/// the common case, one call at a time, needs no lock. The others wait in a list under a mutex.
final class WorkspacePool<Workspace: AnyObject>: Sendable {
    /// The address of a retained workspace, or 0. (An address, as pointers are not `Sendable`.)
    private let slot = Atomic<UInt>(0)
    private let free: Mutex<[UnsafeSendable<Workspace>]>
    /// The most workspaces kept in the list (besides the slot's).
    private let limit: Int

    init(limit: Int) {
        self.limit = limit
        free = Mutex([])
    }

    deinit {
        if let raw = UnsafeRawPointer(bitPattern: slot.load(ordering: .acquiring)) {
            Unmanaged<Workspace>.fromOpaque(raw).release()
        }
    }

    /// A workspace from the pool, or `nil` when it is empty.
    func take() -> Workspace? {
        if let raw = UnsafeRawPointer(bitPattern: slot.exchange(0, ordering: .acquiring)) {
            return Unmanaged<Workspace>.fromOpaque(raw).takeRetainedValue()
        }
        return free.withLock { $0.popLast()?.value }
    }

    /// Returns a workspace; `false` when the pool is full and the caller should drop it.
    func give(_ workspace: Workspace) -> Bool {
        let raw = Unmanaged.passRetained(workspace).toOpaque()
        if slot.compareExchange(expected: 0, desired: UInt(bitPattern: raw), ordering: .releasing).exchanged { return true }
        Unmanaged<Workspace>.fromOpaque(raw).release()
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
