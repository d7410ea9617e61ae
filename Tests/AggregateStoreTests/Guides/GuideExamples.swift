import AggregateStore
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

// The examples of the guides in Docs/, verbatim: this file compiling is what makes them compile,
// the tests below run them, and GuideExamplesTests checks that every ```swift block of the guides
// appears here, line for line.

enum Guide {
    // MARK: GETTING-STARTED.md

    struct SalesOrderItem: Codable, Sendable, Equatable {
        var sku: String
        var quantity: Int
        var unitPrice: Decimal
    }

    struct SalesOrder: Aggregate, Equatable {
        static let table = "SalesOrder"
        static let foreignKeys: [ForeignKeyField<SalesOrder>] = [.field(\.customerId)]

        var id: String
        var customerId: String
        var status: String
        var items: [SalesOrderItem]
        var note: String?
    }

    struct Customer: Aggregate {
        static let table = "Customer"
        var id: String
        var name: String
    }

    struct OrderPlaced: DomainEvent {
        static let eventType = "OrderPlaced"
        var orderId: String
    }

    static func gettingStarted(directory: String) throws -> (orders: [SalesOrder], paid: [SalesOrder]) {
        let store = try DataStore.open(at: directory)
        let ids = CanonicalIdGenerator()
        let orderId = ids.next(kind: "entity", subkind: "salesorder")
        try UnitOfWork.run(on: store) { tx in
            try store.create(Customer(id: "c-7", name: "Ada"), in: tx)
            let order = SalesOrder(id: orderId, customerId: "c-7", status: "open",
                                   items: [SalesOrderItem(sku: "mug", quantity: 2, unitPrice: 9.5)])
            try store.create(order, in: tx)
            try tx.emit(OrderPlaced(orderId: order.id), about: order)
        }

        try UnitOfWork.run(on: store) { tx in
            guard var order = try store.load(SalesOrder.self, id: orderId, in: tx) else { return }
            order.items.append(SalesOrderItem(sku: "kettle", quantity: 1, unitPrice: 39))
            try store.save(order, in: tx)                                        // whole aggregate
            try store.update(SalesOrder.self, id: orderId, set: ["status": "paid", "note": .setNull], in: tx)  // some fields
        }

        let (byCustomer, paid) = try UnitOfWork.run(on: store) { tx in
            let byCustomer = try store.find(SalesOrder.self, where: \.customerId, equals: "c-7", in: tx)  // FK index
            let paid = try store.fetch(SalesOrder.query.filter(\.status == "paid").limit(20), in: tx)    // filter
            return (byCustomer, paid.items)
        }

        try store.events.subscribe("mailer") { event in
            if let placed = try event.decode(OrderPlaced.self) {
                print("order placed:", placed.orderId)
            }
        }

        try store.close()
        return (byCustomer, paid)
    }

    // MARK: TRANSACTIONS.md

    static func transactions(store: DataStore, order: SalesOrder) throws {
        try UnitOfWork.run(on: store) { tx in
            try store.create(order, in: tx)
        }

        let uow = try UnitOfWork.begin(on: store)
        do {
            try store.save(order, in: uow.context)
            let receipt = try uow.commit()
            print("committed as sequence", receipt.sequence ?? 0)
        } catch {
            print("nothing was written:", error)
        }

        func placeOrder(_ order: SalesOrder, in tx: borrowing TransactionContext) throws {
            try store.create(order, in: tx)
            try tx.emit(OrderPlaced(orderId: order.id), about: order)
        }
        var second = order
        second.id = "so-1"
        try UnitOfWork.run(on: store) { tx in try placeOrder(second, in: tx) }

        do {
            try UnitOfWork.run(on: store) { tx in
                guard var order = try store.load(SalesOrder.self, id: "so-1", in: tx) else { return }
                order.status = "cancelled"
                try store.save(order, in: tx)
            }
        } catch let error as StoreError where error.code == .conflict {
            print("someone else changed so-1 first; retry with fresh data")
        }
    }

    static func asyncTransaction(store: DataStore, order: SalesOrder) async throws {
        try await UnitOfWork.run(on: store) { tx in
            try store.save(order, in: tx)
        }
    }

    // MARK: EVENTS.md

    /// Stands in for an invoicing service.
    final class Invoices: Sendable {
        let opened = Mutex<[String]>([])
        func open(for orderId: String, idempotencyKey: String) async throws {
            opened.withLock { $0.append(orderId) }
        }
    }

    struct BrokerPublisher: EventPublisher {
        func publish(_ events: [StoredEvent]) async throws {
            for event in events {
                print("publish", event.event.type, event.event.id)   // send to Kafka, NATS, ...
            }
        }
    }

    static func events(store: DataStore, order: SalesOrder, invoices: Invoices) throws -> Task<Void, any Error> {
        try UnitOfWork.run(on: store) { tx in
            try store.create(order, in: tx)
            let eventId = try tx.emit(OrderPlaced(orderId: order.id), about: order)
            print("staged event", eventId)
        }

        try store.events.subscribe("invoicing") { event in
            guard let placed = try event.decode(OrderPlaced.self) else { return }
            try await invoices.open(for: placed.orderId, idempotencyKey: event.event.id)
        }

        try store.events.register(BrokerPublisher(), as: "broker")

        let tail = Task {
            for try await event in store.events.events(after: 0) {
                print(event.position, event.event.type, event.unitOfWorkId)
            }
        }
        return tail
    }

    // MARK: QUERY.md

    static func query(candidates: [(id: String, record: Document)]) throws -> (QueryPage, Int, QueryPage) {
        // In Swift
        let query = Query(table: "SalesOrder")
            .where(.compare("status", .eq, "paid") && .compare("total", .gte, 100))
            .orderBy("placedAt", descending: true)
            .limit(20)

        // As text
        let same = try Query(parsing: """
            from SalesOrder where status = 'paid' and total >= 100 order by placedAt desc limit 20
            """)
        assert(same == query)
        print(query)   // from SalesOrder where status = 'paid' and total >= 100 order by placedAt desc limit 20

        // Evaluation
        let page = try query.apply(to: candidates)   // candidates: [(id: String, record: Document)]
        let total = query.count(in: candidates)

        let last: QueryPage
        do {
            var query = try Query(parsing: "from SalesOrder order by placedAt desc limit 50")
            var page = try query.apply(to: candidates)
            while let next = page.next {
                query.after = next                 // or: query = query.after(next)
                page = try query.apply(to: candidates)
            }
            last = page
        }
        return (page, total, last)
    }
}
