extension DataStore {
    /// Stages the creation of an aggregate.
    ///
    /// - Throws: ``StoreError/Code/duplicate`` if the id exists now (or, at commit, if another
    ///   unit of work created it meanwhile); ``StoreError/Code/invalidArgument`` for a bad
    ///   table name or id, or a record whose `id` field does not hold the aggregate's id;
    ///   ``StoreError/Code/recordTooLarge``.
    public func create<Root: Aggregate>(_ aggregate: Root, in context: borrowing TransactionContext) throws(StoreError) {
        let transaction = try participate(context)
        let key = try tableKey(Root.self, aggregate.id)
        let restaged = transaction.stagedWrite(key) != nil
        if try current(key, in: transaction) != nil {
            throw StoreError(.duplicate, "\(Root.table)/\(aggregate.id) already exists")
        }
        // A create expects the id to be absent, so a concurrent create makes it fail with
        // `duplicate`; after this unit of work's own delete, it expects the version it read.
        try stagePut(aggregate, key: key, in: transaction, expecting: restaged ? nil : .absent)
    }

    /// The aggregate with this id, or nil if there is none; the unit of work's own staged
    /// writes included.
    ///
    /// - Throws: ``StoreError/Code/corruption`` if the stored record cannot be decoded as
    ///   `Root` (the message names the table, id and field).
    public func load<Root: Aggregate>(_ type: Root.Type, id: String, in context: borrowing TransactionContext) throws(StoreError) -> Root? {
        let transaction = try participate(context)
        let key = try tableKey(Root.self, id)
        return try current(key, in: transaction).map { bytes throws(StoreError) in try decode(Root.self, bytes, key) }
    }

    /// Stages an upsert: the aggregate replaces the stored one, or is created.
    ///
    /// If the unit of work read this aggregate before, the commit fails with
    /// ``StoreError/Code/conflict`` should another commit have changed it since.
    public func save<Root: Aggregate>(_ aggregate: Root, in context: borrowing TransactionContext) throws(StoreError) {
        let transaction = try participate(context)
        let key = try tableKey(Root.self, aggregate.id)
        try stagePut(aggregate, key: key, in: transaction)
    }

    /// Stages a partial update of an existing aggregate: each changed field replaces the old
    /// one, ``FieldUpdate/setNull`` removes one, other fields are kept. Keys are field paths
    /// (`"status"`, `"address.city"`).
    ///
    /// - Returns: The aggregate as updated.
    /// - Throws: ``StoreError/Code/notFound`` if there is no such aggregate;
    ///   ``StoreError/Code/invalidArgument`` for a field `Root` does not have, a value of the
    ///   wrong type, `setNull` on a required field, or a change of `id`.
    @discardableResult
    public func update<Root: Aggregate>(_ type: Root.Type, id: String, set changes: [String: FieldUpdate],
                                        in context: borrowing TransactionContext) throws(StoreError) -> Root {
        let transaction = try participate(context)
        let key = try tableKey(Root.self, id)
        guard let bytes = try current(key, in: transaction) else {
            throw StoreError(.notFound, "\(Root.table)/\(id) does not exist and cannot be updated")
        }
        let merged = try Document(decoding: bytes).merging(changes, table: Root.table, id: id)
        let updated: Root
        do {
            updated = try decoder.decode(Root.self, from: merged)
        } catch {
            throw StoreError(.invalidArgument, "update of \(Root.table)/\(id) does not fit \(Root.self): \(error.message)")
        }
        let stored = try encoder.document(from: updated)
        for (path, change) in changes where change != .setNull && stored.value(at: path) == nil {
            throw StoreError(.invalidArgument, "update of \(Root.table)/\(id): \(Root.self) has no field '\(path)'")
        }
        try stagePut(updated, key: key, in: transaction)
        return updated
    }

