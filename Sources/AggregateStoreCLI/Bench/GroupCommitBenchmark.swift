import AggregateStore
import AggregateStoreDemo
import ArgumentParser
import Foundation
import Logging
import Synchronization

/// The group-commit figure of issue 5: durable commits per second with 1, 4, 16 and 64
/// threads committing at once, each thread its own stream of demo orders (one put, one event),
/// and the same at 64 threads with group commit turned off (every commit its own fsync).
///
/// Each run uses a fresh store; the batches are built (and their orders encoded) before the
/// clock starts, so the figure is the engine's, not the demo generator's.
struct GroupCommitBenchmark {
    /// A directory for the stores (created runs are removed afterwards by the caller).
    var path: String
    /// Commits per run with one thread; more threads commit proportionally more (at least
    /// 500 each), so every run lasts long enough to measure.
    var commits: Int
    /// Which runs, as `N` (N threads), `offN` (N threads, group commit off) or `tasksN`; all
    /// of 1, 4, 16, 64, off64, tasks4, tasks16, tasks64 if empty. The ratios are against the
    /// first run.
    var runs: [String] = []
    /// How many times the runs are measured, in turn; the ratios are then the medians of each
    /// round's ratio to that round's first run.
    var repeats = 1
    /// The store's disk: the real one, or a ``ModelDisk``.
    var fileSystem: any FileSystem = PosixFileSystem()

    struct Run {
        var threads: Int
        var groupCommit: Bool
        var tasks = false
        var commits: Int
        var seconds: Double
        var latencies: [Double]
        var meanGroupSize: Double
        /// Each commit's fsync time (a group's fsync counted once per commit it covers).
        var syncs: [Double]
        /// The process's CPU time during the run, all threads.
        var cpuSeconds: Double

        var commitsPerSecond: Double { Double(commits) / seconds }
    }

    func run() throws {
        print("Group commit: durable commits of demo orders (one put and one event each), N threads at once:")
        let names = self.runs.isEmpty ? ["1", "4", "16", "64", "off64", "tasks4", "tasks16", "tasks64"] : self.runs
        var rounds: [[Run]] = []
        for round in 0..<repeats {
            var runs: [Run] = []
            for name in names { runs.append(try measure(name, round: round)) }
            if repeats > 1 { print("Round \(round + 1) of \(repeats):") }
            report(runs)
            rounds.append(runs)
        }
        guard repeats > 1 else { return }
        // Ratios to two decimals: the goal is a threshold, and a median shown as 20.0x may be below it.
        print("Medians of \(repeats) rounds (each ratio to its own round's first run; range in brackets):")
        for (index, name) in names.enumerated() {
            let rates = rounds.map { $0[index].commitsPerSecond }.sorted()
            let ratios = rounds.map { $0[index].commitsPerSecond / $0[0].commitsPerSecond }.sorted()
            let cpu = rounds.map { $0[index].cpuSeconds / Double($0[index].commits) }.sorted()
            print(String(format: "  %@ %8.0f commits/s [%.0f-%.0f]  %6.2fx [%.2f-%.2f]  CPU %@/commit",
                         name.padding(toLength: 8, withPad: " ", startingAt: 0), percentile(rates, 0.5), rates.first!, rates.last!,
                         percentile(ratios, 0.5), ratios.first!, ratios.last!, micros(percentile(cpu, 0.5))))
        }
    }

    /// Measures the run called `name` (see ``runs``) in a store of its own.
    private func measure(_ name: String, round: Int) throws -> Run {
        if let threads = Int(name) {
            return try measure(threads: threads, groupCommit: true, round: round)
        } else if name.hasPrefix("off"), let threads = Int(name.dropFirst(3)) {
            return try measure(threads: threads, groupCommit: false, round: round)
        } else if name.hasPrefix("tasks"), let tasks = Int(name.dropFirst(5)) {
            return try measure(tasks: tasks, round: round)
        }
        throw ValidationError("unknown group-commit run \(name): give N, offN or tasksN")
    }

