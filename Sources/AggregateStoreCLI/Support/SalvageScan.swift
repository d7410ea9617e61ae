import AggregateStoreEngine

/// Finds every frame that fully verifies in a store's segment files, however damaged the store
/// is, for `aggstore salvage`. Reads the files directly (no lock, nothing written), with the
/// engine's own frame checks (``SegmentScanner/readFrame(at:window:size:)``), and after damage
/// resynchronises on the next frame magic whose frame verifies
/// (``SegmentScanner/searchForFrames(from:size:inTornWrite:)``).
///
/// It first only notes where each valid frame is, and the copy reads them again in sequence
/// order: segments may come in any order (a compacted segment takes a new id and an old place;
/// without a manifest, only their headers say where they belong), and a segment a compaction
/// replaced may still lie beside its replacement, holding the same sequence numbers.
struct SalvageScan {
    /// A segment file and what is known of it.
    struct Segment {
        var id: UInt64
        var path: String
        /// Its entry, when the manifest could be read.
        var entry: Manifest.Segment?
        /// Its header, when it verified.
        var header: SegmentHeader?
        /// Whether any of its bytes were damaged (or the file was missing).
        var damaged = false
        /// The last sequence number found in it.
        var lastFound: UInt64?
    }

    /// Where a valid frame is.
    struct FrameReference {
        var segment: Int
        var offset: UInt64
        var sequence: UInt64
        var length: Int
        var compacted: Bool
    }

    let directory: String
    let fileSystem: any FileSystem = PosixFileSystem()
    private(set) var manifest: Manifest?
    private(set) var segments: [Segment] = []
    /// The valid frames, one per sequence number, in sequence order (after ``scan(into:progress:)``).
    private(set) var frames: [FrameReference] = []
    /// The salt the frames were verified with (``knownSalt()``).
    private var salt: UInt64?
    /// Open handles and read windows of the copy's reads, by segment.
    private var readers: [Int: (handle: any FileHandle, size: UInt64, window: SegmentScanner.ReadWindow, scanner: SegmentScanner)] = [:]

    init(directory: String) {
        self.directory = directory
    }

    /// The segment files and their total size, read before the scan so progress has a total.
    /// - Throws: when the directory cannot be read or holds neither a manifest nor a segment.
    mutating func listSegments(into report: inout SalvageReport) throws(StoreError) -> UInt64 {
        guard try fileSystem.kind(of: directory) == .directory else {
            throw StoreError(.notFound, "no directory at \(directory)", path: directory)
        }
        let names = try fileSystem.listDirectory(directory)
        let manifestPath = joinPath(directory, Format.manifestFileName)
        do throws(StoreError) {
            let manifest = try Manifest.read(in: directory, fileSystem: fileSystem)
            self.manifest = manifest
            segments = manifest.segments.map { Segment(id: $0.id, path: segmentPath($0.id), entry: $0) }
            report.segmentList = "listed by \(Format.manifestFileName)"
        } catch {
            let ids = names.compactMap { SegmentHeader.segmentId(fromFileName: $0) }.sorted()
            guard !ids.isEmpty else {
                throw StoreError(.notFound, "no store at \(directory): \(error.message), and no segment file", path: directory)
            }
            segments = ids.map { Segment(id: $0, path: segmentPath($0)) }
            report.segmentList = "\(Format.manifestFileName) unreadable (\(error.message)); read every segment file"
            let size = names.contains(Format.manifestFileName) ? (try? fileSize(manifestPath)) ?? 0 : 0
            report.damaged.append(.init(file: manifestPath, offset: 0, length: size, reason: error.message))
        }
        var total: UInt64 = 0
        for index in segments.indices {
            if let size = try? fileSize(segments[index].path) { total += size }
        }
        return total
    }

    /// Reads every segment, noting the valid frames and the damaged byte ranges.
    /// - Parameter progress: called with the bytes read so far.
    mutating func scan(into report: inout SalvageReport, progress: (UInt64) -> Void) throws(StoreError) {
        var all: [FrameReference] = []
        var done: UInt64 = 0
        let salt = knownSalt()
        self.salt = salt
        for index in segments.indices {
            try scanSegment(index, salt: salt, into: &all, report: &report)
            done += (try? fileSize(segments[index].path)) ?? 0
            progress(done)
            report.segmentsRead += 1
        }
        report.bytesRead = done
        report.framesFound = all.count
        // A frame of a compacted segment holds only part of its commit; the original, if a
        // replaced segment still lies beside it, is the whole one.
        all.sort { ($0.sequence, $0.compacted ? 1 : 0) < ($1.sequence, $1.compacted ? 1 : 0) }
        frames = []
        for frame in all where frames.last?.sequence != frame.sequence { frames.append(frame) }
        report.duplicateFrames = all.count - frames.count
        report.missingSequences = missingSequences()
    }

