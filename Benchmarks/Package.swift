// swift-tools-version: 6.2
// The benchmark harness lives in its own package so that the root package's `swift build` and
// `swift test` never compile package-benchmark, GRDB or their dependencies.
import PackageDescription

let package = Package(
    name: "AggregateStoreBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "AggregateStore", path: "../"),
    ],
    targets: []
)
