import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Logging
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Class 3 of `Docs/CRASH-TESTING.md` (issue 3, item 5): real process death.
///
/// A child process (`Tests/CrashChild`, the `AggregateStoreCrashChild` executable) commits the
/// deterministic `CrashWorkload` and reports each commit on a pipe as issued (`I k`) before
/// `commit` and acknowledged (`A k`) after it returns. The child dies by `SIGKILL`, either sent
/// by the parent after a random delay (blackbox) or by itself at a named `CrashPoint`
/// (whitebox). The parent then recovers the store in-process and checks it with the
/// `CommitOracle`, settles the oracle at what recovery found, and starts the next child in the
/// same store from there. A kill keeps the page cache, so this class finds process-crash bugs
/// only, never a missing fsync (classes 1, 2 and 4 do that).
///
/// Environment:
/// - `AGGSTORE_KILL_SEED`: the seed of every random choice (delays, workloads, hit numbers); a
///   failure prints it with the command that replays it. Kill timing is wall-clock time, so a
///   replay repeats the same delays and workloads, though not always the same kill instant.
/// - `AGGSTORE_KILLS`: blackbox kills per run (default 200); `AGGSTORE_KILL_ROUNDS`: rounds in
///   one store before a fresh one (default 20); `AGGSTORE_CRASH_ROUNDS`: whitebox rounds per
///   crash point (default 3).
@Suite("SIGKILL crash tests (class 3)")
struct CrashSuiteSIGKILLTests {
    /// The segment size the child uses: small, so that rolls happen every dozen commits or so.
    static let segmentSize = 8192

    // MARK: - Blackbox

    @Test func blackboxKillsAfterARandomDelayLoseNothing() {
        let seed = environmentSeed()
        let kills = environmentInteger("AGGSTORE_KILLS", default: 200)
        let roundsPerStore = max(1, environmentInteger("AGGSTORE_KILL_ROUNDS", default: 20))
        var random = SplitMix64(seed: seed)
        let started = ContinuousClock.now
        var summary = Summary()
        var storeNumber = 0
        while summary.kills < kills {
            storeNumber += 1
            let directory = TemporaryDirectory(prefix: "aggstore-sigkill")
            let store = directory.path("store")
            let workloadSeed = random.next()
            var oracle = CommitOracle()
            for round in 1...min(roundsPerStore, kills - summary.kills) {
                let delay = Int(random.next() % 201)
                let context = Context(seed: seed, test: "blackbox", store: storeNumber, round: round,
                                      detail: "workload seed \(workloadSeed), kill after \(delay) ms")
                let start = oracle.maxIssued + 1
                guard let child = spawn(store: store, seed: workloadSeed, start: start, crashPoint: nil,
                                        stderrPath: directory.path("child.stderr"), context: context) else { return }
                // The delay counts from the child's first report, so that kills land in the
                // workload rather than in process start-up.
                child.pump(until: .now + .seconds(30), stopAtFirstLine: true)
                child.pump(until: .now + .milliseconds(delay))
                child.killNow()
                child.pump(until: nil)
                let termination = child.wait()
                summary.kills += 1
                guard termination == .signaled(SIGKILL) else {
                    Issue.record("the child was to be killed but \(termination) \(child.diagnostics) [\(context)]")
                    return
                }
                guard recoverAndCheck(store: store, oracle: &oracle, child: child, context: context,
                                      summary: &summary) != nil else { return }
            }
            // I7: reopening again gives the same state.
            guard reopenAndCheckIdempotence(store: store, oracle: oracle,
                                            context: Context(seed: seed, test: "blackbox", store: storeNumber,
                                                             round: 0, detail: "reopen after the last round")) else { return }
        }
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        print("SIGKILL blackbox: \(summary.kills) kills in \(storeNumber) stores, \(summary.acknowledged) commits acknowledged, "
            + "\(summary.recoveredUnacknowledged) recovered unacknowledged, 0 acknowledged lost, 0 partial, 0 event anomalies, "
            + "0 index mismatches, seed \(seed), \(String(format: "%.1f", seconds)) s")
    }

    // MARK: - Whitebox

