/// One frame of the log as ``LogReader`` delivers it: where it is, its verified header and its
/// decoded commit.
package struct LogFrame: Sendable {
    /// The id of the segment holding the frame.
    package var segmentId: UInt64
    /// The segment file's path.
    package var path: String
    /// The frame's byte offset in the segment file.
    package var offset: UInt64
    /// Whether the segment was written by compaction: its frames keep only the live parts of
    /// their commits, and their sequence numbers need not be dense.
    package var isCompacted: Bool
    /// The frame's verified header.
    package var header: FrameHeader
    /// The decoded commit; its record ranges point into ``payloadBytes``.
    package var payload: CommitPayload
    /// The uncompressed payload bytes.
    package var payloadBytes: [UInt8]

    /// The bytes of a put's record (`range` from ``CommitPayload/Operation/put``).
    package func record(_ range: Range<Int>) -> ArraySlice<UInt8> { payloadBytes[range] }
}

/// Reads a store's log without taking its lock and without writing anything, so that it works
/// beside a process that has the store open and is committing (`aggstore dump`, `events`).
///
/// It reads `MANIFEST`, opens the listed segments read-only and delivers the valid frames in
/// sequence order from ``nextSequence`` on, with the checks of recovery's ``SegmentScanner``
/// (magic, both CRCs, lengths, LZ4, payload decoding, sequence order, write indexes). What it
/// does not check is what needs the whole index: the version and event-position rules
/// (`Docs/FORMAT.md`, section 5, step 4); `aggstore verify` does.
///
/// - When a writer has the store open, a bad frame in the active (last) segment is a write
///   still in progress (or a torn tail no open has cut yet): not an error. The pass stops there, and the next ``read(_:)`` resumes
///   after the last frame delivered. What follows it is not searched: the writer fills space it
///   wrote ahead (`Docs/FORMAT.md`, section 4.2), so a valid frame there may have been written
///   after the bad one was read, and proves nothing. When no writer has it open (the pass
///   gets a shared lock, see ``checksStrictlyWhenUnlocked``), the active segment is judged as
///   recovery judges it. Zeros after the last frame are the end of the log.
/// - Damage anywhere else (in a sealed segment, or in an active segment no writer holds) throws
///   ``StoreError/Code/corruption`` with the file and offset; nothing is skipped.
/// - A compaction may replace segments meanwhile. A segment the manifest listed that is gone
///   when opened makes the pass read the manifest again and go on after the last sequence
///   delivered, so nothing is delivered twice or lost (a segment already open stays readable
///   after it is deleted, and holds the same commits as its replacement, or more).
///
/// The frames it sees are those written, not only those acknowledged: a frame whose `fdatasync`
/// has not returned yet is delivered too. A writer that fails to write or sync truncates such a
/// frame away and may later write a different commit under the same sequence number, which a
/// reader that had delivered the first one does not deliver again.
package struct LogReader {
    /// The store directory.
    package let directory: String
    /// The file system the files are read through.
    package let fileSystem: any FileSystem
    /// The sequence number the next frame delivered must carry at least.
    package private(set) var nextSequence: UInt64
    /// How many times in a row one ``read(_:)`` reads the manifest again after a segment
    /// vanished before it gives up (compactions that keep racing it).
    package var maximumRestarts = 100
    /// Whether a pass first tries a shared lock on the store: when no writer holds it, the
    /// pass holds it and judges the active segment as recovery does (damage followed by valid
    /// frames is corruption, not a write in progress). Off for a reader that polls for long
    /// (`events --follow`), whose lock could make a writer's open fail at that moment.
    package var checksStrictlyWhenUnlocked = true
    /// Whether this pass reads beside a writer (it got no shared lock).
    private var activeSegmentIsBeingWritten = true
    /// Where the last pass stopped in the active segment, so the next pass resumes there
    /// rather than scanning the segment again from its start.
    private var tail: Tail?

    private struct Tail {
        var segmentId: UInt64
        var resume: SegmentScanner.ResumePoint
    }

    /// What one ``read(_:)`` found.
    package struct Pass: Sendable {
        /// Frames delivered by this pass.
        package var delivered = 0
        /// Times the manifest was read again because a listed segment had vanished.
        package var restarts = 0
        /// The incomplete or bad bytes at the end of the active segment (a write in progress or
        /// a torn tail), nil when the log ends with a whole frame.
        package var pendingTail: RecoveryReport.TornTail?
    }

    /// A reader that delivers the frames with sequence number `sequence` or more.
    /// - Parameters:
    ///   - directory: The store directory.
    ///   - sequence: The first sequence number to deliver (1: the whole log).
    ///   - fileSystem: The file system seam; the real one by default.
    package init(directory: String, from sequence: UInt64 = 1, fileSystem: any FileSystem = PosixFileSystem()) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.nextSequence = max(sequence, 1)
    }

    /// Delivers, in order, every valid frame from ``nextSequence`` to the end of the log as it
    /// is now, and advances ``nextSequence`` past each one delivered (also when `visit` throws
    /// for a later one, so a retry does not deliver it twice).
    /// - Returns: What the pass delivered and where it stopped.
    /// - Throws: ``StoreError/Code/notFound`` when there is no store (no manifest),
    ///   ``StoreError/Code/corruption`` with the file and offset of damage,
    ///   ``StoreError/Code/io``, and whatever `visit` throws.
    package mutating func read(_ visit: (LogFrame) throws(StoreError) -> Void) throws(StoreError) -> Pass {
        var pass = Pass()
        while true {
            if try readOnce(into: &pass, visit) { return pass }
            // A compaction replaced a segment the manifest listed: read the new manifest and
            // go on after what was delivered.
            tail = nil
            pass.restarts += 1
            guard pass.restarts <= maximumRestarts else {
                throw StoreError(.io, "the log's segments kept changing while it was read (\(pass.restarts) times)", path: directory)
            }
        }
    }

    /// One walk of the manifest's segments; false when a listed segment had vanished.
    private mutating func readOnce(into pass: inout Pass, _ visit: (LogFrame) throws(StoreError) -> Void) throws(StoreError) -> Bool {
        let lock = checksStrictlyWhenUnlocked ? sharedLockIfFree() : nil
        defer { try? lock?.close() }
        activeSegmentIsBeingWritten = lock == nil
        let manifest = try Manifest.read(in: directory, fileSystem: fileSystem)
        let manifestPath = joinPath(directory, Format.manifestFileName)
        pass.pendingTail = nil
        for (position, entry) in manifest.segments.enumerated() {
            if position > 0 {
                let previous = manifest.segments[position - 1]
                guard entry.baseSequence == previous.lastSequence + 1 else {
                    throw .corruption("segment \(entry.id) starts at sequence \(entry.baseSequence), expected \(previous.lastSequence + 1)",
                                      path: manifestPath, offset: 0)
                }
            }
            // A sealed segment that ends before the next sequence holds nothing to deliver.
            if !entry.isActive && entry.lastSequence < nextSequence { continue }
            guard try readSegment(entry, salt: manifest.salt, into: &pass, visit) else { return false }
        }
        return true
    }

    /// A shared lock on the store's lock file, or nil when a writer holds it (or there is none).
    private func sharedLockIfFree() -> (any FileHandle)? {
        guard let handle = try? fileSystem.open(joinPath(directory, Format.lockFileName), mode: .readOnly) else { return nil }
        if (try? handle.tryLock(exclusive: false)) == true { return handle }
        try? handle.close()
        return nil
    }

    /// Reads one listed segment; false when it has vanished (a compaction replaced it).
    private mutating func readSegment(_ entry: Manifest.Segment, salt: UInt64, into pass: inout Pass,
                                      _ visit: (LogFrame) throws(StoreError) -> Void) throws(StoreError) -> Bool {
        let path = joinPath(directory, SegmentHeader.fileName(for: entry.id))
        let handle: any FileHandle
        do throws(StoreError) {
            handle = try fileSystem.open(path, mode: .readOnly)
        } catch where error.code == .notFound {
            return false
        }
        defer { try? handle.close() }
        let header = try SegmentHeader.decode(try handle.read(at: 0, count: Format.segmentHeaderLength), path: path)
        guard header.segmentId == entry.id, header.salt == salt, header.baseSequence == entry.baseSequence else {
            throw .corruption("segment header (segment \(header.segmentId), base sequence \(header.baseSequence)) does not match the manifest's entry (segment \(entry.id), base sequence \(entry.baseSequence)) or the store's salt",
                              path: path, offset: 0)
        }
        // Frames before the tail were delivered by an earlier pass; a segment only grows, and
        // a compaction writes a new id, so the same id still holds them.
        let resume = tail.flatMap { $0.segmentId == entry.id && $0.resume.lastSequence < nextSequence ? $0.resume : nil }
        var scanner = SegmentScanner(handle: handle, salt: salt, header: header, isLast: entry.isActive)
        scanner.lastSegmentIsBeingWritten = activeSegmentIsBeingWritten
        var lastFrame = resume?.lastFrame
        var next = nextSequence
        var delivered = 0
        // Written back also when `visit` throws, so what it accepted is not delivered again.
        defer {
            nextSequence = next
            pass.delivered += delivered
        }
        let outcome = try scanner.scan(resumingAt: resume) { frame throws(StoreError) in
            lastFrame = frame.header
            guard frame.header.sequence >= next else { return }
            try visit(LogFrame(segmentId: entry.id, path: path, offset: frame.offset, isCompacted: header.isCompacted,
                               header: frame.header, payload: frame.payload, payloadBytes: frame.payloadBytes))
            next = frame.header.sequence + 1
            delivered += 1
        }
        if entry.isActive {
            pass.pendingTail = outcome.tornTail
        } else {
            // A compacted segment covers its range whether or not it kept its last commit.
            let lastSequenceFits = header.isCompacted ? outcome.lastSequence <= entry.lastSequence
                                                      : outcome.lastSequence == entry.lastSequence
            guard outcome.endOffset == entry.sealedLength, lastSequenceFits else {
                throw .corruption("sealed segment ends at \(outcome.endOffset) with sequence \(outcome.lastSequence); the manifest records \(entry.sealedLength) bytes and sequence \(entry.lastSequence)",
                                  path: path, offset: outcome.endOffset)
            }
        }
        if let lastFrame {
            tail = Tail(segmentId: entry.id, resume: SegmentScanner.ResumePoint(offset: outcome.endOffset, lastSequence: outcome.lastSequence,
                                                                                lastFrame: lastFrame))
        }
        return true
    }
}
