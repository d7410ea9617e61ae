import Dispatch
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the compactor shares with the rest of the engine, under its own lock.
package struct CompactionState: Sendable {
    /// An automatic compaction is queued or running.
    var isScheduled = false
    /// Set by ``StorageEngine/close()``: a running compaction abandons its work.
    var isCancelled = false
    /// The ids of the segments a running compaction is writing, not in any manifest yet, and
    /// of those it replaced and has not removed yet: files ``StorageEngine/verify()`` expects.
    var outputIds: Set<UInt64> = []
    var replacedIds: Set<UInt64> = []
    /// Events at or before this position may be dropped (see ``StorageEngine/releaseEvents(through:)``).
    var eventHorizon: UInt64 = 0
    /// For each compacted segment this engine wrote: the live bytes it held then (records and
    /// needed events), so that only what died since counts as dead and a segment is not
    /// compacted over and over for the tombstones it must keep.
    var liveBytesWhenWritten: [UInt32: UInt64] = [:]
}

extension StorageEngine {
    /// Compacts now: every sealed segment at least `minimumDeadRatio` dead (default: the
    /// configured ``CompactionSettings/minimumDeadRatio``) is rewritten with only its live
    /// records, the tombstones still needed and the events a durable cursor still needs,
    /// then replaced (`Docs/FORMAT.md`, section 4.4). Commits and reads go on meanwhile.
    /// Waits for an automatic compaction in progress first.
    ///
    /// Must not be called from the body of a read that is still running (a `scan` callback):
    /// the compaction waits for the reads of the segments it replaces to end.
    ///
    /// - Parameter progress: Called from the compacting thread as input is read.
    /// - Returns: What was done; an empty report when no segment qualified.
    /// - Throws: ``StoreError/Code/noSpace`` when the disk has too little room for the output
    ///   (nothing is changed); ``StoreError/Code/io`` or ``StoreError/Code/noSpace`` when a
    ///   write fails (the partial output is removed and the store is as it was);
    ///   ``StoreError/Code/closed``, ``StoreError/Code/readOnly``, ``StoreError/Code/storeFailed``.
    @discardableResult
    public func compact(minimumDeadRatio: Double? = nil,
                        progress: (@Sendable (CompactionProgress) -> Void)? = nil) throws(StoreError) -> CompactionReport {
        let ratio = minimumDeadRatio ?? configuration.compaction.minimumDeadRatio
        guard (0...1).contains(ratio) else {
            throw StoreError(.invalidArgument, "the minimum dead ratio \(ratio) must be between 0 and 1")
        }
        guard !configuration.readOnly else { throw StoreError(.readOnly, "the store was opened read-only") }
        let outcome = compactionQueue.sync {
            Result { () throws(StoreError) in try compactSealedSegments(minimumDeadRatio: ratio, progress: progress) }
        }
        return try outcome.get()
    }

    /// Lets compaction drop the events at or before `position`: the owner of the subscriber
    /// cursors calls it with the lowest durable cursor. Until then every event is kept. The
    /// horizon only moves forward; the log's last event is always kept, so positions never
    /// restart.
    public func releaseEvents(through position: UInt64) {
        compactionState.withLock { $0.eventHorizon = max($0.eventHorizon, position) }
    }

    /// Starts an automatic compaction on the background queue, unless one is queued, the
    /// settings turn it off, or no sealed segment qualifies. Called after a segment is sealed.
    func scheduleCompactionIfNeeded() {
        guard configuration.compaction.isAutomatic, !configuration.readOnly else { return }
        let start = compactionState.withLock { state -> Bool in
            guard !state.isScheduled, !state.isCancelled else { return false }
            state.isScheduled = true
            return true
        }
        guard start else { return }
        compactionQueue.async { [self] in
            defer { compactionState.withLock { $0.isScheduled = false } }
            guard !compactionState.withLock({ $0.isCancelled }) else { return }
            do throws(StoreError) {
                let report = try compactSealedSegments(minimumDeadRatio: configuration.compaction.minimumDeadRatio, progress: nil)
                if report.segmentsCompacted > 0 {
                    logger.info("compacted", metadata: compactionMetadata(report))
                }
            } catch where error.code == .closed {
                // The store closed under it; nothing was changed.
            } catch {
                logger.error("automatic compaction failed; the store is unchanged", metadata: [
                    "store.path": "\(path)", "error": "\(error)",
                ])
            }
        }
    }

