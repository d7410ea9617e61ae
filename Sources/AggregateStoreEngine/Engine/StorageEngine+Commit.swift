import Dispatch
import Logging
import Synchronization

extension StorageEngine {
    /// Commits a batch: all its puts, deletes and events become durable and visible together,
    /// or none of them do.
    ///
    /// The batch is encoded once, LZ4-compressed when that shrinks it, checksummed, written with
    /// one `pwrite` and, with ``Durability/synchronous``, `fdatasync`ed; only then is it
    /// acknowledged and applied to the indexes.
    ///
    /// Each event gets the next outbox position, in batch order. A commit that is rejected, or
    /// whose write or fsync fails, consumes neither a sequence number nor a position.
    ///
    /// - Returns: The commit's sequence number, the versions assigned to its puts and deletes,
    ///   and the positions assigned to its events.
    /// - Throws: ``StoreError/Code/invalidArgument`` or ``StoreError/Code/recordTooLarge`` for a
    ///   bad batch, ``StoreError/Code/duplicate`` or ``StoreError/Code/conflict`` when an
    ///   expectation fails (nothing is written in any of these cases);
    ///   ``StoreError/Code/io`` or ``StoreError/Code/noSpace`` when the write or fsync fails (the
    ///   frame is cut again, but the cut is not synced, so after a power loss the commit is in
    ///   doubt: it may be recovered);
    ///   ``StoreError/Code/storeFailed`` for every commit after a failed fsync;
    ///   ``StoreError/Code/closed`` and ``StoreError/Code/readOnly``.
    @discardableResult
    public func commit(_ batch: WriteBatch) throws(StoreError) -> CommitReceipt {
        try validate(batch)
        return try writer.withLock { writer throws(StoreError) -> CommitReceipt in
            guard !writer.isClosed else { throw StoreError(.closed, "the store is closed") }
            guard !configuration.readOnly else { throw StoreError(.readOnly, "the store was opened read-only") }
            if let failure = writer.failure {
                throw StoreError(.storeFailed, "the store stopped accepting writes after a failed durable write (\(failure)); reopen it")
            }
            let versions = try assignVersions(batch)
            let sequence = writer.nextSequence
            let firstEventPosition = writer.nextEventPosition
            let timestamp = configuration.determinism?.time ?? currentMicroseconds()
            let (payloadBytes, payload) = CommitPayload.encode(batch, versions: versions, firstEventPosition: firstEventPosition,
                                                               commitTimestamp: timestamp)
            let eventPositions = firstEventPosition..<firstEventPosition + UInt64(payload.eventCount)
            guard payloadBytes.count <= configuration.effectiveMaximumBatchSize else {
                throw StoreError(.recordTooLarge, "the batch encodes to \(payloadBytes.count) bytes; the maximum is \(configuration.effectiveMaximumBatchSize)")
            }
            let frame = Frame.encode(sequence: sequence, payload: payloadBytes, salt: salt)
            if writer.activeEnd + UInt64(frame.count) > UInt64(configuration.segmentSize), writer.framesInActive > 0 {
                try roll(&writer)
            }
            let offset = writer.activeEnd
            let syncNanoseconds = try append(frame, at: offset, writer: &writer)
            CrashPoint.hit(.commitAfterSyncBeforeAck)
            writer.activeEnd += UInt64(frame.count)
            writer.framesInActive += 1
            writer.nextSequence += 1
            writer.nextEventPosition = eventPositions.upperBound

            let address = FrameAddress(segment: UInt32(writer.activeId), offset: offset)
            let storedLength = frame.count - Format.frameHeaderLength
            let header = FrameHeader(flags: 0, sequence: sequence, storedLength: storedLength,
                                     uncompressedLength: payloadBytes.count, maskedFrameCRC: 0)
            state.withLock { state in
                state.index.apply(payload, sequence: sequence, frame: address, storedLength: storedLength)
                state.events.apply(payload, sequence: sequence, frame: address, storedLength: storedLength)
                state.counters.add(header, payload)
                state.lastSequence = sequence
            }
            cache.insert(payloadBytes, for: address)
            return CommitReceipt(sequence: sequence, versions: versions, eventPositions: eventPositions,
                                 frameBytes: frame.count, payloadBytes: payloadBytes.count, syncNanoseconds: syncNanoseconds)
        }
    }

