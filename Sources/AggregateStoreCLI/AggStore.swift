import ArgumentParser

/// `aggstore`, the operator's command-line tool for AggregateStore directories.
@main
struct AggStore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggstore",
        abstract: "Inspect, verify and exercise AggregateStore stores.",
        discussion: """
        Exit codes: 0 success; 1 the store is damaged (verify) or a check failed; \
        2 usage error; 3 the store could not be opened (locked, missing, I/O error).
        """,
        subcommands: [Demo.self, Verify.self, Stats.self, Compact.self, Bench.self]
    )
}

/// Exit codes shared by the subcommands.
enum ExitStatus {
    static let damaged = ExitCode(1)
    static let cannotOpen = ExitCode(3)
}
