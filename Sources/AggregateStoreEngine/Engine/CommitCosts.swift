import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What group commit has measured of its own costs, as moving averages: how long an fsync
/// takes, and how long a commit takes to stage and to complete (be applied and handed its
/// outcome). They decide whether the next group is written while this one completes
/// (see ``overlapPays(groupSize:)``).
///
/// Updated without a lock by whichever thread measured: a lost update only delays the average.
/// Staging is sampled, one commit in eight (see ``StorageEngine/stage(_:waiter:)``), so its
/// average spans some 64 commits, and is 0, favouring no overlap, until the first sample.
final class CommitCosts: Sendable {
    private let syncNanoseconds = Atomic<UInt64>(0)
    private let stagingNanoseconds = Atomic<UInt64>(0)
    private let completionNanoseconds = Atomic<UInt64>(0)
    /// The processors that stage commits in parallel.
    private let processors = UInt64(max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    /// Records an fsync's duration.
    func recordSync(_ nanoseconds: UInt64) { Self.update(syncNanoseconds, nanoseconds) }

    /// Records the time a caller took to stage a commit.
    func recordStaging(_ nanoseconds: UInt64) { Self.update(stagingNanoseconds, nanoseconds) }

    /// Records the time a group of `count` commits took to complete.
    func recordCompletion(_ nanoseconds: UInt64, count: Int) {
        Self.update(completionNanoseconds, nanoseconds / UInt64(max(1, count)))
    }

    /// Whether writing the next group while a group of `groupSize` commits completes pays.
    ///
    /// In the closed loop of committers that wait for their commit before the next one, the
    /// alternative is for the next group to wait until this group's callers have their
    /// outcomes and have staged their next commits (its turnaround), and then to take them
    /// all: one fsync for both. Overlapping instead splits the committers into two groups,
    /// each waiting for an fsync of its own; that is better only when the turnaround takes
    /// longer than an fsync (many committers, or a fast disk).
    func overlapPays(groupSize: Int) -> Bool {
        let perCommit = completionNanoseconds.load(ordering: .relaxed) + stagingNanoseconds.load(ordering: .relaxed) / processors
        return UInt64(groupSize) * perCommit > syncNanoseconds.load(ordering: .relaxed)
    }

    /// A moving average with weight 1/8 for the new sample.
    private static func update(_ average: borrowing Atomic<UInt64>, _ sample: UInt64) {
        let old = average.load(ordering: .relaxed)
        average.store(old == 0 ? sample : old - old / 8 + sample / 8, ordering: .relaxed)
    }
}
