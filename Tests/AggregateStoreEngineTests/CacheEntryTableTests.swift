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

    @Test func framesOfOneSizeSpreadOverTheSlots() {
        // Frames of one size lie at evenly spaced offsets: a full 64 MiB cache of 908-byte
        // frames once made runs of hundreds of slots.
        var worst = (size: 0, probes: 0.0)
        for size in stride(from: 80, through: 1200, by: 4) {
            var table = CacheEntryTable()
            for number in 0..<4000 {
                let address = FrameAddress(segment: 1 + UInt32(number / 2000), offset: UInt64(64 + size * (number % 2000)))
                table.updateValue(CacheEntry(slab: 0, offset: 0, count: size), forKey: address)
            }
            if table.meanProbeLength > worst.probes { worst = (size, table.meanProbeLength) }
        }
        #expect(worst.probes < 2, "frames of \(worst.size) bytes: \(worst.probes) probes a lookup")
    }

    @Test func aRemovalShiftsBackARunThatWrapsAroundTheEnd() {
        // Four keys whose first slot is one of the last two of sixteen: their run wraps to
        // the start. Removing each in turn must leave the others reachable.
        var table = CacheEntryTable()
        let capacity = table.capacity
        let wrapping = (0..<10_000 as Range<UInt64>).lazy.map { FrameAddress(segment: 1, offset: $0) }
            .filter { CacheEntryTable.home(of: $0, capacity: capacity) >= capacity - 2 }.prefix(4)
        #expect(wrapping.count == 4)
        for removed in wrapping {
            table = CacheEntryTable()
            for (number, address) in wrapping.enumerated() {
                table.updateValue(CacheEntry(slab: UInt64(number), offset: 0, count: 1), forKey: address)
            }
            #expect(table.capacity == capacity, "no growth: the run must wrap")
            #expect(table.removeValue(forKey: removed) != nil)
            for (number, address) in wrapping.enumerated() where address != removed {
                #expect(table[address]?.slab == UInt64(number), "\(address) after removing \(removed)")
            }
            #expect(table[removed] == nil && table.count == 3)
        }
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
