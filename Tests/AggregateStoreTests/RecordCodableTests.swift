import AggregateStore
import Foundation
import Testing

private typealias SalesOrder = RecordFixtures.SalesOrder
private typealias Address = RecordFixtures.Address
private typealias Customer = RecordFixtures.Customer
private func demoOrder(number: Int = 12_345, items: Int = 4) -> RecordFixtures.SalesOrder { RecordFixtures.demoOrder(number: number, items: items) }
private func sampleCustomer() -> RecordFixtures.Customer { RecordFixtures.sampleCustomer() }
private typealias OrderKeys = RecordFixtures.OrderKeys

@Suite("Record Codable encoder and decoder")
struct RecordCodableTests {
    let encoder = RecordEncoder()
    let decoder = RecordDecoder()

    @Test(arguments: 1...8)
    func theDemoOrderRoundTrips(items: Int) throws {
        let order = demoOrder(number: items, items: items)
        let bytes = try encoder.encode(order)
        #expect(try decoder.decode(SalesOrder.self, from: bytes) == order)
        // The typed bytes and the document are the same value, readable without the Swift type.
        let document = try Document(decoding: bytes)
        #expect(document == (try encoder.document(from: order)))
        #expect(try document.encoded() == bytes)
        #expect(document.value(at: "items.\(items - 1).lineNumber") == .integer(Int64(items)))
        #expect(document[field: "orderedAt"] == .timestamp(Timestamp(microsecondsSinceEpoch: 1_790_000_037_000_000)))
        #expect(try decoder.decode(SalesOrder.self, from: document) == order)
    }

    @Test func aTypeWithOptionalsEnumsDictionariesAndBytesRoundTrips() throws {
        var customer = sampleCustomer()
        #expect(try decoder.decode(Customer.self, from: encoder.encode(customer)) == customer)
        customer.nickname = "Ana"
        customer.balance = Decimal(string: "-0.01")!
        customer.contact = .email("ana@example.com")
        customer.channel = nil
        customer.address = nil
        customer.lastSeen = nil
        customer.homepage = nil
        customer.visitsByMonth = [:]
        #expect(try decoder.decode(Customer.self, from: encoder.encode(customer)) == customer)
        customer.contact = .none
        #expect(try decoder.decode(Customer.self, from: encoder.encode(customer)) == customer)
    }

    @Test func storedFormsAreTheNativeOnes() throws {
        let document = try encoder.document(from: sampleCustomer())
        #expect(document[field: "nickname"] == nil)              // nil optionals are absent keys
        #expect(document[field: "balance"] == nil)
        #expect(document[field: "tier"] == "gold")
        #expect(document[field: "channel"] == 2)
        #expect(document[field: "creditLimit"] == .decimal(Decimal(string: "1250.75")!))
        #expect(document[field: "avatar"] == .bytes([0, 1, 2, 250]))
        #expect(document[field: "signature"] == .bytes([9, 8, 7]))
        #expect(document[field: "since"] == .timestamp(Timestamp(microsecondsSinceEpoch: 1_700_000_000_123_456)))
        #expect(document[field: "homepage"] == "https://example.com/a?b=c")
        #expect(document.value(at: "visitsByMonth.2026-03") == 12)
        #expect(document.value(at: "labels.20") == "twenty")
        #expect(document.value(at: "contact.phone.country") == 351)
        #expect(document[field: "flags"] == [true, nil, false])
        #expect(document[field: "ratio"] == .double(0.25))
        // The record's keys follow the declaration order.
        #expect(document.mapValue?.keys.prefix(4) == ["id", "tier", "channel", "contact"])
    }

    @Test func datesKeepMicrosecondsAndRoundToThem() throws {
        struct Stamped: Codable, Equatable { var at: Date }
        for seconds in [0, 1_790_000_037.5, -1.25, 1_700_000_000.000001, 253_402_300_799.999999] {
            let value = Stamped(at: Date(timeIntervalSince1970: seconds))
            let back = try decoder.decode(Stamped.self, from: encoder.encode(value))
            #expect(abs(back.at.timeIntervalSince1970 - seconds) < 0.000_001)
            // A whole-microsecond date comes back exactly, and stays put on a second round trip.
            #expect(try decoder.decode(Stamped.self, from: encoder.encode(back)) == back)
        }
    }

