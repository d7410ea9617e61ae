extension TableIndex {
    /// Writes the table as `Docs/FORMAT.md`, section 3.1, lays it out (`table-body`): fields,
    /// the ids' intern table, one fixed-size entry per key number, the values' intern table,
    /// and the records with several foreign keys. Loading it costs no hashing.
    func encode(into writer: inout ByteWriter) {
        writer.writeVarint(UInt64(fields.count))
        for field in fields { writer.writeString(field) }
        ids.encode(into: &writer)
        for number in 0..<UInt32(ids.numberLimit) {
            // A free number's entry is written as zeros, so entries stay at fixed places.
            let entry = ids.contains(number: number) ? entries[Int(number)] : PackedEntry(zeroed: ())
            writer.writeUInt64(entry.version)
            writer.writeUInt64(entry.sequence)
            writer.writeUInt32(entry.segment)
            writer.writeUInt32(entry.frameOffset)
            writer.writeUInt32(entry.storedLength)
            writer.writeUInt32(entry.recordOffset)
            writer.writeUInt32(entry.recordLength)
            writer.writeUInt32(entry.foreignKeys)
        }
        values.encode(into: &writer)
        writer.writeVarint(UInt64(severalForeignKeys.count))
        for (number, values) in severalForeignKeys.sorted(by: { $0.key < $1.key }) {
            writer.writeVarint(UInt64(number))
            writer.writeVarint(UInt64(values.count))
            for value in values { writer.writeVarint(UInt64(value)) }
        }
    }

    /// Reads what ``encode(into:)`` wrote and checks that it describes a table the index could
    /// have built: every number, length and reference in range, entries and foreign keys
    /// consistent. The foreign-key lists are rebuilt from the entries.
    static func decode(from reader: inout ByteReader) throws(ByteReader.Failure) -> Result<TableIndex, SnapshotDefect> {
        var table = TableIndex()
        let fieldCount = try reader.readLength(limit: Int(UInt16.max), "field count")
        for _ in 0..<fieldCount {
            let field = try reader.readString(limit: Format.maximumNameLength, "field")
            guard table.fieldNumbers[field] == nil else { return .failure(SnapshotDefect("field \(field) appears twice")) }
            table.fieldNumbers[field] = UInt16(table.fields.count)
            table.fields.append(field)
        }
        guard let ids = try InternTable.decode(from: &reader) else { return .failure(SnapshotDefect("its ids are malformed")) }
        let entryBytes = try reader.readBytes(ids.numberLimit * Format.snapshotEntryLength, "entries")
        guard let values = try InternTable.decode(from: &reader) else {
            return .failure(SnapshotDefect("its foreign-key values are malformed"))
        }
        for value in 0..<UInt32(values.numberLimit) where values.contains(number: value) {
            let wellFormed = values.withBytes(of: value) { key in
                key.count >= 2 && Int(key.loadLittleEndian(UInt16.self, at: 0)) < fieldCount
            }
            guard wellFormed else { return .failure(SnapshotDefect("foreign-key value \(value) names no field")) }
        }
        let severalCount = try reader.readLength(limit: ids.count, "count of records with several foreign keys")
        for _ in 0..<severalCount {
            let number = try reader.readVarint()
            let count = try reader.readLength(limit: values.count, "foreign-key count")
            var numbers: [UInt32] = []
            for _ in 0..<count {
                let value = try reader.readVarint()
                guard value < UInt64(values.numberLimit), values.contains(number: UInt32(value)),
                      !numbers.contains(UInt32(value)) else {
                    return .failure(SnapshotDefect("a record's foreign keys name an unknown or repeated value"))
                }
                numbers.append(UInt32(value))
            }
            guard number < UInt64(ids.numberLimit), count >= 2, table.severalForeignKeys[UInt32(number)] == nil else {
                return .failure(SnapshotDefect("a list of foreign keys names an unknown key"))
            }
            table.severalForeignKeys[UInt32(number)] = numbers
        }

        var references: [(entry: UInt32, value: UInt32)] = []
        references.reserveCapacity(ids.count)
        var several = 0
        var liveCount = 0
        var defect: SnapshotDefect?
        table.entries = [PackedEntry](unsafeUninitializedCapacity: ids.numberLimit) { buffer, initialized in
            for number in 0..<ids.numberLimit {
                let base = number * Format.snapshotEntryLength
                func word(_ index: Int) -> UInt32 { entryBytes.loadLittleEndian(UInt32.self, at: base + 16 + 4 * index) }
                var entry = PackedEntry(zeroed: ())
                entry.version = entryBytes.loadLittleEndian(UInt64.self, at: base)
                entry.sequence = entryBytes.loadLittleEndian(UInt64.self, at: base + 8)
                (entry.segment, entry.frameOffset, entry.storedLength) = (word(0), word(1), word(2))
                (entry.recordOffset, entry.recordLength, entry.foreignKeys) = (word(3), word(4), word(5))
                buffer[number] = entry
                initialized = number + 1
                guard defect == nil, ids.contains(number: UInt32(number)) else { continue }
                guard entry.isLive || entry.foreignKeys == 0,
                      !entry.isLive || entry.storedLength <= UInt32(Format.maximumPayloadLength) else {
                    defect = SnapshotDefect("entry \(number) is malformed")
                    continue
                }
                if entry.isLive { liveCount += 1 }
                switch entry.foreignKeys {
                case 0:
                    break
                case PackedEntry.severalForeignKeys:
                    guard let numbers = table.severalForeignKeys[UInt32(number)] else {
                        defect = SnapshotDefect("entry \(number)'s foreign keys are missing")
                        continue
                    }
                    several += 1
                    for value in numbers { references.append((UInt32(number), value)) }
                default:
                    let value = entry.foreignKeys - 1
                    guard values.contains(number: value) else {
                        defect = SnapshotDefect("entry \(number) names an unknown foreign-key value")
                        continue
                    }
                    references.append((UInt32(number), value))
                }
            }
        }
        if let defect { return .failure(defect) }
        guard several == severalCount else {
            return .failure(SnapshotDefect("a list of foreign keys belongs to no entry that has several"))
        }
        guard ids.count <= PostingLists.maximumEntryNumber + 1 else {
            return .failure(SnapshotDefect("it has more keys than the index can number"))
        }
        table.ids = ids
        table.values = values
        table.liveCount = liveCount
        table.postings = PostingLists(valueLimit: values.numberLimit, references: references)
        return .success(table)
    }
}

extension TableIndex.PackedEntry {
    /// All zeros: a free number's entry.
    init(zeroed: Void) {
        (version, sequence, segment, frameOffset, storedLength, recordOffset, recordLength, foreignKeys) = (0, 0, 0, 0, 0, 0, 0, 0)
    }
}
