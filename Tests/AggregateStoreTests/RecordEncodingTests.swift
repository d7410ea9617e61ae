import AggregateStore
import Foundation
import Testing

private func nestedArrays(_ count: Int, innermost: Document = .integer(1)) -> Document {
    RecordFixtures.nestedArrays(count, innermost: innermost)
}
private func varint(_ value: UInt64) -> [UInt8] { RecordFixtures.varint(value) }
private typealias AnySequenceCollection = RecordFixtures.AnySequenceCollection

@Suite("Record binary encoding")
struct RecordEncodingTests {
    static let decimals: [Decimal] = [
        0, 1, -1, Decimal(string: "12.34")!, Decimal(string: "-0.0001")!, Decimal(string: "1.50")!,
        Decimal(string: "12345678901234567890123456789012345678")!,
        Decimal(string: "-340282366920938463463374607431768211455")!,
        .greatestFiniteMagnitude, .leastFiniteMagnitude, .leastNonzeroMagnitude,
        Decimal(string: "1e100")!, Decimal(string: "-7e-120")!, Decimal(Int64.min), Decimal(UInt64.max), .nan,
    ]

    static let doubles: [Double] = [
        0, -0.0, 1, -1.5, .pi, .nan, -.nan, .infinity, -.infinity, .leastNonzeroMagnitude, .leastNormalMagnitude,
        .greatestFiniteMagnitude, 1e-300, Double(bitPattern: 0x7FF8_0000_0000_1234),
    ]

    static let strings = ["", "a", "placed", "é", "e\u{301}", "日本語のテキスト", "👩‍👩‍👧‍👦 family", "\u{0}\u{1}\n\t\"\\",
                          String(repeating: "long ", count: 300)]

    static var scalars: [Document] {
        var values: [Document] = [.null, .bool(false), .bool(true)]
        values += [0, 1, -1, 63, -64, 64, 127, 128, -129, 1_048_576, .integer(Int64.max), .integer(Int64.min)]
        values += doubles.map(Document.double)
        values += decimals.map(Document.decimal)
        values += strings.map(Document.string)
        values += [.bytes([]), .bytes([0, 255, 1]), .bytes(Array(0...255)), .bytes([UInt8](repeating: 7, count: 1000))]
        values += [Int64.min, -1, 0, 1, 1_790_000_037_000_000, Int64.max].map { .timestamp(Timestamp(microsecondsSinceEpoch: $0)) }
        return values
    }

    static func roundTrip(_ document: Document) throws -> Document {
        try Document(decoding: try document.encoded())
    }

    @Test(arguments: scalars)
    func everyScalarRoundTrips(_ value: Document) throws {
        let back = try Self.roundTrip(value)
        #expect(back == value)
        #expect(try back.encoded() == value.encoded())
    }

    @Test func doublesKeepTheirBits() throws {
        for value in Self.doubles {
            guard case .double(let back) = try Self.roundTrip(.double(value)) else {
                Issue.record("not a double")
                continue
            }
            #expect(back.bitPattern == value.bitPattern)
        }
    }

    @Test func decimalsStayExact() throws {
        for value in Self.decimals {
            guard case .decimal(let back) = try Self.roundTrip(.decimal(value)) else {
                Issue.record("not a decimal")
                continue
            }
            if value.isNaN {
                #expect(back.isNaN)
            } else {
                #expect(back == value, "\(value) came back as \(back)")
                #expect(back.description == value.description)
            }
        }
        // Equal decimals encode to the same bytes.
        #expect(try Document.decimal(Decimal(string: "1.50")!).encoded() == Document.decimal(Decimal(string: "1.5")!).encoded())
    }

