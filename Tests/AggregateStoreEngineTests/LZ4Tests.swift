import AggregateStoreEngine
import Testing

/// LZ4 round trips, and the decoder's behaviour on damaged blocks: stored blocks come from disk,
/// so a malformed one must surface as a corruption error, never as a crash or a wrong length.
@Suite struct LZ4Tests {
    /// Text-like data with repeats, the shape of the JSON-ish records the store holds.
    static func compressible(_ count: Int) -> [UInt8] {
        let words = ["order", "customer", "\"amount\":", "42", "{", "}", "status", "shipped", ",", " "]
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        var index = 0
        while bytes.count < count {
            bytes += words[(index * 7 + index / 3) % words.count].utf8
            index += 1
        }
        return Array(bytes.prefix(count))
    }

    static func compress(_ bytes: [UInt8]) -> [UInt8]? {
        bytes.withUnsafeBytes { LZ4.compress($0) }
    }

    static func decompress(_ bytes: [UInt8], _ length: Int) throws(StoreError) -> [UInt8] {
        // Array.withUnsafeBytes rethrows as `any Error`; a Result keeps the error typed.
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(StoreError) in try LZ4.decompress(buffer, uncompressedLength: length) }
        }
        return try result.get()
    }

    /// A valid block of known length that the damage tests start from.
    static func sampleBlock() throws -> (original: [UInt8], block: [UInt8]) {
        let original = compressible(8000)
        return (original, try #require(compress(original)))
    }

    @Test(arguments: [64, 100, 1000, 4096, 65_536, 1 << 20])
    func compressibleDataRoundTrips(_ count: Int) throws {
        let original = Self.compressible(count)
        let block = try #require(Self.compress(original))
        #expect(block.count < original.count)
        #expect(try Self.decompress(block, original.count) == original)
    }

    /// A thread's compression state is reused: a block must not depend on the blocks the
    /// thread compressed before it (no dictionary carried over), whatever they were, including
    /// a block whose compression was given up. Decoding each block alone, without a dictionary,
    /// is the check: the bytes themselves may differ with the state's history (a fresh and a
    /// reused state hash differently).
    @Test func aBlockDoesNotDependOnTheBlocksBeforeIt() throws {
        var random = SplitMix64(seed: 7)
        for size in [300, 3000, 70_000] {
            let original = Self.compressible(size)
            // Histories that share content with the block, so a carried-over dictionary would
            // be used and the block would not decode alone.
            for history in [Self.compressible(5000), random.bytes(2000), Array(original.reversed()), original,
                            Self.compressible(size) + random.bytes(64)] {
                _ = Self.compress(history)
                let block = try #require(Self.compress(original))
                #expect(try Self.decompress(block, original.count) == original)
            }
        }
    }

    /// Committers compress at the same time, each thread with a state of its own.
    @Test func concurrentCompressionsRoundTrip() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for round in 0..<200 {
                        let original = Self.compressible(200 + (task * 131 + round * 17) % 5000)
                        let block = try #require(Self.compress(original))
                        #expect(try Self.decompress(block, original.count) == original)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func repeatedByteShrinksALot() throws {
        let original = [UInt8](repeating: 0xAB, count: 100_000)
        let block = try #require(Self.compress(original))
        #expect(block.count < 1000)
        #expect(try Self.decompress(block, original.count) == original)
    }

    @Test(arguments: [1, 2, 15, 100, 4096, 100_000])
    func incompressibleDataIsNotCompressed(_ count: Int) {
        var random = SplitMix64(seed: UInt64(count))
        #expect(Self.compress(random.bytes(count)) == nil)
    }

    @Test func emptyInput() throws {
        #expect(Self.compress([]) == nil)
        #expect(LZ4.compress(UnsafeRawBufferPointer(start: nil, count: 0)) == nil)
        #expect(try Self.decompress([], 0) == [])
        #expect(try LZ4.decompress(UnsafeRawBufferPointer(start: nil, count: 0), uncompressedLength: 0) == [])
        // liblz4's own encoding of nothing.
        #expect(try Self.decompress([0x00], 0) == [])
        let error = #expect(throws: StoreError.self) { try Self.decompress([], 5) }
        #expect(error?.code == .corruption)
        #expect(throws: StoreError.self) { try Self.decompress([0x10, 0x41], 0) }
    }

    @Test func rejectsEveryTruncation() throws {
        let (original, block) = try Self.sampleBlock()
        for length in 0..<block.count {
            do {
                let output = try Self.decompress(Array(block.prefix(length)), original.count)
                Issue.record("a \(length)-byte prefix decoded to \(output.count) bytes")
            } catch {
                #expect(error.code == .corruption)
                #expect(error.path == nil && error.offset == nil)
            }
        }
    }

    @Test func rejectsAWrongLength() throws {
        let (original, block) = try Self.sampleBlock()
        for length in [original.count - 1, original.count + 1, original.count * 2, 1, 0] {
            let error = #expect(throws: StoreError.self, "length \(length)") { try Self.decompress(block, length) }
            #expect(error?.code == .corruption)
        }
    }

    @Test func rejectsImpossibleLengths() throws {
        let (_, block) = try Self.sampleBlock()
        for length in [-1, Int.min, Int(Int32.max) + 1, Int.max] {
            let error = #expect(throws: StoreError.self, "length \(length)") { try Self.decompress(block, length) }
            #expect(error?.code == .corruption)
        }
    }

    /// Thousands of damaged copies of a valid block: each must decode to exactly the claimed
    /// length or throw a corruption error; a crash or overrun fails the whole run.
    @Test func survivesMutatedBlocks() throws {
        let (original, block) = try Self.sampleBlock()
        var random = SplitMix64(seed: 99)
        for round in 0..<4000 {
            var damaged = block
            switch round % 4 {
            case 0:  // a few random bytes overwritten
                for _ in 0...Int.random(in: 0..<4, using: &random) {
                    let index = Int.random(in: 0..<damaged.count, using: &random)
                    damaged[index] = UInt8.random(in: 0...255, using: &random)
                }
            case 1:  // one bit flipped
                let index = Int.random(in: 0..<damaged.count, using: &random)
                damaged[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2:  // truncated and then damaged
                damaged = Array(damaged.prefix(Int.random(in: 1..<damaged.count, using: &random)))
                let index = Int.random(in: 0..<damaged.count, using: &random)
                damaged[index] = UInt8.random(in: 0...255, using: &random)
            default:  // a run of bytes replaced by noise (corrupt lengths and offsets together)
                let start = Int.random(in: 0..<damaged.count, using: &random)
                let end = min(damaged.count, start + Int.random(in: 1...32, using: &random))
                for index in start..<end { damaged[index] = UInt8.random(in: 0...255, using: &random) }
            }
            do {
                let output = try Self.decompress(damaged, original.count)
                #expect(output.count == original.count)
            } catch {
                #expect(error.code == .corruption)
            }
        }
    }

    @Test func survivesRandomGarbage() {
        var random = SplitMix64(seed: 5)
        for _ in 0..<2000 {
            let garbage = random.bytes(Int.random(in: 1...512, using: &random))
            let claimed = Int.random(in: 1...4096, using: &random)
            do {
                let output = try Self.decompress(garbage, claimed)
                #expect(output.count == claimed)
            } catch {
                #expect(error.code == .corruption)
            }
        }
    }
}
