/// Where a cached payload is, in the read cache's slabs.
struct CacheEntry: Equatable {
    /// The number of its slab (see ``ReadCache``'s slabs).
    var slab: UInt64
    /// Where in the slab its bytes start.
    var offset: Int
    /// Never 0 for a cached payload: the table marks its empty slots with 0.
    var count: Int
}

/// The read cache's map from frame address to ``CacheEntry``: open addressing with linear
/// probing and backward-shift deletion (no tombstones), at most half full.
///
/// A `Dictionary` hashes every key with SipHash, which guards a table against keys chosen to
/// collide. A frame address is the engine's own, never an input, and a commit's payload costs
/// four lookups (the insert's check and its update, and a check and a removal when its slab
/// is dropped): SipHash took about 4 % of a 64-task benchmark's CPU. Here an address is packed
/// into one word and mixed by SplitMix64's finalizer.
struct CacheEntryTable {
    private struct Slot {
        var key: UInt64
        var entry: CacheEntry
    }

    private static let empty = Slot(key: 0, entry: CacheEntry(slab: 0, offset: 0, count: 0))
    private static let minimumCapacity = 16

    private var slots: [Slot]
    /// The slots' count less one, a power of two less one.
    private var mask: Int
    /// The entries held.
    private(set) var count = 0

    /// An empty table.
    init() {
        slots = Array(repeating: Self.empty, count: Self.minimumCapacity)
        mask = Self.minimumCapacity - 1
    }

    /// The entry cached for `address`, if any.
    subscript(address: FrameAddress) -> CacheEntry? {
        guard let slot = slot(of: Self.key(address)) else { return nil }
        return slots[slot].entry
    }

    /// Sets the entry for `address`.
    /// - Returns: The entry it replaces, if any.
    @discardableResult
    mutating func updateValue(_ entry: CacheEntry, forKey address: FrameAddress) -> CacheEntry? {
        precondition(entry.count > 0, "a cached payload has bytes")
        let key = Self.key(address)
        var slot = Self.home(key, mask)
        while slots[slot].entry.count != 0 {
            if slots[slot].key == key {
                defer { slots[slot].entry = entry }
                return slots[slot].entry
            }
            slot = (slot + 1) & mask
        }
        slots[slot] = Slot(key: key, entry: entry)
        count += 1
        if 2 * count > slots.count { resize(to: 2 * slots.count) }
        return nil
    }

    /// Removes the entry for `address` if `shouldRemove` says so.
    /// - Returns: The entry removed, if one was.
    @discardableResult
    mutating func removeValue(forKey address: FrameAddress, if shouldRemove: (CacheEntry) -> Bool = { _ in true }) -> CacheEntry? {
        guard let slot = slot(of: Self.key(address)), shouldRemove(slots[slot].entry) else { return nil }
        let removed = slots[slot].entry
        remove(at: slot)
        return removed
    }

    /// Removes every entry and gives the table's memory back.
    mutating func removeAll() {
        self = CacheEntryTable()
    }

    /// The slot holding `key`, if any.
    private func slot(of key: UInt64) -> Int? {
        var slot = Self.home(key, mask)
        while slots[slot].entry.count != 0 {
            if slots[slot].key == key { return slot }
            slot = (slot + 1) & mask
        }
        return nil
    }

    /// Empties `slot`, moving back each later entry of its run that may fill the hole: one
    /// whose home is not cyclically within (hole, its slot]. Lookups, which stop at the first
    /// empty slot, then still find every entry.
    private mutating func remove(at slot: Int) {
        var hole = slot
        var next = (hole + 1) & mask
        while slots[next].entry.count != 0 {
            let home = Self.home(slots[next].key, mask)
            if (next - home) & mask >= (next - hole) & mask {
                slots[hole] = slots[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        slots[hole] = Self.empty
        count -= 1
    }

    private mutating func resize(to capacity: Int) {
        let old = slots
        slots = Array(repeating: Self.empty, count: capacity)
        mask = capacity - 1
        for slot in old where slot.entry.count != 0 {
            var index = Self.home(slot.key, mask)
            while slots[index].entry.count != 0 { index = (index + 1) & mask }
            slots[index] = slot
        }
    }

    /// An address as one word: a segment's offsets fit in 32 bits (a segment is at most
    /// `UInt32.max` bytes; see ``EngineConfiguration/segmentSize``).
    private static func key(_ address: FrameAddress) -> UInt64 {
        precondition(address.offset <= UInt32.max, "a frame offset beyond a segment's largest size")
        return UInt64(address.segment) << 32 | address.offset
    }

    /// A key's first slot. Every bit of the key must reach the slot's bits: frames of one
    /// size lie at evenly spaced offsets, and a single multiply (Fibonacci hashing) sent such
    /// offsets into runs hundreds of slots long for some sizes (908 bytes: 622 probes a lookup).
    private static func home(_ key: UInt64, _ mask: Int) -> Int {
        var mixed = key &* 0x9E37_79B9_7F4A_7C15
        mixed = (mixed ^ mixed >> 30) &* 0xBF58_476D_1CE4_E5B9
        mixed ^= mixed >> 31
        return Int(truncatingIfNeeded: mixed) & mask
    }

    /// The first slot of `address` in a table of `capacity` slots (a power of two), for tests
    /// that build runs which wrap around the end of the slots.
    static func home(of address: FrameAddress, capacity: Int) -> Int {
        home(key(address), capacity - 1)
    }

    /// The slots a successful lookup probes, on average, for tests of the hash's spread.
    var meanProbeLength: Double {
        var total = 0
        for (index, slot) in slots.enumerated() where slot.entry.count != 0 {
            total += (index - Self.home(slot.key, mask)) & mask + 1
        }
        return count == 0 ? 0 : Double(total) / Double(count)
    }

    /// The number of slots, a power of two (16 for an empty table).
    var capacity: Int { slots.count }
}