    /// Stops compaction for close: a running one abandons its output; waits for it.
    func stopCompaction() {
        compactionState.withLock { $0.isCancelled = true }
        // On the queue itself (the last reference was dropped by a compaction block), the
        // compaction is over already.
        if DispatchQueue.getSpecific(key: compactionQueueKey) == nil { compactionQueue.sync {} }
    }

    private func compactionMetadata(_ report: CompactionReport) -> Logger.Metadata {
        [
            "store.path": "\(path)", "compaction.segments": "\(report.segmentsCompacted)",
            "compaction.bytesBefore": "\(report.bytesBefore)", "compaction.bytesAfter": "\(report.bytesAfter)",
            "compaction.recordsMoved": "\(report.recordsMoved)", "compaction.tombstonesDropped": "\(report.tombstonesDropped)",
            "compaction.eventsDropped": "\(report.eventsDropped)", "compaction.seconds": "\(report.seconds)",
        ]
    }

    /// Compacts every run of consecutive sealed segments that qualify. On the compaction queue.
    private func compactSealedSegments(minimumDeadRatio: Double,
                                       progress: (@Sendable (CompactionProgress) -> Void)?) throws(StoreError) -> CompactionReport {
        // A compaction queued as the store closed must not touch the files it is closing.
        if compactionState.withLock({ $0.isCancelled }) { throw StoreError(.closed, "the store is closed") }
        let started = monotonicSeconds()
        var total = CompactionReport()
        var snapshot: IndexSnapshot?
        // The snapshot of the store before no longer matches its segments: one of the compacted
        // log is written at the end, outside the log lock (commits go on meanwhile).
        defer { if let snapshot { store(snapshot) } }
        for run in try qualifyingRuns(minimumDeadRatio: minimumDeadRatio) {
            let report: CompactionReport
            (report, snapshot) = try compact(run, progress: progress)
            total.segmentsCompacted += report.segmentsCompacted
            total.segmentsWritten += report.segmentsWritten
            total.bytesBefore += report.bytesBefore
            total.bytesAfter += report.bytesAfter
            total.recordsMoved += report.recordsMoved
            total.recordsOverwrittenMeanwhile += report.recordsOverwrittenMeanwhile
            total.tombstonesDropped += report.tombstonesDropped
            total.eventsDropped += report.eventsDropped
        }
        total.seconds = monotonicSeconds() - started
        return total
    }

    /// The runs of consecutive sealed segments whose dead ratio is at least `minimumDeadRatio`.
    /// A segment's live bytes are its live records' bytes, plus those of the events a cursor
    /// still needs (so a segment that only keeps needed events is not rewritten again).
    private func qualifyingRuns(minimumDeadRatio: Double) throws(StoreError) -> [[Manifest.Segment]] {
        // Settled: a group that rolled has written and fsynced its first frames into what is
        // now a sealed segment, but may not have applied them yet; until it has, the index
        // does not show them live, and a run would drop them as dead.
        let sealed = try withSettledLog { log throws(StoreError) -> [Manifest.Segment] in
            try checkWritable(writer.withLock { $0 })
            return Array(log.manifest.segments.dropLast())
        }
        let space = self.space(ofSegments: sealed.map { ($0.id, $0.sealedLength - UInt64(Format.segmentHeaderLength)) })
        var runs: [[Manifest.Segment]] = []
        var current: [Manifest.Segment] = []
        for (segment, (_, dead)) in zip(sealed, space) {
            let bytes = segment.sealedLength - UInt64(Format.segmentHeaderLength)
            let qualifies = bytes > 0 && dead > 0 && Double(dead) / Double(bytes) >= minimumDeadRatio
            if qualifies {
                current.append(segment)
            } else if !current.isEmpty {
                runs.append(current)
                current = []
            }
        }
        if !current.isEmpty { runs.append(current) }
        return runs
    }

