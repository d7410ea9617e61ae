extension DataStore {
    /// A page of aggregates from a typed query.
    public struct Page<Root: Aggregate>: Sendable {
        /// The aggregates of the page, in the query's order.
        public var items: [Root]
        /// The cursor to pass to ``TypedQuery/after(_:)`` for the next page; nil on the last.
        public var next: QueryCursor?
    }

    /// Runs a typed query in a unit of work: the unit of work's own staged writes included.
    ///
    /// The candidates come from the primary-key index when the query fixes the id
    /// (`id = …`, `id in (…)`), from the foreign-key index when it fixes one of
    /// `Root.foreignKeys`, and from a scan of the table otherwise; the whole predicate is then
    /// evaluated on each candidate.
    ///
    /// ```swift
    /// let page = try store.fetch(SalesOrder.query.filter(\.status == "open").limit(20), in: tx)
    /// let next = try store.fetch(SalesOrder.query.filter(\.status == "open").limit(20).after(page.next), in: tx)
    /// ```
    public func fetch<Root: Aggregate>(_ query: TypedQuery<Root>, in context: borrowing TransactionContext) throws(StoreError) -> Page<Root> {
        let transaction = try participate(context)
        var untyped = try query.checked()
        untyped.projection = nil
        let page = try run(untyped, foreignKeyFields: Set(Root.foreignKeys.map(\.name)), in: transaction)
        var items: [Root] = []
        items.reserveCapacity(page.rows.count)
        for row in page.rows {
            do {
                items.append(try decoder.decode(Root.self, from: row.record))
            } catch {
                throw StoreError(error.code, "\(Root.table)/\(row.id) cannot be read as \(Root.self): \(error.message)")
            }
        }
        return Page(items: items, next: page.next)
    }

    /// Runs an untyped query, such as one parsed from the text form, returning records as
    /// documents (projected when the query says so).
    ///
    /// - Parameter foreignKeyFields: The fields of the table with a foreign-key index that the
    ///   query may use; without them it is served by the primary-key index or a scan.
    public func fetch(_ query: Query, foreignKeyFields: Set<String> = [], in context: borrowing TransactionContext) throws(StoreError) -> QueryPage {
        let transaction = try participate(context)
        return try run(query, foreignKeyFields: foreignKeyFields, in: transaction)
    }

    /// The number of aggregates a typed query's filter matches, ignoring order and paging.
    public func count<Root: Aggregate>(_ query: TypedQuery<Root>, in context: borrowing TransactionContext) throws(StoreError) -> Int {
        let transaction = try participate(context)
        var kept: [String: [UInt8]] = [:]
        return try candidates(query.checked(), foreignKeyFields: Set(Root.foreignKeys.map(\.name)), .none, &kept, in: transaction).count
    }

    /// The number of records an untyped query's filter matches, ignoring order and paging.
    public func count(_ query: Query, foreignKeyFields: Set<String> = [], in context: borrowing TransactionContext) throws(StoreError) -> Int {
        let transaction = try participate(context)
        var kept: [String: [UInt8]] = [:]
        return try candidates(query, foreignKeyFields: foreignKeyFields, .none, &kept, in: transaction).count
    }

    /// How much of each matching record ``candidates(_:foreignKeyFields:_:_:in:)`` decodes.
    private enum Materialize {
        /// The whole record.
        case full
        /// Nothing: only the matches' ids are wanted (a count).
        case none
        /// Only these fields, keeping the record's bytes to decode in full later: a page
        /// decodes only the rows it returns.
        case fields([FieldPath])
    }

    private func run(_ query: Query, foreignKeyFields: Set<String>, in transaction: Transaction) throws(StoreError) -> QueryPage {
        guard query.limit != nil else {
            var kept: [String: [UInt8]] = [:]
            return try query.apply(to: candidates(query, foreignKeyFields: foreignKeyFields, .full, &kept, in: transaction))
        }
        // A page: sort on the fields the query reads, then decode the page's rows only.
        var kept: [String: [UInt8]] = [:]
        let fields = query.predicate.fieldPaths + query.order.map(\.field) + [FieldPath.id]
        var sortable = query
        sortable.projection = nil
        var page = try sortable.apply(to: candidates(query, foreignKeyFields: foreignKeyFields, .fields(fields), &kept, in: transaction))
        for index in page.rows.indices {
            let row = page.rows[index]
            let record = try kept[row.id].map { bytes throws(StoreError) in try Document(decoding: bytes) } ?? row.record
            page.rows[index].record = query.projection.map { Query.project(record, $0) } ?? record
        }
        return page
    }

    /// The records that may match: from the chosen index or a scan, pre-filtered by the
    /// predicate chunk by chunk so a scan holds only matches in memory, with the unit of
    /// work's staged writes laid over them. Every record returned counts as read. Without
    /// `decoding`, the records are left as null: only the matches' ids and number are wanted.
    private func candidates(_ query: Query, foreignKeyFields: Set<String>, _ materialize: Materialize,
                            _ kept: inout [String: [UInt8]], in transaction: Transaction) throws(StoreError) -> [(id: String, record: Document)] {
        try checkTable(query.table)
        let table = query.table
        let staged = Dictionary(transaction.stagedWrites(table: table).map { ($0.id, $0.write) }, uniquingKeysWith: { $1 })
        var result: [(id: String, record: Document)] = []
        // Tests the predicate on the record's bytes and decodes only the matches.
        func consider(_ id: String, _ version: UInt64, _ bytes: UnsafeRawBufferPointer) throws(StoreError) {
            guard staged[id] == nil, try Self.matches(query.predicate, bytes) else { return }
            transaction.noteRead(AggregateKey(table: table, id: id), version: version)
            switch materialize {
            case .full: result.append((id, try Document(decoding: bytes)))
            case .none: result.append((id, .null))
            case let .fields(fields):
                result.append((id, try Self.document(of: fields, in: bytes)))
                kept[id] = Array(bytes)
            }
        }
        switch query.accessPath(foreignKeyFields: foreignKeyFields) {
        case .scan:
            try engine.scan(table: table) { record throws(StoreError) in try consider(record.id, record.version, record.bytes) }
        case let .primaryKeys(ids):
            // Ids found missing count as read too, so a later save of one checks it is still absent.
            let unstaged = ids.filter { staged[$0] == nil }
            try noteReadVersions(table: table, ids: unstaged, in: transaction)
            try each(of: engine.records(table: table, ids: unstaged), consider)
        case let .foreignKey(field, value):
            let ids = try engine.ids(table: table, field: field, value: value).filter { staged[$0] == nil }
            try noteReadVersions(table: table, ids: ids, in: transaction)
            try each(of: engine.records(table: table, ids: ids), consider)
        }
        for (id, write) in staged {
            guard case let .put(record, _, _) = write else { continue }
            let document = try Document(decoding: record)
            if query.predicate.matches(document) { result.append((id, document)) }
        }
        return result
    }

    private func each(of records: [StoredRecord],
                          _ body: (String, UInt64, UnsafeRawBufferPointer) throws(StoreError) -> Void) throws(StoreError) {
        for record in records {
            try record.bytes.withUnsafeBytesTyped { buffer throws(StoreError) in try body(record.id, record.version, buffer) }
        }
    }

    /// A map holding only `fields` of a record (nested as in the record), decoded from its bytes:
    /// enough to evaluate a predicate and sort on them exactly as on the whole record.
    private static func document(of fields: [FieldPath], in bytes: UnsafeRawBufferPointer) throws(StoreError) -> Document {
        var root = Document.Map()
        for field in fields {
            guard let value = try RecordFieldPeek.value(at: field.components, in: bytes) else { continue }
            insert(value, at: field.components[...], into: &root)
        }
        return .map(root)
    }

    private static func insert(_ value: Document, at path: ArraySlice<String>, into map: inout Document.Map) {
        let key = path.first!
        guard path.count > 1 else {
            map[key] = value
            return
        }
        var child = map[key]?.mapValue ?? Document.Map()
        insert(value, at: path.dropFirst(), into: &child)
        map[key] = .map(child)
    }

    /// Tests a predicate on record bytes, decoding only the fields it names.
    private static func matches(_ predicate: Query.Predicate, _ buffer: UnsafeRawBufferPointer) throws(StoreError) -> Bool {
        var failure: StoreError?
        let matched = predicate.matches { path in
            do throws(StoreError) {
                return try RecordFieldPeek.value(at: path.components, in: buffer)
            } catch {
                failure = error
                return nil
            }
        }
        if let failure { throw failure }
        return matched
    }
}