    #if ENABLE_SYSCALL_MOCKING
    @Test func whiteboxKillsAtEveryCrashPointLoseNothing() {
        let seed = environmentSeed()
        let roundsPerPoint = max(1, environmentInteger("AGGSTORE_CRASH_ROUNDS", default: 3))
        var random = SplitMix64(seed: seed ^ 0x5748_4954_4542_4F58)  // "WHITEBOX": independent of the blackbox draws
        let started = ContinuousClock.now
        var summary = Summary()
        var hit: Set<CrashPoint> = []
        points: for point in CrashPoint.allCases {
            let directory = TemporaryDirectory(prefix: "aggstore-crashpoint")
            let store = directory.path("store")
            let workloadSeed = random.next()
            var oracle = CommitOracle()
            // The active segment before the round: a store is created with segment 1.
            var activeSegment: UInt64 = 1
            for round in 1...roundsPerPoint {
                let hitNumber = Int(random.next() % 20) + 1
                let context = Context(seed: seed, test: "whitebox \(point.rawValue)@\(hitNumber)", store: 1, round: round,
                                      detail: "workload seed \(workloadSeed)")
                let start = oracle.maxIssued + 1
                guard let child = spawn(store: store, seed: workloadSeed, start: start,
                                        crashPoint: "\(point.rawValue)@\(hitNumber)",
                                        stderrPath: directory.path("child.stderr"), context: context) else { return }
                // The child dies by itself; the parent only kills it if the point never fires.
                child.pump(until: .now + .seconds(60))
                if !child.reachedEndOfFile {
                    child.killNow()
                    child.pump(until: nil)
                    _ = child.wait()
                    Issue.record("the crash point never fired within 60 s \(child.diagnostics) [\(context)]")
                    continue points
                }
                let termination = child.wait()
                summary.kills += 1
                guard termination == .signaled(SIGKILL) else {
                    Issue.record("the child should have died of SIGKILL at \(point.rawValue) but \(termination) \(child.diagnostics) [\(context)]")
                    continue points
                }
                // The point was really reached: the child died inside commit k, and where exactly
                // shows in what it left behind.
                let lines = child.lines
                guard case let .issued(k)? = lines.last else {
                    Issue.record("the child's last report should be `I k` (death inside a commit) \(child.diagnostics) [\(context)]")
                    continue points
                }
                let issuedThisRound = lines.filter { if case .issued = $0 { true } else { false } }.count
                let segmentFiles = Self.segmentFiles(in: store)
                let newest = segmentFiles.last ?? (id: 0, size: -1)
                let expectedLast: UInt64
                switch point {
                case .commitAfterWriteBeforeSync, .commitAfterSyncBeforeAck:
                    // Every commit passes each commit point once; the frame's pwrite is done, so
                    // the page cache holds it and recovery finds it.
                    guard issuedThisRound == hitNumber else {
                        Issue.record("\(point.rawValue)@\(hitNumber) fired in commit \(issuedThisRound) of this child \(child.diagnostics) [\(context)]")
                        continue points
                    }
                    expectedLast = k
                case .rollAfterSegmentCreated, .rollAfterManifestInstalled:
                    // The hitNumber-th roll of this child created segment activeSegment + hitNumber,
                    // which holds only its header; commit k's frame was never written.
                    guard newest.id == activeSegment + UInt64(hitNumber), newest.size == Format.segmentHeaderLength else {
                        Issue.record("\(point.rawValue)@\(hitNumber): expected segment \(activeSegment + UInt64(hitNumber)) with only its header, found \(segmentFiles) [\(context)]")
                        continue points
                    }
                    expectedLast = k - 1
                }
                let checked = recoverAndCheck(store: store, oracle: &oracle, child: child, context: context,
                                              summary: &summary, expectedLastSequence: expectedLast) { engine in
                    let segments = try engine.statistics().segments
                    switch point {
                    case .rollAfterSegmentCreated:
                        // The manifest never listed it: recovery removes it as a leftover.
                        guard segments.last?.id == newest.id - 1, !FileManager.default.fileExists(atPath: segmentPath(store, newest.id)) else {
                            return "the leftover segment \(newest.id) should be removed; segments \(segments.map(\.id))"
                        }
                    case .rollAfterManifestInstalled:
                        // The manifest lists it: it stays, empty, as the active segment.
                        guard segments.last?.id == newest.id, segments.last?.bytes == UInt64(Format.segmentHeaderLength) else {
                            return "the new segment \(newest.id) should be active and empty; segments \(segments.map { ($0.id, $0.bytes) })"
                        }
                    case .commitAfterWriteBeforeSync, .commitAfterSyncBeforeAck:
                        break
                    }
                    activeSegment = segments.last?.id ?? activeSegment
                    return nil
                }
                guard checked != nil else { continue points }
                hit.insert(point)
            }
            guard reopenAndCheckIdempotence(store: store, oracle: oracle,
                                            context: Context(seed: seed, test: "whitebox \(point.rawValue)", store: 1,
                                                             round: 0, detail: "reopen after the last round")) else { continue }
        }
        let missed = CrashPoint.allCases.filter { !hit.contains($0) }
        #expect(missed.isEmpty, "crash points never hit (and verified): \(missed.map(\.rawValue)) [seed \(seed); replay: \(Context.replay(seed))]")
        let seconds = (ContinuousClock.now - started) / .seconds(1)
        print("SIGKILL whitebox: \(summary.kills) kills at \(hit.count)/\(CrashPoint.allCases.count) crash points, "
            + "\(summary.acknowledged) commits acknowledged, \(summary.recoveredUnacknowledged) recovered unacknowledged, "
            + "0 acknowledged lost, seed \(seed), \(String(format: "%.1f", seconds)) s")
    }
    #endif