    /// Writes a frame and makes it durable. A failed write is undone by truncating back to the
    /// last good frame, so no later commit lands behind a partial frame; a failed fsync, or a
    /// write that cannot be undone, stops the store (fsyncgate: never retry and acknowledge).
    /// - Returns: How long the fsync took, in nanoseconds (0 without one).
    private func append(_ frame: [UInt8], at offset: UInt64, writer: inout WriterState) throws(StoreError) -> UInt64 {
        do {
            try writer.activeHandle.write(frame, at: offset)
        } catch {
            do {
                try writer.activeHandle.truncate(to: offset)
            } catch let truncateError {
                fail(&writer, truncateError, during: "truncating a failed write")
            }
            logger.error("commit write failed", metadata: ["store.path": "\(path)", "error": "\(error)"])
            throw error
        }
        CrashPoint.hit(.commitAfterWriteBeforeSync)
        guard configuration.durability == .synchronous else { return 0 }
        let started = DispatchTime.now().uptimeNanoseconds
        do {
            try configuration.syncSites.run(.commitData) { () throws(StoreError) in try writer.activeHandle.sync(.data) }
            return DispatchTime.now().uptimeNanoseconds - started
        } catch {
            // After a failed fsync the kernel may mark the frame's pages clean without writing
            // them; cut the frame so a reopen cannot read it from the cache and build on it.
            try? writer.activeHandle.truncate(to: offset)
            fail(&writer, error, during: "fdatasync of a commit")
            throw error
        }
    }

    /// Puts the store into the failed state: every later write is refused until reopen.
    private func fail(_ writer: inout WriterState, _ error: StoreError, during operation: String) {
        writer.failure = error
        logger.critical("store stopped accepting writes", metadata: [
            "store.path": "\(path)", "store.operation": "\(operation)", "error": "\(error)",
        ])
    }

    /// Checks expectations and assigns each put and delete its version: one more than the key's
    /// latest version, tombstones and earlier operations of this batch included.
    private func assignVersions(_ batch: WriteBatch) throws(StoreError) -> [UInt64] {
        try state.withLock { state throws(StoreError) -> [UInt64] in
            var pending: [TableKey: (version: UInt64, live: Bool)] = [:]
            var versions: [UInt64] = []
            for operation in batch.operations {
                let table: String, id: String, expectation: VersionExpectation, live: Bool
                switch operation {
                case let .put(t, i, _, _, e): (table, id, expectation, live) = (t, i, e, true)
                case let .delete(t, i, e): (table, id, expectation, live) = (t, i, e, false)
                case .event: continue
                }
                let key = TableKey(table: table, id: id)
                let current = pending[key] ?? state.index.entry(table: table, id: id).map { ($0.version, $0.isLive) } ?? (0, false)
                switch expectation {
                case .any:
                    break
                case .absent where current.live:
                    throw StoreError(.duplicate, "\(table)/\(id) already exists (version \(current.version))")
                case .absent:
                    break
                case let .version(expected) where expected != current.version:
                    throw StoreError(.conflict, "\(table)/\(id) is at version \(current.version), expected \(expected)")
                case .version:
                    break
                }
                guard current.version < UInt64.max else {
                    throw StoreError(.invalidArgument, "\(table)/\(id) has reached the last version number")
                }
                pending[key] = (current.version + 1, live)
                versions.append(current.version + 1)
            }
            return versions
        }
    }

