import AggregateStore
import Foundation
import Testing

private func nestedArrays(_ count: Int, innermost: Document = .integer(1)) -> Document {
    RecordFixtures.nestedArrays(count, innermost: innermost)
}

@Suite("Record documents")
struct RecordDocumentTests {
    static let order: Document = [
        "id": "SO-1",
        "status": "placed",
        "shippingAddress": ["street": "1 Harbour Street", "city": "Lisbon"],
        "items": [["productId": "PRD-1", "quantity": 2], ["productId": "PRD-2", "quantity": 3]],
        "note": nil,
    ]

    @Test func fieldsAndDottedPathsAreLookedUp() {
        let order = Self.order
        #expect(order[field: "id"] == "SO-1")
        #expect(order[field: "missing"] == nil)
        #expect(order.value(at: "shippingAddress.city") == "Lisbon")
        #expect(order.value(at: "items.1.quantity") == .integer(3))
        #expect(order.value(at: "items.2.quantity") == nil)
        #expect(order.value(at: "items.x") == nil)
        #expect(order.value(at: "id.length") == nil)
        #expect(order.value(at: "") == order)
        #expect(order.value(at: "note") == .null)
        #expect(order.value(at: "note")?.isNull == true)
        #expect(order[field: "id"]?.isNull == false)
        #expect(Document.string("x")[field: "id"] == nil)
        #expect(order[field: "items"]?[index: 0]?[field: "productId"] == "PRD-1")
        #expect(order[field: "items"]?[index: 5] == nil)
    }

    @Test func typedAccessorsReturnOnlyTheirKind() {
        #expect(Document.bool(true).boolValue == true)
        #expect(Document.integer(7).integerValue == 7)
        #expect(Document.integer(7).doubleValue == 7)
        #expect(Document.double(2.5).doubleValue == 2.5)
        #expect(Document.decimal(Decimal(string: "1.25")!).doubleValue == 1.25)
        #expect(Document.integer(7).decimalValue == Decimal(7))
        #expect(Document.string("a").stringValue == "a")
        #expect(Document.string("a").integerValue == nil)
        #expect(Document.bytes([1, 2]).bytesValue == [1, 2])
        #expect(Document.timestamp(Timestamp(microsecondsSinceEpoch: 5)).timestampValue?.microsecondsSinceEpoch == 5)
        #expect(Document.array([1]).arrayValue == [1])
        #expect(Self.order.mapValue?.keys == ["id", "status", "shippingAddress", "items", "note"])
    }

    @Test func mapsKeepInsertionOrder() {
        var map = Document.Map()
        for key in ["zeta", "alpha", "mu", "beta"] { map[key] = .string(key) }
        #expect(map.keys == ["zeta", "alpha", "mu", "beta"])
        map["alpha"] = 1
        #expect(map.keys == ["zeta", "alpha", "mu", "beta"])
        #expect(map["alpha"] == 1)
        map["mu"] = nil
        #expect(map.keys == ["zeta", "alpha", "beta"])
        #expect(map.removeValue(forKey: "zeta") == "zeta")
        #expect(map.removeValue(forKey: "zeta") == nil)
        #expect(map.map(\.key) == ["alpha", "beta"])
        #expect(map.index(forKey: "beta") == 1)
        let literal: Document = ["b": 1, "a": 2, "c": 3]
        #expect(literal.mapValue?.keys == ["b", "a", "c"])
    }

    @Test func depthCountsNestedContainers() {
        #expect(Document.integer(1).depth == 0)
        #expect(Document.array([]).depth == 1)
        #expect(nestedArrays(64).depth == 64)
        #expect(Self.order.depth == 3)
    }

    @Test func equalityIsRepresentational() {
        #expect(Document.double(.nan) == .double(.nan))
        #expect(Document.double(0.0) != .double(-0.0))
        #expect(Document.integer(1) != .double(1))
        #expect(Document.decimal(Decimal(string: "1.0")!) == .decimal(Decimal(1)))
        #expect(Document.decimal(Decimal(string: "1.50")!) == .decimal(Decimal(string: "1.5")!))
        // Canonically equivalent but different UTF-8: different documents, as their bytes differ.
        #expect(Document.string("\u{E9}") != .string("e\u{301}"))
        #expect((["a": 1, "b": 2] as Document) != (["b": 2, "a": 1] as Document))
        let set: Set<Document> = [.double(.nan), .double(.nan), .decimal(Decimal(string: "2.0")!), .decimal(2)]
        #expect(set.count == 2)
    }

    @Test func descriptionIsTheCompactJSON() {
        #expect("\(["a": [1, true, nil]] as Document)" == #"{"a":[1,true,null]}"#)
    }
}
