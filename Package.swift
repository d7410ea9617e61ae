// swift-tools-version: 6.2
import PackageDescription

/// Strict settings applied to every Swift target, as swift-log does.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "AggregateStore",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AggregateStore", targets: ["AggregateStore"]),
        .library(name: "AggregateStoreMaintenance", targets: ["AggregateStoreMaintenance"]),
        .library(name: "AggregateStoreTestKit", targets: ["AggregateStoreTestKit"]),
        // The demo workload (sales orders with items, customers, events), shared by `aggstore`'s
        // demo and bench and by the benchmark harness in Benchmarks/.
        .library(name: "AggregateStoreDemo", targets: ["AggregateStoreDemo"]),
        .executable(name: "aggstore", targets: ["AggregateStoreCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing", from: "1.7.0"),
    ],
    targets: [
        // liblz4 from the system (apt: liblz4-dev); see `make deps`.
        .systemLibrary(
            name: "CLZ4",
            pkgConfig: "liblz4",
            providers: [.apt(["liblz4-dev"]), .brew(["lz4"])]
        ),
        // CRC32C with the SSE4.2 instruction and a portable slicing-by-8 fallback.
        .target(name: "CCRC32C"),
        // The storage engine: format, file-system seam, log, recovery, indexes.
        .target(
            name: "AggregateStoreEngine",
            dependencies: [
                "CLZ4", "CCRC32C",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict + [.define("ENABLE_SYSCALL_MOCKING", .when(configuration: .debug))]
        ),
        // The public API for component developers: aggregates, units of work, the DataStore and
        // its query DSL, the outbox's EventEngine.
        .target(
            name: "AggregateStore",
            dependencies: [
                "AggregateStoreEngine",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
        // The raw escape hatch (scans, migrations, index rebuilds), kept out of the domain-facing
        // module so that domain code cannot reach it by accident.
        .target(
            name: "AggregateStoreMaintenance",
            dependencies: ["AggregateStore"],
            swiftSettings: strict
        ),
        // Test file systems and helpers, shared by the tests, the crash suite and benchmarks.
        .target(
            name: "AggregateStoreTestKit",
            dependencies: ["AggregateStoreEngine"],
            swiftSettings: strict
        ),
        .target(
            name: "AggregateStoreDemo",
            dependencies: ["AggregateStore", "AggregateStoreEngine"],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "AggregateStoreCLI",
            dependencies: [
                "AggregateStore", "AggregateStoreEngine", "AggregateStoreDemo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The child process of the SIGKILL crash tests (issue 3, item 5): commits a deterministic
        // workload and reports issued and acknowledged commits on stdout until it is killed. Not
        // a product; built for the engine tests, which run it from the build products folder.
        .executableTarget(
            name: "AggregateStoreCrashChild",
            dependencies: [
                "AggregateStoreEngine", "AggregateStoreTestKit",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/CrashChild",
            swiftSettings: strict
        ),
        .testTarget(
            name: "AggregateStoreEngineTests",
            dependencies: [
                "AggregateStoreEngine", "AggregateStoreTestKit", "AggregateStoreCrashChild",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
            ],
            swiftSettings: strict + [.define("ENABLE_SYSCALL_MOCKING", .when(configuration: .debug))]
        ),
        // Runs the built `aggstore` binary as a child process (exit codes, the lock across processes).
        .testTarget(
            name: "AggregateStoreCLITests",
            dependencies: [
                "AggregateStoreCLI", "AggregateStore", "AggregateStoreEngine", "AggregateStoreTestKit",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AggregateStoreTests",
            dependencies: [
                "AggregateStore", "AggregateStoreMaintenance", "AggregateStoreTestKit",
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "InMemoryTracing", package: "swift-distributed-tracing"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: strict
        ),
    ]
)

// libFuzzer targets (issue 3, item 8; Docs/FUZZING.md). Only `scripts/fuzz.sh` sets
// AGGSTORE_FUZZ, and builds them with `-sanitize=fuzzer`, which supplies `main`: without it they
// cannot link, so a plain `swift build` or `swift test` never sees them (as Hummingbird gates its
// benchmarks behind ENABLE_HB_BENCHMARKS).
if Context.environment["AGGSTORE_FUZZ"] != nil {
    // The harnesses define `LLVMFuzzerTestOneInput` and no `main`.
    let fuzzSettings = strict + [.unsafeFlags(["-parse-as-library"])]
    package.targets += [
        .target(name: "FuzzSupport", dependencies: ["AggregateStoreEngine"], path: "Fuzz/FuzzSupport",
                swiftSettings: strict),
        .executableTarget(name: "FuzzFrame", dependencies: ["AggregateStoreEngine", "FuzzSupport"],
                          path: "Fuzz/FuzzFrame", swiftSettings: fuzzSettings),
        .executableTarget(name: "FuzzPayload", dependencies: ["AggregateStoreEngine", "FuzzSupport"],
                          path: "Fuzz/FuzzPayload", swiftSettings: fuzzSettings),
        .executableTarget(name: "FuzzManifest", dependencies: ["AggregateStoreEngine", "FuzzSupport"],
                          path: "Fuzz/FuzzManifest", swiftSettings: fuzzSettings),
        .executableTarget(
            name: "FuzzRecovery",
            dependencies: [
                "AggregateStoreEngine", "AggregateStoreTestKit", "FuzzSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Fuzz/FuzzRecovery", swiftSettings: fuzzSettings),
    ]
}
