public import AggregateStore
public import AggregateStoreEngine
public import Foundation

/// The demo aggregate: a sales order with its items, stored as one record, found by customer
/// through the foreign-key index.
public struct SalesOrder: Aggregate, Equatable {
    public static let table = "SalesOrder"
    public static let foreignKeys: [ForeignKeyField<SalesOrder>] = [.field(\.customerId)]

    /// The order's id (`SO-<number>`).
    public var id: String
    /// The customer who placed it (the foreign key).
    public var customerId: String
    /// When it was placed.
    public var orderedAt: Date
    /// `placed`, then `paid`.
    public var status: String
    /// An ISO 4217 code.
    public var currency: String
    /// Where it goes.
    public var shippingAddress: Address
    /// Its lines, stored inside the order.
    public var items: [SalesOrderItem]

    /// An order.
    public init(id: String, customerId: String, orderedAt: Date, status: String, currency: String,
                shippingAddress: Address, items: [SalesOrderItem]) {
        self.id = id
        self.customerId = customerId
        self.orderedAt = orderedAt
        self.status = status
        self.currency = currency
        self.shippingAddress = shippingAddress
        self.items = items
    }

    /// The order total in minor units (cents).
    public var total: Int { items.reduce(0) { $0 + $1.quantity * $1.unitPriceCents } }
}

/// A line of a ``SalesOrder``; lives inside its order, never on its own.
public struct SalesOrderItem: Codable, Sendable, Equatable {
    /// The line's number in its order, from 1.
    public var lineNumber: Int
    /// The product's id (`PRD-<number>`).
    public var productId: String
    /// The product's name.
    public var description: String
    /// How many.
    public var quantity: Int
    /// The price of one, in cents.
    public var unitPriceCents: Int

    /// A line.
    public init(lineNumber: Int, productId: String, description: String, quantity: Int, unitPriceCents: Int) {
        self.lineNumber = lineNumber
        self.productId = productId
        self.description = description
        self.quantity = quantity
        self.unitPriceCents = unitPriceCents
    }
}

/// A customer: an aggregate of its own, referenced by orders.
public struct Customer: Aggregate, Equatable {
    public static let table = "Customer"
    /// The customer's id (`CUST-<number>`).
    public var id: String
    /// The customer's name.
    public var name: String
    /// Where the customer lives.
    public var city: String

    /// A customer.
    public init(id: String, name: String, city: String) {
        self.id = id
        self.name = name
        self.city = city
    }
}

/// Published when an order is placed.
public struct OrderPlaced: DomainEvent {
    public static let eventType = "OrderPlaced"
    /// The order.
    public var orderId: String
    /// Its customer.
    public var customerId: String
    /// Its total, in cents.
    public var totalCents: Int

    /// The event for an order.
    public init(orderId: String, customerId: String, totalCents: Int) {
        self.orderId = orderId
        self.customerId = customerId
        self.totalCents = totalCents
    }
}

/// Published when an order is paid.
public struct OrderPaid: DomainEvent {
    public static let eventType = "OrderPaid"
    /// The order.
    public var orderId: String
    /// What was paid, in cents.
    public var amountCents: Int

    /// The event for a payment.
    public init(orderId: String, amountCents: Int) {
        self.orderId = orderId
        self.amountCents = amountCents
    }
}

/// A postal address, a value object of the order.
public struct Address: Codable, Sendable, Equatable {
    /// Number and street.
    public var street: String
    /// The city.
    public var city: String
    /// The postal code.
    public var postalCode: String
    /// An ISO 3166 code.
    public var country: String

    /// An address.
    public init(street: String, city: String, postalCode: String, country: String) {
        self.street = street
        self.city = city
        self.postalCode = postalCode
        self.country = country
    }
}

/// Builds demo orders: 1-8 items each, customers shared among orders (the foreign key). The
/// same seed gives the same orders, so that two engines can be given the same workload.
public struct DemoOrders {
    /// The products items are drawn from.
    public static let products = ["Espresso beans 1kg", "Ceramic mug", "Pour-over kettle", "Burr grinder",
                                  "Paper filters x100", "Milk jug", "Tamper 58mm", "Scale with timer"]
    /// The cities addresses are drawn from.
    public static let cities = ["Lisbon", "Osaka", "Toronto", "Nairobi", "Lyon", "Recife", "Tallinn", "Perth"]

    private var random: SplitMix64
    /// How many customers the orders are spread over.
    public let customers: Int

    /// A generator of orders among `customers` customers.
    public init(seed: UInt64 = 42, customers: Int) {
        random = SplitMix64(seed: seed)
        self.customers = max(1, customers)
    }

    /// The id of customer `number`.
    public static func customerId(_ number: Int) -> String { "CUST-\(number)" }
    /// The id of order `number`.
    public static func orderId(_ number: Int) -> String { "SO-\(number)" }

    /// Order `number`: a random customer, 1-8 items, a shipping address.
    public mutating func order(number: Int) -> SalesOrder {
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
    /// The demo's unit of work for this order at the engine's level: the order as one record
    /// with its customer as a foreign key, and one `SalesOrderPlaced` event in the same commit.
    public func placementBatch(unitOfWorkId: String, eventId: String, record: [UInt8], withEvent: Bool = true) -> WriteBatch {
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
public func demoEncoder() -> RecordEncoder { RecordEncoder() }
