import Synchronization

/// Counts what one class of the crash suite explored and found, for its summary line
/// (`Docs/CRASH-TESTING.md`): every anomaly count must be 0.
package final class CrashTally: Sendable {
    private struct Counts {
        var explored = 0
        var violations: [String: Int] = [:]
        var firstFailures: [String] = []
    }

    /// The class's name in the summary line.
    package let name: String
    /// What one explored unit is called: "states", "runs", "kills".
    package let unit: String
    private let counts = Mutex(Counts())

    package init(_ name: String, unit: String) {
        self.name = name
        self.unit = unit
    }

    /// Counts one explored state or run.
    package func explored(_ count: Int = 1) {
        counts.withLock { $0.explored += count }
    }

    /// Records a broken invariant with the text that replays it; keeps the first few texts.
    package func record(_ violation: CommitOracle.Violation, replay: String) {
        counts.withLock { counts in
            counts.violations[violation.invariant, default: 0] += 1
            if counts.firstFailures.count < 5 { counts.firstFailures.append("\(violation) -- replay: \(replay)") }
        }
    }

    /// Records any other failure (an unexpected error) under "other".
    package func record(other message: String, replay: String) {
        record(CommitOracle.Violation(invariant: "other", message: message), replay: replay)
    }

    /// Total anomalies of every kind.
    package var anomalies: Int { counts.withLock { $0.violations.values.reduce(0, +) } }

    /// The first recorded failures, each with how to replay it.
    package var failures: [String] { counts.withLock { $0.firstFailures } }

    /// "crash images: 8123 states; lost acknowledged commits 0, ... other failures 0". A silent
    /// truncation shows as lost commits (I1) or stale state (I4); "opens refused as corrupt"
    /// (I8) counts crashes after which recovery saw corruption, which a crash must never cause.
    package var summary: String {
        counts.withLock { counts in
            let v = counts.violations
            return "\(name): \(counts.explored) \(unit); lost acknowledged commits \(v["I1", default: 0]), "
                + "commits beyond issued \(v["I2", default: 0]), partial or stale state \(v["I4", default: 0]), "
                + "event anomalies \(v["I5", default: 0]), index mismatches \(v["I6", default: 0]), "
                + "failed re-recoveries \(v["I7", default: 0]), opens refused as corrupt \(v["I8", default: 0]), "
                + "orphan files \(v["I9", default: 0]), acknowledgements after a failed fsync \(v["fail-stop", default: 0]), "
                + "other failures \(v["other", default: 0])"
        }
    }
}
