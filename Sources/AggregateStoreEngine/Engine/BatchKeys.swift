/// The primary keys of a batch's puts and deletes, one per operation in batch order, made
/// (and hashed) before the writer lock is taken.
struct BatchKeys {
    let keys: [TableKey]

    init(_ batch: WriteBatch) {
        var keys: [TableKey] = []
        keys.reserveCapacity(batch.operations.count)
        // Matched in place, as in ``StorageEngine/validate(_:)``.
        batch.operations.withUnsafeBufferPointer { operations in
            for index in operations.indices {
                switch operations[index] {
                case let .put(table, id, _, _, _), let .delete(table, id, _): keys.append(TableKey(table: table, id: id))
                case .event: break
                }
            }
        }
        self.keys = keys
    }
}

/// The states a batch leaves its keys in, each key once, in the order first written.
///
/// A key is found by a linear search while the batch has written a few, and through a
/// dictionary beyond that: most batches write one key or a handful, and a dictionary for
/// every commit cost more than the rest of its numbering under the writer lock.
struct BatchKeyStates {
    private(set) var entries: [(key: TableKey, state: KeyState)] = []
    /// Each key's place in ``entries``, once there are more than ``linearSearchLimit``.
    private var positions: [TableKey: Int] = [:]

    /// The most keys searched linearly.
    static var linearSearchLimit: Int { 8 }

    init(capacity: Int) {
        entries.reserveCapacity(capacity)
    }

    /// The state the batch so far leaves `key` in, or nil if it has not written it.
    subscript(key: TableKey) -> KeyState? {
        position(of: key).map { entries[$0].state }
    }

    /// Records the state the batch leaves `key` in.
    mutating func set(_ state: KeyState, for key: TableKey) {
        if let position = position(of: key) {
            entries[position].state = state
            return
        }
        entries.append((key, state))
        if entries.count == Self.linearSearchLimit + 1 {
            for (position, entry) in entries.enumerated() { positions[entry.key] = position }
        } else if entries.count > Self.linearSearchLimit {
            positions[key] = entries.count - 1
        }
    }

    private func position(of key: TableKey) -> Int? {
        entries.count > Self.linearSearchLimit ? positions[key] : entries.firstIndex { $0.key == key }
    }
}
