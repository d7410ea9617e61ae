import ArgumentParser

/// `aggstore`, the operator's command-line tool for AggregateStore directories.
@main
struct AggStore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggstore",
        abstract: "Inspect, verify and exercise AggregateStore stores.",
        discussion: """
        Exit codes: 0 success; 1 the store is damaged or a check failed; 3 the store could not \
        be opened (locked, missing, I/O error); 64 a usage error (bad arguments).
        """,
        subcommands: [Info.self, GetCommand.self, QueryCommand.self, Dump.self, Events.self, Verify.self,
                      Salvage.self, Compact.self, Backup.self, Export.self, Import.self, Demo.self, Bench.self]
    )
}

/// Exit codes shared by the subcommands (`Docs/CLI.md`). Usage errors exit with
/// ArgumentParser's 64 (EX_USAGE).
enum ExitStatus {
    /// The store is damaged, or a check (verify, salvage's losses) failed.
    static let damaged = ExitCode(1)
    /// The store could not be opened: missing, locked by another process, or an I/O error.
    static let cannotOpen = ExitCode(3)
}
