import Synchronization

/// Wakes tasks waiting for the next commit with events: deliverers and change feeds wait on it
/// instead of polling.
final class CommitSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextToken: UInt64 = 0
        var isStopped = false
    }
    private let state = Mutex(State())

    /// The current generation; pass it to ``wait(after:)`` to wait for any later signal.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Whether ``stop()`` was called.
    var isStopped: Bool { state.withLock { $0.isStopped } }

    /// Wakes every waiter.
    func signal() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            defer { state.waiters = [:] }
            return state.waiters.values
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Wakes every waiter, now and from now on.
    func stop() {
        state.withLock { $0.isStopped = true }
        signal()
    }

    /// Returns once the generation has moved past `generation`, the signal is stopped, or the
    /// task is cancelled.
    func wait(after generation: UInt64) async {
        let token = state.withLock { state in
            state.nextToken &+= 1
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.isStopped || state.generation != generation || Task.isCancelled { return true }
                    state.waiters[token] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: token) }
            waiter?.resume()
        }
    }
}
