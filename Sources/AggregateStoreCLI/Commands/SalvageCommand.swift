import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging

/// `aggstore salvage`: copies every commit that survives in a damaged store into a new one,
/// and reports what was lost.
struct Salvage: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy every valid commit of a damaged store into a new store and report what was lost.",
        discussion: """
        Never modifies SRC: it reads the files directly, without the lock, so it works on a \
        store that cannot be opened (and beside a process that holds it). The segments are the \
        ones MANIFEST lists; if MANIFEST is damaged or missing, every NNNNNNNN.seg file is read. \
        Each segment is read frame by frame with every check the engine makes; after damage \
        the reader searches forward for the next frame magic whose frame fully verifies (both \
        CRCs, with the store's salt from the segment header or manifest) and goes on there.

        Every valid commit is committed, in sequence order, into a NEW store at DST (which must \
        not exist) as a batch with the same unit-of-work id, records, foreign keys and events. \
        DST assigns its own sequence numbers, versions, event positions and commit times: they \
        are dense again, so they differ from SRC's after a loss or a compaction. The copy is \
        made durable before salvage exits.

        The report lists each damaged byte range (file, offset, length) and the sequence \
        numbers missing between the commits found (gaps that compaction made on purpose, inside \
        an undamaged compacted segment, are not losses). It goes to standard output, or to FILE \
        with --report (standard output then gets the summary); --json writes it as JSON. A \
        progress bar is drawn on standard error when it is a terminal.

        Exits 0 when nothing was lost, 1 when something was, 3 when SRC cannot be read or DST \
        exists or cannot be created.
        """
    )

    @Argument(help: "The damaged store directory (read only).")
    var source: String

    @Argument(help: "The new store directory to create; it must not exist.")
    var destination: String

    @Option(help: ArgumentHelp("Write the report to this file instead of standard output.", valueName: "file"))
    var report: String?

    @Flag(help: "Write the report as JSON.")
    var json = false

    func run() throws {
        let fileSystem = PosixFileSystem()
        guard (try? fileSystem.kind(of: destination)) == .missing else {
            printError("\(destination) exists: salvage copies into a new store")
            throw ExitStatus.cannotOpen
        }
        var summary = SalvageReport(source: source, destination: destination, segmentList: "")
        var scan = SalvageScan(directory: source)
        let bar = ProgressBar(enabled: standardErrorIsTerminal)
        // Half the bar for the scan, half for the copy, which reads the bytes again.
        let total: UInt64
        do throws(StoreError) {
            total = try scan.listSegments(into: &summary) * 2
            try scan.scan(into: &summary) { bar.show(done: $0, of: total) }
        } catch {
            bar.finish()
            printError("cannot read \(source): \(error)")
            throw ExitStatus.cannotOpen
        }
        do throws(StoreError) {
            try copy(&scan, into: &summary) { bar.show(done: total / 2 + $0, of: total) }
        } catch {
            bar.finish()
            printError("cannot write \(destination): \(error)")
            throw ExitStatus.cannotOpen
        }
        bar.finish()
        try write(summary)
        if summary.lostSomething { throw ExitStatus.damaged }
    }

    /// Commits every valid frame, in sequence order, into a new store at ``destination``.
    private func copy(_ scan: inout SalvageScan, into summary: inout SalvageReport,
                      progress: (UInt64) -> Void) throws(StoreError) {
        defer { scan.close() }
        var configuration = EngineConfiguration()
        configuration.compaction.isAutomatic = false
        // Synced once at the end (below) rather than once per commit: a crash during salvage
        // only means running it again.
        configuration.durability = .unsafeNoSync
        let logger = Logger(label: "aggstore.salvage", factory: { _ in SwiftLogNoOpLogHandler() })
        let engine = try StorageEngine.open(at: destination, configuration: configuration, logger: logger)
        var copiedBytes: UInt64 = 0
        for reference in scan.frames {
            copiedBytes += UInt64(reference.length)
            progress(copiedBytes)
            let frame: SegmentScanner.ScannedFrame
            do throws(StoreError) {
                frame = try scan.read(reference)
            } catch {
                summary.notCopied.append(.init(sequence: reference.sequence, reason: error.description))
                continue
            }
            // A compacted frame whose every operation died since holds nothing to copy.
            guard !frame.payload.operations.isEmpty else { continue }
            do throws(StoreError) {
                try engine.commit(batch(of: frame))
            } catch {
                summary.notCopied.append(.init(sequence: reference.sequence, reason: error.description))
                continue
            }
            summary.commitsCopied += 1
            if summary.firstSequence == 0 { summary.firstSequence = reference.sequence }
            summary.lastSequence = reference.sequence
            for operation in frame.payload.operations {
                switch operation {
                case .put: summary.putsCopied += 1
                case .delete: summary.deletesCopied += 1
                case .event: summary.eventsCopied += 1
                }
            }
        }
        try engine.close()
        // A writable open fsyncs the active segment and the directories before it returns
        // (`Docs/FORMAT.md`, section 5, step 10), and the segments sealed by rolls were fsynced
        // when they rolled: after it, the whole copy is durable.
        configuration.durability = .synchronous
        try StorageEngine.open(at: destination, configuration: configuration, logger: logger).close()
    }

    /// The commit's batch as its unit of work made it; DST assigns versions and positions.
    private func batch(of frame: SegmentScanner.ScannedFrame) -> WriteBatch {
        var batch = WriteBatch(unitOfWorkId: frame.payload.unitOfWorkId)
        for operation in frame.payload.operations {
            switch operation {
            case let .put(table, id, _, foreignKeys, record):
                batch.put(table: table, id: id, record: Array(frame.payloadBytes[record]), foreignKeys: foreignKeys)
            case let .delete(table, id, _):
                batch.delete(table: table, id: id)
            case let .event(event, _):
                batch.append(event)
            }
        }
        return batch
    }

    /// Writes the report to standard output, or to ``report`` with a summary on standard output.
    private func write(_ summary: SalvageReport) throws {
        let text: String
        if json {
            text = try prettyJSON(summary)
        } else {
            text = summary.text
        }
        guard let report else {
            print(text)
            return
        }
        do throws(StoreError) {
            let handle = try PosixFileSystem().open(report, mode: .createIfMissing)
            defer { try? handle.close() }
            try handle.truncate(to: 0)
            try handle.write(Array((text + "\n").utf8), at: 0)
        } catch {
            printError("cannot write the report to \(report): \(error)")
            throw ExitStatus.cannotOpen
        }
        print("Copied \(summary.commitsCopied) commits into \(destination); "
              + (summary.lostSomething ? "LOST \(summary.damaged.count) damaged byte range(s) and "
                  + "\(summary.missingSequences.reduce(0) { $0 + $1.count }) sequence number(s)" : "nothing was lost")
              + "; report in \(report).")
    }
}
