#if ENABLE_SYSCALL_MOCKING
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
#endif

/// Named places where the crash suite's whitebox SIGKILL tests make the process die, after
/// bbolt's failpoints and RocksDB's kill points (`Docs/CRASH-TESTING.md`, class 3).
///
/// A child process started with `AGGSTORE_CRASH_POINT=name` (or `name@N`) kills itself with
/// `SIGKILL` the first (or the N-th) time execution reaches that point: a real process death,
/// with no cleanup, no `close`, no flushing. The page cache survives, so these points test what
/// a process crash can leave behind, not a power loss.
///
/// Compiled only in debug builds (`ENABLE_SYSCALL_MOCKING`); in release builds ``hit(_:)`` is
/// empty and the environment is never read.
package enum CrashPoint: String, CaseIterable, Sendable {
    /// A commit's frame was written with `pwrite` and not yet `fdatasync`ed.
    case commitAfterWriteBeforeSync = "commit.afterWrite.beforeSync"
    /// A commit's frame was `fdatasync`ed and not yet applied to the index nor acknowledged.
    case commitAfterSyncBeforeAck = "commit.afterSync.beforeAck"
    /// A roll created and synced the new segment (and its directory entry); the manifest does
    /// not list it yet.
    case rollAfterSegmentCreated = "roll.afterSegmentCreated"
    /// A roll installed the manifest that lists the new segment; no frame is in it yet.
    case rollAfterManifestInstalled = "roll.afterManifestInstalled"

    /// The environment variable that arms one point: `name` or `name@N` (N ≥ 1, default 1).
    package static let environmentVariable = "AGGSTORE_CRASH_POINT"

    /// Marks that execution reached `point`; kills the process if the point is armed and this
    /// is its N-th hit. Does nothing in release builds.
    @inline(__always)
    package static func hit(_ point: CrashPoint) {
        #if ENABLE_SYSCALL_MOCKING
        CrashPointArming.hit(point)
        #endif
    }
}

#if ENABLE_SYSCALL_MOCKING
/// The armed point, read once from the environment, and its hit counter.
private enum CrashPointArming {
    struct Armed: Sendable {
        var point: CrashPoint
        var hitNumber: Int
    }

    /// Read lazily and exactly once (a `static let` initialiser runs once, thread-safely).
    static let armed: Armed? = parse(getenv(CrashPoint.environmentVariable).map { String(cString: $0) })

    /// Hits of the armed point so far.
    static let hits = Atomic<Int>(0)

    static func hit(_ point: CrashPoint) {
        guard let armed, armed.point == point else { return }
        let count = hits.add(1, ordering: .sequentiallyConsistent).newValue
        guard count == armed.hitNumber else { return }
        kill(getpid(), SIGKILL)
        // SIGKILL cannot be caught or ignored; never return into the engine regardless.
        while true { pause() }
    }

    /// Parses `name` or `name@N`. A malformed value stops the process loudly rather than run a
    /// crash test that can never crash.
    static func parse(_ value: String?) -> Armed? {
        guard let value, !value.isEmpty else { return nil }
        let parts = value.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
        guard let point = CrashPoint(rawValue: String(parts[0])) else {
            fatalError("\(CrashPoint.environmentVariable)=\(value): unknown crash point; known: \(CrashPoint.allCases.map(\.rawValue))")
        }
        guard parts.count == 2 else { return Armed(point: point, hitNumber: 1) }
        guard let number = Int(parts[1]), number >= 1 else {
            fatalError("\(CrashPoint.environmentVariable)=\(value): the hit number after @ must be a positive integer")
        }
        return Armed(point: point, hitNumber: number)
    }
}
#endif