    /// Each segment's live and dead bytes, as compaction reckons them: its live records and
    /// the events a cursor still needs are live, the rest of its frame bytes dead; but a
    /// compacted segment counts as dead only what died since it was written (what it kept for
    /// a cursor stays until the cursor passes), so it is not rewritten again and again.
    func space(ofSegments segments: [(id: UInt64, frameBytes: UInt64)]) -> [(live: UInt64, dead: UInt64)] {
        let baselines = compactionState.withLock { $0.liveBytesWhenWritten }
        let live = liveBytesBySegment()
        return segments.map { segment in
            let liveBytes = min(segment.frameBytes, live[UInt32(segment.id), default: 0])
            let dead = baselines[UInt32(segment.id)].map { $0 > liveBytes ? $0 - liveBytes : 0 } ?? segment.frameBytes - liveBytes
            return (liveBytes, dead)
        }
    }

    /// Each segment's live bytes: its live records, and the events a cursor still needs.
    private func liveBytesBySegment() -> [UInt32: UInt64] {
        let horizon = compactionState.withLock { $0.eventHorizon }
        return state.withLock { state in
            var live = state.index.liveBytesBySegment
            for run in state.events.runs where run.lastPosition > horizon {
                live[run.segment, default: 0] += UInt64(run.bytes)
            }
            return live
        }
    }

    /// Rewrites one run of consecutive sealed segments and installs the result.
    /// - Returns: What was done, and the index snapshot of the log as the run left it.
    private func compact(_ run: [Manifest.Segment], progress: (@Sendable (CompactionProgress) -> Void)?)
        throws(StoreError) -> (report: CompactionReport, snapshot: IndexSnapshot?) {
        var report = CompactionReport()
        report.segmentsCompacted = run.count
        report.bytesBefore = run.reduce(0) { $0 + $1.sealedLength }
        // Dropping a tombstone is safe only when no older version of its key can survive: when
        // the run starts the log, every older version is in the run and is not copied.
        let startsTheLog = log.withLock { $0.manifest.segments.first?.id == run.first?.id }
        let (horizon, margin) = compactionState.withLock { ($0.eventHorizon, configuration.compaction.freeSpaceMargin) }
        let lastEventPosition = state.withLock { $0.events.lastPosition }

        let estimate = estimatedOutputBytes(of: run, horizon: horizon)
        let free = try fileSystem.freeSpace(at: path)
        guard Double(free) >= Double(estimate) * (1 + margin) else {
            throw StoreError(.noSpace, "compaction needs about \(estimate) bytes (plus \(Int(margin * 100)) %) and \(free) are free; nothing was changed",
                             path: path)
        }

        var output = CompactionOutput(engine: self, baseSequence: run[0].baseSequence)
        var plan = CompactionPlan()
        var snapshot: IndexSnapshot?
        let frameBytes = report.bytesBefore - UInt64(Format.segmentHeaderLength * run.count)
        do throws(StoreError) {
            var bytesRead: UInt64 = 0
            for segment in run {
                guard let handle = segments.withLock({ $0[UInt32(segment.id)] }) else { throw StoreError(.closed, "the store is closed") }
                let header = try SegmentHeader.decode(try handle.read(at: 0, count: Format.segmentHeaderLength), path: handle.path)
                let scanner = SegmentScanner(handle: handle, salt: salt, header: header, isLast: false)
                _ = try scanner.scan { frame throws(StoreError) in
                    if compactionState.withLock({ $0.isCancelled }) { throw StoreError(.closed, "the store is closing") }
                    plan.input.add(frame.header, frame.payload)
                    try rewrite(frame, in: UInt32(segment.id), startsTheLog: startsTheLog, horizon: horizon,
                                lastEventPosition: lastEventPosition, output: &output, plan: &plan, report: &report)
                    bytesRead += UInt64(frame.header.frameLength)
                    progress?(CompactionProgress(bytesRead: bytesRead, bytesTotal: frameBytes))
                }
            }
            let written = try output.finish(lastSequence: run[run.count - 1].lastSequence)
            report.segmentsWritten = written.count
            report.bytesAfter = written.reduce(0) { $0 + $1.entry.sealedLength }
            snapshot = try install(run: run, written: written, plan: plan, report: &report)
        } catch {
            output.abandon()
            throw error
        }
        removeReplaced(run)
        return (report, snapshot)
    }

    /// The bytes the run's output will take at most: its live records and needed events.
    private func estimatedOutputBytes(of run: [Manifest.Segment], horizon: UInt64) -> UInt64 {
        let ids = Set(run.map { UInt32($0.id) })
        let live = state.withLock { state -> UInt64 in
            var bytes = ids.reduce(0) { $0 + state.index.liveBytesBySegment[$1, default: 0] }
            for event in state.events.runs where ids.contains(event.segment) && event.lastPosition > horizon {
                bytes += UInt64(event.bytes)
            }
            return bytes
        }
        // Frame and operation headers, and a segment header per output file.
        return live + live / 4 + UInt64(Format.segmentHeaderLength) * UInt64(run.count)
    }

