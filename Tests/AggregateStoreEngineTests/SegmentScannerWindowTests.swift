@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// The scanner reads a segment a window at a time, both for frames and for the search that
/// tells a torn tail from damage in the middle. Tiny windows put window boundaries at every
/// position of every frame, which 4 MiB windows would only reach in huge segments.
@Suite("Segment scanner windows")
struct SegmentScannerWindowTests {
    /// A segment of 30 frames, its header and its frames' byte ranges.
    private func segment() throws -> (InMemoryFileSystem, SegmentHeader, [Range<Int>], UInt64) {
        let fileSystem = InMemoryFileSystem()
        let engine = try StorageEngine.open(at: "/store", fileSystem: fileSystem, logger: quietLogger)
        for number in 1...30 { try engine.commit(orderBatch(number, customer: number % 3, size: 40 + number * 7)) }
        try engine.close()
        let bytes = fileSystem.bytes(of: "/store/00000001.seg")!
        let header = try SegmentHeader.decode(Array(bytes[..<Format.segmentHeaderLength]), path: "seg")
        let frames = try frameRanges(bytes)
        return (fileSystem, header, frames, header.salt)
    }

    private func scan(_ fileSystem: InMemoryFileSystem, _ header: SegmentHeader, window: Int) throws(StoreError) -> SegmentScanner.Outcome {
        let handle = try fileSystem.open("/store/00000001.seg", mode: .readOnly)
        defer { try? handle.close() }
        return try SegmentScanner(handle: handle, salt: header.salt, header: header, isLast: true, windowSize: window).scan { _ in }
    }

    @Test(arguments: [33, 48, 64, 100, 257, 4096])
    func damageBeforeAValidFrameIsFoundWhateverTheWindow(window: Int) throws {
        let (fileSystem, header, frames, _) = try segment()
        let original = fileSystem.bytes(of: "/store/00000001.seg")!
        #expect(try scan(fileSystem, header, window: window).frames == 30)
        for damaged in 0..<frames.count - 1 {
            let image = fileSystem.copy()
            var bytes = original
            bytes[frames[damaged].lowerBound + 9] ^= 0x80  // the sequence field: the header CRC fails
            try image.setBytes(bytes, of: "/store/00000001.seg")
            let error = #expect(throws: StoreError.self) { try scan(image, header, window: window) }
            #expect(error?.offset == UInt64(frames[damaged].lowerBound), "frame \(damaged + 1), window \(window)")
            #expect(error?.message.contains("valid frame follows at offset \(frames[damaged + 1].lowerBound)") == true,
                    "frame \(damaged + 1), window \(window): \(String(describing: error))")
        }
        // Damage to the last frame is a torn tail, with its header counted.
        var bytes = original
        bytes[frames[frames.count - 1].upperBound - 1] ^= 0x01
        try fileSystem.setBytes(bytes, of: "/store/00000001.seg")
        let outcome = try scan(fileSystem, header, window: window)
        #expect(outcome.frames == 29 && outcome.tornTail?.frames == 1 && outcome.tornTail?.offset == UInt64(frames[29].lowerBound))
    }
}
