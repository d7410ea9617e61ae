import Dispatch
import Logging
import Synchronization

extension StorageEngine {
    /// The log's state, guarded by the log lock, which the group being written holds across
    /// its `pwrite` and `fdatasync`: what is in the log and where it ends.
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
        /// Where a group's frames are joined for their one `pwrite`, kept between groups.
        var groupBuffer: [UInt8] = []
        /// The zeros written ahead of the frames, made once: a fresh megabyte of zeros each
        /// time cost its first-touch page faults every time.
        var zeros: [UInt8] = []
        /// Opens once the last group written is applied to the indexes, and every group before it.
        var lastGroupApplied = ApplyLatch(open: true)
        /// The end of what the active segment's file holds: its frames, then the zeros written
        /// ahead of them (see ``EngineConfiguration/preallocationSize``).
        var writtenEnd: UInt64
    }

    /// Commits a batch: all its puts, deletes and events become durable and visible together,
    /// or none of them do.
    ///
    /// The batch is checked, numbered and encoded by the calling thread (LZ4-compressed when
    /// that shrinks it, checksummed), then written with one `pwrite` and, with
    /// ``Durability/synchronous``, `fdatasync`ed; only then is it applied to the indexes and
    /// acknowledged. Concurrent commits share the `pwrite` and the `fdatasync` (group commit,
    /// see ``CommitQueue``), each with its own frame and sequence number, and each checked
    /// against the ones staged before it.
    ///
    /// Each event gets the next outbox position, in batch order. A commit that is rejected, or
    /// whose write or fsync fails, consumes neither a sequence number nor a position.
    ///
    /// - Returns: The commit's sequence number, the versions assigned to its puts and deletes,
    ///   and the positions assigned to its events.
    /// - Throws: ``StoreError/Code/invalidArgument`` or ``StoreError/Code/recordTooLarge`` for a
    ///   bad batch (a batch whose bytes alone exceed the batch limit is refused before the
    ///   store's state or its expectations are checked), ``StoreError/Code/duplicate`` or
    ///   ``StoreError/Code/conflict`` when an expectation fails (nothing is written in any of
    ///   these cases);
    ///   ``StoreError/Code/io`` or ``StoreError/Code/noSpace`` when the write or fsync of its
    ///   group fails, or when it was queued behind a group whose write failed (the frames are
    ///   cut again, but the cut is not synced, so after a power loss a commit whose own write
    ///   failed is in doubt: it may be recovered);
    ///   ``StoreError/Code/storeFailed`` for every commit after a failed fsync;
    ///   ``StoreError/Code/closed`` and ``StoreError/Code/readOnly``.
    @discardableResult
    public func commit(_ batch: WriteBatch) throws(StoreError) -> CommitReceipt {
        try validate(batch)
        let (staged, leads) = stage(batch, waiter: .thread(DispatchSemaphore(value: 0)))
        let request = try staged.get()
        if leads || request.waitForTurn() {
            leadGroup(caller: request)
        }
        let receipt = try request.outcome()
        request.cachePayload(in: cache)
        return receipt
    }

    /// Commits a batch without blocking the calling task: it joins the same groups as
    /// ``commit(_:)``, and a group led for a task is written on a Dispatch queue.
    /// - Returns: The same receipt as ``commit(_:)``; it throws the same errors.
    @discardableResult
    public func commit(_ batch: WriteBatch) async throws(StoreError) -> CommitReceipt {
        try validate(batch)
        // Unchecked: the engine resumes each continuation exactly once (with its outcome, or
        // with its refusal here), and a checked one costs an allocation per commit.
        var request: CommitRequest?
        let outcome = await withUnsafeContinuation { (continuation: UnsafeContinuation<Result<CommitReceipt, StoreError>, Never>) in
            let (staged, leads) = stage(batch, waiter: .task(continuation))
            switch staged {
            case let .failure(error):
                continuation.resume(returning: .failure(error))
            case let .success(staged):
                request = staged
                if leads { startLeaderTurn() }
            }
        }
        let receipt = try outcome.get()
        request?.cachePayload(in: cache)
        return receipt
    }

    /// Commits batches from one thread as if from as many threads at once: they join the queue
    /// together and, within the group limits, are written as one group. For the crash suite,
    /// which needs group commits that replay exactly.
    /// - Returns: Each batch's outcome, in order.
    package func commit(group batches: [WriteBatch]) -> [Result<CommitReceipt, StoreError>] {
        var outcomes = [Result<CommitReceipt, StoreError>?](repeating: nil, count: batches.count)
        var valid: [(index: Int, batch: WriteBatch)] = []
        for (index, batch) in batches.enumerated() {
            do throws(StoreError) {
                try validate(batch)
                valid.append((index, batch))
            } catch {
                outcomes[index] = .failure(error)
            }
        }
        var (staged, leads) = stage(valid.map(\.batch)) { .thread(DispatchSemaphore(value: 0)) }
        for ((index, _), result) in zip(valid, staged) {
            switch result {
            case let .failure(error):
                outcomes[index] = .failure(error)
            case let .success(request):
                // Finished by an earlier group of this call, or made the leader of the next.
                if leads || request.waitForTurn() { leadGroup(caller: request) }
                leads = false
                outcomes[index] = Result { () throws(StoreError) in try request.outcome() }
                request.cachePayload(in: cache)
            }
        }
        return outcomes.map { $0! }
    }

    /// A leader's turn (see ``CommitQueue``): once it has the log, takes the group at the front
    /// of the queue and writes it; then the group completes: it is applied to the indexes and
    /// its callers get their outcomes.
    ///
    /// The next group is written while this one completes only when that pays (see
    /// ``CommitCosts/overlapPays(groupSize:)``); otherwise it waits, and this group's callers,
    /// once woken, join it, for one fsync instead of two.
    ///
    /// A leading thread (`caller` is its own request) writes one group, its own, and passes
    /// the leadership on before writing, so that its caller never waits for other groups. A
    /// leader on the leader queue (for tasks; `caller` is nil) goes on writing groups while
    /// they overlap and commits are ready, handing each written group to the completion queue:
    /// the log then never waits for a thread to wake up between two groups.
    private func leadGroup(caller: CommitRequest?) {
        // Review regression: on the global pool, a leader could wait (holding the log) for a
        // completion that no worker of the pool would run; debug builds check the queue.
        if caller == nil { dispatchPrecondition(condition: .onQueue(leaderQueue)) }
        // The group before may hold the log for a whole fsync: wait asleep, not spinning on
        // the mutex, so the CPU goes to the callers staging the next commits.
        logTurn.wait()
        while true {
            let (group, commits, written) = log.withLock { log in
                let (group, commits, nextLeader) = commitQueue.takeGroup(passingLeadership: caller != nil)
                nextLeader?.lead(startLeaderTurn)
                return (group, commits, write(commits, log: &log))
            }
            // Groups are applied in log order: each waits for the latch of the one before.
            if testHooks.overlapsGroupsOverride() ?? commitCosts.overlapPays(groupSize: group.count) {
                guard caller == nil else {
                    logTurn.signal()
                    complete(group, commits, written, caller: caller)
                    return
                }
                // Completed on a queue of the engine's own, not inline: this leader goes on
                // writing (or the next starts on the leader queue) while it completes. Queued
                // before the log turn is passed on, so the queue takes groups in log order:
                // only this leader queues completions, and a group queued ahead of an earlier
                // one would block the serial queue forever, waiting for the earlier one's latch.
                // Not on the global pool, whose worker might never come while a blocked leader
                // holds the log.
                completionQueue.async { self.complete(group, commits, written, caller: nil) }
                if commitQueue.isFrontReady { continue }
                commitQueue.passLeadership()?.lead(startLeaderTurn)
                logTurn.signal()
            } else {
                complete(group, commits, written, caller: caller)
                if caller == nil { commitQueue.passLeadership()?.lead(startLeaderTurn) }
                logTurn.signal()
            }
            return
        }
    }

    /// Starts a leader's turn for a task's commit on the engine's leader queue.
    @Sendable private func startLeaderTurn() {
        leaderQueue.async { self.leadGroup(caller: nil) }
    }

    /// Applies a written group to the indexes, once the group before it is applied, and hands
    /// out the outcomes.
    private func complete(_ group: [CommitRequest], _ commits: [StagedCommit], _ written: GroupWrite, caller: CommitRequest?) {
        written.previousApplied.wait()
        let started = DispatchTime.now().uptimeNanoseconds
        defer { commitCosts.recordCompletion(DispatchTime.now().uptimeNanoseconds - started, count: group.count) }
        testHooks.runBeforeApplying()
        // Each commit's caller is woken as soon as its commit is applied, not after the whole
        // group: its next commit is staged on another core while this thread applies the rest.
        for chunk in written.durable {
            apply(chunk, of: commits) { index, receipt, address in
                group[index].finish(.success(receipt), at: address, isLeader: group[index] === caller)
            }
        }
        written.applied.open()
        for (index, outcome) in written.outcomes.enumerated() {
            if let outcome { group[index].finish(outcome, isLeader: group[index] === caller) }
        }
    }

    /// Writes a group to the log, in chunks that fit the active segment (rolling between
    /// them), each with one `pwrite` and one `fdatasync`. Commits staged before a failed write
    /// are refused (their numbers follow commits that never reached the log); a failure fails
    /// the chunk and the rest of the group.
    /// - Returns: The refused and failed commits' outcomes, and the durable chunks, which the
    ///   caller applies to the indexes once the group before is applied, then opening the
    ///   group's latch.
    private func write(_ commits: [StagedCommit], log: inout LogState) -> GroupWrite {
        // The log never waits for the indexes: the next group is written while this one waits
        // for its turn to be applied.
        var written = GroupWrite(outcomes: Array(repeating: nil, count: commits.count),
                                 previousApplied: log.lastGroupApplied, applied: ApplyLatch(open: false))
        log.lastGroupApplied = written.applied
        var pending = writer.withLock { writer -> [Int] in
            var pending: [Int] = []
            do throws(StoreError) {
                try checkWritable(writer)
            } catch {
                for index in commits.indices { written.outcomes[index] = .failure(error) }
                return []
            }
            for index in commits.indices {
                if commits[index].epoch == writer.epoch {
                    pending.append(index)
                } else {
                    let failure = writer.lastWriteFailure ?? StoreError(.io, "a write failed")
                    written.outcomes[index] = .failure(StoreError(failure.code, "not written: a commit before it failed to write (\(failure.message))"))
                }
            }
            return pending
        }[...]
        while !pending.isEmpty {
            var end = log.activeEnd
            var count = 0
            for index in pending {
                let fits = end + UInt64(commits[index].frameLength) <= UInt64(configuration.segmentSize)
                guard fits || log.framesInActive + count == 0 else { break }
                end += UInt64(commits[index].frameLength)
                count += 1
            }
            do throws(StoreError) {
                if count == 0 {
                    try roll(&log)
                    scheduleCompactionIfNeeded()
                    continue
                }
                let chunk = pending.prefix(count)
                let syncNanoseconds = try append(chunk, of: commits, log: &log)
                written.durable.append(advance(&log, past: chunk, of: commits, syncNanoseconds: syncNanoseconds))
                pending = pending.dropFirst(count)
            } catch {
                for index in pending { written.outcomes[index] = .failure(error) }
                // The writer's numbering restarts from the log, after what is durable.
                written.previousApplied.wait()
                for chunk in written.durable {
                    apply(chunk, of: commits) { index, receipt, _ in written.outcomes[index] = .success(receipt) }
                }
                written.durable = []
                abandonStaged(after: error, log: log)
                return written
            }
        }
        return written
    }

    /// Writes a chunk's frames with one `pwrite` at the end of the active segment and makes
    /// them durable. A failed write is undone by truncating back to the last good frame, so no
    /// later commit lands behind a partial frame; a failed fsync, or a write that cannot be
    /// undone, stops the store (fsyncgate: never retry and acknowledge).
    /// - Returns: How long the fsync took, in nanoseconds (0 without one).
    private func append(_ chunk: ArraySlice<Int>, of commits: [StagedCommit], log: inout LogState) throws(StoreError) -> UInt64 {
        let offset = log.activeEnd
        let end = offset + UInt64(chunk.reduce(0) { $0 + commits[$1].frameLength })
        do {
            // Each frame records its place in the write, so that recovery can tell a torn write
            // of the group from damage in the middle of the log, and is checksummed with it
            // (a staged frame has no CRCs yet).
            // (The commits are read in place, by index: a copy of each would retain its arrays.)
            log.groupBuffer.removeAll(keepingCapacity: true)
            for (index, member) in chunk.enumerated() {
                let start = log.groupBuffer.count
                log.groupBuffer.append(contentsOf: commits[member].bytes[commits[member].payloadLength...])
                log.groupBuffer.withUnsafeMutableBytes { bytes in
                    Frame.place(UnsafeMutableRawBufferPointer(rebasing: bytes[start..<start + commits[member].frameLength]),
                                at: index, of: chunk.count, salt: salt)
                }
            }
            defer { if log.groupBuffer.capacity > Self.keptGroupBufferBytes { log.groupBuffer = [] } }
            try log.activeHandle.write(log.groupBuffer, at: offset)
        } catch {
            do {
                try log.activeHandle.truncate(to: offset)
                log.writtenEnd = offset
            } catch let truncateError {
                fail(truncateError, during: "truncating a failed write")
            }
            logger.error("commit write failed", metadata: ["store.path": "\(path)", "error": "\(error)"])
            throw error
        }
        writeAhead(of: end, log: &log)
        CrashPoint.hit(.commitAfterWriteBeforeSync)
        guard configuration.durability == .synchronous else { return 0 }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try configuration.syncSites.run(.commitData) { () throws(StoreError) in try log.activeHandle.sync(.data) }
            let duration = DispatchTime.now().uptimeNanoseconds - started
            commitCosts.recordSync(duration)
            return duration
        } catch {
            // After a failed fsync the kernel may mark the frames' pages clean without writing
            // them; cut the frames so a reopen cannot read them from the cache and build on them.
            if (try? log.activeHandle.truncate(to: offset)) != nil { log.writtenEnd = offset }
            fail(error, during: "fdatasync of a commit")
            throw error
        }
    }

    /// Writes zeros ahead of the frames when they reach the end of what the file holds, so
    /// that the commits after them overwrite blocks the file system has allocated and written,
    /// and their `fdatasync` flushes data without writing the inode for the file's new size
    /// (an append's fdatasync took 180-270 us here, an overwrite's 130-140). The zeros go out
    /// with this chunk's fsync. They are only an optimisation: a failed write of them is
    /// ignored, and recovery reads zeros after the last frame as the end of the log.
    private func writeAhead(of end: UInt64, log: inout LogState) {
        guard configuration.preallocationSize > 0, configuration.durability == .synchronous, end > log.writtenEnd else {
            log.writtenEnd = max(log.writtenEnd, end)
            return
        }
        log.writtenEnd = end
        let target = min(UInt64(configuration.segmentSize), end + UInt64(configuration.preallocationSize))
        guard target > end else { return }
        let count = Int(target - end)
        if log.zeros.count < count { log.zeros = [UInt8](repeating: 0, count: configuration.preallocationSize) }
        do {
            // Through a Result: a typed-throws closure here crashed the Swift 6.3 compiler.
            let handle = log.activeHandle
            try log.zeros.withUnsafeBytes { zeros in
                Result { () throws(StoreError) in try handle.write(UnsafeRawBufferPointer(rebasing: zeros[..<count]), at: end) }
            }.get()
            log.writtenEnd = target
        } catch {
            // Part of the zeros may be there: the cut at a roll or close must still cover them.
            log.writtenEnd = target
            logger.debug("cannot write space ahead of the log", metadata: ["store.path": "\(path)", "error": "\(error)"])
        }
    }

    /// Cuts the zeros written ahead of the frames, when the active segment is sealed or the
    /// store closed, so that the files at rest end with their last frame. Not synced: recovery
    /// accepts zeros after the last frame of any segment.
    func cutSpaceWrittenAhead(_ log: inout LogState) {
        guard log.writtenEnd > log.activeEnd else { return }
        do {
            try log.activeHandle.truncate(to: log.activeEnd)
            log.writtenEnd = log.activeEnd
        } catch {
            logger.debug("cannot cut the space written ahead of the log", metadata: ["store.path": "\(path)", "error": "\(error)"])
        }
    }

    /// The largest group buffer kept for the next group; a larger one is freed after its write.
    private static var keptGroupBufferBytes: Int { 1 << 20 }

    /// Moves the log past a durable chunk: its frames' addresses, the log's end and numbering.
    private func advance(_ log: inout LogState, past chunk: ArraySlice<Int>, of commits: [StagedCommit],
                         syncNanoseconds: UInt64) -> DurableChunk {
        CrashPoint.hit(.commitAfterSyncBeforeAck)
        var addresses: [FrameAddress] = []
        addresses.reserveCapacity(chunk.count)
        for index in chunk {
            addresses.append(FrameAddress(segment: UInt32(log.activeId), offset: log.activeEnd))
            log.activeEnd += UInt64(commits[index].frameLength)
        }
        log.framesInActive += chunk.count
        log.lastFrameOffset = addresses.last?.offset
        let last = commits[chunk.last!]
        log.nextSequence = last.sequence + 1
        log.nextEventPosition = last.eventPositions.upperBound
        return DurableChunk(members: Array(chunk), addresses: addresses, syncNanoseconds: syncNanoseconds, groupSize: commits.count)
    }

    /// Applies a durable chunk: the indexes take its commits one by one, each under the index
    /// lock (readers see each commit whole, in sequence order), and each commit's receipt and
    /// frame address go to `applied` right after it is visible. Called once the groups before
    /// it are applied.
    private func apply(_ chunk: DurableChunk, of commits: [StagedCommit], applied: (Int, CommitReceipt, FrameAddress) -> Void) {
        for (index, address) in zip(chunk.members, chunk.addresses) {
            let commit = commits[index]
            let storedLength = commit.frameLength - Format.frameHeaderLength
            let header = FrameHeader(flags: 0, sequence: commit.sequence, storedLength: storedLength,
                                     uncompressedLength: commit.payloadLength, maskedFrameCRC: 0)
            state.withLock { state in
                state.index.apply(commit.payload, sequence: commit.sequence, frame: address, storedLength: storedLength)
                state.events.apply(commit.payload, sequence: commit.sequence, frame: address, storedLength: storedLength)
                state.counters.add(header, commit.payload)
                state.lastSequence = commit.sequence
                state.logEnd = max(state.logEnd, FrameAddress(segment: address.segment, offset: address.offset + UInt64(commit.frameLength)))
            }
            applied(index, CommitReceipt(
                sequence: commit.sequence, versions: commit.versions, eventPositions: commit.eventPositions,
                frameBytes: commit.frameLength, payloadBytes: commit.payloadLength,
                syncNanoseconds: chunk.syncNanoseconds, groupSize: chunk.groupSize), address)
        }
    }

    /// After a failed write, takes the writer's numbering back to the log's and forgets the
    /// staged keys: commits staged before now are refused (their numbers follow commits that
    /// never reached the log); commits staged from now on continue the log. Called once every
    /// durable commit is applied.
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
        cutSpaceWrittenAhead(&log)
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
        state.withLock { state in
            state.manifest = manifest
            state.logEnd = max(state.logEnd, FrameAddress(segment: UInt32(newId), offset: UInt64(Format.segmentHeaderLength)))
        }
        log.manifest = manifest
        log.activeHandle = handle
        log.activeId = newId
        log.activeEnd = UInt64(Format.segmentHeaderLength)
        log.writtenEnd = log.activeEnd
        log.framesInActive = 0
        log.lastFrameOffset = nil
        logger.debug("rolled to a new segment", metadata: ["store.path": "\(path)", "segment.id": "\(newId)"])
    }
}

