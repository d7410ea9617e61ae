@testable import AggregateStoreEngine
import Testing

/// The read cache's open-addressing table: it must answer exactly as a `Dictionary` would,
/// through growth and through removals that move entries back along their runs.
@Suite("Read cache entry table")
struct CacheEntryTableTests {
    @Test(arguments: [1, 2, 3] as [UInt64])
    func answersAsADictionaryDoesUnderRandomUpdatesAndRemovals(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var table = CacheEntryTable()
        var model: [FrameAddress: CacheEntry] = [:]
        // The first step whose answer differs (and stops the run).
        var mismatches: [String] = []
        for step in 1...60_000 {
            // Few keys, so that they are replaced and removed often, and runs of colliding
            // keys form and break up.
            let address = FrameAddress(segment: UInt32(random.next() % 4), offset: random.next() % 3000)
            switch random.next() % 5 {
            case 0, 1:
                let entry = CacheEntry(slab: UInt64(step), offset: step, count: step)
                let (old, expected) = (table.updateValue(entry, forKey: address), model.updateValue(entry, forKey: address))
                if old != expected { mismatches.append("update \(address) at \(step)") }
            case 2:
                // As the cache drops a slab: only an entry still in an even slab goes.
                let removed = table.removeValue(forKey: address, if: { $0.slab % 2 == 0 })
                var expected: CacheEntry?
                if let entry = model[address], entry.slab % 2 == 0 { expected = model.removeValue(forKey: address) }
                if removed != expected { mismatches.append("remove \(address) at \(step)") }
            case 3:
                if table.removeValue(forKey: address) != model.removeValue(forKey: address) {
                    mismatches.append("remove \(address) at \(step)")
                }
            default:
                if table[address] != model[address] { mismatches.append("lookup \(address) at \(step)") }
            }
            if table.count != model.count { mismatches.append("count at \(step)") }
            if !mismatches.isEmpty { break }
        }
        #expect(mismatches == [])
        #expect(model.count > 1000, "the table grew well past its first size")
        #expect(model.allSatisfy { table[$0.key] == $0.value })
    }

    @Test func addressesThatDifferOnlyInTheirSegmentOrInHighOffsetsAreDistinct() {
        var table = CacheEntryTable()
        let addresses = [FrameAddress(segment: 0, offset: 0), FrameAddress(segment: 1, offset: 0),
                         FrameAddress(segment: 0, offset: UInt64(UInt32.max)), FrameAddress(segment: 1, offset: UInt64(UInt32.max)),
                         FrameAddress(segment: UInt32.max, offset: 1)]
        for (number, address) in addresses.enumerated() {
            #expect(table.updateValue(CacheEntry(slab: UInt64(number), offset: 0, count: 1), forKey: address) == nil)
        }
        #expect(table.count == addresses.count)
        for (number, address) in addresses.enumerated() { #expect(table[address]?.slab == UInt64(number)) }
    }

    @Test func removeAllEmptiesTheTable() {
        var table = CacheEntryTable()
        for offset in 0..<100 as Range<UInt64> {
            table.updateValue(CacheEntry(slab: 0, offset: 0, count: 1), forKey: FrameAddress(segment: 1, offset: offset))
        }
        table.removeAll()
        #expect(table.count == 0)
        #expect(table[FrameAddress(segment: 1, offset: 5)] == nil)
    }
}