    /// Copies what is still needed of one frame to the output.
    private func rewrite(_ frame: SegmentScanner.ScannedFrame, in segment: UInt32, startsTheLog: Bool, horizon: UInt64,
                         lastEventPosition: UInt64, output: inout CompactionOutput, plan: inout CompactionPlan,
                         report: inout CompactionReport) throws(StoreError) {
        let oldAddress = FrameAddress(segment: segment, offset: frame.offset)
        let lastEvent = frame.payload.firstEventPosition.map { $0 + UInt64(frame.payload.eventCount) - 1 }
        // A commit's events stay together; the log's last event always stays, so that the
        // next position is known after a reopen.
        let keepEvents = lastEvent.map { $0 > horizon || $0 == lastEventPosition } ?? false
        var kept: [CommitPayload.Operation] = []
        var movedPuts: [(table: String, id: String, old: RecordLocation)] = []
        state.withLock { state in
            for operation in frame.payload.operations {
                switch operation {
                case let .put(table, id, _, _, record):
                    let old = RecordLocation(segment: segment, storedLength: UInt32(frame.header.storedLength),
                                             frameOffset: frame.offset, recordOffset: UInt32(record.lowerBound),
                                             recordLength: UInt32(record.count))
                    if state.index.entry(table: table, id: id)?.location == old {
                        kept.append(operation)
                        movedPuts.append((table, id, old))
                    }
                case let .delete(table, id, _):
                    guard let entry = state.index.entry(table: table, id: id), !entry.isLive,
                          entry.sequence == frame.header.sequence else { continue }
                    if startsTheLog && configuration.compactionDropsTombstones {
                        plan.droppedTombstones.append((table, id, frame.header.sequence))
                    } else {
                        kept.append(operation)
                    }
                case .event:
                    if keepEvents { kept.append(operation) } else { report.eventsDropped += 1 }
                }
            }
        }
        guard !kept.isEmpty else { return }
        let (bytes, payload) = CommitPayload.encode(keeping: kept, of: frame.payload, source: frame.payloadBytes)
        let frameBytes = Frame.encode(sequence: frame.header.sequence, payload: bytes, salt: salt)
        let address = try output.append(frameBytes, sequence: frame.header.sequence)
        let storedLength = UInt32(frameBytes.count - Format.frameHeaderLength)
        plan.output.add(FrameHeader(flags: 0, sequence: frame.header.sequence, storedLength: Int(storedLength),
                                    uncompressedLength: bytes.count, maskedFrameCRC: 0), payload)
        var puts = movedPuts.makeIterator()
        for case let .put(_, _, _, _, record) in payload.operations {
            let (table, id, old) = puts.next()!
            let new = RecordLocation(segment: address.segment, storedLength: storedLength, frameOffset: address.offset,
                                     recordOffset: UInt32(record.lowerBound), recordLength: UInt32(record.count))
            plan.moves.append((table, id, old, new))
        }
        if keepEvents, lastEvent != nil { plan.movedEventFrames[oldAddress] = (address, storedLength) }
    }