    /// Prints one round's runs, each with its ratio to the first.
    private func report(_ runs: [Run]) {
        let single = runs[0].commitsPerSecond
        for run in runs {
            let sorted = run.latencies.sorted()
            let name = run.tasks ? "tasks  " : run.groupCommit ? "threads" : "threads, group commit off"
            print(String(format: "  %2d %@  %8.0f commits/s  %5.1fx  mean group %5.1f  latency p50 %@  p99 %@  fsync p50 %@  CPU %@/commit",
                         run.threads, name.padding(toLength: 25, withPad: " ", startingAt: 0),
                         run.commitsPerSecond, run.commitsPerSecond / single, run.meanGroupSize,
                         micros(percentile(sorted, 0.5)), micros(percentile(sorted, 0.99)),
                         micros(percentile(run.syncs.sorted(), 0.5)), micros(run.cpuSeconds / Double(run.commits))))
        }
    }

    /// `committers` streams of `max(500, commits / committers)` placement batches each.
    private func streams(_ committers: Int) throws -> [[WriteBatch]] {
        let perCommitter = max(500, commits / committers)
        let encoder = demoEncoder()
        var streams: [[WriteBatch]] = []
        for committer in 0..<committers {
            var generator = DemoOrders(seed: UInt64(committer + 1), customers: 200)
            var batches: [WriteBatch] = []
            batches.reserveCapacity(perCommitter)
            for index in 0..<perCommitter {
                var order = generator.order(number: index + 1)
                order.id = "SO-\(committer)-\(index)"
                batches.append(order.placementBatch(unitOfWorkId: "uow-\(committer)-\(index)", eventId: "ev-\(committer)-\(index)",
                                                    record: try encoder.encode(order)))
            }
            streams.append(batches)
        }
        return streams
    }

