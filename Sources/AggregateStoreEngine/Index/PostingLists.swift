/// The foreign-key index's lists: for each value number, the entry numbers of the records that
/// reference it.
///
/// Most values are referenced by one record or a few (a customer's orders), so the lists are
/// kept small: one entry inline in the value's 4-byte head; up to 63 in a block of a slab
/// pool (blocks of 4 to 64 words, the first word the count), with no allocation of its own;
/// more in a set, so removing one of a customer's 100,000 orders does not scan the others.
package struct PostingLists: Sendable {
    /// value number → 0 (no entry); entry number + 1 (one entry, top bit clear); a block
    /// (``blockTag``, size class in bits 27-29, block index below); or a set (``setTag``).
    private var heads: [UInt32] = []
    /// Per size class, its blocks end to end, and the indexes of its free blocks.
    private var pools: [[UInt32]] = Array(repeating: [], count: Self.blockWords.count)
    private var freeBlocks: [[UInt32]] = Array(repeating: [], count: Self.blockWords.count)
    private var sets: [Set<UInt32>] = []
    private var freeSets: [UInt32] = []

    private static let blockTag: UInt32 = 0b10 << 30
    private static let setTag: UInt32 = 0b11 << 30
    private static let tagMask: UInt32 = 0b11 << 30
    private static let blockIndexMask: UInt32 = (1 << 27) - 1
    /// Words per block in each size class; a block holds one fewer entries.
    private static let blockWords = [4, 8, 16, 32, 64]

    /// The largest entry number a list can hold (the top bit of a head tags a block or a set).
    package static let maximumEntryNumber = Int(UInt32(1) << 31) - 2

    package init() {}

    /// The heap bytes the lists hold (their arrays' capacities; a set's elements at about
    /// twice their size, for its buckets), for statistics.
    package var memoryFootprint: Int {
        let word = MemoryLayout<UInt32>.stride
        let blocks = pools.reduce(0) { $0 + $1.capacity } + freeBlocks.reduce(0) { $0 + $1.capacity }
        return (heads.capacity + blocks + freeSets.capacity) * word + sets.reduce(0) { $0 + 2 * $1.capacity * word }
    }

    /// The lists of `references` (entry, value) pairs, each list sized once (two passes:
    /// count, then fill): how a snapshot's table is restored.
    package init(valueLimit: Int, references: [(entry: UInt32, value: UInt32)]) {
        var counts = [UInt32](repeating: 0, count: valueLimit)
        for reference in references { counts[Int(reference.value)] += 1 }
        heads = [UInt32](repeating: 0, count: valueLimit)
        for reference in references {
            let value = Int(reference.value)
            if counts[value] == 1 {
                heads[value] = reference.entry + 1
            } else if heads[value] == 0 {
                heads[value] = Int(counts[value]) < Self.blockWords.last! ? allocateBlock(holding: Int(counts[value]), [reference.entry])
                                                                         : makeSet([reference.entry])
            } else {
                add(reference.entry, to: UInt32(value))
            }
        }
    }

    /// Whether no record references value `value`.
    package func isEmpty(_ value: UInt32) -> Bool {
        Int(value) >= heads.count || heads[Int(value)] == 0
    }

    /// The entry numbers of the records that reference value `value`, in no particular order.
    package func entries(of value: UInt32) -> [UInt32] {
        guard Int(value) < heads.count else { return [] }
        let head = heads[Int(value)]
        switch head & Self.tagMask {
        case _ where head == 0: return []
        case Self.blockTag:
            let (sizeClass, start) = Self.block(head)
            let count = Int(pools[sizeClass][start])
            return Array(pools[sizeClass][start + 1...start + count])
        case Self.setTag: return Array(sets[Int(head & ~Self.tagMask)])
        default: return [head - 1]
        }
    }

    /// Records that entry `entry` references value `value` (once, however often it is added).
    package mutating func add(_ entry: UInt32, to value: UInt32) {
        precondition(Int(entry) <= Self.maximumEntryNumber, "more records in a table than the index can number")
        if Int(value) >= heads.count { heads.append(contentsOf: repeatElement(0, count: Int(value) + 1 - heads.count)) }
        let head = heads[Int(value)]
        switch head & Self.tagMask {
        case _ where head == 0:
            heads[Int(value)] = entry + 1
        case Self.blockTag:
            let (sizeClass, start) = Self.block(head)
            let count = Int(pools[sizeClass][start])
            guard !pools[sizeClass][start + 1...start + count].contains(entry) else { return }
            if count + 1 < Self.blockWords[sizeClass] {
                pools[sizeClass][start + 1 + count] = entry
                pools[sizeClass][start] = UInt32(count + 1)
                return
            }
            let entries = Array(pools[sizeClass][start + 1...start + count]) + [entry]
            freeBlock(head)
            heads[Int(value)] = sizeClass + 1 < Self.blockWords.count ? allocateBlock(holding: entries.count, entries)
                                                                      : makeSet(entries)
        case Self.setTag:
            sets[Int(head & ~Self.tagMask)].insert(entry)
        default:
            guard head != entry + 1 else { return }
            heads[Int(value)] = allocateBlock(holding: 2, [head - 1, entry])
        }
    }

    /// Records that entry `entry` no longer references value `value`.
    /// - Returns: Whether no record references the value any more.
    @discardableResult
    package mutating func remove(_ entry: UInt32, from value: UInt32) -> Bool {
        guard Int(value) < heads.count else { return true }
        let head = heads[Int(value)]
        switch head & Self.tagMask {
        case _ where head == 0:
            break
        case Self.blockTag:
            let (sizeClass, start) = Self.block(head)
            let count = Int(pools[sizeClass][start])
            guard let position = pools[sizeClass][start + 1...start + count].firstIndex(of: entry) else { break }
            pools[sizeClass][position] = pools[sizeClass][start + count]
            pools[sizeClass][start] = UInt32(count - 1)
            if count - 1 == 1 {
                heads[Int(value)] = pools[sizeClass][start + 1] + 1
                freeBlock(head)
            }
        case Self.setTag:
            let index = Int(head & ~Self.tagMask)
            sets[index].remove(entry)
            if sets[index].count < Self.blockWords.last! / 2 {
                let entries = Array(sets[index])
                sets[index] = []
                freeSets.append(UInt32(index))
                heads[Int(value)] = allocateBlock(holding: entries.count, entries)
            }
        default:
            if head == entry + 1 { heads[Int(value)] = 0 }
        }
        return heads[Int(value)] == 0
    }

    // MARK: Blocks and sets

    private static func block(_ head: UInt32) -> (sizeClass: Int, start: Int) {
        let sizeClass = Int((head >> 27) & 0b111)
        return (sizeClass, Int(head & blockIndexMask) * blockWords[sizeClass])
    }

    /// A block of the smallest class with room for `capacity` entries, holding `entries`.
    /// - Returns: The head that names it.
    private mutating func allocateBlock(holding capacity: Int, _ entries: [UInt32]) -> UInt32 {
        let sizeClass = Self.blockWords.firstIndex { $0 > capacity }!
        let words = Self.blockWords[sizeClass]
        let index: Int
        if let free = freeBlocks[sizeClass].popLast() {
            index = Int(free)
        } else {
            index = pools[sizeClass].count / words
            precondition(index <= Int(Self.blockIndexMask), "more foreign-key lists than the index can number")
            pools[sizeClass].append(contentsOf: repeatElement(0, count: words))
        }
        let start = index * words
        pools[sizeClass][start] = UInt32(entries.count)
        for (offset, entry) in entries.enumerated() { pools[sizeClass][start + 1 + offset] = entry }
        return Self.blockTag | UInt32(sizeClass) << 27 | UInt32(index)
    }

    private mutating func freeBlock(_ head: UInt32) {
        let sizeClass = Int((head >> 27) & 0b111)
        freeBlocks[sizeClass].append(head & Self.blockIndexMask)
    }

    private mutating func makeSet(_ entries: [UInt32]) -> UInt32 {
        if let free = freeSets.popLast() {
            sets[Int(free)] = Set(entries)
            return Self.setTag | free
        }
        sets.append(Set(entries))
        return Self.setTag | UInt32(sets.count - 1)
    }
}
