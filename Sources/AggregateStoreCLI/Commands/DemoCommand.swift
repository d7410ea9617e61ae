import AggregateStore
import AggregateStoreDemo
import ArgumentParser
import Foundation
import Logging
import Synchronization

/// `aggstore demo`: the DataStore API end to end: customers and sales orders written in units
/// of work with their events, a subscriber printing the events, a conflict, and queries.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the DataStore demo: orders, events, a conflict, queries.",
        discussion: """
        Creates customers, then places orders (1-8 items each) one unit of work at a time: the \
        order and an OrderPlaced event are committed as one durable batch. Every third order is \
        then paid (OrderPaid). A subscriber prints the events as the event engine delivers \
        them. Two units of work then race on one order to show an optimistic-concurrency \
        conflict. The store is reopened and queried by id, by customer (foreign-key index), by \
        status (a filter, paged with a keyset cursor) and by a list of ids. Running the demo \
        again on the same directory adds more orders.
        """
    )

    @Option(help: "The store directory (created if missing).")
    var path: String

    @Option(help: "How many orders to place.")
    var orders: Int = 1000

    @Option(help: "How many delivered events to print.")
    var printEvents: Int = 6

    @Option(help: "Seal segments at this many bytes (default 64 MiB); small ones show compaction at work.")
    var segmentSize: Int?

    func validate() throws {
        guard orders > 0 else { throw ValidationError("--orders must be positive") }
    }

    func run() throws {
        let logger = Logger(label: "aggstore.demo")
        var configuration = DataStore.Configuration()
        if let segmentSize { configuration.engine.segmentSize = segmentSize }
        var store = try openDataStoreOrExit(path, configuration: configuration, logger: logger)
        let existing = try UnitOfWork.run(on: store) { tx throws in try store.count(SalesOrder.query, in: tx) }
        let first = existing + 1
        let customers = max(1, orders / 5)
        let printed = Printed(limit: printEvents)
        try store.events.subscribe("demo-printer") { event in printed.print(event) }

        print("Placing \(orders) orders in \(path) (\(customers) customers), one unit of work each...")
        var generator = DemoOrders(seed: UInt64(first), customers: customers)
        try UnitOfWork.run(on: store) { tx throws in
            for number in 1...customers where try store.load(Customer.self, id: DemoOrders.customerId(number), in: tx) == nil {
                try store.create(Customer(id: DemoOrders.customerId(number), name: "Customer \(number)", city: DemoOrders.cities[number % 8]), in: tx)
            }
        }
        var latencies: [Double] = []
        latencies.reserveCapacity(orders)
        var sampleIds: [String] = []
        let writeStart = monotonicSeconds()
        for number in first..<(first + orders) {
            let order = generator.order(number: number)
            let started = monotonicSeconds()
            try UnitOfWork.run(on: store) { tx throws in
                try store.create(order, in: tx)
                try tx.emit(OrderPlaced(orderId: order.id, customerId: order.customerId, totalCents: order.total), about: order)
            }
            latencies.append(monotonicSeconds() - started)
            if sampleIds.count < 10 { sampleIds.append(order.id) }
        }
        let writeSeconds = monotonicSeconds() - writeStart
        latencies.sort()
        print("  wrote \(orders) orders in \(seconds(writeSeconds)): \(Int(Double(orders) / writeSeconds)) units of work/s, "
              + "commit latency p50 \(micros(percentile(latencies, 0.50))), p99 \(micros(percentile(latencies, 0.99)))")

        var paid = 0
        for number in stride(from: first, to: first + orders, by: 3) {
            try UnitOfWork.run(on: store) { tx throws in
                let order = try store.update(SalesOrder.self, id: DemoOrders.orderId(number), set: ["status": "paid"], in: tx)
                try tx.emit(OrderPaid(orderId: order.id, amountCents: order.total), about: order)
            }
            paid += 1
        }
        print("  paid \(paid) orders (update of one field, with an OrderPaid event)")

        try showConflict(store, orderId: DemoOrders.orderId(first))

        let lastPosition = store.engine.lastEventPosition
        waitForDelivery(store, through: lastPosition)
        print("Subscriber 'demo-printer' handled \(printed.count) events; its durable cursor is at \(try store.events.cursor(of: "demo-printer"))")
        try store.close()

        print("Reopening...")
        store = try openDataStoreOrExit(path, configuration: configuration, logger: logger)
        defer { try? store.close() }
        print("  \(store.engine.recoveryReport) in \(seconds(store.engine.recoveryReport.duration))")
        try runQueries(store, sampleIds: sampleIds)

        let statistics = try store.engine.statistics()
        print("Store: \(statistics.frames) commits in \(statistics.segments.count) segment(s), \(statistics.liveRecords) live records, "
              + "\(statistics.events) events, \(statistics.logBytes) bytes on disk, "
              + "LZ4 ratio \(String(format: "%.2f", statistics.compressionRatio))")
    }

    /// Two units of work read the same order; the first to commit wins, the second fails with a
    /// conflict and writes nothing.
    private func showConflict(_ store: DataStore, orderId: String) throws {
        let cancel = try UnitOfWork.begin(on: store, id: "uow-demo-cancel")
        guard var order = try store.load(SalesOrder.self, id: orderId, in: cancel.context) else { return }
        try UnitOfWork.run(on: store, id: "uow-demo-ship") { tx throws in
            try store.update(SalesOrder.self, id: orderId, set: ["status": "shipped"], in: tx)
        }
        order.status = "cancelled"
        try store.save(order, in: cancel.context)
        do {
            try cancel.commit()
            print("Conflict: not detected (unexpected)")
        } catch {
            print("Conflict: uow-demo-ship shipped \(orderId) first; uow-demo-cancel failed with \(error.code), nothing written")
        }
    }

    private func runQueries(_ store: DataStore, sampleIds: [String]) throws {
        try UnitOfWork.run(on: store) { tx throws in
            var started = monotonicSeconds()
            guard let order = try store.load(SalesOrder.self, id: sampleIds[0], in: tx) else {
                throw ValidationError("order \(sampleIds[0]) is missing after reopen")
            }
            let version = try store.version(of: SalesOrder.self, id: order.id, in: tx) ?? 0
            print("By id: \(order.id) for \(order.customerId), \(order.items.count) items, total \(Double(order.total) / 100) \(order.currency), "
                  + "status \(order.status), version \(version) (\(micros(monotonicSeconds() - started)))")

            started = monotonicSeconds()
            let byCustomer = try store.find(SalesOrder.self, where: \.customerId, equals: order.customerId, in: tx)
            print("By customer \(order.customerId) (foreign-key index): \(byCustomer.count) orders: "
                  + byCustomer.prefix(5).map(\.id).joined(separator: ", ") + (byCustomer.count > 5 ? ", ..." : "")
                  + " (\(micros(monotonicSeconds() - started)))")

            started = monotonicSeconds()
            let paidQuery = SalesOrder.query.filter(\.status == "paid").order(by: \.orderedAt, descending: true).limit(5)
            let total = try store.count(paidQuery, in: tx)
            print("Paid orders (filter, newest first, pages of 5): \(total) in all; query text: \(paidQuery)")
            var cursor: QueryCursor?
            for page in 1...3 {
                let result = try store.fetch(paidQuery.after(cursor), in: tx)
                print("  page \(page): " + result.items.map { "\($0.id)" }.joined(separator: ", "))
                cursor = result.next
                if cursor == nil { break }
            }
            print("  (\(micros(monotonicSeconds() - started)))")

            started = monotonicSeconds()
            let requested = sampleIds + ["SO-does-not-exist"]
            let byIds = try store.load(SalesOrder.self, ids: requested, in: tx)
            print("By a list of \(requested.count) ids (IN): \(byIds.count) found (\(micros(monotonicSeconds() - started)))")
        }
    }

    /// Blocks until the subscriber has handled every event up to `position`.
    private func waitForDelivery(_ store: DataStore, through position: UInt64) {
        let done = DispatchSemaphore(value: 0)
        Task {
            await store.events.waitForDelivery(to: "demo-printer", through: position)
            done.signal()
        }
        done.wait()
    }
}

/// Prints the first few delivered events and counts the rest.
final class Printed: Sendable {
    private let state = Mutex(0)
    private let limit: Int
    init(limit: Int) { self.limit = limit }

    var count: Int { state.withLock { $0 } }

    func print(_ event: StoredEvent) {
        let shown = state.withLock { count -> Bool in
            count += 1
            return count <= limit
        }
        guard shown else { return }
        var detail = ""
        if let placed = try? event.decode(OrderPlaced.self) {
            detail = "order \(placed.orderId) for \(placed.customerId), \(Double(placed.totalCents) / 100) EUR"
        } else if let paid = try? event.decode(OrderPaid.self) {
            detail = "order \(paid.orderId), \(Double(paid.amountCents) / 100) EUR"
        }
        Swift.print("  event #\(event.position) \(event.event.type): \(detail) [uow \(event.unitOfWorkId)]")
    }
}
