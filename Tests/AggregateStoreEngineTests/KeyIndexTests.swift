import Testing
@testable import AggregateStoreEngine

/// The compact index's parts against plain dictionaries, under long random sequences of
/// changes (seeded, so a failure replays).
struct KeyIndexTests {
    @Test(arguments: [1, 2, 3])
    func anInternTableKeepsNumbersAndFindsEveryString(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = InternTable()
        var model: [[UInt8]: UInt32] = [:]
        for step in 0..<20_000 {
            // Long strings now and then, so removals leave enough garbage to compact the arena.
            let length = step % 97 == 0 ? 2000 : Int(random.next() % 12)
            let key = (0..<length).map { _ in UInt8(random.next() % 4) }
            if random.next() % 3 == 0, let victim = model.randomElement(using: &random) {
                table.remove(victim.value)
                model[victim.key] = nil
            } else {
                let (number, inserted) = key.withUnsafeBytes { table.insert($0) }
                #expect(inserted == (model[key] == nil))
                if let known = model[key] { #expect(number == known) }
                model[key] = number
            }
        }
        #expect(table.count == model.count)
        for (key, number) in model {
            #expect(key.withUnsafeBytes { table.number(of: $0) } == number)
            #expect(table.withBytes(of: number) { Array($0) } == key)
        }
        // Numbers are dense: every number below the limit is in use or free for reuse.
        let used = (0..<UInt32(table.numberLimit)).filter { table.contains(number: $0) }
        #expect(Set(used) == Set(model.values))
        #expect([UInt8]([9, 9, 9]).withUnsafeBytes { table.number(of: $0) } == nil)
    }

    @Test func removedStringsAreCompactedOutOfTheArena() {
        var table = InternTable()
        let keys = (0..<100).map { number in [UInt8](repeating: UInt8(number), count: 2000) }
        let numbers = keys.map { key in key.withUnsafeBytes { table.insert($0).number } }
        #expect(table.arenaBytes == 200_000)
        for number in numbers.prefix(90) { table.remove(number) }
        #expect(table.arenaBytes < 200_000 - 65_536)
        for (key, number) in zip(keys, numbers).suffix(10) {
            #expect(key.withUnsafeBytes { table.number(of: $0) } == number)
            #expect(table.withBytes(of: number) { Array($0) } == key)
        }
        #expect(keys[0].withUnsafeBytes { table.number(of: $0) } == nil)
    }

    @Test func sipHashMatchesThePapersVectors() {
        // SipHash-2-4 with key 00 01 … 0f over 00 01 … (Aumasson and Bernstein, appendix A; the
        // reference implementation's vectors), which checks the code SipHash-1-3 shares.
        let hasher = SipHash13(key: (0x0706_0504_0302_0100, 0x0F0E_0D0C_0B0A_0908))
        let vectors: [Int: UInt64] = [0: 0x726F_DB47_DD0E_0E31, 1: 0x74F8_39C5_93DC_67FD, 2: 0x0D6C_8009_D9A9_4F5A,
                                      7: 0xAB02_00F5_8B01_D137, 8: 0x93F5_F579_9A93_2462, 15: 0xA129_CA61_49BE_45E5,
                                      63: 0x958A_324C_EB06_4572]
        for (length, expected) in vectors {
            let message = (0..<length).map { UInt8($0) }
            #expect(message.withUnsafeBytes { hasher.hash24($0) } == expected, "length \(length)")
        }
        // 1-3 differs from 2-4 and depends on the key.
        let message: [UInt8] = Array("SO-000123".utf8)
        #expect(message.withUnsafeBytes { hasher.hash($0) } != message.withUnsafeBytes { hasher.hash24($0) })
        #expect(message.withUnsafeBytes { hasher.hash($0) } != message.withUnsafeBytes { SipHash13(key: (1, 2)).hash($0) })
    }

    @Test func aSnapshotWhoseTablesAreDamagedButWhoseCRCMatchesIsRefusedOrSafe() throws {
        var random = SplitMix64(seed: 99)
        var index = KeyIndex()
        for number in 0..<300 {
            var payload = CommitPayload(unitOfWorkId: "uow", commitTimestamp: 0, operations: [])
            let keys = (0..<number % 3).map { ForeignKey(field: "f\($0)", value: "v-\(number % 7)") }
            payload.operations = number % 5 == 4 ? [.delete(table: "t\(number % 2)", id: "k-\(number / 2)", version: 2)]
                : [.put(table: "t\(number % 2)", id: "k-\(number)", version: 1, foreignKeys: keys, record: 0..<10)]
            index.apply(payload, sequence: UInt64(number + 1), frame: FrameAddress(segment: 1, offset: UInt64(40 * number)),
                        storedLength: 100)
        }
        let snapshot = IndexSnapshot(segments: [Manifest.Segment(id: 1, baseSequence: 1, sealedLength: 0, lastSequence: 0)],
                                     endOffset: 40, framesInLastSegment: 0, lastSequence: 300, lastFrameOffset: 0,
                                     lastFrameCRC: 0, lastFrameWriteIndex: 0, lastFrameEndsWrite: true, compacted: false,
                                     counters: LogCounters(), index: index, events: EventIndex())
        let bytes = snapshot.encoded(salt: 1)
        var refused = 0
        for _ in 0..<3000 {
            var damaged = bytes
            for _ in 0..<1 + Int(random.next() % 3) {
                let position = 40 + Int(random.next() % UInt64(bytes.count - 44))
                damaged[position] ^= UInt8(1 << (random.next() % 8))
            }
            let crc = CRC32C.mask(CRC32C.checksum(Array(damaged[..<(damaged.count - 4)])))
            withUnsafeBytes(of: crc.littleEndian) { damaged.replaceSubrange((damaged.count - 4)..., with: $0) }
            switch IndexSnapshot.decode(damaged, salt: 1) {
            case .failure:
                refused += 1
            case var .success(decoded):
                // Accepted (a flip in a version or an offset is just another value): it must
                // still answer and take changes without trapping.
                _ = decoded.index.liveIds(table: "t0")
                _ = decoded.index.ids(table: "t1", field: "f0", value: "v-3")
                _ = decoded.index.foreignKeyMap()
                decoded.index.apply(CommitPayload(unitOfWorkId: "uow", commitTimestamp: 0, operations: [
                    .put(table: "t0", id: "k-0", version: 9, foreignKeys: [ForeignKey(field: "f1", value: "v-1")], record: 0..<1),
                    .delete(table: "t1", id: "k-1", version: 9),
                ]), sequence: 400, frame: FrameAddress(segment: 2, offset: 40), storedLength: 10)
            }
        }
        #expect(refused > 0)
    }

    @Test func postingListsGrowIntoSetsAndShrinkBack() {
        var random = SplitMix64(seed: 7)
        var lists = PostingLists()
        var model: [UInt32: Set<UInt32>] = [:]
        for step in 0..<40_000 {
            // One hot value, so lists pass the set threshold both ways.
            let value = step % 3 == 0 ? 0 : UInt32(random.next() % 50)
            let entry = UInt32(random.next() % (value == 0 ? 200 : 6))
            if random.next() % 2 == 0 {
                lists.add(entry, to: value)
                model[value, default: []].insert(entry)
            } else {
                model[value]?.remove(entry)
                let empty = lists.remove(entry, from: value)
                #expect(empty == (model[value]?.isEmpty ?? true))
            }
        }
        // Built in one go, as a snapshot restores them, the lists are the same.
        let built = PostingLists(valueLimit: 50, references: model.flatMap { value, entries in entries.map { ($0, value) } })
        #expect((model[0] ?? []).count > 64)
        for value in 0..<UInt32(50) {
            for lists in [lists, built] {
                #expect(Set(lists.entries(of: value)) == (model[value] ?? []))
                #expect(lists.entries(of: value).count == (model[value] ?? []).count)
                #expect(lists.isEmpty(value) == (model[value] ?? []).isEmpty)
            }
        }
    }

    /// What a key should hold.
    private struct Expected: Equatable {
        var entry: IndexEntry
        var foreignKeys: Set<ForeignKey>
    }

    /// A table whose last key compaction forgets leaves the index; the tables after it keep
    /// their keys (the index keeps its tables in an array, filling the gap with the last one).
    @Test func aTableWhoseLastKeyIsForgottenLeavesTheIndexAndTheOthersKeepTheirKeys() throws {
        var index = KeyIndex()
        let frame = FrameAddress(segment: 1, offset: 40)
        func put(_ table: String, _ id: String, version: UInt64, sequence: UInt64) {
            index.apply(CommitPayload(unitOfWorkId: "uow", commitTimestamp: 0, operations: [
                .put(table: table, id: id, version: version, foreignKeys: [ForeignKey(field: "owner", value: "o-\(id)")], record: 0..<10),
            ]), sequence: sequence, frame: frame, storedLength: 100)
        }
        put("first", "a", version: 1, sequence: 1)
        put("second", "b", version: 1, sequence: 2)
        put("third", "c", version: 1, sequence: 3)
        index.apply(CommitPayload(unitOfWorkId: "uow", commitTimestamp: 0, operations: [.delete(table: "first", id: "a", version: 2)]),
                    sequence: 4, frame: frame, storedLength: 100)
        #expect(index.hasTable("first"))
        index.forget(table: "first", id: "a", tombstoneSequence: 4)

        #expect(!index.hasTable("first"))
        #expect(index.entry(table: "first", id: "a") == nil)
        #expect(Set(index.tables.keys) == ["second", "third"])
        #expect(index.entry(table: "second", id: "b")?.sequence == 2)
        #expect(index.entry(table: "third", id: "c")?.sequence == 3)
        #expect(index.ids(table: "third", field: "owner", value: "o-c") == ["c"])
        #expect(index.liveCounts() == ["second": 1, "third": 1])

        // The forgotten table comes back empty: its key starts again from version 1.
        put("first", "a", version: 1, sequence: 5)
        #expect(index.entry(table: "first", id: "a")?.version == 1)
        #expect(index.liveCount == 3)
        #expect(index.keyCount == 3)
    }

    /// Three tables and two foreign-key fields are found by a linear search, twelve and eleven
    /// through the dictionaries (``KeyIndex/linearSearchLimit``).
    @Test(arguments: [(11, 3, 2), (12, 3, 2), (13, 12, 11)])
    func theIndexAgreesWithADictionaryModelAndItsSnapshotRestoresIt(seed: UInt64, tableCount: Int, fieldCount: Int) throws {
        var random = SplitMix64(seed: seed)
        let tables = ["orders", "items", "notes"] + (3..<max(3, tableCount)).map { "table-\($0)" }
        let fields = ["customer", "owner"] + (2..<max(2, fieldCount)).map { "field-\($0)" }
        var index = KeyIndex()
        var model: [String: [String: Expected]] = [:]
        var sequence: UInt64 = 0
        for _ in 0..<(tableCount > 3 ? 12000 : 6000) {
            sequence += 1
            let table = tables[Int(random.next() % UInt64(tables.count))]
            let id = "k-\(random.next() % 400)"
            let version = (model[table]?[id]?.entry.version ?? 0) + 1
            var payload = CommitPayload(unitOfWorkId: "uow", commitTimestamp: 0, operations: [])
            switch random.next() % 10 {
            case 0..<6:
                let keys = (0..<Int(random.next() % 4)).map { _ in
                    ForeignKey(field: fields[Int(random.next() % UInt64(fields.count))], value: "v-\(random.next() % 30)")
                }
                let offset = UInt32(random.next() % 1000), length = UInt32(1 + random.next() % 100)
                payload.operations = [.put(table: table, id: id, version: version, foreignKeys: keys,
                                           record: Int(offset)..<Int(offset + length))]
                let location = RecordLocation(segment: UInt32(1 + random.next() % 4), storedLength: 5000,
                                              frameOffset: 40 * sequence, recordOffset: offset, recordLength: length)
                model[table, default: [:]][id] = Expected(entry: IndexEntry(version: version, sequence: sequence, location: location),
                                                          foreignKeys: Set(keys))
                index.apply(payload, sequence: sequence, frame: location.frame, storedLength: 5000)
            case 6..<8:
                payload.operations = [.delete(table: table, id: id, version: version)]
                model[table, default: [:]][id] = Expected(entry: IndexEntry(version: version, sequence: sequence, location: nil),
                                                          foreignKeys: [])
                index.apply(payload, sequence: sequence, frame: FrameAddress(segment: 1, offset: 40 * sequence), storedLength: 10)
            case 8:
                // A compaction drops a tombstone (only if it is still the key's entry).
                if let tombstone = model[table]?[id], tombstone.entry.location == nil {
                    index.forget(table: table, id: id, tombstoneSequence: tombstone.entry.sequence)
                    model[table]![id] = nil
                }
            default:
                // A compaction moves a record; a stale move (an old location) does nothing.
                guard var expected = model[table]?[id], let old = expected.entry.location else { continue }
                var new = old
                new.segment = old.segment + 100
                let stale = index.move(table: table, id: id, from: new, to: old)
                let moved = index.move(table: table, id: id, from: old, to: new)
                #expect(!stale)
                #expect(moved)
                expected.entry.location = new
                model[table]![id] = expected
            }
        }
        try check(index, against: model)

        // The snapshot's bytes restore an equal index, and an index rebuilt in another order
        // (so laid out differently) is equal too.
        let snapshot = IndexSnapshot(segments: [Manifest.Segment(id: 1, baseSequence: 1, sealedLength: 0, lastSequence: 0)],
                                     endOffset: 40, framesInLastSegment: 0, lastSequence: sequence, lastFrameOffset: 0,
                                     lastFrameCRC: 0, lastFrameWriteIndex: 0, lastFrameEndsWrite: true, compacted: false,
                                     counters: LogCounters(), index: index, events: EventIndex())
        let restored = try IndexSnapshot.decode(snapshot.encoded(salt: 5), salt: 5).get()
        #expect(restored.index == index)
        try check(restored.index, against: model)
        var reordered = KeyIndex()
        for (table, keys) in model.sorted(by: { $0.key > $1.key }) {
            for (id, expected) in keys.sorted(by: { $0.key > $1.key }) {
                let operation: CommitPayload.Operation
                if let location = expected.entry.location {
                    operation = .put(table: table, id: id, version: expected.entry.version, foreignKeys: Array(expected.foreignKeys),
                                     record: Int(location.recordOffset)..<Int(location.recordOffset + location.recordLength))
                } else {
                    operation = .delete(table: table, id: id, version: expected.entry.version)
                }
                reordered.apply(CommitPayload(unitOfWorkId: "uow", commitTimestamp: 0, operations: [operation]), sequence: expected.entry.sequence,
                                frame: expected.entry.location?.frame ?? FrameAddress(segment: 1, offset: 0),
                                storedLength: Int(expected.entry.location?.storedLength ?? 0))
            }
        }
        #expect(reordered == index)
        reordered.forget(table: model.keys.sorted()[0], id: "never", tombstoneSequence: 1)
        if let (table, keys) = model.first(where: { $0.value.contains { $0.value.entry.location == nil } }),
           let (id, tombstone) = keys.first(where: { $0.value.entry.location == nil }) {
            reordered.forget(table: table, id: id, tombstoneSequence: tombstone.entry.sequence)
            #expect(reordered != index)
        }
    }

    @Test func tablesAndFieldsAreFoundOnBothSidesOfTheLinearSearchLimit() {
        var index = KeyIndex()
        let frame = FrameAddress(segment: 1, offset: 40)
        let fields = (0..<KeyIndex.linearSearchLimit + 3).map { "field-\($0)" }
        let tables = (0..<KeyIndex.linearSearchLimit + 4).map { "table-\($0)" }
        func apply(_ operation: CommitPayload.Operation, _ sequence: UInt64) {
            index.apply(CommitPayload(unitOfWorkId: "uow", commitTimestamp: 0, operations: [operation]),
                        sequence: sequence, frame: frame, storedLength: 100)
        }
        // Each table's record references a value in as many fields as the table's number.
        func foreignKeys(_ table: Int, version: UInt64) -> [ForeignKey] {
            fields.prefix(table).map { ForeignKey(field: $0, value: "\($0)-of-\(table)-v\(version)") }
        }
        func expectFound(_ present: Range<Int>, version: UInt64) {
            for table in tables.indices {
                let entry = index.entry(table: tables[table], id: "key")
                #expect(entry?.version == (present.contains(table) ? version : nil), "\(tables[table])")
                #expect(Set(index.foreignKeys(table: tables[table], id: "key")) == Set(present.contains(table) ? foreignKeys(table, version: version) : []))
                for key in foreignKeys(table, version: version) {
                    #expect(index.ids(table: tables[table], field: key.field, value: key.value) == (present.contains(table) ? ["key"] : []))
                }
            }
        }
        var sequence: UInt64 = 0
        for table in tables.indices {
            sequence += 1
            apply(.put(table: tables[table], id: "key", version: 1, foreignKeys: foreignKeys(table, version: 1), record: 0..<10), sequence)
            expectFound(0..<table + 1, version: 1)
        }
        // Updates that change every foreign key, then deletes that empty the tables one by one
        // (the last table takes an emptied one's place) until none is left.
        for table in tables.indices {
            sequence += 1
            apply(.put(table: tables[table], id: "key", version: 2, foreignKeys: foreignKeys(table, version: 2), record: 0..<10), sequence)
        }
        expectFound(0..<tables.count, version: 2)
        for table in tables.indices {
            sequence += 1
            apply(.delete(table: tables[table], id: "key", version: 3), sequence)
            index.forget(table: tables[table], id: "key", tombstoneSequence: sequence)
            #expect(!index.hasTable(tables[table]))
            expectFound(table + 1..<tables.count, version: 2)
        }
        #expect(index.keyCount == 0)
    }

    private func check(_ index: KeyIndex, against model: [String: [String: Expected]]) throws {
        var live = 0, bytes: UInt64 = 0
        var foreign: [String: [String: [String: Set<String>]]] = [:]
        for (table, keys) in model {
            for (id, expected) in keys {
                #expect(index.entry(table: table, id: id) == expected.entry, "\(table)/\(id)")
                #expect(Set(index.foreignKeys(table: table, id: id)) == expected.foreignKeys, "\(table)/\(id)")
                if let location = expected.entry.location {
                    live += 1
                    bytes += UInt64(location.recordLength)
                    for key in expected.foreignKeys { foreign[table, default: [:]][key.field, default: [:]][key.value, default: []].insert(id) }
                }
            }
            let liveIds = keys.filter { $0.value.entry.location != nil }.keys.sorted()
            #expect(index.liveIds(table: table) == liveIds)
            #expect(index.liveCount(table: table) == liveIds.count)
        }
        #expect(index.liveCount == live)
        #expect(index.liveRecordBytes == bytes)
        #expect(index.keyCount == model.values.reduce(0) { $0 + $1.count })
        #expect(index.foreignKeyMap() == foreign)
        for (table, fields) in foreign {
            for (field, values) in fields {
                for (value, ids) in values { #expect(index.ids(table: table, field: field, value: value) == ids.sorted()) }
            }
        }
        #expect(index.ids(table: "orders", field: "customer", value: "nobody").isEmpty)
        #expect(index.entry(table: "orders", id: "missing") == nil)
    }
}
