#if ENABLE_SYSCALL_MOCKING
package import Synchronization
#endif

/// Places in the engine where a test can run code, after RocksDB's sync points: a test holds
/// a thread there to open the window a race needs, so that the race happens on every run.
///
/// Compiled only in debug builds (`ENABLE_SYSCALL_MOCKING`), like ``CrashPoint``; in release
/// builds the hooks do nothing.
package final class TestHooks: Sendable {
    #if ENABLE_SYSCALL_MOCKING
    /// Runs when a written group is about to be applied to the indexes, the groups before it
    /// applied: the log is free for the next group, while a compaction or a close waits for
    /// this group to be applied.
    package let beforeApplying = Mutex<(@Sendable () -> Void)?>(nil)
    /// Overrides the measured decision whether a written group completes while the next one
    /// is written (see ``CommitCosts/overlapPays(groupSize:)``), so a test does not depend on
    /// the machine's speed.
    package let overlapsGroups = Mutex<Bool?>(nil)
    #endif

    init() {}

    func runBeforeApplying() {
        #if ENABLE_SYSCALL_MOCKING
        beforeApplying.withLock { $0 }?()
        #endif
    }

    /// The test's decision whether groups overlap, if it made one.
    func overlapsGroupsOverride() -> Bool? {
        #if ENABLE_SYSCALL_MOCKING
        overlapsGroups.withLock { $0 }
        #else
        nil
        #endif
    }
}
