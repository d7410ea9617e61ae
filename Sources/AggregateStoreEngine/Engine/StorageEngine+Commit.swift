import Dispatch
import Logging
import Synchronization

extension StorageEngine {
    /// The log's state, guarded by the log lock, which the group being written holds across
    /// its `pwrite`, `fdatasync` and index update: what is in the log and where it ends.
    package struct LogState: Sendable {
        package var manifest: Manifest
        package var activeHandle: any FileHandle
        package var activeId: UInt64
        package var activeEnd: UInt64
        package var framesInActive: Int
        /// The sequence number and the event position that follow the last commit in the log.
        package var nextSequence: UInt64
        package var nextEventPosition: UInt64
        /// The offset of the active segment's last frame, if it has one (for the index snapshot).
        package var lastFrameOffset: UInt64?
        /// Whether the log holds a compacted segment (for the index snapshot).
        package var hasCompactedSegments = false
    }

    /// Commits a batch: all its puts, deletes and events become durable and visible together,
    /// or none of them do.
    ///
    /// The batch is encoded once, LZ4-compressed when that shrinks it, checksummed and written
    /// with one `pwrite` and, with ``Durability/synchronous``, `fdatasync`ed; only then is it
    /// acknowledged and applied to the indexes. Concurrent commits share the `pwrite` and the
    /// `fdatasync` (group commit, see ``CommitQueue``), each with its own frame and sequence
    /// number, and each checked against the ones before it.
    ///
    /// Each event gets the next outbox position, in batch order. A commit that is rejected, or
    /// whose write or fsync fails, consumes neither a sequence number nor a position.
    ///
    /// - Returns: The commit's sequence number, the versions assigned to its puts and deletes,
    ///   and the positions assigned to its events.
    /// - Throws: ``StoreError/Code/invalidArgument`` or ``StoreError/Code/recordTooLarge`` for a
    ///   bad batch, ``StoreError/Code/duplicate`` or ``StoreError/Code/conflict`` when an
    ///   expectation fails (nothing is written in any of these cases);
    ///   ``StoreError/Code/io`` or ``StoreError/Code/noSpace`` when the write or fsync of its
    ///   group fails (the frames are cut again, but the cut is not synced, so after a power loss
    ///   the commit is in doubt: it may be recovered);
    ///   ``StoreError/Code/storeFailed`` for every commit after a failed fsync;
    ///   ``StoreError/Code/closed`` and ``StoreError/Code/readOnly``.
    @discardableResult
    public func commit(_ batch: WriteBatch) throws(StoreError) -> CommitReceipt {
        try validate(batch)
        let request = CommitRequest(batch)
        if commitQueue.enqueue([request]) || request.waitForTurn() {
            leadGroup(caller: request)
        }
        return try request.outcome()
    }

    /// Commits a batch without blocking the calling task: it joins the same groups as
    /// ``commit(_:)``, and a group led for a task is written on a Dispatch queue.
    /// - Returns: The same receipt as ``commit(_:)``; it throws the same errors.
    @discardableResult
    public func commit(_ batch: WriteBatch) async throws(StoreError) -> CommitReceipt {
        try validate(batch)
        let outcome = await withCheckedContinuation { (continuation: CheckedContinuation<Result<CommitReceipt, StoreError>, Never>) in
            let request = CommitRequest(batch, continuation: continuation)
            if commitQueue.enqueue([request]) {
                DispatchQueue.global().async { self.leadGroup(caller: nil) }
            }
        }
        return try outcome.get()
    }

    /// Commits batches from one thread as if from as many threads at once: they join the queue
    /// together and, within the group limits, are written as one group. For the crash suite,
    /// which needs group commits that replay exactly.
    /// - Returns: Each batch's outcome, in order.
    package func commit(group batches: [WriteBatch]) -> [Result<CommitReceipt, StoreError>] {
        var outcomes = [Result<CommitReceipt, StoreError>?](repeating: nil, count: batches.count)
        var requests: [(index: Int, request: CommitRequest)] = []
        for (index, batch) in batches.enumerated() {
            do throws(StoreError) {
                try validate(batch)
                requests.append((index, CommitRequest(batch)))
            } catch {
                outcomes[index] = .failure(error)
            }
        }
        guard !requests.isEmpty else { return outcomes.map { $0! } }
        var leads = commitQueue.enqueue(requests.map(\.request))
        for (index, request) in requests {
            // Finished by an earlier group of this call, or made the leader of the next.
            if leads || request.waitForTurn() { leadGroup(caller: request) }
            leads = false
            outcomes[index] = Result { () throws(StoreError) in try request.outcome() }
        }
        return outcomes.map { $0! }
    }

