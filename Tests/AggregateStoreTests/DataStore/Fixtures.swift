import AggregateStore
import AggregateStoreTestKit
import Foundation

struct Buyer: Aggregate, Equatable {
    static let table = "Customer"
    var id: String
    var name: String
    var tier: String?
}

struct OrderLine: Codable, Sendable, Equatable {
    var sku: String
    var quantity: Int
    var price: Decimal
}

struct Order: Aggregate, Equatable {
    static let table = "SalesOrder"
    static let foreignKeys: [ForeignKeyField<Order>] = [.field(\.customerId), .field(\.tags)]
    var id: String
    var customerId: String
    var status: String
    var items: [OrderLine]
    var note: String?
    var tags: [String] = []
}

struct OrderPlaced: DomainEvent, Equatable {
    static let eventType = "OrderPlaced"
    var orderId: String
}

/// A fresh store in a temporary directory with deterministic ids; the directory lives as long
/// as the fixture.
final class StoreFixture: Sendable {
    let directory = TemporaryDirectory()
    let store: DataStore

    init(configure: (inout DataStore.Configuration) -> Void = { _ in }) throws {
        var configuration = DataStore.Configuration()
        configuration.engine.durability = .unsafeNoSync
        configuration.ids = .deterministic(startingAt: 1_700_000_000_000)
        configure(&configuration)
        store = try DataStore.open(at: directory.path, configuration: configuration)
    }

    func reopen() throws -> DataStore {
        try store.close()
        return try DataStore.open(at: directory.path, configuration: store.configuration)
    }

    deinit { try? store.close() }
}

func order(_ id: String, customer: String = "c-1", status: String = "open", items: Int = 2) -> Order {
    Order(id: id, customerId: customer, status: status,
               items: (0..<items).map { OrderLine(sku: "sku-\($0)", quantity: $0 + 1, price: Decimal(string: "9.95")!) })
}
