import AggregateStore
import Foundation
import Testing

private typealias SalesOrder = RecordFixtures.SalesOrder
private typealias Customer = RecordFixtures.Customer
private func demoOrder(number: Int = 12_345, items: Int = 4) -> RecordFixtures.SalesOrder { RecordFixtures.demoOrder(number: number, items: items) }
private func sampleCustomer() -> RecordFixtures.Customer { RecordFixtures.sampleCustomer() }
private typealias TestRandom = RecordFixtures.TestRandom
private func varint(_ value: UInt64) -> [UInt8] { RecordFixtures.varint(value) }

/// Damaged and hostile records: decoding throws or returns a value, and never traps.
@Suite("Record hostile input")
struct RecordHostileInputTests {
    static let record: [UInt8] = {
        var customer = sampleCustomer()
        customer.nickname = "Ana"
        return (try? RecordEncoder().encode(demoOrder(items: 3))) ?? []
    }()

    static let customerRecord: [UInt8] = (try? RecordEncoder().encode(sampleCustomer())) ?? []

    @Test func everyTruncationIsRejected() {
        for record in [Self.record, Self.customerRecord] {
            #expect(!record.isEmpty)
            for length in 0..<record.count {
                let prefix = Array(record[..<length])
                #expect(throws: StoreError.self, "length \(length)") { try Document(decoding: prefix) }
                #expect(throws: StoreError.self, "length \(length)") { try RecordDecoder().decode(SalesOrder.self, from: prefix) }
                #expect(throws: StoreError.self, "length \(length)") { try RecordDecoder().decode(Customer.self, from: prefix) }
            }
        }
    }

    @Test func randomMutationsThrowOrDecode() throws {
        var random = TestRandom(seed: 0xA66_5701E)
        var decoded = 0
        for iteration in 0..<4000 {
            var bytes = iteration.isMultiple(of: 2) ? Self.record : Self.customerRecord
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = Int.random(in: 0..<bytes.count, using: &random)
                switch Int.random(in: 0..<6, using: &random) {
                case 0: bytes[position] = UInt8.random(in: 0...255, using: &random)
                case 1: bytes[position] ^= 1 << UInt8.random(in: 0...7, using: &random)
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &random), at: position)
                case 3 where bytes.count > 2: bytes.remove(at: position)
                case 4: bytes[position] = [0x00, 0x7F, 0x80, 0xFF][Int.random(in: 0..<4, using: &random)]
                default: bytes[position] = UInt8.random(in: 0...0x0B, using: &random)
                }
            }
            if let document = try? Document(decoding: bytes) {
                decoded += 1
                // Whatever decodes is a valid document: it encodes and decodes to itself.
                #expect(try Document(decoding: document.encoded()) == document)
                _ = document.jsonString()
            }
            _ = try? RecordDecoder().decode(SalesOrder.self, from: bytes)
            _ = try? RecordDecoder().decode(Customer.self, from: bytes)
            _ = try? RecordDecoder().decode(Document.self, from: bytes)
        }
        #expect(decoded > 0)
    }

    @Test func randomBytesThrowOrDecode() {
        var random = TestRandom(seed: 99)
        for _ in 0..<3000 {
            let count = Int.random(in: 0...64, using: &random)
            var bytes = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
            if !bytes.isEmpty { bytes[0] = 1 }
            if bytes.count > 1 { bytes[1] = UInt8.random(in: 0...0x0A, using: &random) }
            _ = try? Document(decoding: bytes)
            _ = try? RecordDecoder().decode(SalesOrder.self, from: bytes)
            _ = try? RecordDecoder().decode([String: Int].self, from: bytes)
        }
    }

    @Test func hugeCountsAndLengthsAreBoundedByTheBytes() {
        // An array claiming 2^62 elements, and a string claiming 2^40 bytes, in a few bytes.
        let hugeArray: [UInt8] = [1, 0x09] + varint(10) + varint(1 << 62) + [0, 0]
        let hugeString: [UInt8] = [1, 0x06] + varint(1 << 40) + [0x61]
        for bytes in [hugeArray, hugeString] {
            let error = #expect(throws: StoreError.self) { try Document(decoding: bytes) }
            #expect(error?.code == .corruption)
            #expect(throws: StoreError.self) { try RecordDecoder().decode([Int].self, from: bytes) }
        }
    }
}
