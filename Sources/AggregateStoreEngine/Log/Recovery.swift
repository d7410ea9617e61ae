package import Logging

/// Counts over the frames of the log, kept by recovery and by every commit.
package struct LogCounters: Sendable, Equatable {
    /// Valid frames (commits).
    package var frames = 0
    /// Bytes of frames on disk, headers included.
    package var frameBytes: UInt64 = 0
    /// Uncompressed payload bytes.
    package var payloadBytes: UInt64 = 0
    /// Stored payload bytes (after compression).
    package var storedBytes: UInt64 = 0
    /// Puts in the log (every version, live or dead).
    package var puts = 0
    /// Deletes (tombstones) in the log.
    package var deletes = 0
    /// Outbox events in the log.
    package var events = 0

    /// Adds one frame and its operations.
    package mutating func add(_ header: FrameHeader, _ payload: CommitPayload) {
        frames += 1
        frameBytes += UInt64(header.frameLength)
        payloadBytes += UInt64(header.uncompressedLength)
        storedBytes += UInt64(header.storedLength)
        for operation in payload.operations {
            switch operation {
            case .put: puts += 1
            case .delete: deletes += 1
            case .event: events += 1
            }
        }
    }
}

extension LogCounters {
    /// Replaces the counts of frames a compaction removed by those of the frames it wrote.
    package mutating func replace(_ removed: LogCounters, with added: LogCounters) {
        frames += added.frames - removed.frames
        frameBytes = frameBytes + added.frameBytes - removed.frameBytes
        payloadBytes = payloadBytes + added.payloadBytes - removed.payloadBytes
        storedBytes = storedBytes + added.storedBytes - removed.storedBytes
        puts += added.puts - removed.puts
        deletes += added.deletes - removed.deletes
        events += added.events - removed.events
    }
}

/// The state of a store as read back from its files.
package struct RecoveredLog {
    /// The manifest in force.
    package var manifest: Manifest
    /// An open handle per listed segment.
    package var handles: [UInt64: any FileHandle]
    /// The indexes rebuilt from the frames.
    package var index: KeyIndex
    /// The event index rebuilt from the frames.
    package var events: EventIndex
    /// Counts over the frames.
    package var counters: LogCounters
    /// The end of the last valid frame of the active segment (zeros may follow it: see
    /// ``RecoveryReport/zerosAfterLastFrame``).
    package var activeEnd: UInt64
    /// Valid frames in the active segment.
    package var framesInActive: Int
    /// The offset of the active segment's last frame, if it has one.
    package var lastFrameOffset: UInt64?
    /// The sequence number the next commit gets.
    package var nextSequence: UInt64
    /// Whether a compacted segment has been read (from it on, versions and event positions
    /// may skip what compaction dropped).
    package var compacted = false
    /// What recovery found and did.
    package var report: RecoveryReport
}

