import AggregateStore
import AggregateStoreDemo
import Benchmark
import BenchmarkWorkloads
import Foundation

/// The engine's write path and lifecycle: durable commits from one writer and from N tasks,
/// compaction, and opening a store from its index snapshot and by a full rebuild.
/// Run with `swift package benchmark --target EngineBenchmarks` in Benchmarks/.
// Names have no spaces: `benchmark thresholds check` (1.38.1) looks for the thresholds file
// under the name as is, while `thresholds update` writes it with spaces turned to `_`.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        // System calls as read and write calls: `.syscalls` is not measured on Linux.
        metrics: [.wallClock, .throughput, .mallocCountTotal, .readSyscalls, .writeSyscalls],
        timeUnits: .microseconds,
        maxDuration: .seconds(5),
        maxIterations: 5_000,
        // On this shared virtual machine the p90 of a time moves by up to 40 % between two
        // runs a minute apart (measured 2026-12-04, CPU-only benchmarks included); allocation
        // counts do not. `benchmark thresholds check` flags what moves further than this: a
        // time that doubles, or a few more allocations.
        thresholds: [
            .wallClock: BenchmarkThresholds(relative: [.p50: 25, .p90: 50]),
            .throughput: BenchmarkThresholds(relative: [.p50: 25, .p90: 50]),
            .mallocCountTotal: BenchmarkThresholds(relative: [.p50: 5, .p90: 5]),
            // Not exact either: a group commit's write calls are its number of groups, which
            // varies with scheduling (34-47 at 16 committers), the log writes zeros ahead of
            // itself every megabyte or so, and resident memory moves by a few megabytes.
            .readSyscalls: BenchmarkThresholds(relative: [.p50: 10, .p90: 10]),
            .writeSyscalls: BenchmarkThresholds(relative: [.p50: 50, .p90: 50]),
            .peakMemoryResident: BenchmarkThresholds(relative: [.p50: 5, .p90: 5]),
        ])

    let writes = WriteFixture()
    Benchmark("durable-commit-1-writer", closure: { benchmark in
        for _ in benchmark.scaledIterations { try writes.placeNext() }
    }, setup: { try writes.open("commit") }, teardown: { try writes.close() })

    // Each iteration is 256 durable units of work from `committers` tasks at once.
    for committers in [1, 4, 16, 64] {
        Benchmark("group-commit-\(committers)-committers-256-commits",
                  configuration: .init(maxDuration: .seconds(5), maxIterations: 200),
                  closure: { (benchmark: Benchmark) async throws in
            for _ in benchmark.scaledIterations { try await writes.placeConcurrently(256, committers: committers) }
        }, setup: { try writes.open("group-\(committers)") }, teardown: { try writes.close() })
    }

    // Each iteration overwrites the store's 10,000 orders (no fsync), then compacts the
    // segments that holds (only the compaction is measured).
    let compaction = CompactionFixture(orders: 10_000)
    Benchmark("compaction-10k-overwritten-orders",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal, .writeSyscalls], maxDuration: .seconds(10), maxIterations: 20),
              closure: { benchmark in
        try compaction.overwrite()
        benchmark.startMeasurement()
        let report = try compaction.compact()
        benchmark.stopMeasurement()
        blackHole(report)
    }, setup: { try compaction.open() }, teardown: { try compaction.close() })

    for orders in [100_000, 1_000_000] {
        let store = LifecycleFixture(orders: orders)
        Benchmark("open-\(orders)-orders-from-snapshot",
                  configuration: .init(metrics: [.wallClock, .mallocCountTotal, .peakMemoryResident], maxDuration: .seconds(10), maxIterations: 10),
                  closure: { benchmark in
            benchmark.startMeasurement()
            let opened = try store.open()
            benchmark.stopMeasurement()
            try opened.close()
        }, setup: { try store.build() })
        Benchmark("open-\(orders)-orders-full-rebuild",
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