    /// Commits from `threads` threads at once, in a store of its own for `round`.
    func measure(threads: Int, groupCommit: Bool, round: Int) throws -> Run {
        let storePath = path + "/group-\(threads)-\(groupCommit ? "on" : "off")-\(round)"
        // Removed once measured: the rounds' stores would add up.
        defer { try? FileManager.default.removeItem(atPath: storePath) }
        var configuration = EngineConfiguration()
        if !groupCommit { configuration.maximumCommitGroupSize = 1 }
        let engine = try StorageEngine.open(at: storePath, configuration: configuration, fileSystem: fileSystem,
                                            logger: Logger(label: "aggstore.bench"))
        defer { try? engine.close() }
        let streams = try streams(threads)
        // Freed after the clock stops: a committer that finishes would otherwise free its
        // batches (their records and events) while the others still commit.
        defer { withExtendedLifetime(streams) {} }
        let commitsPerThread = streams[0].count

        // Each thread's own figures, joined once the clock has stopped: joining them as each
        // thread finished grew the shared arrays (page faults) while the others committed.
        let results = Mutex<(perThread: [CommitterFigures], error: (any Error)?)>(([], nil))
        results.withLock { $0.perThread.reserveCapacity(threads) }
        // The clock starts once every thread has reserved the room for its figures.
        let ready = DispatchGroup()
        let start = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for batches in streams {
            ready.enter()
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                var figures = CommitterFigures(capacity: batches.count)
                ready.leave()
                start.wait()
                do {
                    for batch in batches {
                        let started = monotonicSeconds()
                        let receipt = try engine.commit(batch)
                        figures.record(receipt, latency: monotonicSeconds() - started)
                    }
                } catch {
                    results.withLock { $0.error = error }
                }
                results.withLock { $0.perThread.append(figures) }
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        ready.wait()
        let started = monotonicSeconds()
        let cpuStarted = processCPUSeconds()
        for _ in 0..<threads { start.signal() }
        done.wait()
        let seconds = monotonicSeconds() - started
        let cpuSeconds = processCPUSeconds() - cpuStarted
        let (perThread, error) = results.withLock { $0 }
        if let error { throw error }
        let figures = CommitterFigures(joining: perThread)
        let total = threads * commitsPerThread
        guard engine.lastSequence == UInt64(total) else { throw ValidationError("the group-commit run lost commits") }
        return Run(threads: threads, groupCommit: groupCommit, commits: total, seconds: seconds, latencies: figures.latencies,
                   meanGroupSize: Double(total) / figures.groups, syncs: figures.syncs, cpuSeconds: cpuSeconds)
    }
}

extension GroupCommitBenchmark {
    /// Commits from `tasks` tasks at once, with the async `commit`: no thread waits for the
    /// fsync; the tasks suspend and the group is written on a Dispatch queue.
    func measure(tasks: Int, round: Int) throws -> Run {
        let storePath = path + "/group-tasks-\(tasks)-\(round)"
        defer { try? FileManager.default.removeItem(atPath: storePath) }
        let engine = try StorageEngine.open(at: storePath, fileSystem: fileSystem,
                                            logger: Logger(label: "aggstore.bench"))
        defer { try? engine.close() }
        let streams = try streams(tasks)
        // As in ``measure(threads:groupCommit:round:)``: a finished task would free its batches.
        defer { withExtendedLifetime(streams) {} }
        let total = streams.reduce(0) { $0 + $1.count }
        // Each task's room for its figures, reserved before the clock starts; a task takes its
        // own out, so that no copy is made when it records.
        let prepared = PreparedFigures(capacities: streams.map(\.count))
        let outcome = Mutex<Result<(seconds: Double, perTask: [CommitterFigures]), any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let cpuStarted = processCPUSeconds()
        Task {
            let started = monotonicSeconds()
            do {
                let perTask = try await withThrowingTaskGroup(of: CommitterFigures.self) { group in
                    for (index, batches) in streams.enumerated() {
                        group.addTask {
                            var figures = prepared.take(index)
                            for batch in batches {
                                let started = monotonicSeconds()
                                let receipt = try await engine.commit(batch)
                                figures.record(receipt, latency: monotonicSeconds() - started)
                            }
                            return figures
                        }
                    }
                    // Joined once the clock has stopped, as in ``measure(threads:groupCommit:round:)``.
                    var perTask: [CommitterFigures] = []
                    perTask.reserveCapacity(streams.count)
                    for try await figures in group { perTask.append(figures) }
                    return perTask
                }
                let seconds = monotonicSeconds() - started
                outcome.withLock { $0 = .success((seconds, perTask)) }
            } catch {
                outcome.withLock { $0 = .failure(error) }
            }
            done.signal()
        }
        done.wait()
        let cpuSeconds = processCPUSeconds() - cpuStarted
        let (seconds, perTask) = try outcome.withLock { $0! }.get()
        let figures = CommitterFigures(joining: perTask)
        guard engine.lastSequence == UInt64(total) else { throw ValidationError("the group-commit run lost commits") }
        return Run(threads: tasks, groupCommit: true, tasks: true, commits: total, seconds: seconds, latencies: figures.latencies,
                   meanGroupSize: Double(total) / figures.groups, syncs: figures.syncs, cpuSeconds: cpuSeconds)
    }
}

/// Each committer's ``CommitterFigures``, made before the clock starts, for the committer to
/// take out as its own (a copy would be made at its first record).
final class PreparedFigures: Sendable {
    private let slots: Mutex<[CommitterFigures?]>

    init(capacities: [Int]) {
        slots = Mutex(capacities.map { CommitterFigures(capacity: $0) })
    }

    /// Committer `index`'s figures; each is taken once.
    func take(_ index: Int) -> CommitterFigures {
        slots.withLock { $0[index].take()! }
    }
}

/// One committer's figures in a group-commit run, recorded in room reserved before the clock
/// starts, and joined with the others' after it stops.
struct CommitterFigures: Sendable {
    var latencies: [Double] = []
    /// Each commit's fsync time (a group's fsync counted once per commit it covers).
    var syncs: [Double] = []
    /// Each commit counts 1/size of its group's fsync: the sum is the number of fsyncs.
    var groups = 0.0

    init(capacity: Int) {
        latencies.reserveCapacity(capacity)
        syncs.reserveCapacity(capacity)
    }

    init(joining parts: [CommitterFigures]) {
        self.init(capacity: parts.reduce(0) { $0 + $1.latencies.count })
        for part in parts {
            latencies += part.latencies
            syncs += part.syncs
            groups += part.groups
        }
    }

    mutating func record(_ receipt: CommitReceipt, latency: Double) {
        latencies.append(latency)
        groups += 1 / Double(receipt.groupSize)
        syncs.append(Double(receipt.syncNanoseconds) / 1e9)
    }
}
