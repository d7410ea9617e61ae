import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `aggstore compact`: rewrites the sealed segments past a dead-byte ratio now.
struct Compact: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compact a store: rewrite its sealed segments with only their live records.",
        discussion: """
        Opens the store (an exclusive lock: no other process may have it open), compacts every \
        sealed segment at least --minimum-dead-ratio dead, and closes it. Events every stored \
        subscriber cursor has passed are dead (none is dropped while no cursor is stored), as \
        in a running store. Shows a progress bar on a terminal, then the store before and \
        after. Nothing changes if the disk has too little room for the output.
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Option(help: "Compact a sealed segment once at least this fraction of its bytes is dead (0 to 1).")
    var minimumDeadRatio: Double = 0.5

    func run() throws {
        guard (0...1).contains(minimumDeadRatio) else { throw ValidationError("--minimum-dead-ratio must be between 0 and 1") }
        var configuration = EngineConfiguration()
        configuration.compaction.isAutomatic = false
        let engine = try openOrExit(directory, configuration: configuration, logger: Logger(label: "aggstore.compact"))
        defer { try? engine.close() }
        try releaseDeliveredEvents(engine)
        let before = try engine.statistics()
        let bar = ProgressBar(enabled: standardErrorIsTerminal)
        let report: CompactionReport
        do {
            report = try engine.compact(minimumDeadRatio: minimumDeadRatio) { progress in
                bar.show(done: progress.bytesRead, of: progress.bytesTotal)
            }
        } catch {
            bar.finish()
            printError("compaction failed; the store is unchanged: \(error)")
            throw ExitStatus.damaged
        }
        bar.finish()
        guard report.segmentsCompacted > 0 else {
            print("Nothing to compact: no sealed segment is \(percent(minimumDeadRatio)) dead.")
            print("  \(summary(before))")
            return
        }
        let after = try engine.statistics()
        print("Compacted \(report.segmentsCompacted) segments into \(report.segmentsWritten) in \(seconds(report.seconds)): "
              + "\(report.recordsMoved) live records moved, \(report.tombstonesDropped) tombstones and "
              + "\(report.eventsDropped) events dropped.")
        print("  before: \(summary(before))")
        print("  after:  \(summary(after))")
    }

    private func summary(_ statistics: EngineStatistics) -> String {
        "\(count(statistics.segments.count, "segment")), \(byteCount(statistics.logBytes)) on disk, "
            + "\(percent(statistics.deadRatio)) dead; \(statistics.liveRecords) live records, \(statistics.frames) frames"
    }
}
