import AggregateStoreEngine
import ArgumentParser
import Logging

/// `aggstore verify`: checks a store end to end without modifying it.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every frame, CRC and sequence number, and the index against a rebuild.",
        discussion: """
        Opens the store read-only (a shared lock: it fails if a writer has the store open), \
        re-reads every frame of every segment, checks magic numbers, both CRCs, lengths, LZ4 \
        payloads and sequence continuity, compares the manifest with the files, rebuilds the \
        index from the log and compares it. Never modifies the store. Exits 0 when healthy, \
        1 naming the file and byte offset of any damage (a torn tail included), 3 when the \
        store cannot be opened.
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    func run() throws {
        var configuration = EngineConfiguration()
        configuration.readOnly = true
        let engine: StorageEngine
        do {
            engine = try StorageEngine.open(at: directory, configuration: configuration, logger: Logger(label: "aggstore.verify"))
        } catch where error.code == .corruption || error.code == .unsupportedFormat {
            print("DAMAGED: \(location(of: error)): \(error.message)")
            throw ExitStatus.damaged
        } catch {
            printError("cannot open \(directory): \(error)")
            throw ExitStatus.cannotOpen
        }
        defer { try? engine.close() }
        let report = try engine.verify()
        print("Checked \(report.frames) frames in \(report.segments) segment(s), sequences 1...\(report.lastSequence).")
        guard report.isHealthy else {
            for problem in report.problems { print("DAMAGED: \(location(of: problem)): \(problem.message)") }
            throw ExitStatus.damaged
        }
        print("OK: every CRC and sequence number verifies and the index equals a rebuild from the log.")
    }

    private func location(of error: StoreError) -> String {
        (error.path ?? directory) + (error.offset.map { " at offset \($0)" } ?? "")
    }
}
