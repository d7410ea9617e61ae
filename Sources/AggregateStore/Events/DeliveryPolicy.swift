/// How the ``EventEngine`` delivers events to a subscriber: batch size and retry backoff.
///
/// A handler that throws is retried after `initialBackoff`, doubling up to `maximumBackoff`,
/// for as long as it takes (or `maximumAttempts`, after which the event, or a publisher's
/// batch, is logged as skipped); the subscriber never stops on a handler error. A subscriber
/// that is stopped while retrying skips nothing: the event is delivered again later.
public struct DeliveryPolicy: Sendable, Hashable {
    /// Events read from the log at a time; the cursor is persisted after each batch.
    public var batchSize: Int = 128
    /// The first wait after a failed delivery.
    public var initialBackoff: Duration = .milliseconds(50)
    /// The longest wait between attempts.
    public var maximumBackoff: Duration = .seconds(30)
    /// Attempts before an event is skipped (logged at error level); nil retries forever.
    public var maximumAttempts: Int?

    /// The default policy.
    public init() {}

    /// The wait before attempt `attempt + 1`, after `attempt` failures.
    func backoff(after attempt: Int) -> Duration {
        var wait = initialBackoff
        for _ in 1..<max(attempt, 1) where wait < maximumBackoff { wait *= 2 }
        return min(wait, maximumBackoff)
    }
}
