import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging

/// `aggstore verify`: checks a store end to end without modifying it.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every frame, CRC and sequence number, the index, the snapshot and the files.",
        discussion: """
        Opens the store read-only (a shared lock: it fails if a writer has the store open), \
        re-reads every frame of every segment, checks magic numbers, both CRCs, lengths, LZ4 \
        payloads, sequence continuity and outbox positions, compares the manifest with the \
        files (segments missing, files the manifest does not list), rebuilds the indexes from \
        the log and compares them with those open loaded, and checks the index snapshot: that \
        it verifies and that it with the log after it equals the rebuild (a stale snapshot, \
        which open ignores, is noted, not an error). Never modifies the store. Shows a \
        progress bar on a terminal, then a summary. Exits 0 when healthy, 1 naming the file \
        and byte offset of any damage (a torn tail included), 3 when the store cannot be opened.
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Flag(help: "Print the summary and problems as one JSON document.")
    var json = false

    /// What `--json` prints.
    struct Report: Codable {
        var healthy: Bool
        var segments: Int
        var frames: Int
        var frameBytes: UInt64
        var lastSequence: UInt64
        var liveRecords: Int
        var events: Int
        var snapshot: String
        var seconds: Double
        var problems: [Problem]

        struct Problem: Codable {
            var path: String?
            var offset: UInt64?
            var message: String
        }
    }

    func run() throws {
        var configuration = EngineConfiguration()
        configuration.readOnly = true
        let clock = ContinuousClock()
        let start = clock.now
        let engine: StorageEngine
        do {
            engine = try StorageEngine.open(at: directory, configuration: configuration, logger: Logger(label: "aggstore.verify"))
        } catch where error.code == .corruption || error.code == .unsupportedFormat {
            try finish(Report(healthy: false, segments: 0, frames: 0, frameBytes: 0, lastSequence: 0, liveRecords: 0, events: 0,
                              snapshot: "not checked", seconds: 0, problems: [problem(error)]))
            return
        } catch {
            printError("cannot open \(directory): \(error)")
            throw ExitStatus.cannotOpen
        }
        defer { try? engine.close() }
        let bar = ProgressBar(enabled: !json && standardErrorIsTerminal)
        let report = try engine.verify { progress in bar.show(done: progress.bytesChecked, of: progress.bytesTotal) }
        bar.finish()
        let elapsed = clock.now - start
        try finish(Report(healthy: report.isHealthy, segments: report.segments, frames: report.frames, frameBytes: report.frameBytes,
                          lastSequence: report.lastSequence, liveRecords: report.liveRecords, events: report.events,
                          snapshot: describe(report.snapshot),
                          seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18,
                          problems: report.problems.map(problem)))
    }

    /// Prints the report and exits 1 when it is not healthy.
    private func finish(_ report: Report) throws {
        if json {
            print(try prettyJSON(report))
        } else {
            if report.frames > 0 || report.healthy {
                print("Checked \(report.frames) frames (\(byteCount(report.frameBytes))) in \(count(report.segments, "segment")), "
                      + "sequences 1...\(report.lastSequence), in \(seconds(report.seconds)).")
                print("  live records \(report.liveRecords), events \(report.events); index snapshot: \(report.snapshot)")
            }
            for problem in report.problems {
                print("DAMAGED: \(damageLocation(path: problem.path, offset: problem.offset, in: directory)): \(problem.message)")
            }
            if report.healthy {
                print("OK: every CRC and sequence number verifies, the manifest matches the files, and the index equals a rebuild from the log.")
            } else {
                print("\(report.problems.count) problem(s) found.")
            }
        }
        if !report.healthy { throw ExitStatus.damaged }
    }

    private func problem(_ error: StoreError) -> Report.Problem {
        Report.Problem(path: error.path, offset: error.offset, message: error.message)
    }

    private func describe(_ snapshot: VerificationReport.SnapshotCheck) -> String {
        switch snapshot {
        case .absent: "none"
        case .valid: "valid, equal to a rebuild"
        case let .stale(reason): "stale, ignored at open (\(reason))"
        case let .damaged(reason): "DAMAGED (\(reason))"
        }
    }
}
