import AggregateStore
import Foundation

/// Types and helpers shared by the Record*Tests suites (this file holds no tests), in one
/// namespace so they cannot clash with other suites of this test target; each file brings what
/// it uses in with private aliases.
enum RecordFixtures {
    /// The demo aggregate of `aggstore demo`: a sales order with its items, as one record.
    struct SalesOrder: Codable, Sendable, Equatable {
        var id: String
        var customerId: String
        var orderedAt: Date
        var status: String
        var currency: String
        var shippingAddress: Address
        var items: [SalesOrderItem]
    }

    struct SalesOrderItem: Codable, Sendable, Equatable {
        var lineNumber: Int
        var productId: String
        var description: String
        var quantity: Int
        var unitPriceCents: Int
    }

    struct Address: Codable, Sendable, Equatable {
        var street: String
        var city: String
        var postalCode: String
        var country: String
    }

    /// A demo order with `items` lines (1-8), as `aggstore demo` writes them.
    static func demoOrder(number: Int = 12_345, items: Int = 4) -> SalesOrder {
        let products = ["Espresso beans 1kg", "Ceramic mug", "Pour-over kettle", "Burr grinder",
                        "Paper filters x100", "Milk jug", "Tamper 58mm", "Scale with timer"]
        return SalesOrder(
            id: "SO-\(number)", customerId: "CUST-42", orderedAt: Date(timeIntervalSince1970: 1_790_000_000 + 37),
            status: "placed", currency: "EUR",
            shippingAddress: Address(street: "123 Harbour Street", city: "Lisbon", postalCode: "12345", country: "PT"),
            items: (1...items).map { line in
                SalesOrderItem(lineNumber: line, productId: "PRD-\(1000 + line)", description: products[line % 8],
                               quantity: line % 5 + 1, unitPriceCents: 199 + line * 1234)
            })
    }

    /// A deterministic generator for the mutation tests (SplitMix64).
    struct TestRandom: RandomNumberGenerator {
        var state: UInt64

        init(seed: UInt64) { state = seed }

        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// `count` arrays nested inside one another around `innermost`.
    static func nestedArrays(_ count: Int, innermost: Document = .integer(1)) -> Document {
        var document = innermost
        for _ in 0..<count { document = .array([document]) }
        return document
    }

    /// A type using most of what `Codable` offers: optionals, enums, dictionaries, bytes, decimals.
    struct Customer: Codable, Sendable, Equatable {
        enum Tier: String, Codable, Sendable { case standard, gold }
        enum Channel: Int, Codable, Sendable { case web = 1, store = 2 }
        enum Contact: Codable, Sendable, Equatable {
            case email(String)
            case phone(country: Int, number: String)
            case none
        }

        var id: String
        var nickname: String?
        var tier: Tier
        var channel: Channel?
        var contact: Contact
        var creditLimit: Decimal
        var balance: Decimal?
        var visitsByMonth: [String: Int]
        var labels: [Int: String]
        var avatar: Data
        var signature: [UInt8]
        var since: Date
        var lastSeen: Date?
        var homepage: URL?
        var scores: [Double]
        var ratio: Float
        var flags: [Bool?]
        var small: Int8
        var unsigned: UInt32
        var big: UInt64
        var address: Address?
        var tags: Set<String>
    }

    static func sampleCustomer() -> Customer {
        Customer(
            id: "C-1", nickname: nil, tier: .gold, channel: .store, contact: .phone(country: 351, number: "912 345 678"),
            creditLimit: Decimal(string: "1250.75")!, balance: nil,
            visitsByMonth: ["2026-01": 3, "2026-02": 0, "2026-03": 12], labels: [1: "one", 20: "twenty"],
            avatar: Data([0, 1, 2, 250]), signature: [9, 8, 7],
            since: Date(timeIntervalSince1970: 1_700_000_000.123456), lastSeen: Date(timeIntervalSince1970: -86_400.5),
            homepage: URL(string: "https://example.com/a?b=c"), scores: [1.5, -0.0, .infinity], ratio: 0.25,
            flags: [true, nil, false], small: -128, unsigned: .max, big: UInt64(Int64.max),
            address: Address(street: "Rua Augusta 1", city: "Lisboa", postalCode: "1100-048", country: "PT"),
            tags: ["vip", "newsletter"])
    }


    /// A collection without contiguous storage, to take the copying path.
    struct AnySequenceCollection: Collection {
        let base: [UInt8]
        init(_ base: [UInt8]) { self.base = base }
        var startIndex: Int { base.startIndex }
        var endIndex: Int { base.endIndex }
        subscript(position: Int) -> UInt8 { base[position] }
        func index(after i: Int) -> Int { i + 1 }
    }


    /// The unsigned LEB128 form of `value`.
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    /// The order's coding keys, for tests that open containers themselves.
    enum OrderKeys: String, CodingKey { case id, customerId, orderedAt, status, currency, shippingAddress, items }
}
