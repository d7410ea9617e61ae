import AggregateStore
import AggregateStoreDemo
import Foundation
import Logging

/// The DataStore figures of issue 4: typed primary-key load, a foreign-key lookup returning 10
/// aggregates, an IN of 100 ids, and a filtered scan, on a store of `orders` demo orders
/// (written without fsync to save time; reads do not depend on it).
struct DataStoreBenchmark {
    let path: String
    let orders: Int

    func run() throws {
        var configuration = DataStore.Configuration()
        configuration.engine.durability = .unsafeNoSync
        let store = try DataStore.open(at: path, configuration: configuration, logger: Logger(label: "aggstore.bench"))
        defer { try? store.close() }
        // Exactly ten orders per customer, so the foreign-key lookup returns 10.
        let customers = max(1, orders / 10)
        var generator = DemoOrders(seed: 7, customers: customers)
        let loadStart = monotonicSeconds()
        let perUnitOfWork = 1000
        for first in stride(from: 1, through: orders, by: perUnitOfWork) {
            try UnitOfWork.run(on: store) { tx throws in
                for number in first..<min(first + perUnitOfWork, orders + 1) {
                    var order = generator.order(number: number)
                    order.customerId = DemoOrders.customerId(1 + (number - 1) % customers)
                    order.status = number.isMultiple(of: 4) ? "paid" : "placed"
                    try store.create(order, in: tx)
                }
            }
        }
        print("DataStore: \(orders) demo orders in \(orders / perUnitOfWork) units of work in \(seconds(monotonicSeconds() - loadStart))")

        var random = SplitMix64(seed: 99)
        func randomId() -> String { DemoOrders.orderId(Int.random(in: 1...orders, using: &random)) }
        try UnitOfWork.run(on: store) { tx throws in
            let pk = try timed(20_000) { _ = try store.load(SalesOrder.self, id: randomId(), in: tx) }
            print("  typed PK load (decoded SalesOrder, warm cache): p50 \(micros(pk.p50)), p99 \(micros(pk.p99))")
            let fk = try timed(2_000) {
                let found = try store.find(SalesOrder.self, where: \.customerId,
                                           equals: DemoOrders.customerId(Int.random(in: 1...customers, using: &random)), in: tx)
                guard found.count == 10 else { throw StoreError(.notFound, "expected 10 orders, found \(found.count)") }
            }
            print("  FK lookup returning 10 orders: p50 \(micros(fk.p50)), p99 \(micros(fk.p99))")
            let bulk = try timed(1_000) {
                let ids = (0..<100).map { _ in randomId() }
                _ = try store.load(SalesOrder.self, ids: ids, in: tx)
            }
            print("  IN of 100 ids: p50 \(micros(bulk.p50)), p99 \(micros(bulk.p99))")
            let query = SalesOrder.query.filter(\.status == "paid" && \.currency == "EUR").order(by: \.orderedAt, descending: true).limit(50)
            var matched = 0
            let scan = try timed(5) { matched = try store.count(query, in: tx) }
            let page = try timed(5) { _ = try store.fetch(query, in: tx) }
            print("  filtered scan of \(orders) orders (\(matched) match): count median \(seconds(scan.p50)), "
                  + "first page of 50 sorted median \(seconds(page.p50))")
        }
    }

    /// Runs `body` `count` times and returns the median and 99th percentile in seconds.
    private func timed(_ count: Int, _ body: () throws -> Void) throws -> (p50: Double, p99: Double) {
        var samples: [Double] = []
        samples.reserveCapacity(count)
        for _ in 0..<count {
            let started = monotonicSeconds()
            try body()
            samples.append(monotonicSeconds() - started)
        }
        samples.sort()
        return (percentile(samples, 0.5), percentile(samples, 0.99))
    }
}