    /// Stages a delete. Deleting an aggregate that does not exist does nothing.
    ///
    /// - Returns: Whether the aggregate existed.
    @discardableResult
    public func delete<Root: Aggregate>(_ type: Root.Type, id: String, in context: borrowing TransactionContext) throws(StoreError) -> Bool {
        let transaction = try participate(context)
        let key = try tableKey(Root.self, id)
        guard try current(key, in: transaction) != nil else { return false }
        // Deleting what this unit of work created leaves nothing to write, as long as the key is
        // still absent in the store (otherwise the staged delete makes the commit conflict).
        if case .put? = transaction.stagedWrite(key), let read = transaction.readVersion(key) {
            let (version, isLive) = try engine.version(table: key.table, id: key.id)
            if !isLive, version == read {
                transaction.unstage(key)
                return true
            }
        }
        try transaction.stage(.delete(expecting: expectation(for: key, in: transaction)), for: key)
        return true
    }

    /// The aggregates with the given ids (an IN lookup, one call), in the order of `ids`,
    /// skipping ids that do not exist and repeated ids.
    public func load<Root: Aggregate>(_ type: Root.Type, ids: [String], in context: borrowing TransactionContext) throws(StoreError) -> [Root] {
        let transaction = try participate(context)
        var seen = Set<String>()
        let unique = ids.filter { seen.insert($0).inserted }
        for id in unique { _ = try tableKey(Root.self, id) }
        let unstaged = unique.filter { transaction.stagedWrite(AggregateKey(table: Root.table, id: $0)) == nil }
        try noteReadVersions(table: Root.table, ids: unstaged, in: transaction)
        let stored = Dictionary(uniqueKeysWithValues: try engine.records(table: Root.table, ids: unstaged).map { ($0.id, $0) })
        var result: [Root] = []
        result.reserveCapacity(unique.count)
        for id in unique {
            let key = AggregateKey(table: Root.table, id: id)
            let bytes: [UInt8]?
            switch transaction.stagedWrite(key) {
            case let .put(record, _, _)?: bytes = record
            case .delete?: bytes = nil
            case nil: bytes = stored[id]?.bytes
            }
            if let bytes { result.append(try decode(Root.self, bytes, key)) }
        }
        return result
    }

    /// The aggregates whose foreign key `field` references `id`, sorted by their ids; served by
    /// the foreign-key index.
    ///
    /// ```swift
    /// let orders = try store.find(SalesOrder.self, where: \.customerId, equals: "c-7", in: tx)
    /// ```
    ///
    /// - Throws: ``StoreError/Code/invalidArgument`` if `field` is not one of
    ///   `Root.foreignKeys` (use a query for other fields).
    public func find<Root: Aggregate, Value>(_ type: Root.Type, where field: KeyPath<Root, Value>, equals id: String,
                                             in context: borrowing TransactionContext) throws(StoreError) -> [Root] {
        let name = try foreignKeyName(Root.self, field)
        return try find(Root.self, foreignKey: name, equals: id, in: context)
    }

    /// The aggregates whose foreign key named `field` references `id`; see
    /// ``find(_:where:equals:in:)``.
    public func find<Root: Aggregate>(_ type: Root.Type, foreignKey field: String, equals id: String,
                                      in context: borrowing TransactionContext) throws(StoreError) -> [Root] {
        let transaction = try participate(context)
        guard Root.foreignKeys.contains(where: { $0.name == field }) else {
            throw StoreError(.invalidArgument, "'\(field)' is not a foreign key of \(Root.table); declare it in \(Root.self).foreignKeys or use a query")
        }
        let reference = ForeignKey(field: field, value: id)
        var ids = Set(try engine.ids(table: Root.table, field: field, value: id))
        for (stagedId, write) in transaction.stagedWrites(table: Root.table) {
            switch write {
            case let .put(_, foreignKeys, _) where foreignKeys.contains(reference): ids.insert(stagedId)
            case .put, .delete: ids.remove(stagedId)
            }
        }
        return try load(Root.self, ids: ids.sorted(), in: context)
    }

    /// The version of an aggregate (1 for the first save, one more for each later write), or
    /// nil if it does not exist. Staged writes of the unit of work are not counted.
    public func version<Root: Aggregate>(of type: Root.Type, id: String, in context: borrowing TransactionContext) throws(StoreError) -> UInt64? {
        let transaction = try participate(context)
        let key = try tableKey(Root.self, id)
        let (version, isLive) = try engine.version(table: key.table, id: key.id)
        transaction.noteRead(key, version: version)
        return isLive ? version : nil
    }

    // MARK: - Participation

