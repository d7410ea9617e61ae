import AggregateStoreEngine
import ArgumentParser

/// `aggstore dump`: the log, frame by frame and operation by operation, as JSON lines.
struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the log's frames and their operations as JSON lines.",
        discussion: """
        Reads the segment files directly, without the store's lock and without writing \
        anything, so it works beside a service that has the store open and is committing. \
        Every frame is checked (magic, both CRCs, lengths, LZ4, payload, sequence order) before \
        it is printed.

        Each frame prints one line {"kind":"frame","sequence":..,"segment":..,"offset":.., \
        "unitOfWork":..,"committedAt":..,"storedBytes":..,"payloadBytes":..,"compacted":..} \
        (committedAt in microseconds since 1970), then one line per operation: "put" (table, \
        id, version, foreignKeys, record), "delete" (table, id, version) and "event" \
        (position, id, type, aggregateTable, aggregateId, occurredAt, payload). Records and \
        event payloads print as the JSON of their document; bytes that are not in the record \
        format print base64 under recordBase64 or payloadBase64. A compacted segment holds only \
        the live parts of its commits, and its sequence numbers may skip.

        An incomplete frame at the very end of the log is a commit still being written (or the \
        torn tail of a crash): it is reported on standard error and is not an error. Damage \
        anywhere else prints everything read before it, then an error naming the file and byte \
        offset, and exits 1. Exits 3 when the store cannot be read.
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Option(help: "Start at this commit sequence number (frames before it are read but not printed).")
    var fromSequence: UInt64 = 1

    @Option(help: "Print only this table's puts and deletes and the events about its aggregates (and the frames holding them).")
    var table: String?

    func validate() throws {
        guard fromSequence >= 1 else { throw ValidationError("--from-sequence must be at least 1") }
    }

    func run() throws {
        var reader = LogReader(directory: directory, from: fromSequence)
        let pass: LogReader.Pass
        do throws(StoreError) {
            pass = try reader.read { frame in
                for line in lines(of: frame) { print(line) }
            }
        } catch {
            // What was read before the damage goes out before the error that ends it.
            flushStandardOutput()
            throw exitStatus(for: error, directory: directory)
        }
        flushStandardOutput()
        if let tail = pass.pendingTail {
            printError("the log ends in \(tail.bytes) bytes of an incomplete frame at offset \(tail.offset) of \(tail.path) (a commit being written, or a torn tail): \(tail.reason)")
        }
    }

    /// The frame's line and one line per operation kept by `--table`; nothing when it keeps none.
    private func lines(of frame: LogFrame) -> [String] {
        let sequence = frame.header.sequence
        var lines: [String] = []
        for operation in frame.payload.operations {
            var line = JSONLine()
            switch operation {
            case let .put(table, id, version, foreignKeys, record):
                guard self.table == nil || self.table == table else { continue }
                line.add("kind", "put")
                line.add("sequence", sequence)
                line.add("table", table)
                line.add("id", id)
                line.add("version", version)
                line.add("foreignKeys", json: JSONLine.array(foreignKeys.map { key in
                    var pair = JSONLine()
                    pair.add("field", key.field)
                    pair.add("value", key.value)
                    return pair.string
                }))
                line.add(document: "record", frame.record(record))
            case let .delete(table, id, version):
                guard self.table == nil || self.table == table else { continue }
                line.add("kind", "delete")
                line.add("sequence", sequence)
                line.add("table", table)
                line.add("id", id)
                line.add("version", version)
            case let .event(event, position):
                guard table == nil || table == event.aggregateTable else { continue }
                line.add("kind", "event")
                line.add("sequence", sequence)
                line.add("position", position)
                line.add(event: event)
            }
            lines.append(line.string)
        }
        guard table == nil || !lines.isEmpty else { return [] }
        var line = JSONLine()
        line.add("kind", "frame")
        line.add("sequence", sequence)
        line.add("segment", frame.segmentId)
        line.add("offset", frame.offset)
        line.add("unitOfWork", frame.payload.unitOfWorkId)
        line.add("committedAt", frame.payload.commitTimestamp)
        line.add("storedBytes", frame.header.storedLength)
        line.add("payloadBytes", frame.header.uncompressedLength)
        line.add("compacted", frame.isCompacted)
        return [line.string] + lines
    }
}
