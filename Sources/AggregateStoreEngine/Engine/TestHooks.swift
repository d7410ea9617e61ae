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
    /// Runs when a written group is about to be applied to the indexes: the log is free for
    /// the next group, a compaction or a close; the group holds the apply turn.
    package let beforeApplying = Mutex<(@Sendable () -> Void)?>(nil)
    #endif

    init() {}

    func runBeforeApplying() {
        #if ENABLE_SYSCALL_MOCKING
        beforeApplying.withLock { $0 }?()
        #endif
    }
}
