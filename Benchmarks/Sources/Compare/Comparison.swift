import AggregateStore
import AggregateStoreDemo
import BenchmarkWorkloads
import Foundation

/// The workloads of the comparison, run on AggregateStore, SQLite through GRDB and the fsync
/// floor in one process, alternating the engines' order round by round so that neither always
/// runs first (on a warmer cache, or a quieter disk).
struct Comparison {
    /// The engines' names in reports.
    static let ours = "AggregateStore", sqlite = "SQLite (GRDB)", floor = "fsync floor"

    var directory: String
    var rounds: Int
    /// Durable single-writer commits per engine per round.
    var commits: Int
    /// Committers (tasks) at once, and the commits of one round at each level.
    var concurrency: [Int]
    var groupCommits: Int
    /// The orders of the read workloads' stores, and the lookups per round.
    var readOrders: Int
    var lookups: Int
    var results = Results()

    /// The engines in round `round`'s order: rotated by one each round.
    private func rotated<T>(_ items: [T], _ round: Int) -> [T] {
        let shift = round % items.count
        return Array(items[shift...] + items[..<shift])
    }

    /// A durable unit of work (an order and its event) after another, one writer; the floor
    /// appends and fdatasyncs the same number of bytes per commit as AggregateStore's frames.
    mutating func durableCommits() throws {
        let workload = "durable commit, 1 writer"
        let ours = try AggregateStoreSubject(path: directory + "/commit-aggregatestore")
        let sqlite = try SQLiteSubject(path: directory + "/commit-sqlite")
        let floor = try FsyncFloor(path: directory + "/commit-floor.log")
        defer { try? ours.close(); try? sqlite.close() }
        let book = OrderBook(count: (rounds + 1) * commits)
        // A warm-up round, not measured, which also gives the floor its frame size.
        let warmUp = book.orders(1...commits)
        let logBefore = try ours.store.engine.statistics().logBytes
        for order in warmUp { try ours.place(order); try sqlite.place(order) }
        let frameBytes = Int((try ours.store.engine.statistics().logBytes - logBefore) / UInt64(commits))
        for _ in warmUp { try floor.commit(bytes: frameBytes) }
        results.notes.append("\(workload): \(commits) commits per engine per round, after \(commits) of warm-up; "
                             + "AggregateStore frames average \(frameBytes) bytes, which the floor writes per commit")

        for round in 0..<rounds {
            let orders = book.orders((round + 1) * commits + 1...(round + 2) * commits)
            for engine in rotated([Self.ours, Self.sqlite, Self.floor], round) {
                var samples = Samples()
                let total = try timed {
                    for order in orders {
                        let started = monotonicSeconds()
                        switch engine {
                        case Self.ours: try ours.place(order)
                        case Self.sqlite: try sqlite.place(order)
                        default: try floor.commit(bytes: frameBytes)
                        }
                        samples.append(monotonicSeconds() - started)
                    }
                }
                results.add(workload: workload, engine: engine, samples: samples, throughput: Double(orders.count) / total)
            }
        }
    }

    /// Durable units of work from N tasks at once, at each level of `concurrency`: the same
    /// number of commits per round at every level.
    mutating func concurrentCommits() async throws {
        for committers in concurrency {
            let workload = "durable commits, \(committers) committers"
            let perCommitter = max(1, groupCommits / committers)
            let total = perCommitter * committers
            let stores: [any OrderStore] = [
                try AggregateStoreSubject(path: directory + "/group-\(committers)-aggregatestore"),
                try SQLiteSubject(path: directory + "/group-\(committers)-sqlite"),
            ]
            let book = OrderBook(count: rounds * total)
            for round in 0..<rounds {
                let orders = book.orders(round * total + 1...(round + 1) * total)
                for store in rotated(stores, round) {
                    let started = monotonicSeconds()
                    let samples = try await withThrowingTaskGroup(of: Samples.self) { group in
                        for committer in 0..<committers {
                            let mine = Array(orders[committer * perCommitter..<(committer + 1) * perCommitter])
                            group.addTask {
                                var samples = Samples()
                                for order in mine {
                                    let started = monotonicSeconds()
                                    try await store.placeConcurrently(order)
                                    samples.append(monotonicSeconds() - started)
                                }
                                return samples
                            }
                        }
                        var all = Samples()
                        for try await samples in group { all.append(contentsOf: samples) }
                        return all
                    }
                    results.add(workload: workload, engine: store.name, samples: samples,
                                throughput: Double(total) / (monotonicSeconds() - started))
                }
            }
            for store in stores { try store.close() }
        }
        results.notes.append("durable commits, N committers: \(groupCommits) commits per engine per round at each level, "
                             + "from N tasks at once, each its own unit of work")
    }

    /// Lookups and a filtered scan on stores of `readOrders` orders (loaded without fsync):
    /// typed primary-key loads, IN of 100 ids, a customer's 10 orders, and a count of the paid
    /// orders in EUR. Every engine gets the same ids in a round.
    mutating func reads() throws {
        let book = OrderBook(count: readOrders)
        let stores: [any OrderStore] = [
            try AggregateStoreSubject(path: directory + "/reads-aggregatestore", durable: false),
            try SQLiteSubject(path: directory + "/reads-sqlite", durable: false),
        ]
        defer { for store in stores { try? store.close() } }
        let orders = book.all()
        for store in stores {
            let seconds = try timed { try store.bulkLoad(orders, perTransaction: 1) }
            results.notes.append("reads: \(store.name) loaded \(readOrders) orders in \(String(format: "%.2f", seconds)) s "
                                 + "(one per transaction, no fsync) and takes \(try store.diskBytes() / 1_048_576) MiB")
        }
        var counts: [String: Int] = [:]
        for round in 0..<rounds {
            var draws = Draws(seed: 1000 + UInt64(round))
            let ids = (0..<lookups).map { _ in DemoOrders.orderId(draws.next(in: 1...readOrders)) }
            let idLists = (0..<max(1, lookups / 100)).map { _ in (0..<100).map { _ in DemoOrders.orderId(draws.next(in: 1...readOrders)) } }
            let customers = (0..<max(1, lookups / 10)).map { _ in DemoOrders.customerId(draws.next(in: 1...book.customers)) }
            for store in rotated(stores, round) {
                results.add(workload: "typed PK load", engine: store.name, samples: try store.timeLoads(ids: ids))
                results.add(workload: "IN of 100 ids", engine: store.name, samples: try store.timeLoads(idLists: idLists))
                results.add(workload: "FK lookup, 10 orders", engine: store.name,
                            samples: try store.timeCustomerLookups(customers, expected: 10))
                let (samples, count) = try store.timePaidCount(times: 3)
                results.add(workload: "filtered count of \(readOrders) orders", engine: store.name, samples: samples)
                counts[store.name] = count
            }
        }
        guard Set(counts.values).count == 1 else { throw BenchmarkError("the engines counted different paid orders: \(counts)") }
        results.notes.append("reads: per round \(lookups) typed loads, \(max(1, lookups / 100)) lists of 100 ids, "
                             + "\(max(1, lookups / 10)) customers, 3 counts (\(counts.values.first ?? 0) paid orders in EUR); "
                             + "each engine measures inside one read transaction")
    }
}
