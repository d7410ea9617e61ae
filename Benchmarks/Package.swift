// swift-tools-version: 6.2
// The benchmark harness lives in its own package so that the root package's `swift build` and
// `swift test` never compile package-benchmark, GRDB or their dependencies.
import PackageDescription

/// The root package's strict settings.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "AggregateStoreBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "AggregateStore", path: "../"),
        // Its default RuntimeInterposer trait needs a package this machine's mirror lacks, and its
        // retain/release metrics crash on Linux with Swift 6.3 (ordo-one/benchmark#349).
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
    ],
    targets: [
        // The engines under comparison (AggregateStore, SQLite through GRDB, the fsync floor) and
        // the workloads they all run, for the suites and the comparison runner.
        .target(
            name: "BenchmarkWorkloads",
            dependencies: [
                .product(name: "AggregateStore", package: "AggregateStore"),
                .product(name: "AggregateStoreDemo", package: "AggregateStore"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        // `swift run -c release compare`: the same workloads on the three engines in one process.
        .executableTarget(
            name: "compare",
            dependencies: [
                "BenchmarkWorkloads",
                .product(name: "AggregateStore", package: "AggregateStore"),
                .product(name: "AggregateStoreDemo", package: "AggregateStore"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Compare",
            swiftSettings: strict
        ),
        // package-benchmark suites: `swift package benchmark`.
        .executableTarget(
            name: "EngineBenchmarks",
            dependencies: [
                "BenchmarkWorkloads",
                .product(name: "AggregateStore", package: "AggregateStore"),
                .product(name: "AggregateStoreDemo", package: "AggregateStore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/EngineBenchmarks",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "DataStoreBenchmarks",
            dependencies: [
                "BenchmarkWorkloads",
                .product(name: "AggregateStore", package: "AggregateStore"),
                .product(name: "AggregateStoreDemo", package: "AggregateStore"),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/DataStoreBenchmarks",
            swiftSettings: strict,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
