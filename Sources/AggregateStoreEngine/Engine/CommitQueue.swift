import Dispatch
import Synchronization

/// The queue of commits waiting for the writer: group commit, in LevelDB's shape, pipelined.
///
/// A caller appends its request. If no leader is active, the caller becomes the leader: it takes
/// the requests at the front of the queue (its own first) and commits them as one group, one
/// `pwrite` and one `fdatasync` for all, each commit still its own frame and sequence number.
/// As soon as its group is staged and it holds the log, it passes the leadership to the request
/// now at the front, whose caller stages the next group while this one is written and synced.
/// Then it hands each request its outcome. Every other caller sleeps until its request has an
/// outcome or it is made the leader.
///
/// A leader leads one group and returns, so no caller waits longer than two groups' writes.
/// An async caller does not lead on its own task: its turn runs on a Dispatch queue, so a
/// blocking write never occupies a thread of the cooperative pool.
package final class CommitQueue: Sendable {
    private struct State {
        var pending: [CommitRequest] = []
        var isLeaderActive = false
    }

    private let state = Mutex(State())
    /// The most requests one group takes.
    package let maximumGroupSize: Int
    /// A group stops taking requests once their estimated bytes reach this (it always takes one).
    package let maximumGroupBytes: Int

    package init(maximumGroupSize: Int, maximumGroupBytes: Int) {
        self.maximumGroupSize = maximumGroupSize
        self.maximumGroupBytes = maximumGroupBytes
    }

    /// The requests waiting for a leader to take them.
    package var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Appends requests (one caller's, in order); returns whether their caller is now the leader.
    package func enqueue(_ requests: [CommitRequest]) -> Bool {
        state.withLock { state in
            state.pending += requests
            if state.isLeaderActive { return false }
            state.isLeaderActive = true
            return true
        }
    }

    /// The leader's group: the requests at the front of the queue, the leader's own first (at
    /// most `limit` of them, and about ``maximumGroupBytes``).
    package func takeGroup(upTo limit: Int? = nil) -> [CommitRequest] {
        let limit = min(limit ?? maximumGroupSize, maximumGroupSize)
        return state.withLock { state in
            var count = 0
            var bytes = 0
            while count < state.pending.count, count < limit, count == 0 || bytes < maximumGroupBytes {
                bytes += state.pending[count].estimatedBytes
                count += 1
            }
            let group = Array(state.pending.prefix(count))
            state.pending.removeFirst(count)
            return group
        }
    }

    /// Ends a leader's turn: the request now at the front leads next, or no one does if the
    /// queue is empty. Returns the new leader, for the caller to wake with ``CommitRequest/lead(_:)``.
    package func passLeadership() -> CommitRequest? {
        state.withLock { state in
            guard let next = state.pending.first else {
                state.isLeaderActive = false
                return nil
            }
            return next
        }
    }
}

/// One caller's commit, waiting in the ``CommitQueue``.
package final class CommitRequest: Sendable {
    /// How the caller waits.
    private enum Waiter {
        /// A thread, asleep on the semaphore.
        case thread(DispatchSemaphore)
        /// A task, suspended on the continuation.
        case task(CheckedContinuation<Result<CommitReceipt, StoreError>, Never>)
    }

    /// What a waiting thread wakes up to.
    private enum Turn {
        case waiting
        case lead
        case done(Result<CommitReceipt, StoreError>)
    }

    package let batch: WriteBatch
    /// The batch's estimated encoded size, which bounds a group's bytes.
    package let estimatedBytes: Int
    private let waiter: Waiter
    private let turn = Mutex(Turn.waiting)

    /// A request whose caller is a thread.
    package init(_ batch: WriteBatch) {
        self.batch = batch
        estimatedBytes = CommitPayload.estimatedSize(of: batch)
        waiter = .thread(DispatchSemaphore(value: 0))
    }

    /// A request whose caller is a task.
    package init(_ batch: WriteBatch, continuation: CheckedContinuation<Result<CommitReceipt, StoreError>, Never>) {
        self.batch = batch
        estimatedBytes = CommitPayload.estimatedSize(of: batch)
        waiter = .task(continuation)
    }

    /// Sleeps until the request has an outcome or its caller must lead; returns true for the
    /// latter. Only for a thread's request.
    package func waitForTurn() -> Bool {
        guard case let .thread(semaphore) = waiter else { preconditionFailure("a task's commit request does not wait on a thread") }
        semaphore.wait()
        return turn.withLock { turn in
            if case .lead = turn { return true }
            return false
        }
    }

    /// Makes the request's caller the leader: wakes the thread, or runs `leadTurn` on a
    /// Dispatch queue for a task.
    package func lead(_ leadTurn: @escaping @Sendable () -> Void) {
        switch waiter {
        case let .thread(semaphore):
            turn.withLock { $0 = .lead }
            semaphore.signal()
        case .task:
            DispatchQueue.global().async(execute: leadTurn)
        }
    }

    /// Gives the request its outcome and wakes its caller (a leading thread is awake already).
    package func finish(_ outcome: Result<CommitReceipt, StoreError>, isLeader: Bool) {
        switch waiter {
        case let .thread(semaphore):
            turn.withLock { $0 = .done(outcome) }
            if !isLeader { semaphore.signal() }
        case let .task(continuation):
            continuation.resume(returning: outcome)
        }
    }

    /// The outcome of a thread's request, once it is finished.
    package func outcome() throws(StoreError) -> CommitReceipt {
        let turn = self.turn.withLock { $0 }
        guard case let .done(result) = turn else { preconditionFailure("a commit request was read before its outcome") }
        return try result.get()
    }
}
