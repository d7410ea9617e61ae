import Dispatch
import Synchronization

/// The queue of staged commits waiting for the log: group commit, in LevelDB's shape, pipelined.
///
/// A caller stages its own commit (checks, numbers and encodes it, see
/// ``StorageEngine/stage(_:waiter:)``) and appends it here in the same step, so the queue
/// is in sequence order. If no leader is active, the caller becomes the leader: once it has the
/// log, it takes the commits at the front of the queue (its own first) and writes them as one
/// group, one `pwrite` and one `fdatasync` for all, each commit still its own frame and sequence
/// number. Right after taking its group it passes the leadership to the commit now at the
/// front, whose caller waits for the log while more commits queue behind it. Every other caller
/// sleeps until its commit has an outcome or it is made the leader.
///
/// A leader leads one group and returns, so no caller waits longer than two groups' writes.
/// An async caller does not lead on its own task: its turn runs on the engine's leader queue,
/// so a blocking write never occupies a thread of the cooperative pool.
package final class CommitQueue: Sendable {
    fileprivate struct State {
        var pending: [CommitRequest] = []
        var isLeaderActive = false
    }

    private let state = Mutex(State())
    /// The most requests one group takes.
    package let maximumGroupSize: Int
    /// A group stops taking requests once their frames' bytes reach this (it always takes one).
    package let maximumGroupBytes: Int

    package init(maximumGroupSize: Int, maximumGroupBytes: Int) {
        self.maximumGroupSize = maximumGroupSize
        self.maximumGroupBytes = maximumGroupBytes
    }

    /// The requests waiting for a leader to take them.
    package var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Appends requests (one caller's, in sequence order); returns whether their caller is now
    /// the leader (never for no requests). Called under the writer lock, which keeps the queue
    /// in sequence order.
    package func enqueue(_ requests: some Sequence<CommitRequest>) -> Bool {
        state.withLock { state in
            let count = state.pending.count
            state.pending.append(contentsOf: requests)
            if state.isLeaderActive || state.pending.count == count { return false }
            state.isLeaderActive = true
            return true
        }
    }

    /// The leader's group: the requests at the front of the queue whose frames are encoded,
    /// the leader's own first (at most ``maximumGroupSize`` of them, and about
    /// ``maximumGroupBytes``). With `passingLeadership`, the leadership then passes to the
    /// request now at the front, or to no one if the queue is empty; without it, the caller
    /// stays the leader and later calls ``passLeadership()``.
    /// - Returns: The group with its commits, and the next leader, for the caller to wake with
    ///   ``CommitRequest/lead(_:)``.
    func takeGroup(passingLeadership: Bool) -> (group: [CommitRequest], commits: [StagedCommit], nextLeader: CommitRequest?) {
        state.withLock { state in
            var commits: [StagedCommit] = []
            var bytes = 0
            while commits.count < state.pending.count, commits.count < maximumGroupSize, commits.isEmpty || bytes < maximumGroupBytes,
                  let commit = state.pending[commits.count].stagedIfReady {
                bytes += commit.frameLength
                commits.append(commit)
            }
            let group = Array(state.pending.prefix(commits.count))
            state.pending.removeFirst(commits.count)
            guard passingLeadership else { return (group, commits, nil) }
            return (group, commits, state.passLeadership())
        }
    }

    /// Whether the request at the front of the queue is encoded, ready to be written.
    var isFrontReady: Bool {
        state.withLock { $0.pending.first?.isStaged ?? false }
    }

    /// Ends the turn of a leader that kept the leadership: the request at the front leads next
    /// (returned, for the caller to wake), or no one if the queue is empty.
    func passLeadership() -> CommitRequest? {
        state.withLock { $0.passLeadership() }
    }
}

extension CommitQueue.State {
    /// Ends a leader's turn: the request at the front leads next, or no one if there is none.
    fileprivate mutating func passLeadership() -> CommitRequest? {
        guard let next = pending.first else {
            isLeaderActive = false
            return nil
        }
        return next
    }
}

/// One caller's staged commit, waiting in the ``CommitQueue``.
package final class CommitRequest: Sendable {
    /// How the caller waits.
    enum Waiter: Sendable {
        /// A thread, asleep on the semaphore.
        case thread(DispatchSemaphore)
        /// A task, suspended on the continuation.
        case task(UnsafeContinuation<Result<CommitReceipt, StoreError>, Never>)
    }

    /// What a waiting thread wakes up to.
    private enum Turn {
        case waiting
        case lead
        case done(Result<CommitReceipt, StoreError>)
    }

    private struct State {
        /// The encoded commit, once its caller has encoded it.
        var staged: StagedCommit?
        var turn = Turn.waiting
        /// A task's leader turn, handed over before its commit was encoded.
        var deferredLead: (@Sendable () -> Void)?
        /// Where the commit's frame is, once it is applied.
        var address: FrameAddress?
    }

    private let waiter: Waiter
    private let state = Mutex(State())

    init(waiter: Waiter) {
        self.waiter = waiter
    }

    /// The encoded commit, or nil while its caller is still encoding it.
    var stagedIfReady: StagedCommit? { state.withLock { $0.staged } }

    /// Whether the commit is encoded (without copying it out, as ``stagedIfReady`` does).
    var isStaged: Bool { state.withLock { $0.staged != nil } }

    /// Stores the encoded commit; a task's leader turn handed over meanwhile starts now.
    func markStaged(_ staged: StagedCommit) {
        let deferredLead = state.withLock { state in
            state.staged = staged
            defer { state.deferredLead = nil }
            return state.deferredLead
        }
        deferredLead?()
    }

    /// Sleeps until the request has an outcome or its caller must lead; returns true for the
    /// latter. Only for a thread's request.
    package func waitForTurn() -> Bool {
        guard case let .thread(semaphore) = waiter else { preconditionFailure("a task's commit request does not wait on a thread") }
        semaphore.wait()
        return state.withLock { state in
            if case .lead = state.turn { return true }
            return false
        }
    }

    /// Makes the request's caller the leader: wakes the thread, or calls `startTurn` for a task
    /// (which must start the turn on a queue of its own: the caller may hold the log).
    /// A thread leads once it has encoded its commit, as it waits only after that; a task's
    /// turn waits for its commit to be encoded.
    package func lead(_ startTurn: @escaping @Sendable () -> Void) {
        switch waiter {
        case let .thread(semaphore):
            state.withLock { $0.turn = .lead }
            semaphore.signal()
        case .task:
            let isReady = state.withLock { state in
                if state.staged == nil { state.deferredLead = startTurn }
                return state.staged != nil
            }
            if isReady { startTurn() }
        }
    }

    /// Gives the request its outcome and wakes its caller (a leading thread is awake already).
    /// - Parameter address: Where an applied commit's frame is, for ``cachePayload(in:)``.
    package func finish(_ outcome: Result<CommitReceipt, StoreError>, at address: FrameAddress? = nil, isLeader: Bool) {
        switch waiter {
        case let .thread(semaphore):
            state.withLock { state in
                state.turn = .done(outcome)
                state.address = address
            }
            if !isLeader { semaphore.signal() }
        case let .task(continuation):
            state.withLock { $0.address = address }
            continuation.resume(returning: outcome)
        }
    }

    /// Caches an applied commit's payload, from its caller once woken: the caches of a group's
    /// commits fill in parallel, off the serial path that applies the groups.
    func cachePayload(in cache: ReadCache) {
        // The bytes alone: a copy of the whole staged commit retains each of its arrays.
        let (bytes, payloadLength, address) = state.withLock { ($0.staged?.bytes, $0.staged?.payloadLength, $0.address) }
        if let bytes, let payloadLength, let address {
            bytes.withUnsafeBytes { cache.insert(UnsafeRawBufferPointer(rebasing: $0[..<payloadLength]), for: address) }
        }
    }

    /// The outcome of a thread's request, once it is finished.
    package func outcome() throws(StoreError) -> CommitReceipt {
        let turn = state.withLock { $0.turn }
        guard case let .done(result) = turn else { preconditionFailure("a commit request was read before its outcome") }
        return try result.get()
    }
}
