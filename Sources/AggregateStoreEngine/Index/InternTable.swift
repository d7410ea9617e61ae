#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A set of byte strings, each known by a small number that stays its own until the string is
/// removed: the ids of a table, and the foreign-key values it references.
///
/// The strings are stored end to end in one byte arena, and found through an open-addressing
/// table of 4-byte slots (linear probing, at most three quarters full). Next to a dictionary
/// of `String`s this saves the per-string header and heap block, and the slots hold no key:
/// about 8 bytes per string plus its bytes (`Docs/FORMAT.md`, section 3.1, explains why the
/// index is built this way).
///
/// A value type whose storage is copied on write, like the indexes that hold it.
package struct InternTable: Sendable {
    /// The strings' bytes, end to end; removed strings leave garbage until ``compactArena()``.
    private var arena: [UInt8] = []
    /// number → `offset << 16 | length` in the arena, or ``unused``.
    private var references: [UInt64] = []
    /// 0 is an empty slot; otherwise a number plus one.
    private var slots: [UInt32] = []
    /// Numbers of removed strings, reused first so numbers stay dense.
    private var unusedNumbers: [UInt32] = []
    /// Arena bytes of removed strings.
    private var garbageBytes = 0
    /// The keyed hash that places strings in ``slots``; its key is the table's own, so a
    /// snapshot can keep the slots (`Docs/FORMAT.md`, section 3.1).
    private var hasher: SipHash13
    /// The number of strings.
    package private(set) var count = 0

    private static let unused = UInt64.max
    /// The longest string: its length must fit the reference's 16 bits (with one value spare,
    /// which marks a free number in a snapshot).
    package static let maximumLength = Int(UInt16.max) - 1

    /// An empty table whose slots are placed under `hashKey` (random if nil).
    package init(hashKey: (UInt64, UInt64)? = nil) {
        hasher = hashKey.map(SipHash13.init(key:)) ?? .random()
    }

    /// The arena's size: the strings' bytes, and those of removed strings not yet compacted away.
    package var arenaBytes: Int { arena.count }

    /// Every number in use is below this.
    package var numberLimit: Int { references.count }

    /// The heap bytes the table holds (its arrays' capacities), for statistics.
    package var memoryFootprint: Int {
        arena.capacity + references.capacity * MemoryLayout<UInt64>.stride
            + (slots.capacity + unusedNumbers.capacity) * MemoryLayout<UInt32>.stride
    }

    /// Whether `number` names a string.
    package func contains(number: UInt32) -> Bool {
        Int(number) < references.count && references[Int(number)] != Self.unused
    }

    /// Calls `body` with the bytes of string `number`, which must be in use.
    package func withBytes<Result>(of number: UInt32, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        let reference = references[Int(number)]
        let offset = Int(reference >> 16), length = Int(reference & 0xFFFF)
        return arena.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length])) }
    }

    /// The string `number`, decoded as UTF-8.
    package func string(of number: UInt32) -> String {
        withBytes(of: number) { String(decoding: $0, as: UTF8.self) }
    }

    /// The number of the string with these bytes, if it is in the set.
    package func number(of key: UnsafeRawBufferPointer) -> UInt32? {
        guard !slots.isEmpty else { return nil }
        return probe(key, hash: hash(key)).number
    }

    /// Adds a string unless it is in the set already.
    /// - Returns: Its number, and whether it was added.
    @discardableResult
    package mutating func insert(_ key: UnsafeRawBufferPointer) -> (number: UInt32, inserted: Bool) {
        precondition(key.count <= Self.maximumLength, "an interned string is longer than \(Self.maximumLength) bytes")
        if (count + 1) * 4 > slots.count * 3 { resizeSlots(to: max(16, slots.count * 2)) }
        let (slot, found) = probe(key, hash: hash(key))
        if let found { return (found, false) }
        let reference = UInt64(arena.count) << 16 | UInt64(key.count)
        arena.append(contentsOf: key)
        let number: UInt32
        if let reused = unusedNumbers.popLast() {
            number = reused
            references[Int(number)] = reference
        } else {
            precondition(references.count < Int(UInt32.max - 1), "more strings than an intern table can number")
            number = UInt32(references.count)
            references.append(reference)
        }
        slots[slot] = number + 1
        count += 1
        return (number, true)
    }

    /// Removes string `number`, which must be in use; its number may be given to a later string.
    package mutating func remove(_ number: UInt32) {
        let key = withBytes(of: number) { Array($0) }
        let mask = slots.count - 1
        var hole = key.withUnsafeBytes { hash($0) } & mask
        while slots[hole] != number + 1 { hole = (hole + 1) & mask }
        // Backward-shift deletion: pull later members of the probe run into the hole, so no
        // lookup stops early at it and no tombstones accumulate.
        var next = hole
        while true {
            next = (next + 1) & mask
            let stored = slots[next]
            if stored == 0 { break }
            let home = withBytes(of: stored - 1) { hash($0) } & mask
            let stays = hole <= next ? (hole < home && home <= next) : (hole < home || home <= next)
            if stays { continue }
            slots[hole] = stored
            hole = next
        }
        slots[hole] = 0
        garbageBytes += key.count
        references[Int(number)] = Self.unused
        unusedNumbers.append(number)
        count -= 1
        if garbageBytes > 1 << 16, garbageBytes * 2 > arena.count { compactArena() }
    }

    /// Makes room for `count` strings of `bytes` bytes in all.
    package mutating func reserveCapacity(_ count: Int, bytes: Int) {
        arena.reserveCapacity(bytes)
        references.reserveCapacity(count)
        var slotCount = 16
        while count * 4 > slotCount * 3 { slotCount *= 2 }
        if slotCount > slots.count { resizeSlots(to: slotCount) }
    }

    /// Drops the bytes of removed strings from the arena (the numbers do not change).
    private mutating func compactArena() {
        var compacted: [UInt8] = []
        compacted.reserveCapacity(arena.count - garbageBytes)
        for number in references.indices where references[number] != Self.unused {
            let reference = references[number]
            let offset = Int(reference >> 16), length = Int(reference & 0xFFFF)
            references[number] = UInt64(compacted.count) << 16 | UInt64(length)
            compacted.append(contentsOf: arena[offset..<offset + length])
        }
        arena = compacted
        garbageBytes = 0
    }

    private mutating func resizeSlots(to slotCount: Int) {
        var resized = [UInt32](repeating: 0, count: slotCount)
        let mask = slotCount - 1
        arena.withUnsafeBytes { arena in
            for number in references.indices where references[number] != Self.unused {
                let reference = references[number]
                let offset = Int(reference >> 16), length = Int(reference & 0xFFFF)
                var slot = hash(UnsafeRawBufferPointer(rebasing: arena[offset..<offset + length])) & mask
                while resized[slot] != 0 { slot = (slot + 1) & mask }
                resized[slot] = UInt32(number) + 1
            }
        }
        slots = resized
    }

    /// The slot holding `key`, with its number, or the empty slot where it would go.
    private func probe(_ key: UnsafeRawBufferPointer, hash: Int) -> (slot: Int, number: UInt32?) {
        arena.withUnsafeBytes { arena in
            slots.withUnsafeBufferPointer { slots in
                let mask = slots.count - 1
                var slot = hash & mask
                while true {
                    let stored = slots[slot]
                    if stored == 0 { return (slot, nil) }
                    let reference = references[Int(stored - 1)]
                    if Int(reference & 0xFFFF) == key.count {
                        let offset = Int(reference >> 16)
                        if key.count == 0 || memcmp(arena.baseAddress! + offset, key.baseAddress!, key.count) == 0 {
                            return (slot, stored - 1)
                        }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    private func hash(_ key: UnsafeRawBufferPointer) -> Int {
        Int(truncatingIfNeeded: hasher.hash(key))
    }
}

extension InternTable {
    /// Writes the table as section 3.1 of `Docs/FORMAT.md` lays it out (`intern`): hash key,
    /// every number's length (free numbers marked), the bytes, and the slots as they are.
    package func encode(into writer: inout ByteWriter) {
        writer.writeUInt64(hasher.key.0)
        writer.writeUInt64(hasher.key.1)
        writer.writeVarint(UInt64(references.count))
        writer.writeVarint(UInt64(slots.count))
        writer.writeVarint(UInt64(arena.count - garbageBytes))
        for reference in references {
            writer.writeUInt16(reference == Self.unused ? Self.freeMark : UInt16(reference & 0xFFFF))
        }
        arena.withUnsafeBytes { arena in
            for reference in references where reference != Self.unused {
                let offset = Int(reference >> 16), length = Int(reference & 0xFFFF)
                writer.writeRaw(UnsafeRawBufferPointer(rebasing: arena[offset..<offset + length]))
            }
        }
        for slot in slots { writer.writeUInt32(slot) }
    }

    /// Reads what ``encode(into:)`` wrote, checking every number and bound, so a table it
    /// returns is one ``insert(_:)`` could have built.
    /// - Returns: The table, or nil if the bytes do not describe one.
    package static func decode(from reader: inout ByteReader) throws(ByteReader.Failure) -> InternTable? {
        var table = InternTable()
        table.hasher = SipHash13(key: (try reader.readUInt64(), try reader.readUInt64()))
        let numberLimit = try reader.readLength(limit: reader.remaining / 2, "number count")
        let slotCount = try reader.readLength(limit: reader.remaining / 4, "slot count")
        let arenaBytes = try reader.readLength(limit: reader.remaining, "arena length")
        guard numberLimit < Int(UInt32.max - 1),
              slotCount == 0 ? numberLimit == 0 : (slotCount >= 16 && slotCount & (slotCount - 1) == 0) else { return nil }
        let lengths = try reader.readBytes(numberLimit * 2, "lengths")
        let bytes = try reader.readBytes(arenaBytes, "strings")
        let slots = try reader.readBytes(slotCount * 4, "slots")
        table.references.reserveCapacity(numberLimit)
        var offset = 0
        for number in 0..<numberLimit {
            let length = Int(lengths.loadLittleEndian(UInt16.self, at: number * 2))
            if length == Int(freeMark) {
                table.references.append(unused)
                table.unusedNumbers.append(UInt32(number))
            } else {
                table.references.append(UInt64(offset) << 16 | UInt64(length))
                offset += length
            }
        }
        table.count = numberLimit - table.unusedNumbers.count
        guard offset == arenaBytes, table.count * 4 <= slotCount * 3 else { return nil }
        table.unusedNumbers.reverse()  // the lowest free number is reused first
        table.arena = Array(bytes)
        // Every number in use in exactly one slot, and nothing else in the slots.
        var seen = [Bool](repeating: false, count: numberLimit)
        var filled = 0
        table.slots = [UInt32](unsafeUninitializedCapacity: slotCount) { buffer, initialized in
            for slot in 0..<slotCount { buffer[slot] = slots.loadLittleEndian(UInt32.self, at: slot * 4) }
            initialized = slotCount
        }
        for stored in table.slots where stored != 0 {
            let number = Int(stored - 1)
            guard number < numberLimit, table.references[number] != unused, !seen[number] else { return nil }
            seen[number] = true
            filled += 1
        }
        guard filled == table.count else { return nil }
        return table
    }

    private static let freeMark = UInt16.max
}
