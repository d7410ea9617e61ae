import Synchronization

/// The compacted segments one compaction run writes (`Docs/FORMAT.md`, section 4.4): frames
/// are appended in sequence order, a new file is started when one would pass the segment
/// size, and together the files cover the run's whole sequence range, so that they replace
/// it in the manifest's chain. Nothing refers to them until the manifest is installed.
struct CompactionOutput {
    /// A finished output file.
    struct Written {
        /// Its manifest entry (sealed).
        var entry: Manifest.Segment
        /// The open handle, handed to the engine at install.
        var handle: any FileHandle
    }

    /// The file being written.
    private struct Current {
        var id: UInt64
        var handle: any FileHandle
        var baseSequence: UInt64
        var end: UInt64
        var frames = 0
        /// Frames not written yet, and the offset they start at.
        var buffer: [UInt8] = []
        var bufferStart: UInt64
    }

    private let engine: StorageEngine
    private var nextBaseSequence: UInt64
    private var current: Current?
    private var written: [Written] = []

    /// Buffered frames are written once they reach this many bytes.
    private static let writeSize = 1 << 20

    init(engine: StorageEngine, baseSequence: UInt64) {
        self.engine = engine
        nextBaseSequence = baseSequence
    }

    /// Appends a frame with `sequence`.
    /// - Returns: Where the frame will be.
    mutating func append(_ frame: [UInt8], sequence: UInt64) throws(StoreError) -> FrameAddress {
        if let file = current, file.end + UInt64(frame.count) > UInt64(engine.configuration.segmentSize), file.frames > 0 {
            try seal(lastSequence: sequence - 1)
            nextBaseSequence = sequence
        }
        if current == nil { try start() }
        let address = FrameAddress(segment: UInt32(current!.id), offset: current!.end)
        current!.buffer += frame
        current!.end += UInt64(frame.count)
        current!.frames += 1
        if current!.buffer.count >= Self.writeSize { try flush() }
        return address
    }

    /// Seals the last file (ending the run's range at `lastSequence`), then makes every file
    /// and its directory entry durable.
    mutating func finish(lastSequence: UInt64) throws(StoreError) -> [Written] {
        // A run with nothing left still needs a segment to stand for its range.
        if current == nil { try start() }
        try seal(lastSequence: lastSequence)
        let sites = engine.configuration.syncSites
        for file in written {
            try sites.run(.compactionSegmentFile) { () throws(StoreError) in try file.handle.sync(.full) }
        }
        try sites.run(.compactionSegmentDirectory) { () throws(StoreError) in try engine.fileSystem.syncDirectory(engine.path) }
        return written
    }

    /// Closes and removes every file written, after a failure or a cancellation. Nothing
    /// refers to them, so their removal needs no fsync (a lost one is redone at the next open).
    mutating func abandon() {
        if let file = current { written.append(Written(entry: entry(of: file, lastSequence: 0), handle: file.handle)) }
        current = nil
        for file in written {
            try? file.handle.close()
            try? engine.fileSystem.removeFile(joinPath(engine.path, SegmentHeader.fileName(for: file.entry.id)))
        }
        let ids = written.map(\.entry.id)
        engine.compactionState.withLock { state in for id in ids { state.outputIds.remove(id) } }
        written = []
    }

    /// Starts a file with a new id, taken from the manifest's counter.
    private mutating func start() throws(StoreError) {
        let id = engine.log.withLock { log in
            defer { log.manifest.nextSegmentId += 1 }
            return log.manifest.nextSegmentId
        }
        guard id <= UInt64(UInt32.max) else {
            throw StoreError(.noSpace, "the store has used every segment id")
        }
        engine.compactionState.withLock { _ = $0.outputIds.insert(id) }
        let path = joinPath(engine.path, SegmentHeader.fileName(for: id))
        let handle = try engine.fileSystem.open(path, mode: .createNew)
        let header = SegmentHeader(segmentId: id, salt: engine.salt, baseSequence: nextBaseSequence, isCompacted: true)
        current = Current(id: id, handle: handle, baseSequence: nextBaseSequence, end: UInt64(Format.segmentHeaderLength),
                          buffer: header.encoded(), bufferStart: 0)
    }

    private mutating func flush() throws(StoreError) {
        guard var file = current, !file.buffer.isEmpty else { return }
        try file.handle.write(file.buffer, at: file.bufferStart)
        file.bufferStart += UInt64(file.buffer.count)
        file.buffer.removeAll(keepingCapacity: true)
        current = file
    }

    /// Writes out the current file and records it as covering up to `lastSequence`.
    private mutating func seal(lastSequence: UInt64) throws(StoreError) {
        try flush()
        guard let file = current else { return }
        written.append(Written(entry: entry(of: file, lastSequence: lastSequence), handle: file.handle))
        current = nil
    }

    private func entry(of file: Current, lastSequence: UInt64) -> Manifest.Segment {
        Manifest.Segment(id: file.id, baseSequence: file.baseSequence, sealedLength: file.end, lastSequence: lastSequence)
    }
}