    // MARK: - Recovery and the oracle

    /// Totals for the summary line.
    struct Summary {
        var kills = 0
        var acknowledged = 0
        /// Commits issued, not acknowledged, and found by recovery (legitimate: killed after the write).
        var recoveredUnacknowledged = 0
    }

    /// Where a failure happened and how to replay it.
    struct Context: CustomStringConvertible {
        var seed: UInt64
        var test: String
        var store: Int
        var round: Int
        var detail: String

        static func replay(_ seed: UInt64) -> String {
            "AGGSTORE_KILL_SEED=\(seed) swift test --filter CrashSuiteSIGKILLTests"
        }

        var description: String {
            "seed \(seed), \(test), store \(store), round \(round), \(detail); replay: \(Self.replay(seed))"
        }
    }

    /// Starts the crash child on `store`, or records why it could not start.
    private func spawn(store: String, seed: UInt64, start: UInt64, crashPoint: String?, stderrPath: String,
                       context: Context) -> ChildProcess? {
        do {
            return try ChildProcess.spawn(store: store, seed: seed, start: start, segmentSize: Self.segmentSize,
                                          crashPoint: crashPoint, stderrPath: stderrPath)
        } catch {
            Issue.record("\(error) [\(context)]")
            return nil
        }
    }

    /// Feeds the child's reports to the oracle, recovers the store in-process and checks it.
    /// Returns the recovered last sequence, or nil after recording a failure.
    private func recoverAndCheck(store: String, oracle: inout CommitOracle, child: ChildProcess, context: Context,
                                 summary: inout Summary, expectedLastSequence: UInt64? = nil,
                                 afterRecovery: (StorageEngine) throws -> String? = { _ in nil }) -> UInt64? {
        let workload = CrashWorkload(seed: child.seed)
        for line in child.lines {
            switch line {
            case let .issued(k):
                guard k == oracle.maxIssued + 1, oracle.maxAcknowledged == oracle.maxIssued else {
                    Issue.record("protocol: `I \(k)` after \(oracle.maxIssued) issued and \(oracle.maxAcknowledged) acknowledged \(child.diagnostics) [\(context)]")
                    return nil
                }
                oracle.issue(workload.batch(k))
            case let .acknowledged(k):
                guard k == oracle.maxIssued, oracle.maxAcknowledged == k - 1 else {
                    Issue.record("protocol: `A \(k)` after \(oracle.maxIssued) issued and \(oracle.maxAcknowledged) acknowledged \(child.diagnostics) [\(context)]")
                    return nil
                }
                oracle.acknowledge(k)
                summary.acknowledged += 1
            case let .error(k, message):
                Issue.record("the child failed at commit \(k): \(message) \(child.diagnostics) [\(context)]")
                return nil
            case let .garbage(text):
                Issue.record("the child reported an unreadable line \(text.debugDescription) \(child.diagnostics) [\(context)]")
                return nil
            }
        }
        var configuration = EngineConfiguration()
        configuration.segmentSize = Self.segmentSize
        configuration.durability = .synchronous
        do {
            let engine = try StorageEngine.open(at: store, configuration: configuration, logger: quietLogger)
            defer { try? engine.close() }
            let files = try FileManager.default.contentsOfDirectory(atPath: store)
            let last = try oracle.check(engine, events: try engine.loggedEvents(), files: files)
            if let expectedLastSequence, last != expectedLastSequence {
                Issue.record("recovered up to \(last), expected exactly \(expectedLastSequence) for this crash point \(child.diagnostics) [\(context)]")
                return nil
            }
            if let problem = try afterRecovery(engine) {
                Issue.record("\(problem) [\(context)]")
                return nil
            }
            if last > oracle.maxAcknowledged { summary.recoveredUnacknowledged += 1 }
            oracle.settle(at: last)
            try engine.close()
            return last
        } catch {
            Issue.record("after the kill (issued \(oracle.maxIssued), acknowledged \(oracle.maxAcknowledged)): \(error) \(child.diagnostics) [\(context)]")
            return nil
        }
    }

