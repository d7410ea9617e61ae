#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One row of a query result: a record and its id.
public struct QueryRow: Hashable, Sendable {
    /// The record's id (its primary key).
    public var id: String
    /// The record, or the projected part of it.
    public var record: Document

    /// Creates a row.
    public init(id: String, record: Document) {
        self.id = id
        self.record = record
    }
}

/// One page of a query result.
public struct QueryPage: Hashable, Sendable {
    /// The rows, in the query's order.
    public var rows: [QueryRow]
    /// The position after the last row when more rows matched beyond this page; `nil` on the
    /// last page. Pass it as ``Query/after`` for the next page.
    public var next: QueryCursor?

    /// Creates a page.
    public init(rows: [QueryRow], next: QueryCursor?) {
        self.rows = rows
        self.next = next
    }
}

extension Query {
    /// Evaluates the query over candidate records: the pipeline every access path ends in.
    ///
    /// 1. keeps the candidates the ``predicate`` matches (``Predicate/matches(_:)``);
    /// 2. sorts them by ``order`` and then by id (UTF-8 byte order), values compared with
    ///    ``Document/compare(_:_:)``, a missing field as null;
    /// 3. drops the rows up to and including the ``after`` cursor's position;
    /// 4. skips ``offset`` rows and keeps at most ``limit``;
    /// 5. keeps only the ``projection`` of each record.
    ///
    /// The candidates may be a superset of the table (an index over-fetches); their order does
    /// not matter. Ids should be distinct.
    ///
    /// ```swift
    /// let query = try Query(parsing: "from SalesOrder where total > 100 order by total desc limit 2")
    /// let page = try query.apply(to: [("SO-1", order1), ("SO-2", order2), ("SO-3", order3)])
    /// page.rows.map(\.id)     // the two largest totals above 100
    /// page.next               // set when a third order matched
    /// ```
    ///
    /// - Parameter candidates: The records with their ids.
    /// - Returns: The page and, when more rows matched, the cursor of the next page.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when ``offset`` or
    ///   ``limit`` is negative, or the cursor was made for another order.
    public func apply(to candidates: some Sequence<(id: String, record: Document)>) throws(StoreError) -> QueryPage {
        guard offset >= 0 else { throw StoreError(.invalidArgument, "the query offset \(offset) is negative") }
        if let limit, limit < 0 { throw StoreError(.invalidArgument, "the query limit \(limit) is negative") }
        let fingerprint = QueryCursor.fingerprint(of: order)
        if let after {
            guard after.orderFingerprint == fingerprint, after.sortValues.count == order.count else {
                throw StoreError(.invalidArgument, "the query cursor was made for another order than '\(order.map(\.description).joined(separator: ", "))'")
            }
        }
        var rows: [SortableRow] = []
        for candidate in candidates where predicate.matches(candidate.record) {
            let keys = order.map { $0.field.value(in: candidate.record) ?? .null }
            let row = SortableRow(id: candidate.id, record: candidate.record, keys: keys)
            if let after, compare(row.keys, row.id, after.sortValues, after.id) != .orderedDescending { continue }
            rows.append(row)
        }
        rows.sort { compare($0.keys, $0.id, $1.keys, $1.id) == .orderedAscending }
        let start = min(offset, rows.count)
        let end = limit.map { start + min($0, rows.count - start) } ?? rows.count
        let page = rows[start..<end]
        var next: QueryCursor?
        if end < rows.count, let last = page.last {
            next = try QueryCursor(sortValues: last.keys, id: last.id, orderFingerprint: fingerprint)
        }
        let output = page.map { row in
            QueryRow(id: row.id, record: projection.map { Self.project(row.record, $0) } ?? row.record)
        }
        return QueryPage(rows: output, next: next)
    }

    /// How many candidates the predicate matches, ignoring ``order``, ``after``, ``offset``,
    /// ``limit`` and ``projection``: the total behind a page.
    ///
    /// - Parameter candidates: The records with their ids.
    public func count(in candidates: some Sequence<(id: String, record: Document)>) -> Int {
        var total = 0
        for candidate in candidates where predicate.matches(candidate.record) { total += 1 }
        return total
    }

    private struct SortableRow {
        var id: String
        var record: Document
        var keys: [Document]
    }

    /// Compares two positions in (order keys..., id).
    private func compare(_ leftKeys: [Document], _ leftId: String, _ rightKeys: [Document], _ rightId: String) -> ComparisonResult {
        for position in order.indices {
            let result = Document.compare(leftKeys[position], rightKeys[position])
            if result != .orderedSame {
                if order[position].descending {
                    return result == .orderedAscending ? .orderedDescending : .orderedAscending
                }
                return result
            }
        }
        if leftId.utf8.elementsEqual(rightId.utf8) { return .orderedSame }
        return leftId.utf8.lexicographicallyPrecedes(rightId.utf8) ? .orderedAscending : .orderedDescending
    }

    /// The projection of a record: its `id` field, then each listed field that is present, nested
    /// as in the record. A record that is not a map projects to an empty map.
    static func project(_ record: Document, _ fields: [FieldPath]) -> Document {
        var result = Document.Map()
        if let id = FieldPath.id.value(in: record) { result["id"] = id }
        for field in fields {
            guard let value = field.value(in: record) else { continue }
            insert(value, at: field.components[...], into: &result)
        }
        return .map(result)
    }

    private static func insert(_ value: Document, at path: ArraySlice<String>, into map: inout Document.Map) {
        guard let key = path.first else { return }
        if path.count == 1 {
            map[key] = value
            return
        }
        var inner = map[key]?.mapValue ?? Document.Map()
        insert(value, at: path.dropFirst(), into: &inner)
        map[key] = .map(inner)
    }
}
