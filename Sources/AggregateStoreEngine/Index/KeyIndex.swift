/// The in-memory indexes, rebuilt from the log on open: the primary index from (table, id) to
/// the latest version, and the foreign-key index from (table, field, value) to ids.
///
/// A value type: the writer applies commits to it under the index lock, and
/// ``StorageEngine/verify()`` compares it with one rebuilt from the log.
package struct KeyIndex: Sendable, Equatable {
    /// table → id → entry (tombstones included, so versions keep increasing after a delete).
    package private(set) var primary: [String: [String: IndexEntry]] = [:]
    /// table → field → value → ids.
    package private(set) var foreign: [String: [String: [String: Set<String>]]] = [:]
    /// The number of live records.
    package private(set) var liveCount = 0
    /// table → its number of live records; tables without one are absent. Kept up to date by
    /// every write so that counting and listing tables never walks the keys.
    package private(set) var liveCountByTable: [String: Int] = [:]
    /// segment → bytes of the live records it holds, from which compaction reckons its dead bytes.
    package private(set) var liveBytesBySegment: [UInt32: UInt64] = [:]

    package init() {}

    /// The entry of a key, live or a tombstone.
    package func entry(table: String, id: String) -> IndexEntry? {
        primary[table]?[id]
    }

    /// The ids of live records of `table` whose `field` references `value`, sorted.
    package func ids(table: String, field: String, value: String) -> [String] {
        guard let ids = foreign[table]?[field]?[value] else { return [] }
        return ids.sorted()
    }

    /// The number of tables that have ever held a record.
    package var tableCount: Int { primary.count }

    /// Live record counts per table, for every table that has ever held a record (0 when
    /// only tombstones are left).
    package func liveCounts() -> [String: Int] {
        primary.mapValues { _ in 0 }.merging(liveCountByTable) { _, live in live }
    }

    /// The ids of the live records of `table`, sorted.
    package func liveIds(table: String) -> [String] {
        guard let entries = primary[table], liveCountByTable[table] != nil else { return [] }
        return entries.compactMap { $0.value.isLive ? $0.key : nil }.sorted()
    }

    /// The tables with at least one live record, sorted.
    package func liveTables() -> [String] {
        liveCountByTable.keys.sorted()
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
        for operation in payload.operations {
            switch operation {
            case let .put(table, id, version, foreignKeys, record):
                let location = RecordLocation(segment: frame.segment, storedLength: UInt32(storedLength),
                                              frameOffset: frame.offset, recordOffset: UInt32(record.lowerBound),
                                              recordLength: UInt32(record.count))
                replace(table: table, id: id,
                        with: IndexEntry(version: version, sequence: sequence, location: location, foreignKeys: foreignKeys))
            case let .delete(table, id, version):
                replace(table: table, id: id, with: IndexEntry(version: version, sequence: sequence, location: nil, foreignKeys: []))
            case .event:
                break
            }
        }
    }

    /// Makes room for `count` keys of `table`, before a snapshot's entries are restored.
    package mutating func reserve(table: String, count: Int) {
        primary[table, default: [:]].reserveCapacity(count)
    }

    /// Adds a key's entry as a snapshot recorded it (the foreign-key index and the counts follow).
    package mutating func restore(table: String, id: String, entry: IndexEntry) {
        replace(table: table, id: id, with: entry)
    }

    /// Applies a compaction's move of a record, if the key's entry is still the one moved:
    /// a write since then wins (a compare-and-swap on the old location).
    /// - Returns: Whether the entry moved.
    @discardableResult
    package mutating func move(table: String, id: String, from old: RecordLocation, to new: RecordLocation) -> Bool {
        guard var entry = primary[table]?[id], entry.location == old else { return false }
        entry.location = new
        primary[table]![id] = entry
        account(old, -1)
        account(new, +1)
        return true
    }

    /// Forgets a tombstone compaction dropped from the log, if it is still the key's entry.
    package mutating func forget(table: String, id: String, tombstoneSequence: UInt64) {
        guard let entry = primary[table]?[id], !entry.isLive, entry.sequence == tombstoneSequence else { return }
        primary[table]![id] = nil
        if primary[table]!.isEmpty { primary[table] = nil }
    }

    private mutating func account(_ location: RecordLocation?, _ sign: Int) {
        guard let location else { return }
        let bytes = UInt64(location.recordLength)
        let current = liveBytesBySegment[location.segment, default: 0]
        let updated = sign > 0 ? current + bytes : (current > bytes ? current - bytes : 0)
        liveBytesBySegment[location.segment] = updated > 0 ? updated : nil
    }

    private mutating func replace(table: String, id: String, with entry: IndexEntry) {
        let old = primary[table, default: [:]].updateValue(entry, forKey: id)
        account(old?.location, -1)
        account(entry.location, +1)
        if let old, old.isLive {
            liveCount -= 1
            let remaining = liveCountByTable[table, default: 0] - 1
            liveCountByTable[table] = remaining > 0 ? remaining : nil
            unindex(table: table, id: id, old.foreignKeys)
        }
        if entry.isLive {
            liveCount += 1
            liveCountByTable[table, default: 0] += 1
            for key in entry.foreignKeys {
                foreign[table, default: [:]][key.field, default: [:]][key.value, default: []].insert(id)
            }
        }
    }

    private mutating func unindex(table: String, id: String, _ keys: [ForeignKey]) {
        for key in keys {
            foreign[table]?[key.field]?[key.value]?.remove(id)
            if foreign[table]?[key.field]?[key.value]?.isEmpty == true {
                foreign[table]?[key.field]?[key.value] = nil
            }
            if foreign[table]?[key.field]?.isEmpty == true { foreign[table]?[key.field] = nil }
            if foreign[table]?.isEmpty == true { foreign[table] = nil }
        }
    }
}
