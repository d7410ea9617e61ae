import AggregateStore
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

@Suite("The guides' examples compile, run, and match the guides")
struct GuideExamplesTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The lines of a text with indentation and blank lines removed: how blocks are compared.
    static func normalized(_ text: String) -> [String] {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("import ") }
    }

    @Test(arguments: ["GETTING-STARTED.md", "TRANSACTIONS.md", "EVENTS.md", "QUERY.md"])
    func everySwiftBlockOfTheGuideIsInTheCompiledExamples(guide: String) throws {
        let markdown = try String(contentsOf: Self.repository.appendingPathComponent("Docs/\(guide)"), encoding: .utf8)
        let examples = Self.normalized(try String(contentsOf: Self.repository.appendingPathComponent(
            "Tests/AggregateStoreTests/Guides/GuideExamples.swift"), encoding: .utf8))
        let blocks = markdown.components(separatedBy: "```swift\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        #expect(!blocks.isEmpty, "\(guide) has no Swift example")
        for block in blocks {
            let lines = Self.normalized(block)
            let found = examples.indices.contains { start in
                start + lines.count <= examples.count && Array(examples[start..<start + lines.count]) == lines
            }
            #expect(found, "this example of \(guide) is not in GuideExamples.swift:\n\(block)")
        }
    }

    @Test func gettingStartedRuns() throws {
        let directory = TemporaryDirectory()
        let (byCustomer, paid) = try Guide.gettingStarted(directory: directory.path("store"))
        #expect(byCustomer.count == 1 && byCustomer[0].items.count == 2)
        #expect(paid.map(\.id) == byCustomer.map(\.id) && paid[0].note == nil)
    }

    @Test func transactionsRun() async throws {
        let directory = TemporaryDirectory()
        let store = try DataStore.open(at: directory.path("store"))
        defer { try? store.close() }
        let order = Guide.SalesOrder(id: "so-0", customerId: "c-1", status: "open", items: [])
        try Guide.transactions(store: store, order: order)
        var saved = order
        saved.status = "saved asynchronously"
        try await Guide.asyncTransaction(store: store, order: saved)
        try await UnitOfWork.run(on: store) { tx throws in
            #expect(try store.load(Guide.SalesOrder.self, id: "so-1", in: tx)?.status == "cancelled")
            #expect(try store.load(Guide.SalesOrder.self, id: "so-0", in: tx)?.status == "saved asynchronously")
        }
    }

    @Test func eventsRun() async throws {
        let directory = TemporaryDirectory()
        let store = try DataStore.open(at: directory.path("store"))
        let invoices = Guide.Invoices()
        let order = Guide.SalesOrder(id: "so-9", customerId: "c-1", status: "open", items: [])
        let tail = try Guide.events(store: store, order: order, invoices: invoices)
        await store.events.waitForDelivery(to: "invoicing", through: 1)
        #expect(invoices.opened.withLock { $0 } == ["so-9"])
        try store.close()
        try await tail.value
    }

    @Test func queryRuns() throws {
        let candidates: [(id: String, record: Document)] = (1...120).map { n in
            ("so-\(n)", ["id": .string("so-\(n)"), "status": n.isMultiple(of: 2) ? "paid" : "open",
                         "total": .integer(Int64(n)), "placedAt": .integer(Int64(1000 - n))])
        }
        let (page, total, last) = try Guide.query(candidates: candidates)
        #expect(total == 11)                  // even totals from 100 to 120
        #expect(page.rows.first?.id == "so-100")
        // 120 rows by placedAt descending (so-1 first), in pages of 50: the last page holds 20.
        #expect(last.rows.count == 20 && last.next == nil && last.rows.last?.id == "so-120")
    }
}
