public import CoreMetrics
import Foundation
public import Tracing

extension DataStore {
    /// Settings of a ``DataStore``, a `Sendable` struct of `var`s in GRDB's shape.
    ///
    /// ```swift
    /// var configuration = DataStore.Configuration()
    /// configuration.engine.segmentSize = 16 << 20
    /// configuration.ids = .deterministic()          // in tests
    /// let store = try DataStore.open(at: path, configuration: configuration)
    /// ```
    public struct Configuration: Sendable {
        /// The storage engine's settings: durability, segment size, limits, cache.
        public var engine = EngineConfiguration()
        /// Generates unit-of-work and event ids.
        public var ids = CanonicalIdGenerator()
        /// The metrics backend; nil uses the process-wide `MetricsSystem.factory`.
        public var metricsFactory: (any MetricsFactory)?
        /// The tracer; nil uses the process-wide `InstrumentationSystem.tracer`.
        public var tracer: (any Tracer)?
        /// Whether per-unit-of-work metrics carry the unit-of-work id as the `uow.id` dimension,
        /// as the specification asks. Each id makes a new time series, so a backend that keeps
        /// every series (Prometheus) should turn this off and correlate through logs and spans.
        public var metricsCarryUnitOfWorkId = true
        /// Event delivery: retry backoff and batch size.
        public var delivery = DeliveryPolicy()
        /// The current time in microseconds since the epoch, for events' occurred-at; tests
        /// fix it.
        public var clock: @Sendable () -> Int64 = { Timestamp(Date()).microsecondsSinceEpoch }

        /// The default settings.
        public init() {}
    }
}
