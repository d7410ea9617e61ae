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
        sealed segment at least --minimum-dead-ratio dead, and closes it. Shows a progress bar \
        on a terminal. Nothing changes if the disk has too little room for the output.
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
        let bar = ProgressBar(enabled: isatty(STDERR_FILENO) == 1)
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
            print("Nothing to compact: no sealed segment is \(Int(minimumDeadRatio * 100)) % dead.")
            return
        }
        print("Compacted \(report.segmentsCompacted) segments into \(report.segmentsWritten) in \(seconds(report.seconds)): "
              + "\(report.bytesBefore) -> \(report.bytesAfter) bytes; \(report.recordsMoved) live records moved, "
              + "\(report.tombstonesDropped) tombstones and \(report.eventsDropped) events dropped.")
    }
}

/// A one-line progress bar on standard error, redrawn in place; silent when not on a terminal.
final class ProgressBar: @unchecked Sendable {
    private let enabled: Bool
    private var lastPercent = -1

    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// Redraws the bar when the percentage changed. Called from one thread at a time.
    func show(done: UInt64, of total: UInt64) {
        guard enabled, total > 0 else { return }
        let percent = Int(min(100, done * 100 / total))
        guard percent != lastPercent else { return }
        lastPercent = percent
        let width = 40
        let filled = width * percent / 100
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] \(percent) %"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Ends the bar's line.
    func finish() {
        guard enabled, lastPercent >= 0 else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