    @Test func unknownKeysAreIgnoredAndAbsentOptionalsAreNil() throws {
        struct Narrow: Codable, Equatable {
            var id: String
            var status: String
            var coupon: String?
        }
        let narrow = try decoder.decode(Narrow.self, from: encoder.encode(demoOrder()))
        #expect(narrow == Narrow(id: "SO-12345", status: "placed", coupon: nil))
        struct WithNull: Codable { var coupon: String? }
        #expect(try decoder.decode(WithNull.self, from: ["coupon": nil] as Document).coupon == nil)
    }

    @Test func aMissingFieldIsAnErrorNamingItsPath() throws {
        var document = try encoder.document(from: demoOrder())
        guard case .map(var order) = document, case .map(var address)? = order["shippingAddress"] else {
            Issue.record("not a map")
            return
        }
        address["city"] = nil
        order["shippingAddress"] = .map(address)
        document = .map(order)
        let error = #expect(throws: StoreError.self) { try decoder.decode(SalesOrder.self, from: document) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("missing field 'shippingAddress.city'") == true, "\(error.map { "\($0)" } ?? "")")
    }

    @Test func aValueOfTheWrongKindIsAnErrorNamingItsPath() throws {
        var document = try encoder.document(from: demoOrder())
        guard case .map(var order) = document, case .array(var items)? = order["items"], case .map(var item) = items[1] else {
            Issue.record("not a map")
            return
        }
        item["quantity"] = "three"
        items[1] = .map(item)
        order["items"] = .array(items)
        document = .map(order)
        let error = #expect(throws: StoreError.self) { try decoder.decode(SalesOrder.self, from: document) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("items.1.quantity") == true, "\(error.map { "\($0)" } ?? "")")
        #expect(error?.message.contains("found a string") == true)

        struct Small: Codable { var value: Int8 }
        let range = #expect(throws: StoreError.self) { try decoder.decode(Small.self, from: ["value": 300] as Document) }
        #expect(range?.message.contains("'value'") == true)
        struct Whole: Codable { var value: Int }
        #expect(try decoder.decode(Whole.self, from: ["value": 3.0] as Document).value == 3)
        #expect(throws: StoreError.self) { try decoder.decode(Whole.self, from: ["value": 3.5] as Document) }
        let null = #expect(throws: StoreError.self) { try decoder.decode(Whole.self, from: ["value": nil] as Document) }
        #expect(null?.message.contains("is null") == true)
    }

    @Test func valuesARecordCannotHoldAreRejectedWithTheirPath() {
        struct Unsigned: Codable { var counts: [UInt64] }
        let error = #expect(throws: StoreError.self) { try encoder.encode(Unsigned(counts: [1, UInt64.max])) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("counts.1") == true, "\(error.map { "\($0)" } ?? "")")

        struct Far: Codable { var at: Date }
        let far = #expect(throws: StoreError.self) { try encoder.encode(Far(at: Date(timeIntervalSince1970: 1e300))) }
        #expect(far?.message.contains("at") == true)
    }

    final class Node: Codable, Equatable {
        var value: Int
        var child: Node?
        init(value: Int, child: Node?) {
            self.value = value
            self.child = child
        }
        static func == (lhs: Node, rhs: Node) -> Bool { lhs.value == rhs.value && lhs.child == rhs.child }
        static func chain(_ length: Int) -> Node {
            (1..<length).reduce(Node(value: 0, child: nil)) { Node(value: $1, child: $0) }
        }
    }

    @Test func nestingBeyondTheLimitIsRejected() throws {
        let deepest = Node.chain(Document.maximumDepth)
        #expect(try decoder.decode(Node.self, from: encoder.encode(deepest)) == deepest)
        let error = #expect(throws: StoreError.self) { try encoder.encode(Node.chain(Document.maximumDepth + 1)) }
        #expect(error?.code == .invalidArgument)
        #expect(throws: StoreError.self) { try encoder.document(from: Node.chain(Document.maximumDepth + 1)) }
    }

    class Vehicle: Codable {
        var wheels: Int
        init(wheels: Int) { self.wheels = wheels }
    }

