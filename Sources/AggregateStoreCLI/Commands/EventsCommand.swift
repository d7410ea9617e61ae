import AggregateStoreEngine
import ArgumentParser
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `aggstore events`: the outbox in position order, once or following new commits.
struct Events: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the outbox's events in position order, and with --follow those still to come.",
        discussion: """
        Reads the segment files directly, without the store's lock and without writing \
        anything, so it works while a service has the store open and commits. Each event \
        prints its outbox position, the sequence number and unit of work of the commit that \
        wrote it, its type, the aggregate it is about (table/id) and its payload (the JSON of \
        its document, or base64 for bytes that are not in the record format).

        With --follow it then polls the log every --poll-interval milliseconds and prints new \
        events as their commits land, until it is interrupted (SIGINT or SIGTERM), which ends \
        it with exit 0 once what it read is printed. It may print an event whose commit is \
        written but whose fsync has not returned yet. Events that compaction released (every \
        durable subscriber had passed them) are no longer in the log.

        Exits 1 naming the file and byte offset of damage, 3 when the store cannot be read.
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Option(help: "Print only events after this outbox position (0: from the first).")
    var after: UInt64 = 0

    @Option(help: "Stop after printing this many events (with --follow too).")
    var limit: Int?

    @Flag(help: "Keep polling and print new events as they are committed, until SIGINT or SIGTERM.")
    var follow = false

    @Option(help: "With --follow, milliseconds between polls of the log.")
    var pollInterval: Int = 200

    @Flag(help: "Print one JSON object per line instead of text.")
    var json = false

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard pollInterval >= 1 else { throw ValidationError("--poll-interval must be at least 1 millisecond") }
    }

    func run() throws {
        if follow { stopOnTerminationSignals() }
        var reader = LogReader(directory: directory)
        // A long poll must not hold a lock a starting service needs.
        reader.checksStrictlyWhenUnlocked = !follow
        var printed = 0
        while true {
            do throws(StoreError) {
                _ = try reader.read { frame in
                    for case let .event(event, position) in frame.payload.operations where position > after {
                        guard limit.map({ printed < $0 }) ?? true else { return }
                        print(line(event, position: position, frame: frame))
                        printed += 1
                    }
                }
            } catch {
                flushStandardOutput()
                throw exitStatus(for: error, directory: directory)
            }
            flushStandardOutput()
            if !follow || limit.map({ printed >= $0 }) ?? false { return }
            if waitForNextPoll() { return }
        }
    }

    private func line(_ event: OutboxEvent, position: UInt64, frame: LogFrame) -> String {
        guard json else {
            return "\(position)  seq \(frame.header.sequence)  \(frame.payload.unitOfWorkId)  \(event.type)  "
                + "\(event.aggregateTable)/\(event.aggregateId)  \(documentText(event.payload))"
        }
        var line = JSONLine()
        line.add("position", position)
        line.add("sequence", frame.header.sequence)
        line.add("unitOfWork", frame.payload.unitOfWorkId)
        line.add("committedAt", frame.payload.commitTimestamp)
        line.add(event: event)
        return line.string
    }

    /// Sleeps one poll interval, in slices so a termination signal ends it promptly; true when
    /// a signal asked to stop.
    private func waitForNextPoll() -> Bool {
        var remaining = pollInterval
        while remaining > 0 {
            if terminationRequested.load(ordering: .relaxed) { return true }
            let slice = min(remaining, 50)
            usleep(UInt32(slice) * 1000)
            remaining -= slice
        }
        return terminationRequested.load(ordering: .relaxed)
    }
}

/// Set by the SIGINT and SIGTERM handlers of `events --follow`. A lock-free atomic, because a
/// signal handler may do nothing else safely; the poll loop sees it and ends normally, so the
/// output is flushed and the exit status is 0.
private let terminationRequested = Atomic<Bool>(false)

private func stopOnTerminationSignals() {
    var signals = sigset_t()
    sigemptyset(&signals)
    for signalNumber in [SIGINT, SIGTERM] {
        signal(signalNumber) { _ in terminationRequested.store(true, ordering: .relaxed) }
        sigaddset(&signals, signalNumber)
    }
    // A child inherits its parent's blocked signals (Foundation's `Process` on Linux passes
    // them on), and a blocked SIGTERM would stay pending forever: unblock the two on this
    // thread, which is the one that polls.
    pthread_sigmask(SIG_UNBLOCK, &signals, nil)
}
