/// The foreign-key index's lists: for each value number, the entry numbers of the records that
/// reference it.
///
/// Most values are referenced by one record or a few, so a single entry is kept inline in the
/// value's 4-byte head, a few in a small array, and only a value referenced by many records
/// gets a set (so removing one of a customer's 100,000 orders does not scan the others).
package struct PostingLists: Sendable {
    private enum List: Sendable {
        case few([UInt32])
        case many(Set<UInt32>)
    }

    /// value number → 0 (no entry), entry number + 1 (one entry), or ``listTag`` | list index.
    private var heads: [UInt32] = []
    private var lists: [List] = []
    private var unusedLists: [UInt32] = []

    private static let listTag: UInt32 = 1 << 31
    /// Above this many entries, a value's array becomes a set.
    private static let setThreshold = 64

    /// The largest entry number a list can hold (the top bit of a head tags a list).
    package static let maximumEntryNumber = Int(listTag) - 2

    package init() {}

    /// Whether no record references value `value`.
    package func isEmpty(_ value: UInt32) -> Bool {
        Int(value) >= heads.count || heads[Int(value)] == 0
    }

    /// The entry numbers of the records that reference value `value`, in no particular order.
    package func entries(of value: UInt32) -> [UInt32] {
        guard Int(value) < heads.count else { return [] }
        let head = heads[Int(value)]
        if head == 0 { return [] }
        if head & Self.listTag == 0 { return [head - 1] }
        switch lists[Int(head & ~Self.listTag)] {
        case let .few(entries): return entries
        case let .many(entries): return Array(entries)
        }
    }

    /// Records that entry `entry` references value `value` (once, however often it is added).
    package mutating func add(_ entry: UInt32, to value: UInt32) {
        precondition(Int(entry) <= Self.maximumEntryNumber, "more records in a table than the index can number")
        if Int(value) >= heads.count { heads.append(contentsOf: repeatElement(0, count: Int(value) + 1 - heads.count)) }
        let head = heads[Int(value)]
        if head == 0 {
            heads[Int(value)] = entry + 1
        } else if head & Self.listTag == 0 {
            guard head != entry + 1 else { return }
            heads[Int(value)] = Self.listTag | makeList(.few([head - 1, entry]))
        } else {
            let list = Int(head & ~Self.listTag)
            switch lists[list] {
            case var .few(entries):
                guard !entries.contains(entry) else { return }
                lists[list] = .few([])  // so `entries` is uniquely referenced while it grows
                entries.append(entry)
                lists[list] = entries.count > Self.setThreshold ? .many(Set(entries)) : .few(entries)
            case var .many(entries):
                lists[list] = .few([])
                entries.insert(entry)
                lists[list] = .many(entries)
            }
        }
    }

    /// Records that entry `entry` no longer references value `value`.
    /// - Returns: Whether no record references the value any more.
    @discardableResult
    package mutating func remove(_ entry: UInt32, from value: UInt32) -> Bool {
        guard Int(value) < heads.count else { return true }
        let head = heads[Int(value)]
        if head == 0 { return true }
        if head & Self.listTag == 0 {
            if head == entry + 1 { heads[Int(value)] = 0 }
            return heads[Int(value)] == 0
        }
        let list = Int(head & ~Self.listTag)
        var remaining: [UInt32]
        switch lists[list] {
        case var .few(entries):
            lists[list] = .few([])
            if let position = entries.firstIndex(of: entry) { entries.swapAt(position, entries.count - 1); entries.removeLast() }
            remaining = entries
        case var .many(entries):
            lists[list] = .few([])
            entries.remove(entry)
            guard entries.count <= Self.setThreshold / 2 else {
                lists[list] = .many(entries)
                return false
            }
            remaining = Array(entries)
        }
        if remaining.count <= 1 {
            heads[Int(value)] = remaining.first.map { $0 + 1 } ?? 0
            lists[list] = .few([])
            unusedLists.append(UInt32(list))
        } else {
            lists[list] = .few(remaining)
        }
        return remaining.isEmpty
    }

    private mutating func makeList(_ list: List) -> UInt32 {
        if let reused = unusedLists.popLast() {
            lists[Int(reused)] = list
            return reused
        }
        lists.append(list)
        return UInt32(lists.count - 1)
    }
}