    final class Car: Vehicle, Equatable {
        var brand: String
        init(wheels: Int, brand: String) {
            self.brand = brand
            super.init(wheels: wheels)
        }
        enum CodingKeys: String, CodingKey { case brand }
        required init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            brand = try container.decode(String.self, forKey: .brand)
            try super.init(from: container.superDecoder())
        }
        override func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(brand, forKey: .brand)
            try super.encode(to: container.superEncoder())
        }
        static func == (lhs: Car, rhs: Car) -> Bool { lhs.wheels == rhs.wheels && lhs.brand == rhs.brand }
    }

    @Test func superEncodersAndDecodersWork() throws {
        let car = Car(wheels: 4, brand: "Volvo")
        let bytes = try encoder.encode(car)
        #expect(try Document(decoding: bytes) == ["brand": "Volvo", "super": ["wheels": 4]])
        #expect(try decoder.decode(Car.self, from: bytes) == car)
    }

    struct Unusual: Codable, Equatable {
        var a: Int
        var b: [String]
        enum CodingKeys: String, CodingKey { case a, b, extra, list, missing }
        enum Inner: String, CodingKey { case x }
        init(a: Int, b: [String]) {
            self.a = a
            self.b = b
        }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            var nested = container.nestedContainer(keyedBy: Inner.self, forKey: .extra)
            var list = container.nestedUnkeyedContainer(forKey: .list)
            try nested.encode(a, forKey: .x)          // written after a sibling was begun
            try list.encode(contentsOf: b)
            try container.encode(a, forKey: .a)
            try container.encode(a + 1, forKey: .a)   // the same key twice: the last value wins
            try container.encode(b, forKey: .b)
        }
        init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            b = try container.decode([String].self, forKey: .b)   // not in stored order
            a = try container.decode(Int.self, forKey: .a) - 1
            let nested = try container.nestedContainer(keyedBy: Inner.self, forKey: .extra)
            #expect(try nested.decode(Int.self, forKey: .x) == a)
            var list = try container.nestedUnkeyedContainer(forKey: .list)
            var listed: [String] = []
            while !list.isAtEnd { listed.append(try list.decode(String.self)) }
            #expect(listed == b)
            #expect(Set(container.allKeys.map(\.stringValue)) == ["extra", "list", "a", "b"])
            #expect(container.contains(.a) && !container.contains(.missing))
            #expect(try container.decodeIfPresent(Int.self, forKey: .missing) == nil)
        }
    }

    @Test func containersUsedOutOfOrderFallBackToAFullEncoding() throws {
        let value = Unusual(a: 5, b: ["p", "q"])
        let bytes = try encoder.encode(value)
        #expect(try Document(decoding: bytes) == ["extra": ["x": 5], "list": ["p", "q"], "a": 6, "b": ["p", "q"]])
        #expect(try decoder.decode(Unusual.self, from: bytes) == value)
    }

    @Test func topLevelValuesOfAnyKind() throws {
        #expect(try decoder.decode(String.self, from: encoder.encode("plain")) == "plain")
        #expect(try decoder.decode([Int].self, from: encoder.encode([1, 2, 3])) == [1, 2, 3])
        #expect(try decoder.decode(Int?.self, from: encoder.encode(Int?.none)) == nil)
        #expect(try encoder.encode(Int?.none) == [1, 0])
        #expect(try decoder.decode([String: [Int]].self, from: encoder.encode(["a": [1], "b": []])) == ["a": [1], "b": []])
        #expect(try decoder.decode(Decimal.self, from: encoder.encode(Decimal(string: "3.14")!)) == Decimal(string: "3.14")!)
        #expect(try decoder.decode(Document.self, from: encoder.encode(["x": [1, "y"]] as Document)) == ["x": [1, "y"]])
        struct Empty: Codable, Equatable {}
        #expect(try encoder.encode(Empty()) == [1, 0x0A, 0x01, 0x00])
        #expect(try decoder.decode(Empty.self, from: encoder.encode(Empty())) == Empty())
    }

    @Test func userInfoReachesTheValue() throws {
        let key = CodingUserInfoKey(rawValue: "scale")!
        struct Scaled: Codable {
            var value: Int
            init(value: Int) { self.value = value }
            init(from decoder: any Decoder) throws {
                let scale = decoder.userInfo[CodingUserInfoKey(rawValue: "scale")!] as? Int ?? 1
                value = try decoder.singleValueContainer().decode(Int.self) / scale
            }
            func encode(to encoder: any Encoder) throws {
                let scale = encoder.userInfo[CodingUserInfoKey(rawValue: "scale")!] as? Int ?? 1
                var container = encoder.singleValueContainer()
                try container.encode(value * scale)
            }
        }
        let bytes = try RecordEncoder(userInfo: [key: 100]).encode(Scaled(value: 7))
        #expect(try Document(decoding: bytes) == 700)
        #expect(try RecordDecoder(userInfo: [key: 100]).decode(Scaled.self, from: bytes).value == 7)
    }

    /// Keeps what a `Codable` implementation should not keep, to check it is refused later.
    final class Keeper: @unchecked Sendable {
        var decoder: (any Decoder)?
        var container: KeyedDecodingContainer<RecordFixtures.OrderKeys>?
        var encodingContainer: KeyedEncodingContainer<RecordFixtures.OrderKeys>?
    }

    struct Escaping: Codable {
        static let keeper = Keeper()
        init() {}
        init(from decoder: any Decoder) throws {
            Self.keeper.decoder = decoder
            Self.keeper.container = try decoder.container(keyedBy: OrderKeys.self)
        }
        func encode(to encoder: any Encoder) throws {
            Self.keeper.encodingContainer = encoder.container(keyedBy: OrderKeys.self)
            try Self.keeper.encodingContainer?.encode("x", forKey: .id)
        }
    }

    @Test func decodersAndContainersKeptPastTheirCallAreRefused() throws {
        let bytes = try encoder.encode(demoOrder())
        _ = try decoder.decode(Escaping.self, from: bytes)
        let keeper = Escaping.keeper
        #expect(throws: (any Error).self) { try keeper.container?.decode(String.self, forKey: .id) }
        #expect(keeper.container?.allKeys.isEmpty == true)
        #expect(throws: (any Error).self) { try keeper.decoder?.container(keyedBy: OrderKeys.self) }
        #expect(throws: (any Error).self) { try keeper.decoder?.singleValueContainer() }

        #expect(try Document(decoding: encoder.encode(Escaping())) == ["id": "x"])
        #expect(throws: (any Error).self) { try keeper.encodingContainer?.encode("late", forKey: .id) }

        // Later calls are not disturbed by what was kept.
        #expect(try decoder.decode(SalesOrder.self, from: bytes) == demoOrder())
        #expect(try encoder.encode(demoOrder()) == bytes)
        keeper.container = nil
        keeper.decoder = nil
        keeper.encodingContainer = nil
        #expect(try decoder.decode(SalesOrder.self, from: encoder.encode(demoOrder(items: 3))) == demoOrder(items: 3))
    }

    /// Keeps only a container: the decoder and encoder objects themselves are free to serve the
    /// next call, and the container must still be refused (and not see that call's record).
    struct EscapingContainer: Codable {
        static let keeper = Keeper()
        init() {}
        init(from decoder: any Decoder) throws {
            Self.keeper.container = try decoder.container(keyedBy: OrderKeys.self)
        }
        func encode(to encoder: any Encoder) throws {
            Self.keeper.encodingContainer = encoder.container(keyedBy: OrderKeys.self)
            try Self.keeper.encodingContainer?.encode("x", forKey: .id)
        }
    }

    @Test func containersKeptWithoutTheirDecoderAreRefused() throws {
        let bytes = try encoder.encode(demoOrder())
        _ = try decoder.decode(EscapingContainer.self, from: bytes)
        #expect(try Document(decoding: encoder.encode(EscapingContainer())) == ["id": "x"])
        let keeper = EscapingContainer.keeper
        for round in 0..<3 {
            #expect(try decoder.decode(SalesOrder.self, from: encoder.encode(demoOrder(items: round + 1))) == demoOrder(items: round + 1))
            #expect(throws: (any Error).self) { try keeper.container?.decode(String.self, forKey: .id) }
            #expect(keeper.container?.codingPath.isEmpty == true)
            #expect(throws: (any Error).self) { try keeper.encodingContainer?.encode("late", forKey: .id) }
        }
        keeper.container = nil
        keeper.encodingContainer = nil
        #expect(try decoder.decode(SalesOrder.self, from: encoder.encode(demoOrder(items: 2))) == demoOrder(items: 2))
    }

    @Test func concurrentCallsShareNothing() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    let encoder = RecordEncoder()
                    let decoder = RecordDecoder()
                    for round in 0..<200 {
                        let order = demoOrder(number: task * 1000 + round, items: round % 8 + 1)
                        let back = try decoder.decode(SalesOrder.self, from: encoder.encode(order))
                        guard back == order else { throw StoreError(.corruption, "mismatch in task \(task)") }
                        let customer = sampleCustomer()
                        guard try decoder.decode(Customer.self, from: encoder.encode(customer)) == customer else {
                            throw StoreError(.corruption, "customer mismatch in task \(task)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
