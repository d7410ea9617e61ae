import AggregateStoreEngine
import Testing

/// Checks CRC32C against published vectors and checks the hardware path against the tables,
/// because a wrong checksum would silently mark good data corrupt, or let damaged data through.
@Suite struct CRC32CTests {
    /// One known input and its CRC32C from RFC 3720 / LevelDB's crc32c_test.
    struct Vector: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let crc: UInt32
        var testDescription: String { name }
    }

    static let vectors: [Vector] = [
        Vector(name: "\"123456789\"", bytes: Array("123456789".utf8), crc: 0xE306_9283),
        Vector(name: "32 zero bytes", bytes: [UInt8](repeating: 0, count: 32), crc: 0x8A91_36AA),
        Vector(name: "32 0xFF bytes", bytes: [UInt8](repeating: 0xFF, count: 32), crc: 0x62A8_AB43),
        Vector(name: "0...31 ascending", bytes: (0..<32).map { UInt8($0) }, crc: 0x46DD_794E),
        Vector(name: "31...0 descending", bytes: (0..<32).map { UInt8(31 - $0) }, crc: 0x113F_DB5C),
        Vector(
            name: "iSCSI read command",
            bytes: [
                0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            ],
            crc: 0xD996_3A56
        ),
    ]

    @Test(arguments: vectors)
    func knownVectorDefaultPath(_ vector: Vector) {
        #expect(CRC32C.checksum(vector.bytes) == vector.crc)
        #expect(vector.bytes.withUnsafeBytes { CRC32C.checksum($0) } == vector.crc)
    }

    @Test(arguments: vectors)
    func knownVectorPortablePath(_ vector: Vector) {
        #expect(vector.bytes.withUnsafeBytes { CRC32C.portableChecksum($0) } == vector.crc)
    }

    @Test(arguments: vectors)
    func maskRoundTrips(_ vector: Vector) {
        let crc = vector.crc
        #expect(CRC32C.mask(crc) != crc)
        #expect(CRC32C.mask(CRC32C.mask(crc)) != crc)
        #expect(CRC32C.unmask(CRC32C.mask(crc)) == crc)
        #expect(CRC32C.unmask(CRC32C.unmask(CRC32C.mask(CRC32C.mask(crc)))) == crc)
    }

    @Test func maskRoundTripsOnRandomValues() {
        var random = SplitMix64(seed: 7)
        let randomValues = (0..<1000).map { _ in UInt32.random(in: 0...UInt32.max, using: &random) }
        let values = [0, 1, UInt32.max, 0x8000_0000] + randomValues
        for value in values {
            #expect(CRC32C.unmask(CRC32C.mask(value)) == value)
        }
    }

    @Test func distinctInputsGiveDistinctChecksums() {
        #expect(CRC32C.checksum(Array("a".utf8)) != CRC32C.checksum(Array("foo".utf8)))
    }

    @Test func emptyInputReturnsTheSeed() {
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(CRC32C.checksum([UInt8](), seed: 0x1234_5678) == 0x1234_5678)
        #expect(CRC32C.checksum(UnsafeRawBufferPointer(start: nil, count: 0), seed: 42) == 42)
        #expect(CRC32C.portableChecksum(UnsafeRawBufferPointer(start: nil, count: 0), seed: 42) == 42)
    }

    @Test func extendMatchesLevelDB() {
        let whole = CRC32C.checksum(Array("hello world".utf8))
        #expect(CRC32C.checksum(Array("world".utf8), seed: CRC32C.checksum(Array("hello ".utf8))) == whole)
    }

    /// Extending must be exact at every split, including splits that leave the interleaved and
    /// 8-byte loops with odd remainders.
    @Test func extendingEqualsChecksumOfConcatenationAtEverySplit() {
        var random = SplitMix64(seed: 1)
        let bytes = random.bytes(1500)
        bytes.withUnsafeBytes { all in
            let whole = CRC32C.checksum(all)
            let portableWhole = CRC32C.portableChecksum(all)
            #expect(whole == portableWhole)
            for split in 0...all.count {
                let head = UnsafeRawBufferPointer(rebasing: all[..<split])
                let tail = UnsafeRawBufferPointer(rebasing: all[split...])
                #expect(CRC32C.checksum(tail, seed: CRC32C.checksum(head)) == whole, "split \(split)")
                #expect(CRC32C.portableChecksum(tail, seed: CRC32C.portableChecksum(head)) == whole, "split \(split)")
            }
        }
    }

    /// Splits around the interleaved block sizes (3 × 256 and 3 × 8192 bytes) of a large buffer.
    @Test func extendingAcrossInterleavedBlocks() {
        var random = SplitMix64(seed: 2)
        let bytes = random.bytes(100_000)
        bytes.withUnsafeBytes { all in
            let whole = CRC32C.checksum(all)
            #expect(whole == CRC32C.portableChecksum(all))
            for split in [1, 7, 768, 769, 24_575, 24_576, 24_577, 49_999, 75_000, 99_999] {
                let head = UnsafeRawBufferPointer(rebasing: all[..<split])
                let tail = UnsafeRawBufferPointer(rebasing: all[split...])
                #expect(CRC32C.checksum(tail, seed: CRC32C.checksum(head)) == whole, "split \(split)")
            }
        }
    }

    /// The hardware path aligns its start and handles tails itself, so every misalignment and
    /// every short length is compared with the tables, plus lengths that reach the interleaved loops.
    @Test func hardwarePathEqualsPortablePath() {
        var random = SplitMix64(seed: 3)
        let largeLengths = [767, 768, 769, 1000, 4095, 4096, 24_575, 24_576, 24_577, 25_344, 100_003, (1 << 20) + 13]
        let bytes = random.bytes((1 << 20) + 64)
        bytes.withUnsafeBytes { all in
            for offset in 0..<8 {
                for length in Array(0...300) + largeLengths {
                    let slice = UnsafeRawBufferPointer(rebasing: all[offset..<(offset + length)])
                    let seed = UInt32(truncatingIfNeeded: length &* 2_654_435_761)
                    let fast = CRC32C.checksum(slice, seed: seed)
                    let portable = CRC32C.portableChecksum(slice, seed: seed)
                    if fast != portable {
                        Issue.record("offset \(offset) length \(length): \(fast) != \(portable)")
                    }
                }
            }
        }
    }

    @Test func arrayAndBufferOverloadsAgree() {
        var random = SplitMix64(seed: 4)
        for length in [0, 1, 9, 64, 1000] {
            let bytes = random.bytes(length)
            let seed = UInt32(length)
            #expect(CRC32C.checksum(bytes, seed: seed) == bytes.withUnsafeBytes { CRC32C.checksum($0, seed: seed) })
        }
    }

    /// x86-64 CPUs without SSE4.2 predate 2008, so on x86-64 the fast path is expected; elsewhere
    /// the answer depends on the CPU and is only exercised.
    @Test func reportsHardwareAcceleration() {
        #if arch(x86_64)
        #expect(CRC32C.isHardwareAccelerated)
        #else
        _ = CRC32C.isHardwareAccelerated
        #endif
    }
}