/// Opens (or creates) the files of a store and rebuilds its state (`Docs/FORMAT.md`, sections 4.1 and 5).
package struct Recovery {
    package let directory: String
    package let fileSystem: any FileSystem
    package let readOnly: Bool
    package let logger: Logger
    package let syncSites: SyncSites
    package let determinism: EngineConfiguration.Determinism?
    /// Whether an index snapshot may stand in for the log it covers: only when the engine
    /// opens; ``StorageEngine/verify()`` and every reader of the whole log read all of it.
    package let usesSnapshot: Bool

    package init(directory: String, fileSystem: any FileSystem, readOnly: Bool, logger: Logger, syncSites: SyncSites = .all,
                 determinism: EngineConfiguration.Determinism? = nil, usesSnapshot: Bool = false) {
        self.directory = directory
        self.fileSystem = fileSystem
        self.readOnly = readOnly
        self.logger = logger
        self.syncSites = syncSites
        self.determinism = determinism
        self.usesSnapshot = usesSnapshot
    }

    /// Reads the store, creating it when there is none (unless read-only). The caller holds the lock.
    ///
    /// Every check runs before anything is changed, so an open that fails leaves the files as
    /// they were. Only then does a writable open cut a torn tail, make what it recovered
    /// durable and remove leftovers.
    /// - Parameter visit: called with every valid frame in sequence order, e.g. by ``StorageEngine/verify()``.
    package func run(visit: (SegmentScanner.ScannedFrame, UInt64) -> Void = { _, _ in }) throws(StoreError) -> RecoveredLog {
        var report = RecoveryReport()
        var names = try fileSystem.listDirectory(directory)
        let manifest: Manifest
        if names.contains(Format.manifestFileName) {
            manifest = try readManifest()
        } else {
            manifest = try createStore(leftovers: names, report: &report)
            names = try fileSystem.listDirectory(directory)
        }
        let snapshot = usesSnapshot && names.contains(Format.snapshotFileName) ? readSnapshot(matching: manifest) : nil
        var log = try scan(manifest, snapshot: snapshot.flatMap { try? $0.get() }, report: report, visit: visit)
        if case let .failure(defect)? = snapshot { log.report.snapshot = .ignored(defect.description) }
        do {
            var leftovers = try unlistedSegments(names: names, manifest: manifest)
            for name in [Format.manifestTemporaryFileName, Format.snapshotTemporaryFileName] where names.contains(name) {
                leftovers.append(name)
            }
            if case .ignored? = log.report.snapshot { leftovers.append(Format.snapshotFileName) }
            if readOnly {
                log.report.leftoverFiles = leftovers
            } else {
                try repair(&log, leftovers: leftovers)
            }
        } catch {
            for handle in log.handles.values { try? handle.close() }
            throw error
        }
        if let torn = log.report.tornTail {
            logger.warning("torn tail at the end of the log", metadata: [
                "segment.path": "\(torn.path)", "segment.offset": "\(torn.offset)",
                "torn.bytes": "\(torn.bytes)", "torn.frames": "\(torn.frames)",
                "torn.reason": "\(torn.reason)", "torn.truncated": "\(torn.truncated)",
            ])
        }
        return log
    }

    private func readManifest() throws(StoreError) -> Manifest {
        try Manifest.read(in: directory, fileSystem: fileSystem)
    }

    /// The changes a writable open makes once every check has passed.
    private func repair(_ log: inout RecoveredLog, leftovers: [String]) throws(StoreError) {
        let active = log.handles[log.manifest.segments.last!.id]!
        if var torn = log.report.tornTail {
            try active.truncate(to: torn.offset)
            torn.truncated = true
            log.report.tornTail = torn
        } else if log.report.zerosAfterLastFrame > 0 {
            try active.truncate(to: log.activeEnd)
        }
        // What was just read may exist only in the page cache (a process killed before its
        // fsync): make it durable before serving it, so nothing a reader sees can vanish later.
        // That covers the directory entries too: the manifest's rename, the segments' creation,
        // and the store directory's own entry in its parent.
        try syncSites.run(.recoveryActiveSegment) { () throws(StoreError) in try active.sync(.full) }
        try syncSites.run(.recoveryStoreDirectory) { () throws(StoreError) in try fileSystem.syncDirectory(directory) }
        try syncSites.run(.recoveryParentDirectory) { () throws(StoreError) in
            try fileSystem.syncDirectory(parentDirectory(of: directory))
        }
        // Removals need no directory fsync: if one is lost, the next open removes the file again.
        for name in leftovers {
            try fileSystem.removeFile(path(name))
            log.report.removedFiles.append(name)
        }
    }

    private func path(_ name: String) -> String { joinPath(directory, name) }

    /// Creates segment 1 and the first manifest, after removing what an interrupted creation left.
    private func createStore(leftovers names: [String], report: inout RecoveryReport) throws(StoreError) -> Manifest {
        let segmentNames = names.filter { SegmentHeader.segmentId(fromFileName: $0) != nil }
        for name in segmentNames {
            let handle = try fileSystem.open(path(name), mode: .readOnly)
            let size = try handle.size()
            try handle.close()
            if size > UInt64(Format.segmentHeaderLength) {
                throw .corruption("\(Format.manifestFileName) is missing but segment \(name) holds frames",
                                  path: path(Format.manifestFileName), offset: 0)
            }
        }
        guard !readOnly else {
            throw StoreError(.notFound, "no store at \(directory) (no \(Format.manifestFileName))", path: directory)
        }
        for name in segmentNames {
            try fileSystem.removeFile(path(name))
            report.removedFiles.append(name)
        }
        let salt = determinism?.salt ?? UInt64.random(in: 1...UInt64.max)
        let first = SegmentHeader(segmentId: 1, salt: salt, baseSequence: 1)
        let handle = try fileSystem.open(path(SegmentHeader.fileName(for: 1)), mode: .createNew)
        do {
            try handle.write(first.encoded(), at: 0)
            try syncSites.run(.createSegmentFile) { () throws(StoreError) in try handle.sync(.full) }
        } catch {
            try? handle.close()
            throw error
        }
        try handle.close()
        try syncSites.run(.createSegmentDirectory) { () throws(StoreError) in try fileSystem.syncDirectory(directory) }
        let manifest = Manifest(salt: salt, createdAt: determinism?.time ?? currentMicroseconds(), segments: [
            Manifest.Segment(id: 1, baseSequence: 1, sealedLength: Format.activeSegmentLength, lastSequence: 0),
        ])
        // The directory's own entry in its parent is made durable by the repair step below.
        try manifest.install(in: directory, fileSystem: fileSystem, syncSites: syncSites,
                             fileSite: .createManifestFile, directorySite: nil)
        report.created = true
        logger.info("created store", metadata: ["store.path": "\(directory)", "store.salt": "\(salt)"])
        return manifest
    }

    /// The index snapshot, if it verifies and still describes the start of this log: the
    /// segments it lists, but the last, must be the manifest's first ones, unchanged, and the
    /// last one must follow them. (That its last frame is still where it was is checked when
    /// the segment is read.)
    private func readSnapshot(matching manifest: Manifest) -> Result<IndexSnapshot, SnapshotDefect> {
        let bytes: [UInt8]
        do throws(StoreError) {
            let handle = try fileSystem.open(path(Format.snapshotFileName), mode: .readOnly)
            defer { try? handle.close() }
            bytes = try handle.read(at: 0, count: Int(try handle.size()))
        } catch {
            return .failure(SnapshotDefect("it cannot be read: \(error)"))
        }
        switch IndexSnapshot.decode(bytes, salt: manifest.salt) {
        case let .failure(defect):
            return .failure(defect)
        case let .success(snapshot):
            let covered = snapshot.segments.count
            guard covered <= manifest.segments.count,
                  Array(manifest.segments.prefix(covered - 1)) == Array(snapshot.segments.dropLast()),
                  manifest.segments[covered - 1].id == snapshot.segments[covered - 1].id,
                  manifest.segments[covered - 1].baseSequence == snapshot.segments[covered - 1].baseSequence else {
                return .failure(SnapshotDefect("the log's segments changed since it was written (a compaction)"))
            }
            guard lastFrameMatches(snapshot) else {
                return .failure(SnapshotDefect("the log no longer holds the last frame it covers where it was"))
            }
            return .success(snapshot)
        }
    }

    /// Scans every listed segment in order and rebuilds the indexes; with a snapshot, starts
    /// from its indexes and reads only the log after it.
    private func scan(_ manifest: Manifest, snapshot: IndexSnapshot?, report: RecoveryReport,
                      visit: (SegmentScanner.ScannedFrame, UInt64) -> Void) throws(StoreError) -> RecoveredLog {
        var log = RecoveredLog(manifest: manifest, handles: [:], index: snapshot?.index ?? KeyIndex(salt: manifest.salt),
                               events: snapshot?.events ?? EventIndex(), counters: snapshot?.counters ?? LogCounters(),
                               activeEnd: 0, framesInActive: 0, nextSequence: 1, report: report)
        log.compacted = snapshot?.compacted ?? false
        if snapshot != nil { log.report.snapshot = .used }
        let coveredSegments = snapshot?.segments.count ?? 0
        var success = false
        defer {
            if !success { for handle in log.handles.values { try? handle.close() } }
        }
        for (position, entry) in manifest.segments.enumerated() {
            let segmentPath = path(SegmentHeader.fileName(for: entry.id))
            guard entry.id <= UInt64(UInt32.max) else {
                throw .corruption("segment id \(entry.id) is out of range", path: path(Format.manifestFileName), offset: 0)
            }
            guard try fileSystem.kind(of: segmentPath) == .file else {
                throw .corruption("segment \(entry.id) listed in the manifest is missing", path: segmentPath, offset: 0)
            }
            let handle = try fileSystem.open(segmentPath, mode: readOnly ? .readOnly : .readWrite)
            log.handles[entry.id] = handle
            let header = try SegmentHeader.decode(try handle.read(at: 0, count: Format.segmentHeaderLength), path: segmentPath)
            guard header.segmentId == entry.id, header.salt == manifest.salt else {
                throw .corruption("segment header names segment \(header.segmentId) of another store or position", path: segmentPath, offset: 8)
            }
            guard header.baseSequence == log.nextSequence, entry.baseSequence == log.nextSequence else {
                throw .corruption("segment starts at sequence \(header.baseSequence), expected \(log.nextSequence)", path: segmentPath, offset: 24)
            }
            let isLast = position == manifest.segments.count - 1
            if snapshot != nil, position < coveredSegments - 1 {
                // Covered by the snapshot: only checked to be the sealed segment it recorded
                // (zeros past its length are space written ahead whose cut was not synced).
                let size = try handle.size()
                var zerosPast = false
                if size > entry.sealedLength {
                    zerosPast = try SegmentScanner.isZero(handle, from: entry.sealedLength, size: size)
                }
                guard size == entry.sealedLength || zerosPast else {
                    throw .corruption("sealed segment is \(size) bytes; the manifest records \(entry.sealedLength)",
                                      path: segmentPath, offset: 0)
                }
                if header.isCompacted { log.compacted = true }
                log.nextSequence = entry.lastSequence + 1
                log.report.segments += 1
                continue
            }
            var resume: SegmentScanner.ResumePoint?
            if let snapshot, position == coveredSegments - 1 { resume = resumePoint(of: snapshot) }
            if header.isCompacted {
                guard !isLast else {
                    throw .corruption("a compacted segment is the active one", path: segmentPath, offset: 6)
                }
                // From here on, compaction may have dropped versions and events: they must
                // still increase, but need not be consecutive.
                log.compacted = true
            }
            let compacted = log.compacted
            let scanner = SegmentScanner(handle: handle, salt: manifest.salt, header: header, isLast: isLast)
            let segment = UInt32(entry.id)
            // Moved out of `log` while the scan extends them, so they stay uniquely referenced
            // and are not copied once per segment.
            var index = log.index
            var events = log.events
            (log.index, log.events) = (KeyIndex(salt: manifest.salt), EventIndex())
            var counters = log.counters
            let outcome = try scanner.scan(resumingAt: resume) { frame throws(StoreError) in
                guard frame.offset <= UInt64(UInt32.max) else {
                    throw .corruption("frame lies beyond the largest segment size (\(UInt32.max) bytes)", path: segmentPath, offset: frame.offset)
                }
                if let violation = index.versionViolation(in: frame.payload, consecutive: !compacted) {
                    throw .corruption("frame breaks the version sequence: \(violation)", path: segmentPath, offset: frame.offset)
                }
                if let violation = events.positionViolation(in: frame.payload, consecutive: !compacted) {
                    throw .corruption("frame breaks the event position sequence: \(violation)", path: segmentPath, offset: frame.offset)
                }
                let address = FrameAddress(segment: segment, offset: frame.offset)
                index.apply(frame.payload, sequence: frame.header.sequence, frame: address, storedLength: frame.header.storedLength)
                events.apply(frame.payload, sequence: frame.header.sequence, frame: address, storedLength: frame.header.storedLength)
                counters.add(frame.header, frame.payload)
                visit(frame, entry.id)
            }
            log.index = index
            log.events = events
            log.counters = counters
            if !entry.isActive {
                let size = try handle.size()
                // A compacted segment covers its range whether or not it kept its last commit.
                let lastSequenceFits = header.isCompacted ? outcome.lastSequence <= entry.lastSequence
                                                          : outcome.lastSequence == entry.lastSequence
                // Zeros past the sealed length are space written ahead of the frames whose cut
                // at the roll was not synced.
                guard outcome.endOffset == entry.sealedLength, size == entry.sealedLength + outcome.zeroTail, lastSequenceFits else {
                    throw .corruption("sealed segment ends at \(outcome.endOffset) of \(size) bytes with sequence \(outcome.lastSequence); the manifest records \(entry.sealedLength) bytes and sequence \(entry.lastSequence)",
                                      path: segmentPath, offset: outcome.endOffset)
                }
            }
            log.nextSequence = (entry.isActive ? outcome.lastSequence : entry.lastSequence) + 1
            log.activeEnd = outcome.endOffset
            log.report.zerosAfterLastFrame = outcome.zeroTail
            let coveredFrames = resume == nil ? 0 : snapshot?.framesInLastSegment ?? 0
            log.framesInActive = outcome.frames + coveredFrames
            log.lastFrameOffset = outcome.lastFrameOffset ?? (coveredFrames > 0 ? snapshot?.lastFrameOffset : nil)
            log.report.segments += 1
            log.report.frames += outcome.frames
            log.report.tornTail = outcome.tornTail
        }
        // Frames counts every frame of the log, those the snapshot covers included.
        log.report.framesScanned = log.report.frames
        log.report.frames = log.counters.frames
        log.report.lastSequence = log.nextSequence - 1
        success = true
        return log
    }

    /// Where to resume the scan of the segment a snapshot stops in.
    private func resumePoint(of snapshot: IndexSnapshot) -> SegmentScanner.ResumePoint {
        let lastFrame = FrameHeader(flags: snapshot.lastFrameEndsWrite ? Format.frameFlagEndsWrite : 0,
                                    sequence: snapshot.lastSequence, storedLength: 0, uncompressedLength: 0,
                                    maskedFrameCRC: snapshot.lastFrameCRC, writeIndex: snapshot.lastFrameWriteIndex)
        return SegmentScanner.ResumePoint(offset: snapshot.endOffset, lastSequence: snapshot.lastSequence, lastFrame: lastFrame)
    }

    /// Whether the frame a snapshot names as its last is still where it was, unchanged (same
    /// header and CRC) and ending where the snapshot ends: otherwise the log was rewritten
    /// since (a power loss took unsynced frames and others took their place), and the
    /// snapshot does not describe it.
    private func lastFrameMatches(_ snapshot: IndexSnapshot) -> Bool {
        guard let segment = snapshot.segments.last else { return false }
        do throws(StoreError) {
            let handle = try fileSystem.open(path(SegmentHeader.fileName(for: segment.id)), mode: .readOnly)
            defer { try? handle.close() }
            guard try handle.size() >= snapshot.endOffset else { return false }
            guard snapshot.framesInLastSegment > 0 else { return snapshot.endOffset == UInt64(Format.segmentHeaderLength) }
            let bytes = try handle.read(at: snapshot.lastFrameOffset, count: Format.frameHeaderLength)
            guard bytes.count == Format.frameHeaderLength,
                  let found = bytes.withUnsafeBytes({ try? Frame.parseHeader($0).get() }) else { return false }
            return found.sequence == snapshot.lastSequence && found.maskedFrameCRC == snapshot.lastFrameCRC
                && found.writeIndex == snapshot.lastFrameWriteIndex && found.endsWrite == snapshot.lastFrameEndsWrite
                && snapshot.lastFrameOffset + UInt64(found.frameLength) == snapshot.endOffset
        } catch {
            return false
        }
    }

    /// Segment files the manifest does not list, returned for removal. Their data is in no
    /// acknowledged commit:
    /// - an id at or past the manifest's next id: created after this manifest, by a roll that
    ///   failed before its manifest was installed (a roll writes no frame before that), or by
    ///   a compaction that did not finish;
    /// - an id below it: a segment a compaction replaced, whose manifest is durable.
    private func unlistedSegments(names: [String], manifest: Manifest) throws(StoreError) -> [String] {
        let listed = Set(manifest.segments.map(\.id))
        return names.filter { name in
            guard let id = SegmentHeader.segmentId(fromFileName: name) else { return false }
            return !listed.contains(id)
        }
    }
}