    @Test func containersRoundTrip() throws {
        let empty: [Document] = [.array([]), .map([:]), ["a": [], "b": [:]]]
        for document in empty { #expect(try Self.roundTrip(document) == document) }

        let mixed: Document = .array(Self.scalars)
        #expect(try Self.roundTrip(mixed) == mixed)

        // Counts and lengths past one varint byte, and more keys than the duplicate check's linear limit.
        let wide = Document.map(Document.Map(uniqueKeysWithValues: (0..<300).map { ("field\($0)", Document.integer(Int64($0))) }))
        #expect(try Self.roundTrip(wide) == wide)
        let long: Document = .array((0..<1000).map { .string("element \($0)") })
        #expect(try Self.roundTrip(long) == long)
    }

    @Test func mapKeyOrderIsKept() throws {
        let keys = ["zulu", "alpha", "mike", "bravo", "", "日本", "Alpha"]
        let document = Document.map(Document.Map(uniqueKeysWithValues: keys.map { ($0, Document.string($0)) }))
        let back = try Self.roundTrip(document)
        #expect(back.mapValue?.keys == keys)
    }

    @Test func nestingUpToTheLimitIsAcceptedAndBeyondRejected() throws {
        let deepest = nestedArrays(Document.maximumDepth)
        #expect(try Self.roundTrip(deepest) == deepest)
        let deepMaps = (0..<Document.maximumDepth).reduce(Document.string("leaf")) { inner, _ in ["x": inner] }
        #expect(try Self.roundTrip(deepMaps) == deepMaps)

        let error = #expect(throws: StoreError.self) { try nestedArrays(Document.maximumDepth + 1).encoded() }
        #expect(error?.code == .invalidArgument)

        // Bytes of 65 nested arrays, written by hand: the decoder refuses them.
        var inner: [UInt8] = [0x09, 0x01, 0x00]
        for _ in 1...Document.maximumDepth {
            inner = [0x09] + varint(UInt64(1 + inner.count)) + [0x01] + inner
        }
        let bytes = [0x01] + inner
        let decodeError = #expect(throws: StoreError.self) { try Document(decoding: bytes) }
        #expect(decodeError?.code == .corruption)
    }

    @Test func theLayoutIsTheDocumentedOne() throws {
        // Version 1; a map of 5 bytes after its length holding 1 entry: key "a", integer 1 (zig-zag 2).
        #expect(try (["a": 1] as Document).encoded() == [0x01, 0x0A, 0x05, 0x01, 0x01, 0x61, 0x03, 0x02])
        #expect(try Document.integer(-1).encoded() == [0x01, 0x03, 0x01])
        #expect(try Document.string("hi").encoded() == [0x01, 0x06, 0x02, 0x68, 0x69])
        #expect(try Document.double(1).encoded() == [0x01, 0x04, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
        // 12.34: positive, exponent -2, mantissa 1234 (0xD2 0x09).
        #expect(try Document.decimal(Decimal(string: "12.34")!).encoded() == [0x01, 0x05, 0x00, 0xFE, 0xD2, 0x09])
        #expect(try Document.timestamp(Timestamp(microsecondsSinceEpoch: 1)).encoded() == [0x01, 0x08, 0x02])
        #expect(try Document.array([nil, true]).encoded() == [0x01, 0x09, 0x03, 0x02, 0x00, 0x02])
    }

    @Test func malformedRecordsAreRejectedWithTheirCode() {
        let cases: [([UInt8], StoreError.Code)] = [
            ([], .corruption),
            ([2, 0], .unsupportedFormat),
            ([1], .corruption),
            ([1, 0, 0], .corruption),                        // a byte after the value
            ([1, 0x7F], .corruption),                        // unknown tag
            ([1, 0x06, 0x05, 0x61], .corruption),            // string longer than the record
            ([1, 0x06, 0x02, 0xC3, 0x28], .corruption),      // invalid UTF-8
            ([1, 0x03, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F], .corruption), // varint overflow
            ([1, 0x05, 0x04, 0x00, 0x01], .corruption),      // unknown decimal flag
            ([1, 0x09, 0x02, 0x05, 0x00], .corruption),      // count larger than the bytes
            ([1, 0x09, 0x03, 0x01, 0x00, 0x00], .corruption), // length and elements disagree
            ([1, 0x0A, 0x07, 0x02, 0x01, 0x61, 0x00, 0x01, 0x61, 0x02], .corruption), // repeated key
        ]
        for (bytes, code) in cases {
            let error = #expect(throws: StoreError.self, "\(bytes)") { try Document(decoding: bytes) }
            #expect(error?.code == code, "\(bytes): \(error.map { "\($0)" } ?? "no error")")
        }
    }

    @Test func decodingAcceptsSlicesAndBuffers() throws {
        let bytes = try (["a": [1, 2, 3]] as Document).encoded()
        let padded = [0xEE] + bytes + [0xEE]
        #expect(try Document(decoding: padded[1..<(padded.count - 1)]) == ["a": [1, 2, 3]])
        #expect(try bytes.withUnsafeBytes { try Document(decoding: $0) } == ["a": [1, 2, 3]])
        #expect(try Document(decoding: AnySequenceCollection(bytes)) == ["a": [1, 2, 3]])
    }
}
