import AggregateStore
import Foundation
import Testing

private func demoOrder(number: Int = 12_345, items: Int = 4) -> RecordFixtures.SalesOrder { RecordFixtures.demoOrder(number: number, items: items) }

@Suite("Record JSON rendering")
struct RecordJSONTests {
    static let document: Document = [
        "id": "SO-1",
        "paid": false,
        "note": nil,
        "quantity": 3,
        "weight": 1.5,
        "total": .decimal(Decimal(string: "1234.50")!),
        "raw": .bytes([0x00, 0xFF, 0x10, 0x41]),
        "orderedAt": .timestamp(Timestamp(microsecondsSinceEpoch: 1_790_000_037_250_000)),
        "text": "quote \" backslash \\ newline \n tab \t bell \u{7} é",
        "items": [["sku": "A", "qty": 1], []],
        "empty": [:],
    ]

    @Test func compactRenderingIsExact() {
        let expected = #"{"id":"SO-1","paid":false,"note":null,"quantity":3,"weight":1.5,"total":1234.5,"#
            + #""raw":"AP8QQQ==","orderedAt":"2026-09-21T14:13:57.250000Z","#
            + #""text":"quote \" backslash \\ newline \n tab \t bell \u0007 é","#
            + #""items":[{"sku":"A","qty":1},[]],"empty":{}}"#
        #expect(Self.document.jsonString() == expected)
    }

    @Test func prettyRenderingIndentsByTwoSpaces() {
        let document: Document = ["a": [1, ["b": nil]], "c": [], "d": [:]]
        let expected = """
        {
          "a": [
            1,
            {
              "b": null
            }
          ],
          "c": [],
          "d": {}
        }
        """
        #expect(document.jsonString(pretty: true) == expected)
    }

    @Test func numbersAndSpecialValuesRender() {
        #expect(Document.double(.nan).jsonString() == #""NaN""#)
        #expect(Document.double(-.infinity).jsonString() == #""-Infinity""#)
        #expect(Document.double(-0.0).jsonString() == "-0.0")
        #expect(Document.double(1e100).jsonString() == "1e+100")
        #expect(Document.integer(Int64.min).jsonString() == "-9223372036854775808")
        #expect(Document.decimal(Decimal(string: "-0.001")!).jsonString() == "-0.001")
        #expect(Document.decimal(.nan).jsonString() == #""NaN""#)
        #expect(Document.bytes([]).jsonString() == #""""#)
        #expect(Document.bytes([1]).jsonString() == #""AQ==""#)
        #expect(Document.bytes([1, 2]).jsonString() == #""AQI=""#)
        #expect(Document.bytes([1, 2, 3]).jsonString() == #""AQID""#)
        #expect(Document.timestamp(Timestamp(microsecondsSinceEpoch: -1)).jsonString() == #""1969-12-31T23:59:59.999999Z""#)
        #expect(Document.timestamp(Timestamp(microsecondsSinceEpoch: 0)).jsonString() == #""1970-01-01T00:00:00Z""#)
    }

    @Test func theDemoOrderRendersWithItsFieldsInOrder() throws {
        let document = try RecordEncoder().document(from: demoOrder(items: 1))
        let expected = #"{"id":"SO-12345","customerId":"CUST-42","orderedAt":"2026-09-21T14:13:57Z","status":"placed","#
            + #""currency":"EUR","shippingAddress":{"street":"123 Harbour Street","city":"Lisbon","postalCode":"12345","#
            + #""country":"PT"},"items":[{"lineNumber":1,"productId":"PRD-1001","description":"Ceramic mug","#
            + #""quantity":2,"unitPriceCents":1433}]}"#
        #expect(document.jsonString() == expected)
    }
}

@Suite("Record JSON parsing")
struct RecordJSONParsingTests {
    @Test func renderedJSONParsesBackToTheDocument() throws {
        let document: Document = [
            "id": "SO-1", "paid": false, "note": nil, "quantity": 3, "weight": 1.5, "tiny": 1e-300,
            "text": "quote \" backslash \\ newline \n tab \t bell \u{7} é 👩‍👩‍👧", "items": [["sku": "A", "qty": -1], []], "empty": [:],
            "min": .integer(Int64.min), "max": .integer(Int64.max),
        ]
        #expect(try Document(json: document.jsonString()) == document)
        #expect(try Document(json: document.jsonString(pretty: true)) == document)
    }

    @Test func valuesParseToTheirKinds() throws {
        let numbers = try Document(json: "[1, -0, 1.0, 2e3, -1.5E-2, 12345678901234567890123]")
        #expect(numbers == [1, 0, .double(1), .double(2000), .double(-0.015), .decimal(Decimal(string: "12345678901234567890123")!)])
        #expect(try Document(json: #""\u00e9\ud83d\ude00\/""#) == .string("é😀/"))
        #expect(try Document(json: #"{"b": 1, "a": {"c": [true, null]}}"#).mapValue?.keys == ["b", "a"])
        #expect(try Document(json: "true") == true)
    }

    @Test func invalidJSONIsRejectedWithItsPosition() {
        let cases = ["", "[1,]", "{\"a\" 1}", "01", "[1] x", "\"abc", "\"\\x\"", "\"\\ud800\"", "{\"a\": 1, \"a\": 2}",
                     "tru", "nul", "-", "1.", "1e", "[\"\u{1}\"]", "1e400", "{1: 2}"]
        for text in cases {
            let error = #expect(throws: StoreError.self, "\(text)") { try Document(json: text) }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("line 1, column") == true, "\(text): \(error.map { "\($0)" } ?? "")")
        }
        let multiline = #expect(throws: StoreError.self) { try Document(json: "{\n  \"a\": [1,\n   oops]\n}") }
        #expect(multiline?.message.contains("line 3, column 4") == true, "\(multiline.map { "\($0)" } ?? "")")
    }

    @Test func nestingIsBounded() throws {
        let deepest = String(repeating: "[", count: Document.maximumDepth) + String(repeating: "]", count: Document.maximumDepth)
        #expect(try Document(json: deepest).depth == Document.maximumDepth)
        let tooDeep = "[" + deepest + "]"
        #expect(throws: StoreError.self) { try Document(json: tooDeep) }
        #expect(throws: StoreError.self) { try Document(json: String(repeating: "[", count: 100_000)) }
    }
}