    /// I7: a second open finds the same commits and passes the oracle again.
    private func reopenAndCheckIdempotence(store: String, oracle: CommitOracle, context: Context) -> Bool {
        var configuration = EngineConfiguration()
        configuration.segmentSize = Self.segmentSize
        do {
            let engine = try StorageEngine.open(at: store, configuration: configuration, logger: quietLogger)
            defer { try? engine.close() }
            let last = try oracle.check(engine, events: try engine.loggedEvents(),
                                        files: try FileManager.default.contentsOfDirectory(atPath: store))
            guard last == oracle.maxIssued else {
                Issue.record("I7: the second open recovered up to \(last), the first up to \(oracle.maxIssued) [\(context)]")
                return false
            }
            return true
        } catch {
            Issue.record("I7: \(error) [\(context)]")
            return false
        }
    }

    /// The segment files in a store directory, by id, with their sizes.
    static func segmentFiles(in store: String) -> [(id: UInt64, size: Int)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: store)) ?? []
        return names.compactMap { name -> (id: UInt64, size: Int)? in
            guard name.hasSuffix(".seg"), let id = UInt64(name.dropLast(4)) else { return nil }
            return (id, fileSize((store as NSString).appendingPathComponent(name)))
        }.sorted { $0.id < $1.id }
    }
}

// MARK: - The child process

