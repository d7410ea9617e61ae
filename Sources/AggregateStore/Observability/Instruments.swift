import CoreMetrics
import Tracing

/// The store's metrics and tracer, resolved once from its configuration.
///
/// Metric names (all prefixed `aggstore.`):
/// - `uow.commits`, `uow.aborts`, `uow.conflicts` (counters);
/// - `commit.duration` and `fsync.duration` (timers, nanoseconds);
/// - `bytes.written` (counter), `compression.ratio` (recorder);
/// - `events.published` (counter), `outbox.lag` (gauge, events not yet delivered to the
///   slowest subscriber).
///
/// Metrics of one unit of work carry its id as the `uow.id` dimension unless
/// ``DataStore/Configuration/metricsCarryUnitOfWorkId`` is off.
struct Instruments: Sendable {
    let factory: any MetricsFactory
    let tracer: any Tracer
    let carryUnitOfWorkId: Bool
    /// False with the no-op factory (no metrics backend): then the per-unit-of-work metrics
    /// are not even built (each unit of work made three metric objects and their dimensions for nothing).
    let isRecording: Bool
    let eventsPublished: Counter
    let outboxLag: Gauge
    let bytesWritten: Counter
    let compressionRatio: Recorder

    init(configuration: DataStore.Configuration) {
        let factory = configuration.metricsFactory ?? MetricsSystem.factory
        self.factory = factory
        self.tracer = configuration.tracer ?? InstrumentationSystem.tracer
        self.carryUnitOfWorkId = configuration.metricsCarryUnitOfWorkId
        self.isRecording = !(factory is NOOPMetricsHandler)
        self.eventsPublished = Counter(label: "aggstore.events.published", factory: factory)
        self.outboxLag = Gauge(label: "aggstore.outbox.lag", factory: factory)
        self.bytesWritten = Counter(label: "aggstore.bytes.written", factory: factory)
        self.compressionRatio = Recorder(label: "aggstore.compression.ratio", factory: factory)
    }

    /// Dimensions for a metric about one unit of work.
    func dimensions(_ unitOfWorkId: String, _ extra: [(String, String)] = []) -> [(String, String)] {
        carryUnitOfWorkId ? [("uow.id", unitOfWorkId)] + extra : extra
    }

    func committed(_ unitOfWorkId: String, nanoseconds: Int64, receipt: CommitReceipt?) {
        guard isRecording else { return }
        Counter(label: "aggstore.uow.commits", dimensions: dimensions(unitOfWorkId), factory: factory).increment()
        Timer(label: "aggstore.commit.duration", dimensions: dimensions(unitOfWorkId), factory: factory)
            .recordNanoseconds(nanoseconds)
        guard let receipt else { return }
        if receipt.syncNanoseconds > 0 {
            Timer(label: "aggstore.fsync.duration", dimensions: dimensions(unitOfWorkId), factory: factory)
                .recordNanoseconds(Int64(receipt.syncNanoseconds))
        }
        bytesWritten.increment(by: Int64(receipt.frameBytes))
        let stored = receipt.frameBytes - Format.frameHeaderLength
        if stored > 0 { compressionRatio.record(Double(receipt.payloadBytes) / Double(stored)) }
    }

    func aborted(_ unitOfWorkId: String, reason: String) {
        guard isRecording else { return }
        Counter(label: "aggstore.uow.aborts", dimensions: dimensions(unitOfWorkId, [("reason", reason)]), factory: factory)
            .increment()
    }

    func conflicted(_ unitOfWorkId: String) {
        guard isRecording else { return }
        Counter(label: "aggstore.uow.conflicts", dimensions: dimensions(unitOfWorkId), factory: factory).increment()
    }
}
