import ArgumentParser
import BenchmarkWorkloads
import Foundation

/// `swift run -c release compare`: the same workloads on AggregateStore, SQLite through GRDB
/// and the fsync floor, in one process, with a table of medians, 99th percentiles and ratios,
/// and Markdown, CSV and SVG reports.
@main
struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare AggregateStore with SQLite (GRDB, WAL, synchronous=FULL) and the fsync floor.",
        discussion: """
            Runs durable commits from one writer and from N concurrent committers, and lookups and a \
            filtered scan on stores of --orders orders, alternating the engines' order round by round. \
            Prints a table and writes compare.md, compare.csv and compare.svg to --results.
            """)

    @Option(help: "Where the engines' stores go (a new directory; removed afterwards unless --keep).")
    var path = NSTemporaryDirectory() + "aggstore-compare-\(getpid())"

    @Option(help: "Where the reports go.")
    var results = "results"

    @Option(help: "Rounds of each workload; the engines' order rotates each round.")
    var rounds = 3

    @Option(help: "Durable single-writer commits per engine per round.")
    var commits = 1000

    @Option(help: "The numbers of concurrent committers.")
    var committers: [Int] = [1, 4, 16, 64]

    @Option(help: "Durable commits per engine per round at each number of committers.")
    var concurrentCommits = 4000

    @Option(help: "Orders in the stores of the read workloads.")
    var orders = 100_000

    @Option(help: "Typed primary-key loads per round (and a hundredth as many IN lists, a tenth as many FK lookups).")
    var lookups = 20_000

    @Flag(help: "Tiny sizes, for CI: checks that the comparison still runs, not how fast.")
    var smoke = false

    @Flag(help: "Keep the stores.")
    var keep = false

    mutating func run() async throws {
        if smoke {
            (rounds, commits, committers, concurrentCommits, orders, lookups) = (2, 20, [1, 4], 40, 2_000, 200)
        }
        guard !FileManager.default.fileExists(atPath: path) else { throw ValidationError("\(path) exists; give a new directory") }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { if !keep { try? FileManager.default.removeItem(atPath: path) } }

        var comparison = Comparison(directory: path, rounds: rounds, commits: commits, concurrency: committers,
                                    groupCommits: concurrentCommits, readOrders: orders, lookups: lookups)
        comparison.results.notes.append("\(rounds) rounds, engines alternating; stores in \(path); \(ProcessInfo.processInfo.activeProcessorCount) processors; "
                                        + "run \(ISO8601DateFormatter().string(from: Date()))\(smoke ? "; SMOKE RUN, sizes too small to mean anything" : "")")
        print("durable commits, 1 writer ...")
        try comparison.durableCommits()
        print("durable commits, \(committers.map(String.init).joined(separator: ", ")) committers ...")
        try await comparison.concurrentCommits()
        print("reads on \(orders) orders ...")
        try comparison.reads()

        let report = Report(results: comparison.results, judgesGoals: !smoke)
        print("")
        print(report.text)
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        try report.markdown(chartFile: "compare.svg").write(toFile: results + "/compare.md", atomically: false, encoding: .utf8)
        try report.csv.write(toFile: results + "/compare.csv", atomically: false, encoding: .utf8)
        try Chart(results: comparison.results).svg.write(toFile: results + "/compare.svg", atomically: false, encoding: .utf8)
        print("\nwrote \(results)/compare.md, compare.csv and compare.svg")
    }
}