    /// The store's salt: the manifest's, or the one most segment headers that verify carry.
    private mutating func knownSalt() -> UInt64? {
        var counts: [UInt64: Int] = [:]
        for index in segments.indices {
            guard let handle = try? fileSystem.open(segments[index].path, mode: .readOnly) else { continue }
            defer { try? handle.close() }
            if let bytes = try? handle.read(at: 0, count: Format.segmentHeaderLength),
               let header = try? SegmentHeader.decode(bytes, path: segments[index].path),
               header.segmentId == segments[index].id {
                segments[index].header = header
                counts[header.salt, default: 0] += 1
            }
        }
        return manifest?.salt ?? counts.max { $0.value < $1.value }?.key
    }

    private mutating func scanSegment(_ index: Int, salt: UInt64?, into frames: inout [FrameReference],
                                      report: inout SalvageReport) throws(StoreError) {
        let path = segments[index].path
        func damage(_ offset: UInt64, _ length: UInt64, _ reason: String) {
            segments[index].damaged = true
            report.damaged.append(.init(file: path, offset: offset, length: length, reason: reason))
        }
        let handle: any FileHandle
        do throws(StoreError) {
            handle = try fileSystem.open(path, mode: .readOnly)
        } catch where error.code == .notFound {
            damage(0, segments[index].entry.map { $0.isActive ? 0 : $0.sealedLength } ?? 0, "the segment file is missing")
            return
        }
        defer { try? handle.close() }
        let size = try handle.size()
        if segments[index].header == nil || segments[index].header?.salt != salt {
            damage(0, min(size, UInt64(Format.segmentHeaderLength)), "segment header does not verify, or belongs to another store")
        }
        guard let salt else {
            damage(UInt64(Format.segmentHeaderLength), size - min(size, UInt64(Format.segmentHeaderLength)),
                   "no verifying segment header or manifest gives the store's salt, so no frame can be verified")
            return
        }
        let header = segments[index].header ?? SegmentHeader(segmentId: segments[index].id, salt: salt, baseSequence: 0)
        let scanner = SegmentScanner(handle: handle, salt: salt, header: header, isLast: false)
        var window = SegmentScanner.ReadWindow(handle: handle, size: size, windowSize: scanner.windowSize)
        let isActive = segments[index].entry?.isActive ?? (index == segments.count - 1)
        var offset = UInt64(Format.segmentHeaderLength)
        while offset < size {
            let read = try frame(at: offset, scanner: scanner, window: &window, size: size)
            if case let .valid(found) = read {
                frames.append(FrameReference(segment: index, offset: offset, sequence: found.header.sequence,
                                             length: found.header.frameLength, compacted: header.isCompacted))
                segments[index].lastFound = found.header.sequence
                offset += UInt64(found.header.frameLength)
                continue
            }
            // Zeros to the end are space the writer wrote ahead of its frames, not damage.
            if try SegmentScanner.isZero(handle, from: offset, size: size) { break }
            let resumeAt = try nextValidFrame(after: offset, scanner: scanner, window: &window, size: size)
            let end = resumeAt ?? size
            let why = if case let .bad(reason) = read { reason } else { "bad frame" }
            damage(offset, end - offset, resumeAt == nil && isActive
                   ? "\(why); no valid frame from here to the end of the active segment (a write torn by a crash, never acknowledged, or damage)"
                   : "\(why); no valid frame in these bytes")
            offset = end
        }
    }

    /// The frame at `offset` with every check of the engine's scan; a frame that verifies but
    /// does not decode is as lost as one that does not verify.
    private func frame(at offset: UInt64, scanner: SegmentScanner, window: inout SegmentScanner.ReadWindow,
                       size: UInt64) throws(StoreError) -> SegmentScanner.FrameRead {
        do throws(StoreError) {
            return try scanner.readFrame(at: offset, window: &window, size: size)
        } catch where error.code == .corruption {
            return .bad(error.message)
        }
    }