/// A group's write: an outcome slot per commit (filled at once for a refused or failed one,
/// when applied for the others) and the chunks that reached the disk, not yet applied.
struct GroupWrite: Sendable {
    var outcomes: [Result<CommitReceipt, StoreError>?]
    var durable: [DurableChunk] = []
    /// Opens when the group written before this one is applied.
    var previousApplied: ApplyLatch
    /// Opened by whoever completes this group, once it is applied.
    var applied: ApplyLatch
}

/// Opens once, and then lets every waiter through: the order in which written groups are
/// applied to the indexes (each group waits for the latch of the group before it).
final class ApplyLatch: Sendable {
    private let semaphore: DispatchSemaphore

    init(open: Bool) {
        semaphore = DispatchSemaphore(value: open ? 1 : 0)
    }

    func open() { semaphore.signal() }

    /// Returns once the latch is open.
    func wait() {
        semaphore.wait()
        // Passed on to the next waiter: an open latch stays open.
        semaphore.signal()
    }
}

/// Commits of a group written with one `pwrite` and made durable with one `fdatasync`.
struct DurableChunk: Sendable {
    /// The commits' places in their group.
    var members: [Int]
    /// Where their frames are.
    var addresses: [FrameAddress]
    var syncNanoseconds: UInt64
    /// The size of the group, for the receipts.
    var groupSize: Int
}
