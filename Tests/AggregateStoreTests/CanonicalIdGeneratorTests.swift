@testable import AggregateStore
import Foundation
import Testing

@Suite("CanonicalId generator")
struct CanonicalIdGeneratorTests {
    @Test func deterministicIdsFollowTheGrammarAndRepeat() throws {
        let ids = CanonicalIdGenerator.deterministic(startingAt: 1_700_000_000_000)
        #expect(ids.next(kind: "entity", subkind: "salesorder") == "single-global-entity-salesorder-1700000000001-seed_000001")
        #expect(ids.next(kind: "event") == "single-global-event-1700000000002-seed_000002")
        let again = CanonicalIdGenerator.deterministic(startingAt: 1_700_000_000_000)
        #expect(again.next(kind: "entity", subkind: "salesorder") == "single-global-entity-salesorder-1700000000001-seed_000001")
    }

    @Test func randomIdsAreUniqueWellFormedAndCarryTheClock() throws {
        let ids = CanonicalIdGenerator(namespace: try .init(major: "Acme-Corp", minor: "eu.west"))
        let before = Int64(Date().timeIntervalSince1970 * 1000)
        let generated = (0..<2000).map { _ in ids.next(kind: "entity", subkind: "SalesOrder") }
        let after = Int64(Date().timeIntervalSince1970 * 1000)
        #expect(Set(generated).count == generated.count)
        for id in generated.prefix(50) {
            let parts = id.split(separator: "-")
            #expect(parts.count == 6, "\(id)")
            #expect(Array(parts.prefix(4)) == ["acme_corp", "eu_west", "entity", "salesorder"])
            let millis = try #require(Int64(parts[4]))
            #expect((before...after).contains(millis))
            #expect(parts[5].count == 22 && parts[5].allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) })
        }
    }

    @Test func invalidNamespaceLabelsAreRejected() {
        for label in ["", "1tenant", "t€nant", "a b"] {
            let error = #expect(throws: StoreError.self) { try CanonicalIdGenerator.Namespace(major: label, minor: "global") }
            #expect(error?.code == .invalidArgument)
        }
        #expect((try? CanonicalIdGenerator.Namespace(major: String(repeating: "a", count: 100), minor: "g"))?.major.count == 64)
    }

    @Test func entropyIsWrittenInBase62WithTheAlphabetInOrder() {
        // Expected values computed independently (Python, alphabet 0-9A-Za-z).
        #expect(CanonicalIdGenerator.base62((0, 0)) == "0000000000000000000000")
        #expect(CanonicalIdGenerator.base62((0, 61)) == "000000000000000000000z")
        #expect(CanonicalIdGenerator.base62((0, 62)) == "0000000000000000000010")
        #expect(CanonicalIdGenerator.base62((0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210)) == "0296tiiBb3UUmdjYQ3ySu0")
        #expect(CanonicalIdGenerator.base62((.max, .max)) == "7n42DGM5Tflk9n8mt7Fhc7")
    }
}
