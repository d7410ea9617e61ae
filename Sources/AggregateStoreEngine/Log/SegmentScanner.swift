/// Reads a segment's frames in order and checks each one (`Docs/FORMAT.md`, section 5):
/// magic, header CRC, bounded lengths, frame CRC, LZ4 length, payload decoding and sequence
/// continuity. It distinguishes a torn tail from corruption in the middle of the log, and
/// never changes the file.
package struct SegmentScanner {
    /// A frame that passed every check.
    package struct ScannedFrame {
        /// The frame's offset in the segment.
        package var offset: UInt64
        /// Its verified header.
        package var header: FrameHeader
        /// Its uncompressed payload bytes.
        package var payloadBytes: [UInt8]
        /// Its decoded payload; record ranges point into ``payloadBytes``.
        package var payload: CommitPayload
    }

    /// What a scan found.
    package struct Outcome {
        /// The end of the last valid frame: where the next frame belongs.
        package var endOffset: UInt64
        /// The last valid sequence number (base − 1 for a segment without frames).
        package var lastSequence: UInt64
        /// Valid frames.
        package var frames = 0
        /// Stored (on-disk) payload bytes of the valid frames, headers excluded.
        package var storedBytes: UInt64 = 0
        /// Uncompressed payload bytes of the valid frames.
        package var payloadBytes: UInt64 = 0
        /// The offset of the last valid frame, if the segment has one.
        package var lastFrameOffset: UInt64?
        /// The torn tail after ``endOffset``, if the segment has one (last segment only).
        package var tornTail: RecoveryReport.TornTail?
        /// Bytes after ``endOffset`` that are all zero: space the writer wrote ahead of its
        /// frames (`Docs/FORMAT.md`, section 4.2), not a torn write.
        package var zeroTail: UInt64 = 0
    }

    /// The file being scanned.
    package let handle: any FileHandle
    /// The store's salt, which seeds every frame CRC.
    package let salt: UInt64
    /// The header of the segment, already verified.
    package let header: SegmentHeader
    /// Whether this is the last segment, the only one that may end in a torn tail.
    package let isLast: Bool

    /// How much of the file is read at a time (4 MiB); tests use tiny windows to put window
    /// boundaries everywhere.
    package let windowSize: Int

    /// Whether a writer may be appending to the last segment as it is read (the lockless
    /// backup, `dump` and `events` beside a running store, and statistics' scan). Then a bad
    /// frame there just ends the scan, reported as a tail but not classified: it may be a
    /// write in progress, and what follows it may have been written after it was read (the
    /// writer fills space it wrote ahead, `Docs/FORMAT.md` section 4.2), so it proves neither a
    /// torn tail nor corruption.
    package var lastSegmentIsBeingWritten = false

    package init(handle: any FileHandle, salt: UInt64, header: SegmentHeader, isLast: Bool, windowSize: Int = 4 << 20) {
        precondition(windowSize > Format.frameHeaderLength, "a scan window must hold a frame header")
        self.handle = handle
        self.salt = salt
        self.header = header
        self.isLast = isLast
        self.windowSize = windowSize
    }

    /// Scans every frame, calling `visit` for each valid one in order.
    /// - Throws: ``StoreError/Code/corruption`` with the file and offset of any damage that is
    ///   not a torn tail; I/O errors from the file system.
    package func scan(_ visit: (ScannedFrame) throws(StoreError) -> Void) throws(StoreError) -> Outcome {
        try scan(resumingAt: nil, visit)
    }

    /// Where a scan resumes: after the frames an index snapshot covers.
    package struct ResumePoint {
        /// The end of the last covered frame.
        package var offset: UInt64
        /// That frame's sequence number and header (for the write-index rule).
        package var lastSequence: UInt64
        package var lastFrame: FrameHeader
    }

    /// Scans the frames from `resume` on (from the first frame when nil).
    package func scan(resumingAt resume: ResumePoint?, _ visit: (ScannedFrame) throws(StoreError) -> Void) throws(StoreError) -> Outcome {
        let size = try handle.size()
        var window = ReadWindow(handle: handle, size: size, windowSize: windowSize)
        var offset = resume?.offset ?? UInt64(Format.segmentHeaderLength)
        var outcome = Outcome(endOffset: offset, lastSequence: resume?.lastSequence ?? header.baseSequence - 1)
        // The last valid frame's header; writes never span segments, so the first frame of a
        // segment starts a write.
        var previous: FrameHeader? = resume?.lastFrame
        while offset < size {
            switch try readFrame(at: offset, window: &window, size: size) {
            case let .valid(frame):
                // A compacted segment keeps the sequence numbers of the commits it kept parts of.
                let inOrder = header.isCompacted ? frame.header.sequence > outcome.lastSequence
                                                 : frame.header.sequence == outcome.lastSequence + 1
                guard inOrder else {
                    throw .corruption("sequence gap: frame carries sequence \(frame.header.sequence), expected \(outcome.lastSequence + 1)",
                                      path: handle.path, offset: offset)
                }
                // A frame starts a write or continues the last frame's. (A write may also end
                // without its last frame: recovery cut the rest as a torn tail.)
                let continues = previous.map { !$0.endsWrite && Int(frame.header.writeIndex) == Int($0.writeIndex) + 1 } ?? false
                guard frame.header.writeIndex == 0 || continues else {
                    throw .corruption("frame is number \(frame.header.writeIndex) of its write, but the frame before it is not number \(Int(frame.header.writeIndex) - 1)",
                                      path: handle.path, offset: offset)
                }
                previous = frame.header
                try visit(frame)
                outcome.frames += 1
                outcome.lastSequence = frame.header.sequence
                outcome.storedBytes += UInt64(frame.header.storedLength)
                outcome.payloadBytes += UInt64(frame.header.uncompressedLength)
                outcome.lastFrameOffset = offset
                offset += UInt64(frame.header.frameLength)
                outcome.endOffset = offset
            case let .bad(reason):
                if try isZero(from: offset, size: size) {
                    outcome.zeroTail = size - offset
                } else if isLast && lastSegmentIsBeingWritten {
                    // Reported as it is, not classified (see `lastSegmentIsBeingWritten`).
                    outcome.tornTail = RecoveryReport.TornTail(path: handle.path, offset: offset, bytes: size - offset,
                                                               frames: 0, reason: reason, truncated: false)
                } else {
                    outcome.tornTail = try classifyBadFrame(at: offset, reason: reason, size: size, lastValid: outcome.lastSequence)
                }
                return outcome
            }
        }
        return outcome
    }

    /// Whether every byte from `start` to the end of the file is zero: the space a writer
    /// wrote ahead of its frames (in any segment: a roll cuts it, but the cut is not synced).
    /// Reads a window at a time.
    private func isZero(from start: UInt64, size: UInt64) throws(StoreError) -> Bool {
        try Self.isZero(handle, from: start, size: size, windowSize: windowSize)
    }

    /// Whether every byte of `handle` from `start` to `size` is zero, read a window at a time.
    package static func isZero(_ handle: any FileHandle, from start: UInt64, size: UInt64,
                               windowSize: Int = 1 << 20) throws(StoreError) -> Bool {
        var position = start
        while position < size {
            let window = try handle.read(at: position, count: Int(min(UInt64(windowSize), size - position)))
            guard !window.isEmpty else { return true }
            guard window.allSatisfy({ $0 == 0 }) else { return false }
            position += UInt64(window.count)
        }
        return true
    }

    /// A bad frame is a torn tail only in the last segment, in the last write: no valid frame
    /// of a later write follows it. Valid frames of its own write may follow it (a write of a
    /// commit group is torn in any pattern of sectors), and are cut with it: the write was never
    /// synced, so none of it was acknowledged.
    ///
    /// The bad frame has sequence `lastValid + 1`, so its write starts at or before that; a
    /// later frame of the same write has a higher sequence and the same start, and a frame of a
    /// later write starts after it.
    private func classifyBadFrame(at offset: UInt64, reason: String, size: UInt64, lastValid: UInt64) throws(StoreError) -> RecoveryReport.TornTail {
        guard isLast else {
            throw .corruption("\(reason) in a sealed segment", path: handle.path, offset: offset)
        }
        let (validAfter, headers) = try searchForFrames(from: offset, size: size) { header in
            header.sequence > lastValid + 1 && header.writeStartSequence <= lastValid + 1
        }
        if let validAfter {
            throw .corruption("\(reason); a valid frame follows at offset \(validAfter), of a later write", path: handle.path, offset: offset)
        }
        return RecoveryReport.TornTail(path: handle.path, offset: offset, bytes: size - offset,
                                       frames: headers, reason: reason, truncated: false)
    }

    /// Looks for a complete, verifying frame anywhere after `start` (a resync by magic number)
    /// that is not `inTornWrite`, and counts the frame headers that verify from `start` on, the
    /// bad frame's own included. Reads the rest of the file a window at a time, so memory stays
    /// bounded however long it is.
    ///
    /// Shared with the tools that read damaged logs (`aggstore salvage`), which resynchronise
    /// after damage with it rather than with checks of their own.
    package func searchForFrames(from start: UInt64, size: UInt64,
                                 inTornWrite: (FrameHeader) -> Bool) throws(StoreError) -> (validAt: UInt64?, headers: Int) {
        var headers = 0
        var windowStart = start
        while size - windowStart >= UInt64(Format.frameHeaderLength) {
            let window = try handle.read(at: windowStart, count: Int(min(UInt64(windowSize), size - windowStart)))
            guard window.count >= Format.frameHeaderLength else { break }
            let lastPosition = window.count - Format.frameHeaderLength
            for position in 0...lastPosition {
                let found = try window.withUnsafeBytesTyped { bytes throws(StoreError) -> Bool in
                    guard bytes.loadLittleEndian(UInt32.self, at: position) == Format.frameMagic else { return false }
                    let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[position..<position + Format.frameHeaderLength])
                    guard case let .success(header) = Frame.parseHeader(headerBytes) else { return false }
                    headers += 1
                    let frameStart = windowStart + UInt64(position)
                    guard frameStart != start, UInt64(header.frameLength) <= size - frameStart else { return false }
                    return try verifiesAt(frameStart, header: header, headerBytes: headerBytes, window: bytes, windowStart: windowStart)
                        && !inTornWrite(header)
                }
                if found { return (windowStart + UInt64(position), headers) }
            }
            // The next window starts right after the last position checked in this one.
            windowStart += UInt64(lastPosition + 1)
        }
        return (nil, headers)
    }

    /// Whether the frame at `frameStart` verifies; reads it separately if it runs past the window.
    private func verifiesAt(_ frameStart: UInt64, header: FrameHeader, headerBytes: UnsafeRawBufferPointer,
                            window: UnsafeRawBufferPointer, windowStart: UInt64) throws(StoreError) -> Bool {
        let storedStart = frameStart + UInt64(Format.frameHeaderLength)
        let from = Int(storedStart - windowStart)
        if from + header.storedLength <= window.count {
            return Frame.verify(header, headerBytes: headerBytes,
                                stored: UnsafeRawBufferPointer(rebasing: window[from..<from + header.storedLength]), salt: salt)
        }
        let stored = try handle.read(at: storedStart, count: header.storedLength)
        return stored.count == header.storedLength
            && stored.withUnsafeBytes { Frame.verify(header, headerBytes: headerBytes, stored: $0, salt: salt) }
    }

    /// The result of reading one frame: valid (every check passed) or bad, with why.
    package enum FrameRead {
        case valid(ScannedFrame)
        case bad(String)
    }

    /// Reads and checks the frame at `offset`. A frame that verifies but cannot be decoded is
    /// corruption, not a torn write: its bytes are exactly what was written.
    ///
    /// Package-visible so that the tools that walk damaged logs frame by frame
    /// (`aggstore salvage`) apply exactly these checks.
    package func readFrame(at offset: UInt64, window: inout ReadWindow, size: UInt64) throws(StoreError) -> FrameRead {
        guard size - offset >= UInt64(Format.frameHeaderLength) else {
            return .bad("incomplete frame header (\(size - offset) bytes)")
        }
        let headerBytes = try window.bytes(at: offset, count: Format.frameHeaderLength)
        let parsed = headerBytes.withUnsafeBytes { Frame.parseHeader($0) }
        let header: FrameHeader
        switch parsed {
        case let .success(value): header = value
        case .failure(.badMagic): return .bad("bad frame magic")
        case .failure(.badHeaderCRC): return .bad("frame header CRC mismatch")
        case let .failure(.unknownFlags(flags)): return .bad("unknown frame flags \(flags)")
        case let .failure(.badLength(what)): return .bad("frame \(what) out of bounds")
        }
        guard UInt64(header.frameLength) <= size - offset else {
            return .bad("frame of \(header.frameLength) bytes runs past the end of the file")
        }
        let stored = try window.bytes(at: offset + UInt64(Format.frameHeaderLength), count: header.storedLength)
        let verified = headerBytes.withUnsafeBytes { headerBuffer in
            stored.withUnsafeBytes { Frame.verify(header, headerBytes: headerBuffer, stored: $0, salt: salt) }
        }
        guard verified else { return .bad("frame CRC mismatch") }
        let payloadBytes: [UInt8]
        do throws(StoreError) {
            payloadBytes = try stored.withUnsafeBytesTyped { buffer throws(StoreError) in try Frame.payload(of: header, stored: buffer) }
        } catch {
            throw .corruption("frame verifies but does not decompress: \(error.message)", path: handle.path, offset: offset)
        }
        let payload: CommitPayload
        do throws(ByteReader.Failure) {
            payload = try payloadBytes.withUnsafeBytesTyped { buffer throws(ByteReader.Failure) in try CommitPayload.decode(buffer) }
        } catch {
            throw .corruption("frame verifies but its payload is malformed: \(error.reason) at payload offset \(error.offset)",
                              path: handle.path, offset: offset)
        }
        return .valid(ScannedFrame(offset: offset, header: header, payloadBytes: payloadBytes, payload: payload))
    }

    /// A read-ahead buffer over the file, so a scan costs one `pread` per few MiB, not per frame.
    package struct ReadWindow {
        let handle: any FileHandle
        let size: UInt64
        let windowSize: Int
        var start: UInt64 = 0
        var buffer: [UInt8] = []

        /// A window over the first `size` bytes of the file, reading `windowSize` bytes at a time.
        package init(handle: any FileHandle, size: UInt64, windowSize: Int) {
            self.handle = handle
            self.size = size
            self.windowSize = windowSize
        }

        mutating func bytes(at offset: UInt64, count: Int) throws(StoreError) -> ArraySlice<UInt8> {
            if offset < start || offset + UInt64(count) > start + UInt64(buffer.count) {
                let length = min(UInt64(max(count, windowSize)), size - offset)
                buffer = try handle.read(at: offset, count: Int(length))
                start = offset
                guard buffer.count >= count else {
                    throw .corruption("file shrank while being read", path: handle.path, offset: offset)
                }
            }
            let from = Int(offset - start)
            return buffer[from..<from + count]
        }
    }
}
