public import AggregateStore

/// The escape hatch for maintenance: raw scans, migrations that rewrite records, and index
/// rebuilds, for operators' tools and migration scripts, never for domain code.
///
/// It lives in its own module (`import AggregateStoreMaintenance`), so code that only imports
/// `AggregateStore` cannot reach it. Like every data-store operation it takes part in a unit of
/// work through its ``TransactionContext``: what it stages is committed or aborted with the
/// rest, and conflicts with concurrent commits are detected the same way.
///
/// ```swift
/// let maintenance = Maintenance(store)
/// try UnitOfWork.run(on: store) { tx in
///     // Rename a status value everywhere.
///     try maintenance.rewrite(table: "SalesOrder", in: tx) { record in
///         guard record.document[field: "status"] == "canceled" else { return .keep }
///         var map = record.document.mapValue!
///         map["status"] = "cancelled"
///         return .replace(.map(map))
///     }
/// }
/// ```
public struct Maintenance: Sendable {
    /// A stored record as it is, without its Swift type.
    public struct RawRecord: Sendable, Hashable {
        /// The record's id.
        public var id: String
        /// Its version.
        public var version: UInt64
        /// Its foreign-key pairs as indexed.
        public var foreignKeys: [ForeignKey]
        /// Its content.
        public var document: Document
    }

    /// What ``rewrite(table:in:_:)`` does with one record.
    public enum Rewrite: Sendable, Hashable {
        /// Leave it.
        case keep
        /// Replace its content. Its foreign keys are kept unless new ones are given: a rewrite
        /// that changes a foreign-key field must pass them (or run ``rebuildForeignKeys(_:in:)``
        /// afterwards), or lookups by that key miss the record.
        case replace(Document, foreignKeys: [ForeignKey]? = nil)
        /// Delete it.
        case delete
    }

    /// The store maintained.
    public let store: DataStore

    /// Maintenance operations on `store`.
    public init(_ store: DataStore) {
        self.store = store
    }

    /// Every live record of `table`, in id order, as this unit of work sees it.
    public func scan(table: String, in context: borrowing TransactionContext) throws(StoreError) -> [RawRecord] {
        let transaction = try store.participate(context)
        try store.checkTable(table)
        var records: [RawRecord] = []
        var storedIds = Set<String>()
        try store.engine.scan(table: table, withForeignKeys: true) { stored throws(StoreError) in
            storedIds.insert(stored.id)
            let key = AggregateKey(table, stored.id)
            switch transaction.stagedWrite(key) {
            case let .put(bytes, foreignKeys, _)?:
                records.append(RawRecord(id: stored.id, version: stored.version, foreignKeys: foreignKeys, document: try Document(decoding: bytes)))
            case .delete?:
                break
            case nil:
                transaction.noteRead(key, version: stored.version)
                records.append(RawRecord(id: stored.id, version: stored.version, foreignKeys: stored.foreignKeys,
                                         document: try Document(decoding: stored.bytes)))
            }
        }
        // Records this unit of work created are part of what it sees.
        for (id, write) in transaction.stagedWrites(table: table) where !storedIds.contains(id) {
            guard case let .put(bytes, foreignKeys, _) = write else { continue }
            records.append(RawRecord(id: id, version: 0, foreignKeys: foreignKeys, document: try Document(decoding: bytes)))
        }
        return records.sorted { $0.id.utf8.lexicographicallyPrecedes($1.id.utf8) }
    }

    /// Rewrites the records of `table` through `transform`, staging a put or delete for each
    /// record it changes. Each rewritten record must keep its `id` field.
    ///
    /// - Returns: How many records were replaced or deleted.
    @discardableResult
    public func rewrite(table: String, in context: borrowing TransactionContext,
                        _ transform: (RawRecord) throws(StoreError) -> Rewrite) throws(StoreError) -> Int {
        let transaction = try store.participate(context)
        var changed = 0
        for record in try scan(table: table, in: context) {
            let key = AggregateKey(table, record.id)
            switch try transform(record) {
            case .keep:
                continue
            case let .replace(document, foreignKeys):
                guard document[field: "id"] == .string(record.id) else {
                    throw StoreError(.invalidArgument, "rewrite of \(table)/\(record.id) must keep its 'id' field")
                }
                try transaction.stage(.put(record: try document.encoded(), foreignKeys: foreignKeys ?? record.foreignKeys,
                                           expecting: store.expectation(for: key, in: transaction)), for: key)
            case .delete:
                try transaction.stage(.delete(expecting: store.expectation(for: key, in: transaction)), for: key)
            }
            changed += 1
        }
        return changed
    }

    /// Re-indexes the foreign keys of every `Root` from its current declaration
    /// (`Root.foreignKeys`), after a foreign key was added or changed. Records whose keys are
    /// already right are left alone.
    ///
    /// - Returns: How many records were re-indexed.
    @discardableResult
    public func rebuildForeignKeys<Root: Aggregate>(_ type: Root.Type, in context: borrowing TransactionContext) throws(StoreError) -> Int {
        let transaction = try store.participate(context)
        var changed = 0
        for record in try scan(table: Root.table, in: context) {
            let aggregate: Root
            do {
                aggregate = try RecordDecoder().decode(Root.self, from: record.document)
            } catch {
                throw StoreError(error.code, "\(Root.table)/\(record.id) cannot be read as \(Root.self): \(error.message)")
            }
            let foreignKeys = Root.foreignKeys.flatMap { $0.foreignKeys(of: aggregate) }
            guard Set(foreignKeys) != Set(record.foreignKeys) else { continue }
            let key = AggregateKey(Root.table, record.id)
            try transaction.stage(.put(record: try record.document.encoded(), foreignKeys: foreignKeys,
                                       expecting: store.expectation(for: key, in: transaction)), for: key)
            changed += 1
        }
        return changed
    }
}