    /// The key of an aggregate, with its table and id checked.
    func tableKey<Root: Aggregate>(_ type: Root.Type, _ id: String) throws(StoreError) -> AggregateKey {
        try checkTable(Root.table)
        try checkName(id, "\(Root.table) id")
        return AggregateKey(table: Root.table, id: id)
    }

    /// Tables starting with `_` belong to the store (subscriber cursors).
    package func checkTable(_ table: String) throws(StoreError) {
        try checkName(table, "table")
        guard !table.hasPrefix("_") else {
            throw StoreError(.invalidArgument, "table '\(table)': names starting with '_' are reserved for the store")
        }
    }

    /// The record of a key as this unit of work sees it: its staged write if any, otherwise the
    /// latest committed one, whose version becomes the base of the optimistic check.
    func current(_ key: AggregateKey, in transaction: Transaction) throws(StoreError) -> [UInt8]? {
        switch transaction.stagedWrite(key) {
        case let .put(record, _, _)?: return record
        case .delete?: return nil
        case nil: break
        }
        // The version first: if the record changes between the two reads, the older version
        // makes the commit fail with a conflict rather than miss one.
        let (version, _) = try engine.version(table: key.table, id: key.id)
        let record = try engine.record(table: key.table, id: key.id)
        transaction.noteRead(key, version: record?.version ?? version)
        return record?.bytes
    }

    /// Notes the current versions of `ids` (0 if never written) as read, all under one index
    /// lock and before their records are read: a record that changes in between then makes the
    /// commit fail with a conflict instead of being overwritten unseen.
    func noteReadVersions(table: String, ids: [String], in transaction: Transaction) throws(StoreError) {
        let versions = try engine.readIndex { index in ids.map { index.entry(table: table, id: $0)?.version ?? 0 } }
        for (id, version) in zip(ids, versions) { transaction.noteRead(AggregateKey(table: table, id: id), version: version) }
    }

    /// What the engine must find at commit: the version read, if this unit of work read the
    /// key; otherwise nothing (a blind upsert).
    package func expectation(for key: AggregateKey, in transaction: Transaction) -> VersionExpectation {
        transaction.readVersion(key).map { .version($0) } ?? .any
    }

    func stagePut<Root: Aggregate>(_ aggregate: Root, key: AggregateKey, in transaction: Transaction,
                                   expecting: VersionExpectation? = nil) throws(StoreError) {
        let record = try encoder.encode(aggregate)
        guard record.count <= configuration.engine.effectiveMaximumRecordSize else {
            throw StoreError(.recordTooLarge, "\(key.table)/\(key.id) encodes to \(record.count) bytes; the maximum is \(configuration.engine.effectiveMaximumRecordSize)")
        }
        let id = try record.withUnsafeBytesTyped { bytes throws(StoreError) in try RecordFieldPeek.value(at: ["id"], in: bytes) }
        guard id == .string(key.id) else {
            throw StoreError(.invalidArgument, "\(key.table)/\(key.id): the record's 'id' field must hold the aggregate's id")
        }
        var foreignKeys: [ForeignKey] = []
        for field in Root.foreignKeys {
            if let problem = field.problem {
                throw StoreError(.invalidArgument, "\(Root.self).foreignKeys: \(problem)")
            }
            for reference in field.foreignKeys(of: aggregate) {
                try checkName(reference.value, "\(key.table).\(field.name) reference")
                foreignKeys.append(reference)
            }
        }
        try transaction.stage(.put(record: record, foreignKeys: foreignKeys,
                                   expecting: expecting ?? expectation(for: key, in: transaction)), for: key)
    }

    func decode<Root: Aggregate>(_ type: Root.Type, _ bytes: [UInt8], _ key: AggregateKey) throws(StoreError) -> Root {
        do {
            return try decoder.decode(Root.self, from: bytes)
        } catch {
            var error = error
            error.message = "\(key.table)/\(key.id) cannot be read as \(Root.self): \(error.message)"
            throw error
        }
    }

    func foreignKeyName<Root: Aggregate, Value>(_ type: Root.Type, _ keyPath: KeyPath<Root, Value>) throws(StoreError) -> String {
        try FieldPath(keyPath: keyPath).components.joined(separator: ".")
    }
}
