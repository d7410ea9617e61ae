/// One table's part of the indexes: its keys with their latest versions and locations, and its
/// foreign-key values with the records that reference them.
///
/// Every key has a number (from ``InternTable``) that indexes a fixed-size ``PackedEntry``;
/// foreign-key values are numbered the same way, keyed by field and value, and a record refers
/// to them by number. About 40 bytes per entry, 8 per key slot, and the id's bytes.
package struct TableIndex: Sendable {
    /// A key's entry, 40 bytes.
    struct PackedEntry: Sendable {
        var version: UInt64
        var sequence: UInt64
        var segment: UInt32
        /// Segments are at most `UInt32.max` bytes (``EngineConfiguration/segmentSize``), so a
        /// frame's offset fits.
        var frameOffset: UInt32
        /// ``tombstone`` for a deleted key.
        var storedLength: UInt32
        var recordOffset: UInt32
        var recordLength: UInt32
        /// 0: none; ``severalForeignKeys``: see ``TableIndex/severalForeignKeys``; otherwise the
        /// value number plus one.
        var foreignKeys: UInt32

        static let tombstone = UInt32.max
        static let severalForeignKeys = UInt32.max

        var isLive: Bool { storedLength != Self.tombstone }

        init(_ entry: IndexEntry) {
            version = entry.version
            sequence = entry.sequence
            if let location = entry.location {
                precondition(location.frameOffset <= UInt64(UInt32.max), "a frame offset beyond a segment's largest size")
                segment = location.segment
                frameOffset = UInt32(location.frameOffset)
                storedLength = location.storedLength
                recordOffset = location.recordOffset
                recordLength = location.recordLength
            } else {
                (segment, frameOffset, storedLength, recordOffset, recordLength) = (0, 0, Self.tombstone, 0, 0)
            }
            foreignKeys = 0
        }

        var entry: IndexEntry {
            IndexEntry(version: version, sequence: sequence, location: isLive ? location : nil)
        }

        var location: RecordLocation {
            RecordLocation(segment: segment, storedLength: storedLength, frameOffset: UInt64(frameOffset),
                           recordOffset: recordOffset, recordLength: recordLength)
        }
    }

    // Internal rather than private: `TableIndex+Snapshot.swift` writes and restores them.

    /// The keys, numbered; `entries[number]` is a key's entry.
    var ids: InternTable
    var entries: [PackedEntry] = []
    /// Foreign-key field names, numbered in order of first use.
    var fields: [String] = []
    /// field name → its number, looked up once there are more fields than
    /// ``KeyIndex/linearSearchLimit`` (see ``fieldNumber(of:)``).
    var fieldNumbers: [String: UInt16] = [:]
    /// (field number, value) → value number; the key is the field number's two bytes, then the value.
    var values: InternTable
    var postings = PostingLists()
    /// entry number → value numbers, for the records with more than one foreign key.
    var severalForeignKeys: [UInt32: [UInt32]] = [:]
    /// The number of live records.
    package internal(set) var liveCount = 0

    /// An empty table whose intern tables hash under `hashKey` (random if nil).
    package init(hashKey: (UInt64, UInt64)? = nil) {
        ids = InternTable(hashKey: hashKey)
        values = InternTable(hashKey: hashKey)
    }

    /// The number of keys, tombstones included.
    package var keyCount: Int { ids.count }

    /// The heap bytes the table's indexes hold, approximately (arrays by capacity), for statistics.
    package var memoryFootprint: Int {
        let several = severalForeignKeys.reduce(0) { $0 + 16 + $1.value.capacity * MemoryLayout<UInt32>.stride }
        return ids.memoryFootprint + entries.capacity * MemoryLayout<PackedEntry>.stride + values.memoryFootprint
            + postings.memoryFootprint + several + fields.reduce(0) { $0 + 16 + $1.utf8.count } * 2
    }

    // MARK: Lookups

    /// The number of key `id`, if the table has it.
    package func number(of id: String) -> UInt32? {
        var id = id
        return id.withUTF8 { ids.number(of: UnsafeRawBufferPointer($0)) }
    }

    /// The entry of key `number`.
    package func entry(_ number: UInt32) -> IndexEntry { entries[Int(number)].entry }

    /// The entry of key `id`, live or a tombstone.
    package func entry(id: String) -> IndexEntry? {
        // Not `number(of: id).map(entry)`: the closure would capture a copy of the whole table.
        guard let number = number(of: id) else { return nil }
        return entry(number)
    }

    /// The id of key `number`.
    package func id(_ number: UInt32) -> String { ids.string(of: number) }

    /// Calls `body` with the number of every key, tombstones included, in no particular order.
    package func forEachKey(_ body: (UInt32) -> Void) {
        for number in 0..<UInt32(ids.numberLimit) where ids.contains(number: number) { body(number) }
    }

    /// The foreign keys of key `number`, in the order the record gave them (repeats dropped).
    package func foreignKeys(_ number: UInt32) -> [ForeignKey] {
        valueNumbers(of: entries[Int(number)], number: number).map(foreignKey(ofValue:))
    }

    /// The numbers of the live records whose foreign key `field` is `value`.
    package func numbers(field: String, value: String) -> [UInt32] {
        guard let field = fieldNumber(of: field) else { return [] }
        return Self.withValueKey(field: field, value: value) { key in
            values.number(of: key).map(postings.entries(of:)) ?? []
        }
    }

    // MARK: Changes

    /// Sets key `id`'s entry, adding the key if it is new.
    /// - Returns: The entry it replaced.
    @discardableResult
    package mutating func replace(id: String, with entry: IndexEntry, foreignKeys: [ForeignKey]) -> IndexEntry? {
        var id = id
        let (number, inserted) = id.withUTF8 { ids.insert(UnsafeRawBufferPointer($0)) }
        return replace(number: number, isNew: inserted, with: entry, foreignKeys: foreignKeys)
    }

    /// Sets the entry of key `number`; `isNew` when the number was just given to the key.
    private mutating func replace(number: UInt32, isNew: Bool, with entry: IndexEntry, foreignKeys: [ForeignKey]) -> IndexEntry? {
        var packed = PackedEntry(entry)
        guard !isNew else {
            if Int(number) == entries.count { entries.append(packed) } else { entries[Int(number)] = packed }
            if packed.isLive {
                liveCount += 1
                attach(foreignKeys, to: number)
            }
            return nil
        }
        let old = entries[Int(number)]
        if old.isLive, packed.isLive, references(of: old, number: number, areThoseOf: foreignKeys) {
            // The common update: same foreign keys, so the lists stay as they are.
            packed.foreignKeys = old.foreignKeys
            entries[Int(number)] = packed
            return old.entry
        }
        if old.isLive {
            liveCount -= 1
            detach(from: number)
        }
        entries[Int(number)] = packed
        if packed.isLive {
            liveCount += 1
            attach(foreignKeys, to: number)
        }
        return old.entry
    }

    /// Points key `number` at a new location (a compaction's move).
    package mutating func relocate(_ number: UInt32, to location: RecordLocation) {
        var moved = PackedEntry(IndexEntry(version: 0, sequence: 0, location: location))
        let old = entries[Int(number)]
        (moved.version, moved.sequence, moved.foreignKeys) = (old.version, old.sequence, old.foreignKeys)
        entries[Int(number)] = moved
    }

    /// Removes key `number`, a tombstone.
    package mutating func remove(_ number: UInt32) {
        precondition(!entries[Int(number)].isLive, "only a tombstone is forgotten")
        ids.remove(number)
    }

    // MARK: Foreign keys

    /// The value numbers key `number` references.
    func valueNumbers(of number: UInt32) -> [UInt32] { valueNumbers(of: entries[Int(number)], number: number) }

    func valueNumbers(of entry: PackedEntry, number: UInt32) -> [UInt32] {
        switch entry.foreignKeys {
        case 0: return []
        case PackedEntry.severalForeignKeys: return severalForeignKeys[number] ?? []
        default: return [entry.foreignKeys - 1]
        }
    }

    private func foreignKey(ofValue value: UInt32) -> ForeignKey {
        values.withBytes(of: value) { key in
            let field = Int(key.loadUnaligned(as: UInt16.self).littleEndian)
            return ForeignKey(field: fields[field], value: String(decoding: key.dropFirst(2), as: UTF8.self))
        }
    }

    /// Whether live entry `entry` (key `number`) references exactly the values of `foreignKeys`.
    /// A single foreign key, the common case, is compared without building arrays.
    private func references(of entry: PackedEntry, number: UInt32, areThoseOf foreignKeys: [ForeignKey]) -> Bool {
        if foreignKeys.count == 1, entry.foreignKeys != PackedEntry.severalForeignKeys {
            return entry.foreignKeys != 0 && existingValueNumber(of: foreignKeys[0]) == entry.foreignKeys - 1
        }
        guard let numbers = existingValueNumbers(foreignKeys) else { return false }
        return numbers == valueNumbers(of: entry, number: number)
    }

    /// The value numbers of `foreignKeys` if every one is known, without adding any.
    private func existingValueNumbers(_ foreignKeys: [ForeignKey]) -> [UInt32]? {
        var numbers: [UInt32] = []
        for key in foreignKeys {
            guard let value = existingValueNumber(of: key) else { return nil }
            if !numbers.contains(value) { numbers.append(value) }
        }
        return numbers
    }

    /// The number of foreign-key field `name`, searched linearly among a table's few fields
    /// (see ``KeyIndex/linearSearchLimit``).
    private func fieldNumber(of name: String) -> UInt16? {
        guard fields.count <= KeyIndex.linearSearchLimit else { return fieldNumbers[name] }
        return fields.firstIndex(of: name).map { UInt16($0) }
    }

    /// The value number of `key`, if it is known.
    private func existingValueNumber(of key: ForeignKey) -> UInt32? {
        guard let field = fieldNumber(of: key.field) else { return nil }
        return Self.withValueKey(field: field, value: key.value, values.number(of:))
    }

    /// The value numbers of `foreignKeys`, each once, adding the fields and values not seen before.
    private mutating func interned(_ foreignKeys: [ForeignKey]) -> [UInt32] {
        var numbers: [UInt32] = []
        for key in foreignKeys {
            let value = interned(key)
            if !numbers.contains(value) { numbers.append(value) }
        }
        return numbers
    }

    /// The value number of `key`, adding its field and value if not seen before.
    private mutating func interned(_ key: ForeignKey) -> UInt32 {
        let field: UInt16
        if let known = fieldNumber(of: key.field) {
            field = known
        } else {
            precondition(fields.count < Int(UInt16.max), "more foreign-key fields in a table than the index can number")
            field = UInt16(fields.count)
            fields.append(key.field)
            fieldNumbers[key.field] = field
        }
        return Self.withValueKey(field: field, value: key.value) { values.insert($0).number }
    }

    /// Records that live key `number` references the values of `foreignKeys` (a single one
    /// without building an array).
    private mutating func attach(_ foreignKeys: [ForeignKey], to number: UInt32) {
        if foreignKeys.count == 1 {
            attach(value: interned(foreignKeys[0]), to: number)
        } else {
            attach(interned(foreignKeys), to: number)
        }
    }

    /// Records that live key `number` references the one value `value`.
    private mutating func attach(value: UInt32, to number: UInt32) {
        postings.add(number, to: value)
        entries[Int(number)].foreignKeys = value + 1
    }

    /// Records that live key `number` references `valueNumbers`.
    private mutating func attach(_ valueNumbers: [UInt32], to number: UInt32) {
        switch valueNumbers.count {
        case 0: entries[Int(number)].foreignKeys = 0
        case 1: attach(value: valueNumbers[0], to: number)
        default:
            for value in valueNumbers { postings.add(number, to: value) }
            entries[Int(number)].foreignKeys = PackedEntry.severalForeignKeys
            severalForeignKeys[number] = valueNumbers
        }
    }

    /// Drops key `number`'s references, and the values no record references any more.
    private mutating func detach(from number: UInt32) {
        for value in valueNumbers(of: entries[Int(number)], number: number) where postings.remove(number, from: value) {
            values.remove(value)
        }
        entries[Int(number)].foreignKeys = 0
        severalForeignKeys[number] = nil
    }

    /// Calls `body` with the value key of (`field`, `value`): the field number's two bytes, then the value.
    /// Static, so that a closure that changes the table does not make it copy itself.
    private static func withValueKey<Result>(field: UInt16, value: String, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        var value = value
        return value.withUTF8 { utf8 in
            withUnsafeTemporaryAllocation(byteCount: utf8.count + 2, alignment: 1) { key in
                key.storeBytes(of: field.littleEndian, toByteOffset: 0, as: UInt16.self)
                UnsafeMutableRawBufferPointer(rebasing: key[2...]).copyMemory(from: UnsafeRawBufferPointer(utf8))
                return body(UnsafeRawBufferPointer(key))
            }
        }
    }
}
