/// The primary keys of a batch's puts and deletes, one entry per operation in batch order,
/// made (and hashed) before the writer lock is taken; numbering then records in each entry the
/// key's state after that operation (see ``record(_:at:)``).
///
/// The state a key is left in by the operations before one is found by a linear search while
/// there are a few of them, and through a dictionary beyond that: most batches write one key or
/// a handful, and a dictionary for every commit cost more than the rest of its numbering under
/// the writer lock.
struct BatchKeys {
    private(set) var entries: [(key: TableKey, state: KeyState)] = []
    /// The last entry of each key, once there are more than ``linearSearchLimit`` entries.
    private var lastEntries: [TableKey: Int] = [:]

    /// The most entries searched linearly.
    static var linearSearchLimit: Int { 8 }

    init(_ batch: WriteBatch) {
        entries.reserveCapacity(batch.operations.count)
        // Matched in place, as in ``StorageEngine/validate(_:)``.
        batch.operations.withUnsafeBufferPointer { operations in
            for index in operations.indices {
                switch operations[index] {
                case let .put(table, id, _, _, _), let .delete(table, id, _):
                    entries.append((TableKey(table: table, id: id), KeyState(version: 0, isLive: false)))
                case .event: break
                }
            }
        }
    }

    /// The key of entry `index`.
    func key(at index: Int) -> TableKey { entries[index].key }

    /// The state that the entries before `index` leave its key in, or nil if none writes it.
    func stateBefore(_ index: Int) -> KeyState? {
        let key = entries[index].key
        if index > Self.linearSearchLimit {
            return lastEntries[key].map { entries[$0].state }
        }
        return entries[..<index].last { $0.key == key }?.state
    }

    /// Records the state entry `index` leaves its key in. Called for each entry in order.
    mutating func record(_ state: KeyState, at index: Int) {
        entries[index].state = state
        if index == Self.linearSearchLimit {
            for position in 0...index { lastEntries[entries[position].key] = position }
        } else if index > Self.linearSearchLimit {
            lastEntries[entries[index].key] = index
        }
    }
}
