import AggregateStore
import AggregateStoreTestKit
import InMemoryLogging
import InMemoryTracing
import Logging
import MetricsTestKit
import Testing
import Tracing

@Suite("Observability: every log line, span and metric of a unit of work carries its id")
struct ObservabilityTests {
    struct ActionFailed: Error {}

    @Test func committedAbortedAndConflictingUnitsOfWorkAreCorrelated() throws {
        let directory = TemporaryDirectory()
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "test", factory: { _ in logs })
        logger.logLevel = .trace
        let metrics = TestMetrics()
        let tracer = InMemoryTracer()
        var configuration = DataStore.Configuration()
        configuration.engine.durability = .unsafeNoSync
        configuration.metricsFactory = metrics
        configuration.tracer = tracer
        let store = try DataStore.open(at: directory.path, configuration: configuration, logger: logger)
        defer { try? store.close() }

        try UnitOfWork.run(on: store, id: "uow-ok") { tx throws in try store.create(order("so-1"), in: tx) }
        _ = try? UnitOfWork.run(on: store, id: "uow-thrown") { tx throws in
            try store.create(order("so-2"), in: tx)
            throw ActionFailed()
        }
        let loser = try UnitOfWork.begin(on: store, id: "uow-conflict")
        _ = try store.load(Order.self, id: "so-1", in: loser.context)
        try UnitOfWork.run(on: store, id: "uow-winner") { tx throws in
            try store.update(Order.self, id: "so-1", set: ["status": "paid"], in: tx)
        }
        try store.save(order("so-1", status: "lost"), in: loser.context)
        do {
            try loser.commit()
            Issue.record("the losing unit of work committed")
        } catch {}

        // Logs: every line about a unit of work names it, aborted ones included.
        let unitOfWorkLines = logs.entries.filter { "\($0.message)".contains("unit of work") }
        #expect(!unitOfWorkLines.isEmpty)
        for entry in unitOfWorkLines {
            #expect(entry.metadata["uow.id"] != nil, "\(entry.message) has no uow.id")
        }
        for id in ["uow-ok", "uow-thrown", "uow-conflict", "uow-winner"] {
            #expect(unitOfWorkLines.contains { $0.metadata["uow.id"] == "\(id)" }, "no log line for \(id)")
        }
        #expect(unitOfWorkLines.contains { $0.metadata["uow.id"] == "uow-thrown" && "\($0.message)".contains("aborted") })

        // Metrics: commits, aborts and conflicts, each with the id.
        #expect(metrics.counterTotal(label: "aggstore.uow.commits", dimensions: [("uow.id", "uow-ok")]) == 1)
        #expect(metrics.counterTotal(label: "aggstore.uow.aborts", dimensions: [("uow.id", "uow-thrown")]) == 1)
        #expect(metrics.counterTotal(label: "aggstore.uow.conflicts", dimensions: [("uow.id", "uow-conflict")]) == 1)
        #expect(metrics.counterTotal(label: "aggstore.uow.aborts", dimensions: [("uow.id", "uow-conflict")]) == 1)
        #expect(metrics.counterTotal(label: "aggstore.uow.commits") == 2)
        #expect(try metrics.expectTimer("aggstore.commit.duration", [("uow.id", "uow-ok")]).values.count == 1)
        // Two commits wrote frames; their bytes and compression ratios are recorded.
        #expect(metrics.counterTotal(label: "aggstore.bytes.written") > 0)
        #expect(try metrics.expectRecorder("aggstore.compression.ratio").values.count == 2)

        // Spans: one per unit of work, with its id and outcome.
        let spans = tracer.finishedSpans.filter { $0.operationName == "aggstore.unitOfWork" }
        let outcomes = Dictionary(uniqueKeysWithValues: spans.map { span in
            (text(span.attributes["aggstore.uow.id"]), text(span.attributes["aggstore.uow.outcome"]))
        })
        #expect(outcomes == ["uow-ok": "committed", "uow-thrown": "aborted", "uow-conflict": "failed", "uow-winner": "committed"])
        #expect(spans.first { text($0.attributes["aggstore.uow.id"]) == "uow-conflict" }?.errors.count == 1)
    }

    private func text(_ attribute: (any SpanAttributeConvertible)?) -> String {
        if case let .string(value)? = attribute?.toSpanAttribute() { return value }
        return "none"
    }

    @Test func aDurableCommitRecordsItsFsyncTime() throws {
        let metrics = TestMetrics()
        let fixture = try StoreFixture {
            $0.metricsFactory = metrics
            $0.engine.durability = .synchronous
        }
        try UnitOfWork.run(on: fixture.store, id: "uow-durable") { tx throws in try fixture.store.create(order("so-1"), in: tx) }
        let fsync = try metrics.expectTimer("aggstore.fsync.duration", [("uow.id", "uow-durable")])
        #expect(fsync.values.count == 1 && fsync.values[0] > 0)
    }

    @Test func metricsCanLeaveTheIdOutToBoundCardinality() throws {
        let metrics = TestMetrics()
        let fixture = try StoreFixture {
            $0.metricsFactory = metrics
            $0.metricsCarryUnitOfWorkId = false
        }
        try UnitOfWork.run(on: fixture.store, id: "uow-1") { tx throws in try fixture.store.create(order("so-1"), in: tx) }
        let counters = metrics.counters(label: "aggstore.uow.commits")
        #expect(counters.count == 1)
        #expect(counters.allSatisfy { counter in !counter.dimensions.contains { $0.0 == "uow.id" } })
    }
}