    /// A leader's turn (see ``CommitQueue``): stages the group at the front of the queue, then,
    /// holding the log, passes the leadership on and writes the group; then hands out the
    /// outcomes. `caller` is the leading thread's own request (nil on a Dispatch queue).
    private func leadGroup(caller: CommitRequest?) {
        var requests = commitQueue.takeGroup()
        var group = writer.withLock { writer in stage(requests.map(\.batch), writer: &writer) }
        // The group before may hold the log for a whole fsync: wait asleep, not spinning on
        // the mutex, so the CPU goes to the callers staging the next commits.
        logTurn.wait()
        defer { logTurn.signal() }
        log.withLock { log in
            // The commits that arrived while the group before held the log join this group
            // (as many as the limits allow): the fewer groups the commits split into, the
            // fewer fsyncs they wait for.
            // Not after a failed write since this group was staged: its numbers no longer
            // follow the log, it will be refused, and commits numbered after it would leave a
            // gap; they wait for the next leader instead.
            let late = writer.withLock { writer -> (requests: [CommitRequest], group: StagedGroup)? in
                guard writer.epoch == group.epoch else { return nil }
                let late = commitQueue.takeGroup(upTo: commitQueue.maximumGroupSize - requests.count)
                return late.isEmpty ? nil : (late, stage(late.map(\.batch), writer: &writer))
            }
            if let late {
                group.append(late.group, offset: requests.count)
                requests += late.requests
            }
            // The next leader stages its group while this one is written: the log lock keeps
            // the groups' writes in staging order.
            commitQueue.passLeadership()?.lead { self.leadGroup(caller: nil) }
            write(&group, log: &log)
        }
        for (index, request) in requests.enumerated() {
            request.finish(group.outcomes[index]!, isLeader: request === caller)
        }
    }

    /// Writes a staged group to the log, then acknowledges it: in chunks that fit the active
    /// segment (rolling between them), each with one `pwrite` and one `fdatasync`, after which
    /// its commits are applied to the indexes and get their receipts. A failure fails the
    /// chunk and the rest of the group.
    private func write(_ group: inout StagedGroup, log: inout LogState) {
        guard !group.commits.isEmpty else { return }
        let refusal = writer.withLock { writer -> StoreError? in
            do throws(StoreError) {
                try checkWritable(writer)
            } catch {
                return error
            }
            guard let failure = writer.lastWriteFailure, writer.epoch != group.epoch else { return nil }
            return StoreError(failure.code, "not written: a commit before it failed to write (\(failure.message))")
        }
        if let refusal {
            for commit in group.commits { group.outcomes[commit.index] = .failure(refusal) }
            return
        }
        var pending = group.commits[...]
        while !pending.isEmpty {
            var end = log.activeEnd
            var count = 0
            for commit in pending {
                let fits = end + UInt64(commit.frame.count) <= UInt64(configuration.segmentSize)
                guard fits || log.framesInActive + count == 0 else { break }
                end += UInt64(commit.frame.count)
                count += 1
            }
            do throws(StoreError) {
                if count == 0 {
                    try roll(&log)
                    scheduleCompactionIfNeeded()
                    continue
                }
                let chunk = pending.prefix(count)
                let syncNanoseconds = try append(chunk, log: &log)
                acknowledge(chunk, syncNanoseconds: syncNanoseconds, groupSize: group.commits.count, log: &log, group: &group)
                pending = pending.dropFirst(count)
            } catch {
                abandonStaged(after: error, log: log)
                for commit in pending { group.outcomes[commit.index] = .failure(error) }
                return
            }
        }
    }

