#if ENABLE_SYSCALL_MOCKING
import Synchronization

/// Debug-only fault injection below the POSIX file system, after swift-system's `Mocking.swift`:
/// tests plan what the next calls on one file descriptor return, to prove that `EINTR` is
/// retried and short transfers are completed. Keyed by descriptor, so tests running in parallel
/// on other files are unaffected. Compiled only in debug builds (`ENABLE_SYSCALL_MOCKING`).
package enum SyscallMock {
    /// What one planned call does instead of its normal work.
    package enum Outcome: Sendable, Equatable {
        /// Fail with `EINTR` without doing anything.
        case interrupted
        /// Transfer at most this many bytes (reads and writes only).
        case short(Int)
        /// Fail with this `errno`.
        case failure(Int32)
    }

    /// The calls a plan can target.
    package enum Call: Sendable, Hashable {
        case pread, pwrite, fsync, fdatasync, ftruncate, flock
    }

    private static let plans = Mutex<[Int32: [Call: [Outcome]]]>([:])

    /// Plans the outcomes of the next calls of one kind on a descriptor, in order.
    package static func plan(_ call: Call, on descriptor: Int32, _ outcomes: [Outcome]) {
        plans.withLock { $0[descriptor, default: [:]][call, default: []] += outcomes }
    }

    /// Drops every plan for a descriptor.
    package static func reset(_ descriptor: Int32) {
        plans.withLock { $0[descriptor] = nil }
    }

    /// Outcomes still planned for a descriptor.
    package static func pending(_ call: Call, on descriptor: Int32) -> Int {
        plans.withLock { $0[descriptor]?[call]?.count ?? 0 }
    }

    /// The next planned outcome for a call, consuming it.
    static func next(_ call: Call, _ descriptor: Int32) -> Outcome? {
        plans.withLock { plans in
            guard var outcomes = plans[descriptor]?[call], !outcomes.isEmpty else { return nil }
            let outcome = outcomes.removeFirst()
            plans[descriptor]?[call] = outcomes
            return outcome
        }
    }
}
#endif
