import AggregateStore
import AggregateStoreDemo
import Benchmark
import BenchmarkWorkloads
import Foundation

/// The engine's write path and lifecycle: durable commits from one writer and from N tasks,
/// compaction, and opening a store from its index snapshot and by a full rebuild.
/// Run with `swift package benchmark --target EngineBenchmarks` in Benchmarks/.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .syscalls],
        timeUnits: .microseconds,
        maxDuration: .seconds(5),
        maxIterations: 5_000)

    let writes = WriteFixture()
    Benchmark("Durable commit, 1 writer", closure: { benchmark in
        for _ in benchmark.scaledIterations { try writes.placeNext() }
    }, setup: { try writes.open("commit") }, teardown: { try writes.close() })

    // Each iteration is 256 durable units of work from `committers` tasks at once.
    for committers in [1, 4, 16, 64] {
        Benchmark("Group commit, \(committers) committers, 256 commits",
                  configuration: .init(maxDuration: .seconds(5), maxIterations: 200),
                  closure: { (benchmark: Benchmark) async throws in
            for _ in benchmark.scaledIterations { try await writes.placeConcurrently(256, committers: committers) }
        }, setup: { try writes.open("group-\(committers)") }, teardown: { try writes.close() })
    }

    // Each iteration overwrites the store's 10,000 orders (no fsync), then compacts the
    // segments that holds (only the compaction is measured).
    let compaction = CompactionFixture(orders: 10_000)
    Benchmark("Compaction of 10,000 overwritten orders",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .syscalls], maxDuration: .seconds(10), maxIterations: 20),
              closure: { benchmark in
        try compaction.overwrite()
        benchmark.startMeasurement()
        let report = try compaction.compact()
        benchmark.stopMeasurement()
        blackHole(report)
    }, setup: { try compaction.open() }, teardown: { try compaction.close() })

    for orders in [100_000, 1_000_000] {
        let store = LifecycleFixture(orders: orders)
        Benchmark("Open \(orders) orders from the index snapshot",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident], maxDuration: .seconds(10), maxIterations: 10),
                  closure: { benchmark in
            benchmark.startMeasurement()
            let opened = try store.open()
            benchmark.stopMeasurement()
            try opened.close()
        }, setup: { try store.build() })
        Benchmark("Open \(orders) orders by a full rebuild",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident], maxDuration: .seconds(20), maxIterations: 5),
                  closure: { benchmark in
            try store.removeSnapshot()
            benchmark.startMeasurement()
            let opened = try store.open()
            benchmark.stopMeasurement()
            try opened.close()
        }, setup: { try store.build() }, teardown: { try store.remove() })
    }
}