    /// Writes a chunk's frames with one `pwrite` at the end of the active segment and makes
    /// them durable. A failed write is undone by truncating back to the last good frame, so no
    /// later commit lands behind a partial frame; a failed fsync, or a write that cannot be
    /// undone, stops the store (fsyncgate: never retry and acknowledge).
    /// - Returns: How long the fsync took, in nanoseconds (0 without one).
    private func append(_ chunk: ArraySlice<StagedCommit>, log: inout LogState) throws(StoreError) -> UInt64 {
        let offset = log.activeEnd
        let bytes: [UInt8]
        if chunk.count == 1 {
            bytes = chunk.first!.frame
        } else {
            // Each frame records its place in the write, so that recovery can tell a torn
            // write of the group from damage in the middle of the log.
            var joined: [UInt8] = []
            joined.reserveCapacity(chunk.reduce(0) { $0 + $1.frame.count })
            for (index, commit) in chunk.enumerated() {
                var frame = commit.frame
                Frame.place(&frame, at: index, of: chunk.count, salt: salt)
                joined.append(contentsOf: frame)
            }
            bytes = joined
        }
        do {
            try log.activeHandle.write(bytes, at: offset)
        } catch {
            do {
                try log.activeHandle.truncate(to: offset)
            } catch let truncateError {
                fail(truncateError, during: "truncating a failed write")
            }
            logger.error("commit write failed", metadata: ["store.path": "\(path)", "error": "\(error)"])
            throw error
        }
        CrashPoint.hit(.commitAfterWriteBeforeSync)
        guard configuration.durability == .synchronous else { return 0 }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try configuration.syncSites.run(.commitData) { () throws(StoreError) in try log.activeHandle.sync(.data) }
            return DispatchTime.now().uptimeNanoseconds - started
        } catch {
            // After a failed fsync the kernel may mark the frames' pages clean without writing
            // them; cut the frames so a reopen cannot read them from the cache and build on them.
            try? log.activeHandle.truncate(to: offset)
            fail(error, during: "fdatasync of a commit")
            throw error
        }
    }

    /// Acknowledges a durable chunk: the log moves on, the indexes take all of its commits
    /// under one index lock (readers see each commit whole, in sequence order), and each
    /// commit gets its receipt.
    private func acknowledge(_ chunk: ArraySlice<StagedCommit>, syncNanoseconds: UInt64, groupSize: Int,
                             log: inout LogState, group: inout StagedGroup) {
        CrashPoint.hit(.commitAfterSyncBeforeAck)
        var addresses: [FrameAddress] = []
        addresses.reserveCapacity(chunk.count)
        for commit in chunk {
            addresses.append(FrameAddress(segment: UInt32(log.activeId), offset: log.activeEnd))
            log.activeEnd += UInt64(commit.frame.count)
        }
        log.framesInActive += chunk.count
        log.lastFrameOffset = addresses.last?.offset
        log.nextSequence = chunk.last!.sequence + 1
        log.nextEventPosition = chunk.last!.eventPositions.upperBound
        writer.withLock { writer in
            state.withLock { state in
                for (commit, address) in zip(chunk, addresses) {
                    let storedLength = commit.frame.count - Format.frameHeaderLength
                    let header = FrameHeader(flags: 0, sequence: commit.sequence, storedLength: storedLength,
                                             uncompressedLength: commit.payloadBytes.count, maskedFrameCRC: 0)
                    state.index.apply(commit.payload, sequence: commit.sequence, frame: address, storedLength: storedLength)
                    state.events.apply(commit.payload, sequence: commit.sequence, frame: address, storedLength: storedLength)
                    state.counters.add(header, commit.payload)
                    state.lastSequence = commit.sequence
                }
            }
            // The index has these keys now, unless a later staged commit wrote them again.
            for commit in chunk {
                for key in commit.keys.keys where writer.inFlight[key]?.sequence == commit.sequence {
                    writer.inFlight[key] = nil
                }
            }
        }
        for (commit, address) in zip(chunk, addresses) {
            cache.insert(commit.payloadBytes, for: address)
            group.outcomes[commit.index] = .success(CommitReceipt(
                sequence: commit.sequence, versions: commit.versions, eventPositions: commit.eventPositions,
                frameBytes: commit.frame.count, payloadBytes: commit.payloadBytes.count, syncNanoseconds: syncNanoseconds,
                groupSize: groupSize))
        }
    }

    /// After a failed write, takes the writer's numbering back to the log's and forgets the
    /// staged keys: a group staged before now is refused (its numbers follow commits that never
    /// reached the log); groups staged from now on continue the log.
    private func abandonStaged(after error: StoreError, log: LogState) {
        writer.withLock { writer in
            writer.epoch += 1
            writer.lastWriteFailure = error
            writer.nextSequence = log.nextSequence
            writer.nextEventPosition = log.nextEventPosition
            writer.inFlight = [:]
        }
    }

    /// Puts the store into the failed state: every later write is refused until reopen.
    private func fail(_ error: StoreError, during operation: String) {
        writer.withLock { $0.failure = error }
        logger.critical("store stopped accepting writes", metadata: [
            "store.path": "\(path)", "store.operation": "\(operation)", "error": "\(error)",
        ])
    }

    /// Starts a new segment (`Docs/FORMAT.md`, section 4.3): the new file and its directory
    /// entry are durable, and the manifest lists it, before any frame in it is acknowledged.
    private func roll(_ log: inout LogState) throws(StoreError) {
        let newId = log.manifest.nextSegmentId
        guard newId <= UInt64(UInt32.max), log.manifest.segments.count < Format.maximumSegmentCount else {
            throw StoreError(.noSpace, "the store has reached its limit of \(Format.maximumSegmentCount) segments or segment ids; compact it or use larger segments")
        }
        // Every frame of a synchronous store was fdatasynced when it was committed; without that,
        // the sealed segment must be made durable before the manifest records its length.
        if configuration.durability == .unsafeNoSync {
            do {
                try log.activeHandle.sync(.full)
            } catch {
                fail(error, during: "sealing segment \(log.activeId)")
                throw error
            }
        }
        let newPath = joinPath(path, SegmentHeader.fileName(for: newId))
        let header = SegmentHeader(segmentId: newId, salt: salt, baseSequence: log.nextSequence)
        // The file may exist as the leftover of an earlier roll that failed before the manifest
        // named it; no manifest refers to it, so it is reused from scratch.
        let handle = try fileSystem.open(newPath, mode: .createIfMissing)
        do {
            try handle.truncate(to: 0)
            try handle.write(header.encoded(), at: 0)
        } catch {
            try? handle.close()
            try? fileSystem.removeFile(newPath)
            throw error
        }
        var manifest = log.manifest
        manifest.segments[manifest.segments.count - 1].sealedLength = log.activeEnd
        manifest.segments[manifest.segments.count - 1].lastSequence = log.nextSequence - 1
        manifest.segments.append(Manifest.Segment(id: newId, baseSequence: log.nextSequence,
                                                  sealedLength: Format.activeSegmentLength, lastSequence: 0))
        manifest.nextSegmentId = newId + 1
        do {
            try configuration.syncSites.run(.rollSegmentFile) { () throws(StoreError) in try handle.sync(.full) }
            try configuration.syncSites.run(.rollSegmentDirectory) { () throws(StoreError) in try fileSystem.syncDirectory(path) }
            CrashPoint.hit(.rollAfterSegmentCreated)
            try manifest.install(in: path, fileSystem: fileSystem, syncSites: configuration.syncSites,
                                 fileSite: .rollManifestFile, directorySite: .rollManifestDirectory)
        } catch {
            try? handle.close()
            fail(error, during: "rolling to segment \(newId)")
            throw error
        }
        CrashPoint.hit(.rollAfterManifestInstalled)
        segments.withLock { $0[UInt32(newId)] = handle }
        state.withLock { $0.manifest = manifest }
        log.manifest = manifest
        log.activeHandle = handle
        log.activeId = newId
        log.activeEnd = UInt64(Format.segmentHeaderLength)
        log.framesInActive = 0
        log.lastFrameOffset = nil
        logger.debug("rolled to a new segment", metadata: ["store.path": "\(path)", "segment.id": "\(newId)"])
    }
}
