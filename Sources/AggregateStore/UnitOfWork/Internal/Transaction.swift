import Synchronization

/// The state of one unit of work: what it has read, staged and emitted. Shared by the
/// ``UnitOfWork`` that owns the boundary and the ``TransactionContext`` that data-store
/// operations participate through.
package final class Transaction: Sendable {
    /// Where a unit of work stands.
    enum Phase: Sendable, Equatable {
        case active, committing, committed, aborted
    }

    /// A write staged until commit; the latest one per key wins.
    package enum StagedWrite: Sendable {
        case put(record: [UInt8], foreignKeys: [ForeignKey], expecting: VersionExpectation)
        case delete(expecting: VersionExpectation)
    }

    struct State: Sendable {
        var phase = Phase.active
        /// Writes by key, and the order keys were first staged in (the batch keeps it).
        var writes: [AggregateKey: StagedWrite] = [:]
        var writeOrder: [AggregateKey] = []
        /// The version of each key when this unit of work first read it (0: never written).
        var readVersions: [AggregateKey: UInt64] = [:]
        var events: [OutboxEvent] = []
    }

    let id: String
    let store: DataStore
    let state = Mutex(State())

    init(id: String, store: DataStore) {
        self.id = id
        self.store = store
    }

    /// Throws unless the unit of work can still stage and read.
    func checkActive() throws(StoreError) {
        let phase = state.withLock { $0.phase }
        guard phase == .active else {
            throw StoreError(.invalidArgument, "unit of work \(id) is \(phase) and can no longer be used")
        }
    }

    /// Remembers the version a key had when first read, the base of its optimistic check.
    package func noteRead(_ key: AggregateKey, version: UInt64) {
        state.withLock { state in
            if state.readVersions[key] == nil { state.readVersions[key] = version }
        }
    }

    /// The staged write of a key, if any: reads see their own unit of work's writes.
    package func stagedWrite(_ key: AggregateKey) -> StagedWrite? {
        state.withLock { $0.writes[key] }
    }

    /// The staged writes of one table, for queries.
    package func stagedWrites(table: String) -> [(id: String, write: StagedWrite)] {
        state.withLock { state in
            state.writeOrder.compactMap { key in
                key.table == table ? state.writes[key].map { (key.id, $0) } : nil
            }
        }
    }

    func readVersion(_ key: AggregateKey) -> UInt64? {
        state.withLock { $0.readVersions[key] }
    }

    /// Drops the staged write of a key, as if it had never been staged.
    func unstage(_ key: AggregateKey) {
        state.withLock { state in
            if state.writes.removeValue(forKey: key) != nil { state.writeOrder.removeAll { $0 == key } }
        }
    }

    package func stage(_ write: StagedWrite, for key: AggregateKey) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            guard state.phase == .active else {
                throw StoreError(.invalidArgument, "unit of work \(id) is \(state.phase) and can no longer be used")
            }
            if state.writes.updateValue(write, forKey: key) == nil { state.writeOrder.append(key) }
        }
    }

    func stage(_ event: OutboxEvent) throws(StoreError) {
        try state.withLock { state throws(StoreError) in
            guard state.phase == .active else {
                throw StoreError(.invalidArgument, "unit of work \(id) is \(state.phase) and can no longer be used")
            }
            state.events.append(event)
        }
    }

    /// Ends staging and returns the batch to commit (nil when nothing was staged).
    func prepare() throws(StoreError) -> WriteBatch? {
        try state.withLock { state throws(StoreError) -> WriteBatch? in
            guard state.phase == .active else {
                throw StoreError(.invalidArgument, "unit of work \(id) is \(state.phase) and cannot commit")
            }
            state.phase = .committing
            guard !state.writes.isEmpty || !state.events.isEmpty else { return nil }
            var batch = WriteBatch(unitOfWorkId: id)
            for key in state.writeOrder {
                switch state.writes[key]! {
                case let .put(record, foreignKeys, expecting):
                    batch.put(table: key.table, id: key.id, record: record, foreignKeys: foreignKeys, expecting: expecting)
                case let .delete(expecting):
                    batch.delete(table: key.table, id: key.id, expecting: expecting)
                }
            }
            for event in state.events { batch.append(event) }
            return batch
        }
    }

    /// Records the outcome of a commit attempt; a failed commit leaves the unit of work aborted.
    func finish(committed: Bool) {
        state.withLock { $0.phase = committed ? .committed : .aborted }
    }

    /// Discards everything staged. Returns false if the unit of work had already ended.
    @discardableResult
    func abort() -> Bool {
        state.withLock { state in
            guard state.phase == .active else { return false }
            state.phase = .aborted
            state.writes = [:]
            state.writeOrder = []
            state.events = []
            return true
        }
    }

    /// The number of staged writes and events, for logs.
    var stagedCounts: (writes: Int, events: Int) {
        state.withLock { ($0.writes.count, $0.events.count) }
    }
}

/// The primary key of a stored aggregate.
package struct AggregateKey: Hashable, Sendable {
    package var table: String
    package var id: String
}

extension AggregateKey {
    package init(_ table: String, _ id: String) {
        self.table = table
        self.id = id
    }
}
