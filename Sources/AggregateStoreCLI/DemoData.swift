import AggregateStore
import Foundation

/// The demo aggregate: a sales order with its items, stored as one record, found by customer
/// through the foreign-key index.
struct SalesOrder: Aggregate, Equatable {
    static let table = "SalesOrder"
    static let foreignKeys: [ForeignKeyField<SalesOrder>] = [.field(\.customerId)]

    var id: String
    var customerId: String
    var orderedAt: Date
    var status: String
    var currency: String
    var shippingAddress: Address
    var items: [SalesOrderItem]

    /// The order total in minor units (cents).
    var total: Int { items.reduce(0) { $0 + $1.quantity * $1.unitPriceCents } }
}

/// A line of a ``SalesOrder``; lives inside its order, never on its own.
struct SalesOrderItem: Codable, Sendable, Equatable {
    var lineNumber: Int
    var productId: String
    var description: String
    var quantity: Int
    var unitPriceCents: Int
}

/// A customer: an aggregate of its own, referenced by orders.
struct Customer: Aggregate, Equatable {
    static let table = "Customer"
    var id: String
    var name: String
    var city: String
}

/// Published when an order is placed.
struct OrderPlaced: DomainEvent {
    static let eventType = "OrderPlaced"
    var orderId: String
    var customerId: String
    var totalCents: Int
}

/// Published when an order is paid.
struct OrderPaid: DomainEvent {
    static let eventType = "OrderPaid"
    var orderId: String
    var amountCents: Int
}

/// A postal address, a value object of the order.
struct Address: Codable, Sendable, Equatable {
    var street: String
    var city: String
    var postalCode: String
    var country: String
}


/// Builds demo orders: 1-8 items each, customers shared among orders (the foreign key).
struct DemoOrders {
    static let products = ["Espresso beans 1kg", "Ceramic mug", "Pour-over kettle", "Burr grinder",
                           "Paper filters x100", "Milk jug", "Tamper 58mm", "Scale with timer"]
    static let cities = ["Lisbon", "Osaka", "Toronto", "Nairobi", "Lyon", "Recife", "Tallinn", "Perth"]

    var random: SplitMix64
    let customers: Int

    init(seed: UInt64 = 42, customers: Int) {
        random = SplitMix64(seed: seed)
        self.customers = max(1, customers)
    }

    static func customerId(_ number: Int) -> String { "CUST-\(number)" }
    static func orderId(_ number: Int) -> String { "SO-\(number)" }

    mutating func order(number: Int) -> SalesOrder {
        let customer = Int.random(in: 1...customers, using: &random)
        let itemCount = Int.random(in: 1...8, using: &random)
        let items = (1...itemCount).map { line in
            let product = Int.random(in: 0..<Self.products.count, using: &random)
            return SalesOrderItem(lineNumber: line, productId: "PRD-\(1000 + product)", description: Self.products[product],
                                  quantity: Int.random(in: 1...5, using: &random),
                                  unitPriceCents: Int.random(in: 199...24_999, using: &random))
        }
        let city = Self.cities[Int.random(in: 0..<Self.cities.count, using: &random)]
        return SalesOrder(id: Self.orderId(number), customerId: Self.customerId(customer),
                          orderedAt: Date(timeIntervalSince1970: 1_790_000_000 + Double(number) * 37),
                          status: "placed", currency: "EUR",
                          shippingAddress: Address(street: "\(Int.random(in: 1...300, using: &random)) Harbour Street",
                                                   city: city, postalCode: String(Int.random(in: 10000...99999, using: &random)),
                                                   country: "PT"),
                          items: items)
    }
}

extension SalesOrder {
    /// The demo's unit of work for this order: the order as one record with its customer as a
    /// foreign key, and one `SalesOrderPlaced` event in the same commit.
    func placementBatch(unitOfWorkId: String, eventId: String, record: [UInt8], withEvent: Bool = true) -> WriteBatch {
        var batch = WriteBatch(unitOfWorkId: unitOfWorkId)
        batch.put(table: "SalesOrder", id: id, record: record,
                  foreignKeys: [ForeignKey(field: "customerId", value: customerId)], expecting: .absent)
        if withEvent {
            batch.append(OutboxEvent(id: eventId, type: "SalesOrderPlaced", aggregateTable: "SalesOrder", aggregateId: id,
                                     occurredAt: currentMicroseconds(), payload: Array("{\"total\":\(total)}".utf8)))
        }
        return batch
    }
}

/// The encoder the engine benchmarks store demo orders with: the binary record format.
func demoEncoder() -> RecordEncoder { RecordEncoder() }
