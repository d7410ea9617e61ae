@testable import AggregateStoreEngine
import Testing

/// The read cache: its byte budget, its ring of slabs, and that a hit returns exactly the
/// bytes cached, whatever moved around it.
@Suite("Read cache")
struct ReadCacheTests {
    /// A payload whose bytes tell which key and length it was cached for.
    private func payload(_ number: Int, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: number &* 31 &+ $0) }
    }

    private func key(_ number: Int) -> FrameAddress {
        FrameAddress(segment: 1, offset: UInt64(bitPattern: Int64(number)))
    }

    @Test func theCacheStaysWithinItsByteBudget() {
        let cache = ReadCache(capacity: 1 << 20)
        #expect(cache.slabSize == 64 << 10)
        for number in 0..<5000 { cache.insert(payload(number, count: 1000), for: key(number)) }
        let usage = cache.usage
        #expect(usage.bytes <= cache.capacity && cache.allocatedBytes == cache.capacity)
        // Sixteen slabs of 65 payloads, one of them being refilled.
        #expect(usage.entries > 15 * 65 && usage.entries <= 16 * 65)
        #expect(cache.payload(for: key(4999)) == payload(4999, count: 1000))
        #expect(cache.payload(for: key(0)) == nil)
        #expect(cache.usage.hits == 1 && cache.usage.misses == 1)
    }

    @Test func aPayloadLargerThanASlabOrEmptyIsNotCached() {
        let cache = ReadCache(capacity: 1 << 20)
        cache.insert(payload(1, count: cache.slabSize + 1), for: key(1))
        cache.insert([], for: key(2))
        cache.insert(payload(3, count: cache.slabSize), for: key(3))
        #expect(cache.payload(for: key(1)) == nil && cache.payload(for: key(2)) == nil)
        #expect(cache.payload(for: key(3)) == payload(3, count: cache.slabSize))
        #expect(ReadCache(capacity: 0).slabSize == 0)
        let none = ReadCache(capacity: 0)
        none.insert(payload(4, count: 10), for: key(4))
        #expect(none.usage.entries == 0 && none.allocatedBytes == 0)
    }

    @Test func aPayloadReadFromTheOlderHalfOutlivesItsSlab() {
        let cache = ReadCache(capacity: 1 << 20)
        // 64 payloads of 1 KiB fill a slab exactly.
        cache.insert(payload(0, count: 1024), for: key(0))
        cache.insert(payload(1, count: 1024), for: key(1))
        var next = 2
        func fill(slabs: Int) {
            for _ in 0..<slabs * 64 {
                cache.insert(payload(next, count: 1024), for: key(next))
                next += 1
            }
        }
        // Read while its slab is still in the newer half: it stays where it is.
        fill(slabs: 4)
        #expect(cache.payload(for: key(0)) == payload(0, count: 1024))
        // In the older half, a read moves it to the slab being filled.
        fill(slabs: 6)
        #expect(cache.payload(for: key(0)) == payload(0, count: 1024))
        fill(slabs: 10)
        #expect(cache.payload(for: key(0)) == payload(0, count: 1024), "moved ahead of its first slab's turn")
        #expect(cache.payload(for: key(1)) == nil, "never read: dropped with its slab")
    }

    @Test func aPayloadMovedIntoItsOwnEmptiedSlabKeepsItsBytes() {
        // Four slabs of 64 KiB, each filled exactly; the first holds a small payload, a large
        // one and a filler. Reading the large one moves it, and the room for it is made by
        // emptying its own slab: it is copied to that slab's start, over itself.
        let cache = ReadCache(capacity: 256 << 10)
        cache.insert(payload(0, count: 1000), for: key(0))
        cache.insert(payload(1, count: 30000), for: key(1))
        cache.insert(payload(-1, count: (64 << 10) - 31000), for: key(-1))
        for number in 2..<(2 + 3 * 64) { cache.insert(payload(number, count: 1024), for: key(number)) }
        #expect(cache.usage.entries == 3 + 3 * 64 && cache.allocatedBytes == cache.capacity)
        #expect(cache.payload(for: key(1)) == payload(1, count: 30000))
        #expect(cache.payload(for: key(1)) == payload(1, count: 30000), "moved, and still whole")
        #expect(cache.payload(for: key(0)) == nil, "emptied with the slab")
        #expect(cache.usage.entries == 1 + 3 * 64 && cache.usage.bytes == 30000 + 3 * 64 * 1024)
    }

    @Test func hitsReturnExactlyTheBytesCachedAsTheRingTurns() {
        // Random sizes, inserts and reads against a model of what was cached: every hit must
        // return the bytes inserted for its key, including payloads moved between slabs.
        var random = SplitMix64(seed: 42)
        let cache = ReadCache(capacity: 256 << 10)
        #expect(cache.slabSize == 64 << 10)
        var sizes: [Int: Int] = [:]
        var hits = 0
        for step in 0..<8000 {
            let number = Int.random(in: 0..<150, using: &random)
            if Bool.random(using: &random) {
                let count = sizes[number] ?? Int.random(in: 1...6000, using: &random)
                sizes[number] = count
                cache.insert(payload(number, count: count), for: key(number))
            } else if let cached = cache.payload(for: key(number)) {
                hits += 1
                #expect(cached == payload(number, count: sizes[number]!), "step \(step)")
            }
            #expect(cache.usage.bytes <= cache.capacity)
        }
        #expect(hits > 500)
    }

    @Test func aClosedCacheFreesItsSlabsAndTakesNoMore() {
        let cache = ReadCache(capacity: 1 << 20)
        for number in 0..<100 { cache.insert(payload(number, count: 1000), for: key(number)) }
        #expect(cache.allocatedBytes == 2 * cache.slabSize)
        // Committers woken as the store closes cache their commits after the close.
        cache.close()
        #expect(cache.usage.entries == 0 && cache.usage.bytes == 0 && cache.allocatedBytes == 0)
        cache.insert(payload(1, count: 300), for: key(1))
        #expect(cache.usage.entries == 0)
        #expect(cache.payload(for: key(1)) == nil)
    }
}
