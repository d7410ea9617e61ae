public import AggregateStoreDemo
import Foundation

/// The benchmark workload's orders: the demo's sales orders (1-8 items each), numbered from 1,
/// exactly ten per customer (so a foreign-key lookup returns 10), one in four paid (so a
/// filter on status matches a quarter). The same for every engine, for the same seed.
public struct OrderBook: Sendable {
    /// How many orders.
    public let count: Int
    /// How many customers: `count / 10`, at least 1.
    public var customers: Int { max(1, count / 10) }
    private let seed: UInt64

    /// The book of `count` orders.
    public init(count: Int, seed: UInt64 = 7) {
        self.count = count
        self.seed = seed
    }

    /// Orders `range` (numbers from 1).
    public func orders(_ range: ClosedRange<Int>) -> [SalesOrder] {
        // One generator per order, so that any range gives the same orders as the whole book.
        range.map { number in
            var generator = DemoOrders(seed: seed &+ UInt64(number), customers: customers)
            var order = generator.order(number: number)
            order.customerId = DemoOrders.customerId(1 + (number - 1) % customers)
            order.status = number.isMultiple(of: 4) ? "paid" : "placed"
            return order
        }
    }

    /// Every order.
    public func all() -> [SalesOrder] { count == 0 ? [] : orders(1...count) }

    /// The event a placement emits.
    public static func placed(_ order: SalesOrder) -> OrderPlaced {
        OrderPlaced(orderId: order.id, customerId: order.customerId, totalCents: order.total)
    }
}

/// Seeded random draws for the lookups, the same for every engine.
public struct Draws: Sendable {
    private var state: UInt64

    /// Draws from `seed`.
    public init(seed: UInt64) { state = seed }

    /// A number in `range` (SplitMix64).
    public mutating func next(in range: ClosedRange<Int>) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return range.lowerBound + Int(z % UInt64(range.count))
    }
}
