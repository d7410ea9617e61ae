import AggregateStore
import Foundation
import Testing

private typealias TestRandom = RecordFixtures.TestRandom

@Suite("Record ordering")
struct RecordOrderingTests {
    func order(_ a: Document, _ b: Document) -> ComparisonResult { Document.compare(a, b) }

    @Test func kindsSortNullBoolNumberStringTimestampBytesArrayMap() {
        let ascending: [Document] = [
            .null, .bool(false), .bool(true), .double(.nan), .double(-.infinity), .integer(-5), .decimal(Decimal(string: "-0.5")!),
            .integer(0), .double(0.25), .decimal(1), .double(1.5), .integer(2), .double(.infinity),
            .string(""), .string("B"), .string("a"), .string("ab"), .string("é"),
            .timestamp(Timestamp(microsecondsSinceEpoch: -1)), .timestamp(Timestamp(microsecondsSinceEpoch: 0)),
            .bytes([]), .bytes([0]), .bytes([1]), .array([]), .array([1]), .array([1, 1]), .array([2]),
            .map([:]), ["a": 1], ["a": 2], ["b": 0],
        ]
        for (i, a) in ascending.enumerated() {
            for (j, b) in ascending.enumerated() {
                let expected: ComparisonResult = i < j ? .orderedAscending : (i == j ? .orderedSame : .orderedDescending)
                #expect(order(a, b) == expected, "\(a) vs \(b)")
            }
        }
        var random = TestRandom(seed: 7)
        #expect(ascending.shuffled(using: &random).sorted(by: Document.sortsBefore) == ascending)
    }

    @Test func numbersCompareByValueAcrossKinds() {
        #expect(order(.integer(1), .double(1)) == .orderedSame)
        #expect(order(.integer(1), .decimal(Decimal(string: "1.000")!)) == .orderedSame)
        #expect(order(.double(0.1), .decimal(Decimal(string: "0.1")!)) == .orderedDescending) // 0.1 as a double is above 1/10
        #expect(order(.double(0.5), .decimal(Decimal(string: "0.5")!)) == .orderedSame)
        #expect(order(.double(-0.0), .integer(0)) == .orderedSame)
        #expect(order(.double(-0.0), .double(0.0)) == .orderedSame)
        #expect(order(.integer(Int64.max), .double(0x1p63)) == .orderedAscending)
        #expect(order(.integer(Int64.min), .double(-9_223_372_036_854_775_808)) == .orderedSame)
        #expect(order(.integer(9_007_199_254_740_993), .double(9_007_199_254_740_992)) == .orderedDescending)
        #expect(order(.integer(3), .double(2.999999999)) == .orderedDescending)
        #expect(order(.integer(-3), .double(-2.5)) == .orderedAscending)
        #expect(order(.decimal(Decimal(string: "1e100")!), .double(1e100)) != .orderedSame)
        #expect(order(.decimal(Decimal(string: "1e-127")!), .double(0)) == .orderedDescending)
        #expect(order(.decimal(.greatestFiniteMagnitude), .double(.greatestFiniteMagnitude)) == .orderedAscending)
        #expect(order(.decimal(Decimal(string: "123.456")!), .decimal(Decimal(string: "123.4560001")!)) == .orderedAscending)
        #expect(order(.decimal(.nan), .double(.nan)) == .orderedSame)
        #expect(order(.decimal(.nan), .double(-.infinity)) == .orderedAscending)
        #expect(order(.double(.infinity), .decimal(.greatestFiniteMagnitude)) == .orderedDescending)
    }

    @Test func theOrderIsTransitiveOnMixedNumbers() {
        var random = TestRandom(seed: 11)
        var values: [Document] = []
        for _ in 0..<120 {
            let whole = Int64.random(in: -1000...1000, using: &random)
            switch Int.random(in: 0..<4, using: &random) {
            case 0: values.append(.integer(whole))
            case 1: values.append(.double(Double(whole) / 8))
            case 2: values.append(.decimal(Decimal(whole) / 8))
            default: values.append(.decimal(Decimal(string: "\(whole).3")!))
            }
        }
        let sorted = values.sorted(by: Document.sortsBefore)
        for index in sorted.indices.dropLast() {
            #expect(order(sorted[index], sorted[index + 1]) != .orderedDescending)
        }
        for a in sorted.prefix(30) {
            for b in sorted.prefix(30) {
                #expect(order(a, b) == reversed(order(b, a)))
            }
        }
    }

    func reversed(_ result: ComparisonResult) -> ComparisonResult {
        switch result {
        case .orderedAscending: return .orderedDescending
        case .orderedDescending: return .orderedAscending
        case .orderedSame: return .orderedSame
        }
    }

    @Test func stringsCompareByUTF8Bytes() {
        #expect(order("Z", "a") == .orderedAscending)
        #expect(order("\u{E9}", "e\u{301}") == .orderedDescending) // C3 A9 after 65 CC 81
        #expect(order("a", "a\u{0}") == .orderedAscending)
        #expect(order("日本", "日本") == .orderedSame)
    }
}