    /// The offset of the next frame after `offset` that verifies and decodes, if any.
    private func nextValidFrame(after offset: UInt64, scanner: SegmentScanner, window: inout SegmentScanner.ReadWindow,
                                size: UInt64) throws(StoreError) -> UInt64? {
        var from = offset
        while true {
            guard let candidate = try scanner.searchForFrames(from: from, size: size, inTornWrite: { _ in false }).validAt else { return nil }
            if case .valid = try frame(at: candidate, scanner: scanner, window: &window, size: size) { return candidate }
            from = candidate
        }
    }

    /// The sequence numbers with no valid frame, from 1 to the last one the log is known to
    /// have reached. A gap inside the range of an undamaged compacted segment is not a loss:
    /// compaction dropped commits with nothing left alive.
    private func missingSequences() -> [SalvageReport.MissingSequences] {
        var explained: [ClosedRange<UInt64>] = []
        for segment in segments where segment.header?.isCompacted == true && !segment.damaged {
            let base = segment.header!.baseSequence
            let end = max(segment.entry?.lastSequence ?? 0, segment.lastFound ?? 0)
            if end >= base { explained.append(base...end) }
        }
        let sealedEnd = segments.compactMap { $0.entry.flatMap { $0.isActive ? nil : $0.lastSequence } }.max() ?? 0
        var gaps: [ClosedRange<UInt64>] = []
        var previous: UInt64 = 0
        for frame in frames {
            if frame.sequence > previous + 1 { gaps.append(previous + 1...frame.sequence - 1) }
            previous = frame.sequence
        }
        if sealedEnd > previous { gaps.append(previous + 1...sealedEnd) }
        return gaps.flatMap { subtract(explained, from: $0) }.map { .init(first: $0.lowerBound, last: $0.upperBound) }
    }

    private func subtract(_ ranges: [ClosedRange<UInt64>], from gap: ClosedRange<UInt64>) -> [ClosedRange<UInt64>] {
        var rest = [gap]
        for range in ranges {
            rest = rest.flatMap { piece -> [ClosedRange<UInt64>] in
                guard piece.overlaps(range) else { return [piece] }
                var left: [ClosedRange<UInt64>] = []
                if piece.lowerBound < range.lowerBound { left.append(piece.lowerBound...range.lowerBound - 1) }
                if piece.upperBound > range.upperBound { left.append(range.upperBound + 1...piece.upperBound) }
                return left
            }
        }
        return rest
    }

    /// Reads a frame found by the scan again, with every check, for the copy.
    mutating func read(_ reference: FrameReference) throws(StoreError) -> SegmentScanner.ScannedFrame {
        let segment = segments[reference.segment]
        if readers[reference.segment] == nil {
            let handle = try fileSystem.open(segment.path, mode: .readOnly)
            let size = try handle.size()
            guard let salt else { throw StoreError(.corruption, "the store's salt is unknown", path: directory) }
            let header = segment.header ?? SegmentHeader(segmentId: segment.id, salt: salt, baseSequence: 0)
            let scanner = SegmentScanner(handle: handle, salt: salt, header: header, isLast: false)
            readers[reference.segment] = (handle, size, SegmentScanner.ReadWindow(handle: handle, size: size, windowSize: scanner.windowSize), scanner)
        }
        var reader = readers[reference.segment]!
        readers[reference.segment] = nil
        defer { readers[reference.segment] = reader }
        guard case let .valid(found) = try frame(at: reference.offset, scanner: reader.scanner, window: &reader.window,
                                                 size: reader.size) else {
            throw .corruption("frame changed since it was scanned", path: segment.path, offset: reference.offset)
        }
        return found
    }

    /// Closes the handles the copy opened.
    mutating func close() {
        for reader in readers.values { try? reader.handle.close() }
        readers = [:]
    }

    private func segmentPath(_ id: UInt64) -> String { joinPath(directory, SegmentHeader.fileName(for: id)) }

    private func fileSize(_ path: String) throws(StoreError) -> UInt64 {
        let handle = try fileSystem.open(path, mode: .readOnly)
        defer { try? handle.close() }
        return try handle.size()
    }
}
