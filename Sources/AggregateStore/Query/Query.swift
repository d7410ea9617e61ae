/// A sort key of a ``Query``: a field, ascending or descending.
///
/// Values sort in ``Document/compare(_:_:)`` order, a missing field as null, so nulls come first
/// ascending and last descending.
public struct SortKey: Hashable, Sendable, CustomStringConvertible {
    /// The field to sort by.
    public var field: FieldPath
    /// Whether larger values come first.
    public var descending: Bool

    /// Creates a sort key.
    ///
    /// - Parameters:
    ///   - field: The field to sort by.
    ///   - descending: Whether larger values come first; ascending by default.
    public init(_ field: FieldPath, descending: Bool = false) {
        self.field = field
        self.descending = descending
    }

    /// An ascending key.
    public static func ascending(_ field: FieldPath) -> SortKey { SortKey(field) }

    /// A descending key.
    public static func descending(_ field: FieldPath) -> SortKey { SortKey(field, descending: true) }

    /// The key in the text form: `total` or `total desc`.
    public var description: String { field.description + (descending ? " desc" : "") }
}

/// A query over one table: a predicate, an order, a page and a projection, as a value.
///
/// A query is data: build it in code or parse it from text, print it, compare it, store it.
/// ``apply(to:)`` evaluates it over candidate records; ``accessPath(foreignKeyFields:)`` says
/// which index can supply the candidates. The text form is what `description` prints and
/// ``init(parsing:)`` reads, and they round-trip exactly: `try Query(parsing: q.description) == q`.
///
/// ```swift
/// let query = Query(table: "SalesOrder")
///     .where(.compare("status", .eq, "paid") && .compare("total", .gte, 100))
///     .orderBy("placedAt", descending: true)
///     .limit(20)
/// query.description
/// // from SalesOrder where status = 'paid' and total >= 100 order by placedAt desc limit 20
/// let parsed = try Query(parsing: """
///     from SalesOrder where status = 'paid' and (total >= 100 or customerId in ('c-1', 'c-2'))
///     order by placedAt desc, total limit 20 select id, status
///     """)
/// let page = try parsed.apply(to: candidates)       // rows and the cursor of the next page
/// let next = try parsed.after(page.next!).apply(to: candidates)
/// ```
///
/// Pages follow the order (``order``, then the record id), then skip ``after`` the keyset
/// cursor, then ``offset`` rows, then take ``limit`` rows, then keep the ``projection``.
public struct Query: Hashable, Sendable, CustomStringConvertible {
    /// The table (aggregate type) queried, such as `SalesOrder`.
    public var table: String
    /// The condition a record must satisfy; ``Predicate/all`` by default.
    public var predicate: Predicate = .all
    /// The sort keys, most significant first. The record id always follows as the last,
    /// ascending tie-breaker, so the order is total.
    public var order: [SortKey] = []
    /// How many matching rows to skip after the cursor; 0 or more.
    public var offset: Int = 0
    /// The most rows to return, or `nil` for all; 0 or more.
    public var limit: Int?
    /// Keyset pagination: only rows strictly after this position in (``order``..., id).
    public var after: QueryCursor?
    /// The fields to return, or `nil` for whole records. A projected record keeps its `id` field.
    public var projection: [FieldPath]?

    /// Creates a query.
    ///
    /// - Parameters:
    ///   - table: The table queried.
    ///   - predicate: The condition; all records by default.
    ///   - order: The sort keys; by record id alone by default.
    ///   - offset: Rows to skip.
    ///   - limit: The most rows to return.
    ///   - after: The keyset cursor of the previous page.
    ///   - projection: The fields to return.
    public init(table: String, where predicate: Predicate = .all, order: [SortKey] = [], offset: Int = 0,
                limit: Int? = nil, after: QueryCursor? = nil, projection: [FieldPath]? = nil) {
        self.table = table
        self.predicate = predicate
        self.order = order
        self.offset = offset
        self.limit = limit
        self.after = after
        self.projection = projection
    }

    /// Parses the text form of a query:
    ///
    /// ```
    /// from SalesOrder where status = 'paid' and not note is null
    ///   order by placedAt desc, total limit 20 offset 40 after 'TOKEN' select id, status
    /// ```
    ///
    /// `Docs/QUERY.md` has the grammar. Keywords are case-insensitive; the clauses after the
    /// table are optional and come in this order.
    ///
    /// - Parameter text: The query.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` naming the column and
    ///   what was expected, such as `query text, column 23: expected a value after '=', found 'and'`.
    public init(parsing text: String) throws(StoreError) {
        self = try QueryParser.parseQuery(text)
    }

    /// The canonical text form, which ``init(parsing:)`` reads back to an equal query. Clauses
    /// that have their default value are left out.
    public var description: String { QueryPrinter.query(self) }
}

// MARK: - Building

extension Query {
    /// The query with a further condition: `predicate` replaces ``Predicate/all``, and is
    /// otherwise combined with the existing one by `&&`.
    ///
    /// - Parameter predicate: The condition to add.
    public func `where`(_ predicate: Predicate) -> Query {
        var copy = self
        copy.predicate = self.predicate == .all ? predicate : self.predicate && predicate
        return copy
    }

    /// The query with one more sort key.
    ///
    /// - Parameters:
    ///   - field: The field to sort by.
    ///   - descending: Whether larger values come first.
    public func orderBy(_ field: FieldPath, descending: Bool = false) -> Query {
        var copy = self
        copy.order.append(SortKey(field, descending: descending))
        return copy
    }

    /// The query returning at most `count` rows.
    ///
    /// - Parameter count: The limit, 0 or more; `nil` for none.
    public func limit(_ count: Int?) -> Query {
        var copy = self
        copy.limit = count
        return copy
    }

    /// The query skipping `count` rows.
    ///
    /// - Parameter count: The offset, 0 or more.
    public func offset(_ count: Int) -> Query {
        var copy = self
        copy.offset = count
        return copy
    }

    /// The query continuing after a cursor, normally ``QueryPage/next`` of the previous page.
    ///
    /// - Parameter cursor: The position to continue after, or `nil` to start at the beginning.
    public func after(_ cursor: QueryCursor?) -> Query {
        var copy = self
        copy.after = cursor
        return copy
    }

    /// The query returning only some fields (and the `id` field).
    ///
    /// - Parameter fields: The fields to keep.
    public func select(_ fields: FieldPath...) -> Query {
        var copy = self
        copy.projection = fields
        return copy
    }
}
