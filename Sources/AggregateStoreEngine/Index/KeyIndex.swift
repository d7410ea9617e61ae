/// The in-memory indexes, rebuilt from the log on open: the primary index from (table, id) to
/// the latest version, and the foreign-key index from (table, field, value) to ids.
///
/// A value type: the writer applies commits to it under the index lock, and
/// ``StorageEngine/verify()`` compares it with one rebuilt from the log.
package struct KeyIndex: Sendable, Equatable {
    /// table → its keys (tombstones included, so versions keep increasing after a delete), as
    /// one dictionary, for the snapshot and statistics.
    package var tables: [String: TableIndex] {
        Dictionary(uniqueKeysWithValues: zip(tableNames, tableIndexes))
    }
    /// The tables' indexes, in an array: a lookup copies out only the one field it needs, the
    /// id table (see ``number(of:inTableAt:)``), where a dictionary's subscript copies the whole
    /// table index out (retaining and releasing its dozen buffers, three times the lookup's own
    /// cost).
    private var tableIndexes: [TableIndex] = []
    /// The tables' names, in the order of ``tableIndexes``.
    private var tableNames: [String] = []
    /// table → its place in ``tableIndexes``, looked up once there are more tables than
    /// ``linearSearchLimit`` (see ``slot(of:)``).
    private var tableSlots: [String: Int] = [:]
    /// The number of live records.
    package private(set) var liveCount = 0
    /// segment → bytes of the live records it holds, from which compaction reckons its dead bytes.
    package private(set) var liveBytesBySegment: [UInt32: UInt64] = [:]
    /// The key under which new tables place their keys (`Docs/FORMAT.md`, section 3.1).
    private let hashKey: (UInt64, UInt64)

    /// An empty index with a random hash key.
    package init() {
        var generator = SystemRandomNumberGenerator()
        hashKey = (generator.next(), generator.next())
    }

    /// An empty index for the store with `salt`: its hash key is derived from the salt, so the
    /// same store's index is laid out the same way in every process (and a seeded simulation
    /// writes the same snapshot bytes). The salt is random per store and never leaves its
    /// files, so users who choose ids cannot aim them at one slot.
    package init(salt: UInt64) {
        var generator = SplitMix64(seed: salt ^ 0x6B65_7969_6E64_6578)
        hashKey = (generator.next(), generator.next())
    }

    /// The place of `table` in ``tableIndexes``. A store has few tables, and comparing a name
    /// with each (two words for a name of up to 15 bytes) costs less than hashing it: the
    /// lookup is on the serial paths that number and apply every commit.
    private func slot(of table: String) -> Int? {
        guard tableNames.count <= Self.linearSearchLimit else { return tableSlots[table] }
        return tableNames.firstIndex(of: table)
    }

    /// The most tables (and, in a table, foreign-key fields) searched linearly by name.
    static var linearSearchLimit: Int { 8 }

    /// Whether the index has keys of `table`, live or tombstones.
    package func hasTable(_ table: String) -> Bool { slot(of: table) != nil }

    /// The entry of a key, live or a tombstone.
    package func entry(table: String, id: String) -> IndexEntry? {
        guard let slot = slot(of: table), let number = number(of: id, inTableAt: slot) else { return nil }
        return tableIndexes[slot].entries[Int(number)].entry
    }

    /// The foreign keys of a live record (none for a tombstone or a missing key).
    package func foreignKeys(table: String, id: String) -> [ForeignKey] {
        guard let slot = slot(of: table), let number = number(of: id, inTableAt: slot) else { return [] }
        return tableIndexes[slot].foreignKeys(number)
    }

    /// The ids of live records of `table` whose `field` references `value`, sorted.
    package func ids(table: String, field: String, value: String) -> [String] {
        guard let slot = slot(of: table) else { return [] }
        return tableIndexes[slot].numbers(field: field, value: value).map(tableIndexes[slot].id).sorted()
    }

    /// The number of keys, tombstones included.
    package var keyCount: Int { tableIndexes.reduce(0) { $0 + $1.keyCount } }

    /// The heap bytes the indexes hold, approximately, for statistics.
    package var memoryFootprint: Int { tableIndexes.reduce(0) { $0 + $1.memoryFootprint } }

    /// Live records per segment, counted over every table.
    package func liveRecordsBySegment() -> [UInt32: Int] {
        var counts: [UInt32: Int] = [:]
        for table in tableIndexes {
            table.forEachKey { number in
                if let location = table.entry(number).location { counts[location.segment, default: 0] += 1 }
            }
        }
        return counts
    }

    /// The bytes of the live records of each table.
    package func liveBytesByTable() -> [String: UInt64] {
        tables.mapValues { table in
            var bytes: UInt64 = 0
            table.forEachKey { number in bytes += UInt64(table.entry(number).location?.recordLength ?? 0) }
            return bytes
        }
    }

    /// The bytes of all live records.
    package var liveRecordBytes: UInt64 { liveBytesBySegment.values.reduce(0, +) }

    /// The number of live records of `table`.
    package func liveCount(table: String) -> Int { slot(of: table).map { tableIndexes[$0].liveCount } ?? 0 }

    /// Live record counts per table, for every table that has ever held a record (0 when
    /// only tombstones are left).
    package func liveCounts() -> [String: Int] {
        tables.mapValues(\.liveCount)
    }

    /// The ids of the live records of `table`, sorted.
    package func liveIds(table: String) -> [String] {
        liveEntries(table: table).map(\.id).sorted()
    }

    /// A live record as the index knows it.
    package struct LiveEntry: Sendable {
        package var id: String
        package var entry: IndexEntry
        package var location: RecordLocation
        /// Empty unless asked for.
        package var foreignKeys: [ForeignKey]
    }

    /// The live records of `table`, in no particular order, with their foreign keys if
    /// `withForeignKeys` (which costs an array per record).
    package func liveEntries(table: String, withForeignKeys: Bool = false) -> [LiveEntry] {
        guard let slot = slot(of: table) else { return [] }
        let table = tableIndexes[slot]
        var live: [LiveEntry] = []
        live.reserveCapacity(table.liveCount)
        table.forEachKey { number in
            let entry = table.entry(number)
            guard let location = entry.location else { return }
            live.append(LiveEntry(id: table.id(number), entry: entry, location: location,
                                  foreignKeys: withForeignKeys ? table.foreignKeys(number) : []))
        }
        return live
    }

    /// The entry of a live record with its foreign keys, or nil if the key is missing or deleted.
    package func liveEntry(table: String, id: String) -> LiveEntry? {
        guard let slot = slot(of: table), let number = number(of: id, inTableAt: slot) else { return nil }
        let entry = tableIndexes[slot].entries[Int(number)].entry
        guard let location = entry.location else { return nil }
        return LiveEntry(id: id, entry: entry, location: location, foreignKeys: tableIndexes[slot].foreignKeys(number))
    }

    /// The tables with at least one live record, sorted.
    package func liveTables() -> [String] {
        tables.filter { $0.value.liveCount > 0 }.keys.sorted()
    }

    /// The whole foreign-key index as nested dictionaries, table → field → value → ids: for
    /// tests and checks that compare it with a model.
    package func foreignKeyMap() -> [String: [String: [String: Set<String>]]] {
        var map: [String: [String: [String: Set<String>]]] = [:]
        for (name, table) in tables {
            table.forEachKey { number in
                for key in table.foreignKeys(number) {
                    map[name, default: [:]][key.field, default: [:]][key.value, default: []].insert(table.id(number))
                }
            }
        }
        return map
    }

    package static func == (lhs: KeyIndex, rhs: KeyIndex) -> Bool {
        guard lhs.liveCount == rhs.liveCount, lhs.liveBytesBySegment == rhs.liveBytesBySegment,
              lhs.tableNames.count == rhs.tableNames.count else { return false }
        for (name, left) in zip(lhs.tableNames, lhs.tableIndexes) {
            guard let slot = rhs.slot(of: name), case let right = rhs.tableIndexes[slot], left.keyCount == right.keyCount, left.liveCount == right.liveCount else {
                return false
            }
            var equal = true
            left.forEachKey { number in
                guard equal else { return }
                let id = left.id(number)
                guard let other = right.number(of: id), left.entry(number) == right.entry(other),
                      Set(left.foreignKeys(number)) == Set(right.foreignKeys(other)) else {
                    equal = false
                    return
                }
            }
            guard equal else { return false }
        }
        return true
    }

    /// Describes the first put or delete of `payload` whose version is not one more than its
    /// key's previous version (`Docs/FORMAT.md`, section 2.3), or nil if all are in order.
    /// Recovery checks this before applying a frame, so a frame that verifies but breaks the
    /// rule is reported as corruption rather than trusted.
    /// Past a compacted segment (`consecutive` false), a version must only be more than the
    /// previous one: compaction drops the versions between.
    package func versionViolation(in payload: CommitPayload, consecutive: Bool = true) -> String? {
        var pending: [TableKey: UInt64] = [:]
        for operation in payload.operations {
            let table: String, id: String, version: UInt64
            switch operation {
            case let .put(t, i, v, _, _): (table, id, version) = (t, i, v)
            case let .delete(t, i, v): (table, id, version) = (t, i, v)
            case .event: continue
            }
            let key = TableKey(table: table, id: id)
            let previous = pending[key] ?? entry(table: table, id: id)?.version ?? 0
            guard previous < UInt64.max, consecutive ? version == previous + 1 : version > previous else {
                return "\(table)/\(id) has version \(version) after version \(previous)"
            }
            pending[key] = version
        }
        return nil
    }

    /// Applies one logged commit, in sequence order. `frame` is where its frame lives.
    package mutating func apply(_ payload: CommitPayload, sequence: UInt64, frame: FrameAddress, storedLength: Int) {
        // Matched in place through a buffer pointer: iterating copies each operation out (its
        // strings and arrays retained and released) on the serial path that applies commits.
        payload.operations.withUnsafeBufferPointer { operations in
            for index in operations.indices {
                switch operations[index] {
                case let .put(table, id, version, foreignKeys, record):
                    let location = RecordLocation(segment: frame.segment, storedLength: UInt32(storedLength),
                                                  frameOffset: frame.offset, recordOffset: UInt32(record.lowerBound),
                                                  recordLength: UInt32(record.count))
                    replace(table: table, id: id, with: IndexEntry(version: version, sequence: sequence, location: location),
                            foreignKeys: foreignKeys)
                case let .delete(table, id, version):
                    replace(table: table, id: id, with: IndexEntry(version: version, sequence: sequence, location: nil), foreignKeys: [])
                case .event:
                    break
                }
            }
        }
    }

    /// Applies a compaction's move of a record, if the key's entry is still the one moved:
    /// a write since then wins (a compare-and-swap on the old location).
    /// - Returns: Whether the entry moved.
    @discardableResult
    package mutating func move(table: String, id: String, from old: RecordLocation, to new: RecordLocation) -> Bool {
        guard let slot = slot(of: table), let number = number(of: id, inTableAt: slot),
              tableIndexes[slot].entry(number).location == old else { return false }
        tableIndexes[slot].relocate(number, to: new)
        account(old, -1)
        account(new, +1)
        return true
    }

    /// Forgets a tombstone compaction dropped from the log, if it is still the key's entry.
    package mutating func forget(table: String, id: String, tombstoneSequence: UInt64) {
        guard let slot = slot(of: table), let number = number(of: id, inTableAt: slot) else { return }
        let entry = tableIndexes[slot].entry(number)
        guard !entry.isLive, entry.sequence == tombstoneSequence else { return }
        tableIndexes[slot].remove(number)
        if tableIndexes[slot].keyCount == 0 { removeTable(at: slot) }
    }

    /// Adds a table as a snapshot recorded it.
    mutating func restore(table name: String, _ table: TableIndex) {
        precondition(tableSlots[name] == nil, "a table restored twice")
        add(table, named: name)
        liveCount += table.liveCount
        table.forEachKey { number in account(table.entry(number).location, +1) }
    }

    private mutating func account(_ location: RecordLocation?, _ sign: Int) {
        guard let location, location.recordLength > 0 else { return }
        let bytes = UInt64(location.recordLength)
        if sign > 0 {
            // One lookup, in place, for the common case.
            liveBytesBySegment[location.segment, default: 0] += bytes
            return
        }
        let current = liveBytesBySegment[location.segment, default: 0]
        liveBytesBySegment[location.segment] = current > bytes ? current - bytes : nil
    }

    private mutating func replace(table: String, id: String, with entry: IndexEntry, foreignKeys: [ForeignKey]) {
        let slot = slot(of: table) ?? add(TableIndex(hashKey: hashKey), named: table)
        let old = tableIndexes[slot].replace(id: id, with: entry, foreignKeys: foreignKeys)
        account(old?.location, -1)
        account(entry.location, +1)
        if old?.isLive == true { liveCount -= 1 }
        if entry.isLive { liveCount += 1 }
    }

    /// The number of key `id` in the table at `slot`, looked up in place through a buffer
    /// pointer: a table index passed whole as a method's `self` is copied out of the array
    /// (its dozen buffers retained and released, 900 instructions, on the path that stages
    /// every commit), and so is its id table read as a field of an array element.
    private func number(of id: String, inTableAt slot: Int) -> UInt32? {
        var id = id
        return id.withUTF8 { key in
            tableIndexes.withUnsafeBufferPointer { $0[slot].ids.number(of: UnsafeRawBufferPointer(key)) }
        }
    }

    /// Adds a table's index; returns its slot.
    @discardableResult
    private mutating func add(_ table: TableIndex, named name: String) -> Int {
        tableSlots[name] = tableIndexes.count
        tableNames.append(name)
        tableIndexes.append(table)
        return tableIndexes.count - 1
    }

    /// Removes the table at `slot`; the last table takes its place.
    private mutating func removeTable(at slot: Int) {
        tableSlots[tableNames[slot]] = nil
        let last = tableIndexes.count - 1
        if slot != last {
            tableIndexes.swapAt(slot, last)
            tableNames.swapAt(slot, last)
            tableSlots[tableNames[slot]] = slot
        }
        tableIndexes.removeLast()
        tableNames.removeLast()
    }
}
