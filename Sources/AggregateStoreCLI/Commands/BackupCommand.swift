import AggregateStoreEngine
import ArgumentParser
import Logging

/// `aggstore backup`: a consistent, verified copy of a store, even while a service writes to it.
struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy a store to a new directory, consistently, even while another process writes to it.",
        discussion: """
        The copy holds a prefix of the log: every commit acknowledged before the backup \
        started, and no part of any other. DESTINATION must not exist; its parent must.

        When no other process has SOURCE open, the store is opened read-only (a shared lock) \
        and copied by the engine. When another process has it open for writing, the files are \
        copied without the lock: the manifest is read, the segments it lists are opened (if a \
        compaction replaced one meanwhile, the copy starts over), sealed segments are copied \
        whole, and the active one up to the end of its last complete, valid frame, so a commit \
        being written at that moment is left out. SOURCE is never modified.

        Every file of the copy and its directory are fsynced, the manifest last; then the copy \
        is opened (recovered) read-only to check every frame before the summary is printed. On \
        any failure nothing is left at DESTINATION. The copy has no index snapshot: its first \
        open rebuilds the index from the log.

        Exit codes: 0 copied and checked; 1 SOURCE is damaged (the copy failed its check); 3 \
        SOURCE cannot be read or DESTINATION cannot be written (missing, I/O error, disk full); \
        64 DESTINATION already exists, or bad arguments.
        """
    )

    @Argument(help: "The store directory to copy.")
    var source: String

    @Argument(help: "The new directory for the copy; must not exist.")
    var destination: String

    func run() throws {
        let logger = Logger(label: "aggstore.backup", factory: { _ in SwiftLogNoOpLogHandler() })
        let bar = ProgressBar(enabled: standardErrorIsTerminal)
        let show: (BackupProgress) -> Void = { bar.show(done: $0.bytesCopied, of: $0.bytesTotal) }
        var configuration = EngineConfiguration()
        configuration.readOnly = true
        configuration.compaction.isAutomatic = false
        let report: BackupReport
        var lockless = false
        do throws(StoreError) {
            let engine: StorageEngine
            do throws(StoreError) {
                engine = try StorageEngine.open(at: source, configuration: configuration, logger: logger)
            } catch where error.code == .locked {
                lockless = true
                report = try StorageEngine.backupFiles(of: source, to: destination, logger: logger, progress: show)
                bar.finish()
                printSummary(report, lockless: lockless)
                return
            }
            defer { try? engine.close() }
            report = try engine.backup(to: destination, progress: show)
        } catch {
            bar.finish()
            if error.code == .duplicate {
                printError("\(destination) already exists; a backup needs a new directory (nothing was changed)")
                throw ExitCode(64)
            }
            printError("backup of \(source) failed; nothing was left at \(destination): \(error)")
            switch error.code {
            case .corruption, .unsupportedFormat: throw ExitStatus.damaged
            default: throw ExitStatus.cannotOpen
            }
        }
        bar.finish()
        printSummary(report, lockless: lockless)
    }

    private func printSummary(_ report: BackupReport, lockless: Bool) {
        let how = lockless ? "copied without the lock: another process has \(source) open" : "copied through a read-only open"
        print("Backed up \(source) to \(destination) (\(how)).")
        print("  segments       \(report.segments)")
        print("  bytes          \(report.bytes)")
        print("  commits        \(report.frames) frames, through sequence \(report.lastSequence)")
        if report.restarts > 0 { print("  restarts       \(report.restarts) (compactions replaced segments during the copy)") }
        print("OK: the copy opens and every frame verifies.")
    }
}
