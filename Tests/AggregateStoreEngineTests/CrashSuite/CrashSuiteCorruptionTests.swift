@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// Class 5 of `Docs/CRASH-TESTING.md`: damage to stored bytes. Only a torn tail (damage to the
/// last frame with nothing valid after it) may be cut; everything else fails the open with the
/// file and offset of the damage (I8), and what does open is checked by the oracle.
@Suite("Crash suite: corruption at rest")
struct CrashSuiteCorruptionTests {
    static let commits = 6
    static let segment = "/store/00000001.seg"

    /// A store of six commits in one segment, the oracle that wrote it, and its frames' ranges.
    private func makeStore() throws -> (InMemoryFileSystem, CommitOracle, [Range<Int>]) {
        let fileSystem = InMemoryFileSystem()
        var oracle = CommitOracle()
        let engine = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(segmentSize: 1 << 20, snapshot: false),
                                            fileSystem: fileSystem, logger: quietLogger)
        CrashSuite.drive(engine, CrashWorkload(seed: 5), oracle: &oracle, count: Self.commits)
        try engine.close()
        let bytes = fileSystem.bytes(of: Self.segment)!
        let frames = try frameRanges(bytes)
        #expect(frames.count == Self.commits)
        return (fileSystem, oracle, frames)
    }

    /// Opens a damaged copy: returns the error, or checks the recovered store with the oracle.
    private func open(_ image: InMemoryFileSystem, oracle: CommitOracle, tally: CrashTally, replay: String) -> StoreError? {
        tally.explored()
        do {
            let engine = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(segmentSize: 1 << 20, snapshot: false),
                                                fileSystem: image, logger: quietLogger)
            defer { try? engine.close() }
            do {
                _ = try oracle.check(engine, events: try engine.loggedEvents(), files: nil)
            } catch let violation as CommitOracle.Violation {
                tally.record(violation, replay: replay)
            } catch {
                tally.record(other: "\(error)", replay: replay)
            }
            return nil
        } catch {
            return error
        }
    }

    @Test func bitFlipsInEveryFieldOfTheFirstAMiddleAndTheLastFrame() throws {
        let (fileSystem, oracle, frames) = try makeStore()
        let original = fileSystem.bytes(of: Self.segment)!
        let tally = CrashTally("corruption at rest: bit flips", unit: "damaged stores")
        for (name, frame) in [("first", frames[0]), ("middle", frames[frames.count / 2]), ("last", frames[frames.count - 1])] {
            for position in frame {
                let image = fileSystem.copy()
                var damaged = original
                damaged[position] ^= UInt8(1 << (position % 8))
                try image.setBytes(damaged, of: Self.segment)
                let replay = "flip of byte \(position) in the \(name) frame (\(frame))"
                // Damage to the last frame cannot be told from a torn write: the oracle then
                // expects the store without it.
                var expected = oracle
                if name == "last" { expected.settle(at: UInt64(frames.count - 1)) }
                let error = open(image, oracle: expected, tally: tally, replay: replay)
                if name == "last" {
                    // Indistinguishable from a torn write: cut, reported, and the rest intact.
                    if let error { tally.record(other: "the last frame's damage failed the open: \(error)", replay: replay) }
                } else if error?.code != .corruption || error?.offset != UInt64(frame.lowerBound) || error?.path != Self.segment {
                    tally.record(CommitOracle.Violation(invariant: "I8", message: "not reported at the frame: \(String(describing: error))"),
                                 replay: replay)
                }
            }
        }
        print(tally.summary)
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }

    @Test func truncationAtEveryByteOfTheLastThreeFrames() throws {
        let (fileSystem, oracle, frames) = try makeStore()
        let original = fileSystem.bytes(of: Self.segment)!
        let tally = CrashTally("corruption at rest: truncations", unit: "cuts")
        for cut in frames[frames.count - 3].lowerBound..<original.count {
            let image = fileSystem.copy()
            try image.setBytes(Array(original[..<cut]), of: Self.segment)
            // The acknowledged commits cut off are gone by construction; the oracle then only
            // requires a clean prefix, as after losing unacknowledged writes.
            var relaxed = oracle
            let whole = frames.filter { $0.upperBound <= cut }.count
            relaxed.settle(at: UInt64(whole))
            if let error = open(image, oracle: relaxed, tally: tally, replay: "cut at byte \(cut)") {
                tally.record(other: "a cut tail failed the open: \(error)", replay: "cut at byte \(cut)")
            }
        }
        print(tally.summary)
        #expect(tally.anomalies == 0, "\(tally.failures.joined(separator: "\n"))")
    }

    @Test func aValidFrameOrSegmentInTheWrongPlaceIsRejected() throws {
        let (fileSystem, _, frames) = try makeStore()
        let original = fileSystem.bytes(of: Self.segment)!
        // Frame 1 written over frame 4's place (a misdirected write): a sequence gap there.
        var misdirected = original
        misdirected.replaceSubrange(frames[3].lowerBound..<frames[3].lowerBound + frames[0].count, with: original[frames[0]])
        let image = fileSystem.copy()
        try image.setBytes(Array(misdirected[..<(frames[3].lowerBound + frames[0].count)]) + Array(original[frames[3].upperBound...]), of: Self.segment)
        let gap = #expect(throws: StoreError.self) {
            try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(snapshot: false), fileSystem: image, logger: quietLogger)
        }
        #expect(gap?.code == .corruption && gap?.offset == UInt64(frames[3].lowerBound))
        // Segment 1 copied into the place of segment 2: its header names segment 1.
        let rolled = InMemoryFileSystem()
        let engine = try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(snapshot: false), fileSystem: rolled, logger: quietLogger)
        var oracle = CommitOracle()
        CrashSuite.drive(engine, CrashWorkload(seed: 8), oracle: &oracle, count: 30)
        #expect(try engine.statistics().segments.count >= 3)
        try engine.close()
        try rolled.setBytes(rolled.bytes(of: Self.segment)!, of: "/store/00000002.seg")
        let swapped = #expect(throws: StoreError.self) {
            try StorageEngine.open(at: "/store", configuration: CrashSuite.configuration(snapshot: false), fileSystem: rolled, logger: quietLogger)
        }
        #expect(swapped?.code == .corruption && swapped?.path == "/store/00000002.seg")
    }
}