    /// Rejects a malformed batch before anything is written.
    private func validate(_ batch: WriteBatch) throws(StoreError) {
        guard !batch.isEmpty else { throw StoreError(.invalidArgument, "the batch is empty") }
        try checkName(batch.unitOfWorkId, "unit-of-work id")
        for operation in batch.operations {
            switch operation {
            case let .put(table, id, record, foreignKeys, _):
                try checkName(table, "table")
                try checkName(id, "id")
                guard record.count <= configuration.effectiveMaximumRecordSize else {
                    throw StoreError(.recordTooLarge, "record \(table)/\(id) has \(record.count) bytes; the maximum is \(configuration.effectiveMaximumRecordSize)")
                }
                for key in foreignKeys {
                    try checkName(key.field, "foreign-key field")
                    try checkName(key.value, "foreign-key value")
                }
            case let .delete(table, id, _):
                try checkName(table, "table")
                try checkName(id, "id")
            case let .event(event):
                try checkName(event.id, "event id")
                try checkName(event.type, "event type")
                try checkName(event.aggregateTable, "event aggregate table")
                try checkName(event.aggregateId, "event aggregate id")
                guard event.payload.count <= configuration.effectiveMaximumRecordSize else {
                    throw StoreError(.recordTooLarge, "event \(event.id) has \(event.payload.count) bytes; the maximum is \(configuration.effectiveMaximumRecordSize)")
                }
            }
        }
    }

    /// Starts a new segment (`Docs/FORMAT.md`, section 4.3): the new file and its directory
    /// entry are durable, and the manifest lists it, before any frame in it is acknowledged.
    private func roll(_ writer: inout WriterState) throws(StoreError) {
        let newId = writer.activeId + 1
        guard newId <= UInt64(UInt32.max), writer.manifest.segments.count < Format.maximumSegmentCount else {
            throw StoreError(.noSpace, "the store has reached its limit of \(Format.maximumSegmentCount) segments or segment ids; compact it or use larger segments")
        }
        // Every frame of a synchronous store was fdatasynced when it was committed; without that,
        // the sealed segment must be made durable before the manifest records its length.
        if configuration.durability == .unsafeNoSync {
            do {
                try writer.activeHandle.sync(.full)
            } catch {
                fail(&writer, error, during: "sealing segment \(writer.activeId)")
                throw error
            }
        }
        let newPath = joinPath(path, SegmentHeader.fileName(for: newId))
        let header = SegmentHeader(segmentId: newId, salt: salt, baseSequence: writer.nextSequence)
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
        var manifest = writer.manifest
        manifest.segments[manifest.segments.count - 1].sealedLength = writer.activeEnd
        manifest.segments[manifest.segments.count - 1].lastSequence = writer.nextSequence - 1
        manifest.segments.append(Manifest.Segment(id: newId, baseSequence: writer.nextSequence,
                                                  sealedLength: Format.activeSegmentLength, lastSequence: 0))
        do {
            try configuration.syncSites.run(.rollSegmentFile) { () throws(StoreError) in try handle.sync(.full) }
            try configuration.syncSites.run(.rollSegmentDirectory) { () throws(StoreError) in try fileSystem.syncDirectory(path) }
            CrashPoint.hit(.rollAfterSegmentCreated)
            try manifest.install(in: path, fileSystem: fileSystem, syncSites: configuration.syncSites,
                                 fileSite: .rollManifestFile, directorySite: .rollManifestDirectory)
        } catch {
            try? handle.close()
            fail(&writer, error, during: "rolling to segment \(newId)")
            throw error
        }
        CrashPoint.hit(.rollAfterManifestInstalled)
        segments.withLock { $0[UInt32(newId)] = handle }
        writer.manifest = manifest
        writer.activeHandle = handle
        writer.activeId = newId
        writer.activeEnd = UInt64(Format.segmentHeaderLength)
        writer.framesInActive = 0
        logger.debug("rolled to a new segment", metadata: ["store.path": "\(path)", "segment.id": "\(newId)"])
    }
}

/// A primary key.
package struct TableKey: Hashable, Sendable {
    package var table: String
    package var id: String
}

/// Checks a table, id, field or event name: non-empty UTF-8 of at most
/// ``Format/maximumNameLength`` bytes without NUL.
package func checkName(_ name: String, _ what: String) throws(StoreError) {
    let length = name.utf8.count
    guard length > 0 else { throw StoreError(.invalidArgument, "the \(what) is empty") }
    guard length <= Format.maximumNameLength else {
        throw StoreError(.invalidArgument, "the \(what) has \(length) bytes; the maximum is \(Format.maximumNameLength)")
    }
    guard !name.utf8.contains(0) else { throw StoreError(.invalidArgument, "the \(what) contains a NUL byte") }
}
