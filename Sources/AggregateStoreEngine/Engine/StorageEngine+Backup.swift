import Synchronization

/// What a backup made.
public struct BackupReport: Sendable, Hashable {
    /// The copy's directory.
    public var destination: String
    /// Segment files copied.
    public var segments = 0
    /// Bytes copied (segment files, headers included).
    public var bytes: UInt64 = 0
    /// Commits (frames) in the copy.
    public var frames = 0
    /// The sequence number of the last commit in the copy (0 for an empty store).
    public var lastSequence: UInt64 = 0
    /// How many times a backup without the lock started over because a compaction replaced a
    /// segment it was about to copy (always 0 for ``StorageEngine/backup(to:progress:)``).
    public var restarts = 0
}

/// How far a backup has got, for a progress bar.
public struct BackupProgress: Sendable, Hashable {
    /// Bytes copied so far.
    public var bytesCopied: UInt64
    /// Bytes the backup copies in all.
    public var bytesTotal: UInt64
}

extension StorageEngine {
    /// Copies the open store to a new directory while commits go on: a consistent copy that
    /// holds exactly the commits acknowledged before the backup started (a prefix of the log),
    /// and opens as a store of its own.
    ///
    /// Only the manifest and the active segment's end are captured under the log lock, so
    /// commits wait for microseconds, not for the copy. Sealed segments never change, and the
    /// active one only grows past the captured end, so the copy reads them afterwards without
    /// any lock. A compaction may run meanwhile: the backup pins the segments it captured as a
    /// reader does (see ``StorageEngine/pinned(_:read:)``), so a compaction that replaces them
    /// installs its result but deletes them only once the backup is done. (Pinning rather than
    /// holding compaction off: compaction still does its work, and only its final deletion
    /// waits.)
    ///
    /// The copy's segments are written and fsynced, then its directory, then its manifest (the
    /// captured one: the captured active segment stays the active one, cut at the captured
    /// end); its directory's entry in the parent is fsynced too. It gets no index snapshot: its
    /// first open rebuilds the index from the log. Before returning, the copy is opened
    /// read-only, which checks every frame of it.
    ///
    /// Like a read, a backup must not be started from inside a `scan` callback; a ``close()``
    /// during a backup makes it fail (and removes the copy).
    ///
    /// ```swift
    /// let report = try engine.backup(to: "/backups/orders-2026-12-04")
    /// print("copied \(report.frames) commits, through sequence \(report.lastSequence)")
    /// ```
    ///
    /// - Parameters:
    ///   - destination: The copy's directory; it must not exist, and its parent must.
    ///   - progress: Called on the calling thread as bytes are copied.
    /// - Returns: What was copied.
    /// - Throws: ``StoreError/Code/duplicate`` if `destination` exists (nothing is changed);
    ///   ``StoreError/Code/noSpace`` or ``StoreError/Code/io`` if writing the copy fails, and
    ///   ``StoreError/Code/corruption`` if the copy does not verify: in all these cases what was
    ///   written is removed, `destination` included; ``StoreError/Code/closed``. The store
    ///   itself is never changed.
    @discardableResult
    public func backup(to destination: String, progress: (BackupProgress) -> Void = { _ in }) throws(StoreError) -> BackupReport {
        guard !destination.isEmpty else { throw StoreError(.invalidArgument, "the backup path is empty") }
        // Settled: the index has taken every frame before the captured end, so the captured
        // end, the sequence and the manifest describe the same log.
        let (manifest, activeEnd, lastSequence, epoch) = try withSettledLog { log throws(StoreError) in
            try state.withLock { state throws(StoreError) in
                guard !state.isClosed else { throw StoreError(.closed, "the store is closed") }
                state.pins[state.epoch, default: 0] += 1
                return (log.manifest, log.activeEnd, state.lastSequence, state.epoch)
            }
        }
        defer {
            state.withLock { state in
                let remaining = state.pins[epoch, default: 1] - 1
                state.pins[epoch] = remaining > 0 ? remaining : nil
            }
        }
        let lengths = manifest.segments.map { $0.isActive ? activeEnd : $0.sealedLength }
        let total = lengths.reduce(0, +)
        var writer = try BackupWriter(directory: destination, fileSystem: fileSystem)
        do throws(StoreError) {
            for (segment, length) in zip(manifest.segments, lengths) {
                try writer.copySegment(id: segment.id, length: length) { offset, count throws(StoreError) in
                    // Through the engine's own handles, which the pin keeps open.
                    try readSegment(UInt32(segment.id), at: offset, count: count)
                } progress: { copied in
                    progress(BackupProgress(bytesCopied: copied, bytesTotal: total))
                }
            }
            let report = try writer.finish(manifest: manifest, lastSequence: lastSequence, logger: logger)
            return BackupReport(destination: destination, segments: manifest.segments.count, bytes: total,
                                frames: report.frames, lastSequence: lastSequence)
        } catch {
            writer.abandon()
            throw error
        }
    }
}
