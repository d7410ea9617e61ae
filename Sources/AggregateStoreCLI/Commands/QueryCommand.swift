import AggregateStore
import AggregateStoreEngine
import ArgumentParser
import Foundation
import Logging

/// `aggstore query`: the DataStore's query DSL in its text form, records out as JSON lines.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Query a table with the DSL's text form; print the records as JSON lines.",
        discussion: """
        The options are the clauses of the query text (Docs/QUERY.md has the grammar): \
        --where 'status = '\\''paid'\\'' and total >= 100', --order-by 'placedAt desc, total', \
        --limit, --offset, --after (the cursor a previous page printed) and --select. \
        Prints one record per line; when more rows match beyond --limit, the cursor of the \
        next page goes to standard error as `next: --after TOKEN`. --json prints one document \
        {"rows": [...], "next": TOKEN or null}; --count prints only how many records match. \
        A query is served by the primary-key index when it fixes the id, by a scan of the \
        table otherwise. Opens the store read-only (a shared lock: it fails with exit 3 while a \
        writer has it open).
        """
    )

    @Argument(help: "The store directory.")
    var directory: String

    @Argument(help: "The table (aggregate type) to query.")
    var table: String

    @Option(name: .customLong("where"), help: "The condition, such as \"status = 'paid' and total >= 100\".")
    var predicate: String?

    @Option(help: "The sort keys, such as 'placedAt desc, total'; the id always breaks ties.")
    var orderBy: String?

    @Option(help: "The most records to print.")
    var limit: Int?

    @Option(help: "Matching records to skip first.")
    var offset: Int?

    @Option(help: "Start after this cursor (printed by the previous page).")
    var after: String?

    @Option(help: "The fields to print, such as 'id, status, total'.")
    var select: String?

    @Flag(help: "Print only the number of matching records.")
    var count = false

    @Flag(help: "Print one JSON document with the rows and the next cursor.")
    var json = false

    /// The query text the options spell.
    func queryText() -> String {
        // Quoted, so that a table named like a keyword (`Order`) is still a name.
        var text = "from `\(table)`"
        if let predicate { text += " where \(predicate)" }
        if let orderBy { text += " order by \(orderBy)" }
        if let limit { text += " limit \(limit)" }
        if let offset { text += " offset \(offset)" }
        if let after { text += " after '\(after.replacingOccurrences(of: "'", with: "''"))'" }
        if let select { text += " select \(select)" }
        return text
    }

    func run() throws {
        let query: Query
        do {
            query = try Query(parsing: queryText())
        } catch {
            throw ValidationError("\(error.message)\n  in: \(queryText())")
        }
        var configuration = DataStore.Configuration()
        configuration.engine.readOnly = true
        let store = try openDataStoreOrExit(directory, configuration: configuration, logger: Logger(label: "aggstore.query"))
        defer { try? store.close() }
        if count {
            print(try UnitOfWork.run(on: store) { tx throws(StoreError) in try store.count(query, in: tx) })
            return
        }
        let page = try UnitOfWork.run(on: store) { tx throws(StoreError) in try store.fetch(query, in: tx) }
        if json {
            let rows = Document.array(page.rows.map(\.record))
            let next = page.next.map { Document.string($0.token) } ?? .null
            print(Document.map(["rows": rows, "next": next]).jsonString())
            return
        }
        for row in page.rows { print(row.record.jsonString()) }
        if let next = page.next { printError("next: --after \(next.token)") }
    }
}
