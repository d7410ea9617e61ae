@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// The read cache: its byte budget, its ring of slabs, and that a hit returns exactly the
/// bytes cached, whatever moved around it.
@Suite("Read cache")
struct ReadCacheTests {
    /// A payload whose bytes tell which key and length it was cached for.
    private func payload(_ number: Int, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: number &* 31 &+ $0) }
    }

    /// Fillers have negative numbers: their keys are in a segment of their own.
    private func key(_ number: Int) -> FrameAddress {
        FrameAddress(segment: number < 0 ? 2 : 1, offset: UInt64(number.magnitude))
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

    @Test func aPayloadAlreadyCachedIsNotCachedAgain() {
        // A frame's bytes never change: a second insert for its address (a reader's, after
        // the committer's) keeps the first copy and the byte count.
        let cache = ReadCache(capacity: 1 << 20)
        cache.insert(payload(1, count: 300), for: key(1))
        cache.insert(payload(2, count: 500), for: key(1))
        #expect(cache.payload(for: key(1)) == payload(1, count: 300))
        #expect(cache.usage.entries == 1 && cache.usage.bytes == 300)
    }

    @Test func aPayloadLargerThanASlabGetsASlabOfItsOwnWithinTheBudget() {
        // A commit of a thousand orders has a payload of about a megabyte: it is cached too.
        let cache = ReadCache(capacity: 1 << 20)
        cache.insert(payload(1, count: 300_000), for: key(1))
        #expect(cache.allocatedBytes == 300_000)
        #expect(cache.payload(for: key(1)) == payload(1, count: 300_000))
        for number in 2..<800 { cache.insert(payload(number, count: 1000), for: key(number)) }
        #expect(cache.allocatedBytes <= cache.capacity)
        #expect(cache.payload(for: key(1)) == nil, "dropped with its slab, the oldest")
        #expect(cache.payload(for: key(799)) == payload(799, count: 1000))
        cache.insert(payload(800, count: cache.capacity), for: key(800))
        #expect(cache.payload(for: key(800)) == payload(800, count: cache.capacity) && cache.usage.entries == 1)
        cache.insert(payload(801, count: cache.capacity + 1), for: key(801))
        cache.insert([], for: key(802))
        #expect(cache.payload(for: key(801)) == nil && cache.payload(for: key(802)) == nil)
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

    @Test func aPayloadMovedIntoTheMemoryOfItsOwnSlabKeepsItsBytes() {
        // Four slabs of 64 KiB, each filled exactly; the first holds two small payloads and
        // fillers. Reading the second moves it, and the room for it is made by dropping its
        // own slab, whose memory the new slab takes over.
        let cache = ReadCache(capacity: 256 << 10)
        cache.insert(payload(0, count: 1000), for: key(0))
        cache.insert(payload(1, count: 4000), for: key(1))
        for (filler, count) in [16000, 16000, 16000, (64 << 10) - 53000].enumerated() {
            cache.insert(payload(-1 - filler, count: count), for: key(-1 - filler))
        }
        for number in 2..<(2 + 3 * 64) { cache.insert(payload(number, count: 1024), for: key(number)) }
        #expect(cache.usage.entries == 6 + 3 * 64 && cache.allocatedBytes == cache.capacity)
        #expect(cache.payload(for: key(1)) == payload(1, count: 4000))
        #expect(cache.payload(for: key(1)) == payload(1, count: 4000), "moved, and still whole")
        #expect(cache.payload(for: key(0)) == nil, "dropped with the slab")
        #expect(cache.usage.entries == 1 + 3 * 64 && cache.usage.bytes == 4000 + 3 * 64 * 1024)
    }

    @Test func aLargePayloadIsNotMovedByReadsOfItsRecords() {
        // A payload of more than a sixteenth of a slab stays where it is, however old.
        let cache = ReadCache(capacity: 1 << 20)
        cache.insert(payload(0, count: 5000), for: key(0))
        for number in 1...(10 * 64) { cache.insert(payload(number, count: 1024), for: key(number)) }
        #expect(cache.payload(for: key(0)) == payload(0, count: 5000))
        for number in 641...(641 + 6 * 64) { cache.insert(payload(number, count: 1024), for: key(number)) }
        #expect(cache.payload(for: key(0)) == nil)
    }

    @Test func hitsReturnExactlyTheBytesCachedAsTheRingTurns() {
        // Random sizes, inserts and reads against a model of what was cached: every hit must
        // return the bytes inserted for its key, including payloads moved between slabs and
        // payloads larger than a slab.
        var random = SplitMix64(seed: 42)
        let cache = ReadCache(capacity: 256 << 10)
        #expect(cache.slabSize == 64 << 10)
        var sizes: [Int: Int] = [:]
        var hits = 0
        for step in 0..<8000 {
            let number = Int.random(in: 0..<100, using: &random)
            if Bool.random(using: &random) {
                // One payload in eight is larger than a slab.
                let large = Int.random(in: 0..<8, using: &random) == 0
                let count = sizes[number] ?? Int.random(in: large ? 1...100_000 : 1...6000, using: &random)
                sizes[number] = count
                cache.insert(payload(number, count: count), for: key(number))
            } else if let cached = cache.payload(for: key(number)) {
                hits += 1
                #expect(cached == payload(number, count: sizes[number]!), "step \(step)")
            }
            #expect(cache.usage.bytes <= cache.allocatedBytes && cache.allocatedBytes <= cache.capacity)
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

    @Test func theRecordsOfACommitLargerThanASlabAreReadFromTheCache() throws {
        // A unit of work of a hundred records has a payload larger than a slab (64 KiB here):
        // its records are still served from the cache, each load copying out its record only.
        var configuration = EngineConfiguration()
        configuration.readCacheSize = 1 << 20
        let engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: InMemoryFileSystem(),
                                            logger: quietLogger)
        var batch = WriteBatch(unitOfWorkId: "uow-1")
        for number in 1...100 { batch.put(table: "SalesOrder", id: "SO-\(number)", record: recordBytes("SO-\(number)", size: 1000)) }
        let receipt = try engine.commit(batch)
        #expect(receipt.payloadBytes > engine.cache.slabSize)
        for number in 1...100 {
            #expect(try engine.record(table: "SalesOrder", id: "SO-\(number)")?.bytes == recordBytes("SO-\(number)", size: 1000))
        }
        #expect(engine.cache.usage.hits == 100 && engine.cache.usage.misses == 0)
        try engine.close()
    }
}