    /// Installs the output: the new manifest (durable), then the indexes, all under the log
    /// lock so no roll or commit group interleaves. The index update of each moved record is
    /// a compare-and-swap on its old location: a commit made during the compaction wins.
    /// - Returns: The index snapshot of the log as the compaction left it, to be written.
    private func install(run: [Manifest.Segment], written: [CompactionOutput.Written], plan: CompactionPlan,
                         report: inout CompactionReport) throws(StoreError) -> IndexSnapshot? {
        try withSettledLog { log throws(StoreError) -> IndexSnapshot? in
            try checkWritable(writer.withLock { $0 })
            if compactionState.withLock({ $0.isCancelled }) { throw StoreError(.closed, "the store is closing") }
            var manifest = log.manifest
            guard let start = manifest.segments.firstIndex(where: { $0.id == run[0].id }),
                  Array(manifest.segments[start...].prefix(run.count).map(\.id)) == run.map(\.id) else {
                throw StoreError(.invalidArgument, "the segments being compacted are no longer in the manifest")
            }
            manifest.segments.replaceSubrange(start..<start + run.count, with: written.map(\.entry))
            var renamed = false
            do throws(StoreError) {
                try manifest.install(in: path, fileSystem: fileSystem, syncSites: configuration.syncSites,
                                     fileSite: .compactionManifestFile, directorySite: .compactionManifestDirectory,
                                     renamed: &renamed)
            } catch {
                // Before the rename the old manifest stands and the output is dropped; after
                // it, which manifest is durable is unknown: stop writes until a reopen decides.
                if renamed {
                    writer.withLock { $0.failure = error }
                    logger.critical("store stopped accepting writes", metadata: [
                        "store.path": "\(path)", "store.operation": "installing a compacted manifest", "error": "\(error)",
                    ])
                }
                throw error
            }
            log.manifest = manifest
            log.hasCompactedSegments = true
            segments.withLock { handles in
                for output in written { handles[UInt32(output.entry.id)] = output.handle }
            }
            let replaced = Set(run.map { UInt32($0.id) })
            var moved = 0
            state.withLock { state in
                for move in plan.moves where state.index.move(table: move.table, id: move.id, from: move.old, to: move.new) {
                    moved += 1
                }
                for tombstone in plan.droppedTombstones {
                    state.index.forget(table: tombstone.table, id: tombstone.id, tombstoneSequence: tombstone.sequence)
                }
                state.events.compacted(replaced: replaced, moved: plan.movedEventFrames)
                state.counters.replace(plan.input, with: plan.output)
                state.manifest = manifest
                // Readers from now on see the new locations; the replaced segments stay open
                // until the readers of earlier epochs are done.
                state.epoch += 1
            }
            report.recordsMoved = moved
            report.recordsOverwrittenMeanwhile = plan.moves.count - moved
            report.tombstonesDropped = plan.droppedTombstones.count
            let live = liveBytesBySegment()
            compactionState.withLock { compaction in
                for output in written {
                    compaction.outputIds.remove(output.entry.id)
                    compaction.liveBytesWhenWritten[UInt32(output.entry.id)] = live[UInt32(output.entry.id), default: 0]
                }
                for segment in run {
                    compaction.liveBytesWhenWritten[UInt32(segment.id)] = nil
                    compaction.replacedIds.insert(segment.id)
                }
            }
            return configuration.writesIndexSnapshot ? captureSnapshot(log) : nil
        }
    }

    /// Closes and deletes the segments a compaction replaced, once no reader that might still
    /// read them is left. A failure here changes nothing that matters: a file left behind is
    /// removed by the next open.
    private func removeReplaced(_ run: [Manifest.Segment]) {
        let installed = state.withLock { $0.epoch }
        while state.withLock({ state in state.pins.keys.contains { $0 < installed } }) {
            usleep(100)
        }
        let handles = segments.withLock { handles in run.compactMap { handles.removeValue(forKey: UInt32($0.id)) } }
        for handle in handles { try? handle.close() }
        // No directory fsync: the manifest that dropped them is durable, and a removal that a
        // crash undoes is redone by the next open, as recovery's own removals are.
        do throws(StoreError) {
            for segment in run { try fileSystem.removeFile(joinPath(path, SegmentHeader.fileName(for: segment.id))) }
            compactionState.withLock { state in for segment in run { state.replacedIds.remove(segment.id) } }
        } catch {
            compactionState.withLock { state in for segment in run { state.replacedIds.remove(segment.id) } }
            logger.warning("could not remove a compacted segment; the next open removes it", metadata: [
                "store.path": "\(path)", "error": "\(error)",
            ])
        }
    }
}

/// What a compaction run learned while copying, applied at install.
struct CompactionPlan {
    /// Each live record copied: its key, old and new locations.
    var moves: [(table: String, id: String, old: RecordLocation, new: RecordLocation)] = []
    /// Tombstones not copied, by key and the sequence of their commit.
    var droppedTombstones: [(table: String, id: String, sequence: UInt64)] = []
    /// Where each frame with kept events went.
    var movedEventFrames: [FrameAddress: (address: FrameAddress, storedLength: UInt32)] = [:]
    /// Counts of the frames read and of the frames written.
    var input = LogCounters()
    var output = LogCounters()
}