/// One run of the crash child, started with `posix_spawn` and read through a pipe with `poll`.
///
/// Not Foundation's `Process`: its `waitUntilExit` polls a run loop every 50 ms, which would
/// add seconds over hundreds of kills; and the pipe here is `O_CLOEXEC`, so a child spawned by
/// another test running in parallel never inherits its write end (which would hold back EOF).
private final class ChildProcess {
    /// How the child ended.
    enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        var description: String {
            switch self {
            case let .exited(status): "exited with status \(status)"
            case let .signaled(signal): "died of signal \(signal)"
            }
        }
    }

    /// One report line.
    enum Line: Equatable {
        case issued(UInt64)
        case acknowledged(UInt64)
        case error(UInt64, String)
        case garbage(String)
    }

    /// The built child next to the test bundle, found as `CLITests` finds `aggstore`.
    static let binary: String = {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("AggregateStoreCrashChild")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            directory.deleteLastPathComponent()
        }
        return ".build/debug/AggregateStoreCrashChild"
    }()

    let pid: pid_t
    let seed: UInt64
    let stderrPath: String
    private var descriptor: Int32
    private var output: [UInt8] = []
    private(set) var reachedEndOfFile = false
    private var status: Termination?

    private init(pid: pid_t, descriptor: Int32, seed: UInt64, stderrPath: String) {
        self.pid = pid
        self.descriptor = descriptor
        self.seed = seed
        self.stderrPath = stderrPath
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = wait()
        }
        if descriptor >= 0 { close(descriptor) }
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `AggregateStoreCrashChild STORE SEED START SEGMENT_SIZE`, with
    /// `AGGSTORE_CRASH_POINT` set to `crashPoint` (or removed), stdout to a pipe and stderr to a file.
    static func spawn(store: String, seed: UInt64, start: UInt64, segmentSize: Int, crashPoint: String?,
                      stderrPath: String) throws -> ChildProcess {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw SpawnError(description: "the crash child was not built at \(binary) (it is a dependency of the engine tests)")
        }
        // Glibc's `pipe2` is not imported, so the pipe is made close-on-exec with `fcntl`, and
        // pipe creation and spawn are serialised: a child spawned by the other test of this
        // suite cannot inherit this pipe in between. (Foundation's `Process` closes every
        // inherited descriptor in its children.)
        return try spawnLock.withLock { _ throws -> ChildProcess in
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw SpawnError(description: "pipe: errno \(errno)") }
            let (readEnd, writeEnd) = (fds[0], fds[1])
            defer { close(writeEnd) }
            _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
            return try spawn(readEnd: readEnd, writeEnd: writeEnd, store: store, seed: seed, start: start,
                             segmentSize: segmentSize, crashPoint: crashPoint, stderrPath: stderrPath)
        }
    }

    private static let spawnLock = Mutex(())

    private static func spawn(readEnd: Int32, writeEnd: Int32, store: String, seed: UInt64, start: UInt64,
                              segmentSize: Int, crashPoint: String?, stderrPath: String) throws -> ChildProcess {

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var environment = ProcessInfo.processInfo.environment
        environment[CrashPoint.environmentVariable] = crashPoint
        let arguments = [binary, store, String(seed), String(start), String(segmentSize)]
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, binary, &actions, &attributes, argv, envp)
        guard result == 0 else {
            close(readEnd)
            throw SpawnError(description: "posix_spawn \(binary): error \(result)")
        }
        return ChildProcess(pid: pid, descriptor: readEnd, seed: seed, stderrPath: stderrPath)
    }

    /// Reads the child's reports until `deadline` (nil: until end of file), or until the first
    /// complete line when `stopAtFirstLine`.
    func pump(until deadline: ContinuousClock.Instant?, stopAtFirstLine: Bool = false) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !reachedEndOfFile {
            if stopAtFirstLine, output.contains(UInt8(ascii: "\n")) { return }
            var timeout: Int32 = -1
            if let deadline {
                let remaining = deadline - .now
                if remaining <= .zero { return }
                let (seconds, attoseconds) = remaining.components
                timeout = Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, timeout)
            if ready < 0, errno == EINTR { continue }
            if ready <= 0 { continue }  // Timed out: the loop rechecks the deadline.
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                reachedEndOfFile = true
            } else if count == 0 {
                reachedEndOfFile = true
            } else {
                output += buffer[0..<count]
            }
        }
    }

    /// Sends SIGKILL.
    func killNow() {
        kill(pid, SIGKILL)
    }

    /// Waits for the child to end (once) and says how.
    @discardableResult
    func wait() -> Termination {
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 {
            guard errno == EINTR else {
                let termination = Termination.exited(-1)
                status = termination
                return termination
            }
        }
        // WIFEXITED / WTERMSIG are macros Swift does not import.
        let termination: Termination = raw & 0x7F == 0 ? .exited((raw >> 8) & 0xFF) : .signaled(raw & 0x7F)
        status = termination
        return termination
    }

    /// The complete report lines so far (an unterminated last line, impossible with atomic
    /// pipe writes, is reported as garbage).
    var lines: [Line] {
        var result: [Line] = []
        var pieces = output.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let partial = pieces.removeLast()
        for piece in pieces {
            let text = String(decoding: piece, as: UTF8.self)
            let fields = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            switch (fields.first, fields.count > 1 ? UInt64(fields[1]) : nil) {
            case ("I"?, let k?) where fields.count == 2: result.append(.issued(k))
            case ("A"?, let k?) where fields.count == 2: result.append(.acknowledged(k))
            case ("E"?, let k?): result.append(.error(k, fields.count > 2 ? String(fields[2]) : ""))
            default: result.append(.garbage(text))
            }
        }
        if !partial.isEmpty { result.append(.garbage(String(decoding: partial, as: UTF8.self))) }
        return result
    }

    /// The last reports and the child's stderr, for failure messages.
    var diagnostics: String {
        let text = String(decoding: output, as: UTF8.self)
        let tail = text.split(separator: "\n").suffix(4).joined(separator: " | ")
        let errors = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
        return "(pid \(pid); last reports: \(tail.isEmpty ? "none" : tail)\(errors.isEmpty ? "" : "; stderr: \(errors.suffix(2000))"))"
    }
}

// MARK: - Settings

/// `AGGSTORE_KILL_SEED`, or a fresh random seed (printed with every failure).
private func environmentSeed() -> UInt64 {
    if let text = ProcessInfo.processInfo.environment["AGGSTORE_KILL_SEED"] {
        if let seed = UInt64(text) { return seed }
        if text.hasPrefix("0x"), let seed = UInt64(text.dropFirst(2), radix: 16) { return seed }
    }
    return UInt64.random(in: 0...UInt64.max)
}

private func environmentInteger(_ name: String, default value: Int) -> Int {
    ProcessInfo.processInfo.environment[name].flatMap { Int($0) } ?? value
}
