import Logging
import Synchronization

extension StorageEngine {
    /// Writes the index snapshot (`Docs/FORMAT.md`, section 3.1) of the log as it stands.
    /// Called with the log lock held, so no commit group is half applied.
    func writeSnapshot(_ log: LogState) {
        if let snapshot = captureSnapshot(log) { store(snapshot) }
    }

    /// The snapshot of the log as it stands: copies of the indexes (cheap: they are copied on
    /// write) and where the log ends. Called with the log lock held; nil (logged) if the last
    /// frame's header cannot be read.
    func captureSnapshot(_ log: LogState) -> IndexSnapshot? {
        do throws(StoreError) {
            var lastFrame = FrameHeader(flags: Format.frameFlagEndsWrite, sequence: log.nextSequence - 1, storedLength: 0,
                                        uncompressedLength: 0, maskedFrameCRC: 0)
            if let offset = log.lastFrameOffset {
                let bytes = try log.activeHandle.read(at: offset, count: Format.frameHeaderLength)
                guard bytes.count == Format.frameHeaderLength,
                      let header = bytes.withUnsafeBytes({ try? Frame.parseHeader($0).get() }) else {
                    throw StoreError.corruption("the last frame's header no longer verifies", path: log.activeHandle.path, offset: offset)
                }
                lastFrame = header
            }
            let (index, events, counters) = state.withLock { ($0.index, $0.events, $0.counters) }
            return IndexSnapshot(
                segments: log.manifest.segments, endOffset: log.activeEnd, framesInLastSegment: log.framesInActive,
                lastSequence: log.nextSequence - 1, lastFrameOffset: log.lastFrameOffset ?? 0,
                lastFrameCRC: lastFrame.maskedFrameCRC, lastFrameWriteIndex: lastFrame.writeIndex,
                lastFrameEndsWrite: lastFrame.endsWrite, compacted: log.hasCompactedSegments,
                counters: counters, index: index, events: events)
        } catch {
            logger.warning("could not take an index snapshot; the next open reads the whole log", metadata: [
                "store.path": "\(path)", "error": "\(error)",
            ])
            return nil
        }
    }

    /// Writes a snapshot: `SNAPSHOT.tmp`, renamed over `SNAPSHOT`.
    ///
    /// Nothing is fsynced: open checks a snapshot before using it, so a lost, torn or stale one
    /// costs a full rebuild from the log, never data. A failure is logged and changes nothing
    /// else.
    func store(_ snapshot: IndexSnapshot) {
        do throws(StoreError) {
            let temporary = joinPath(path, Format.snapshotTemporaryFileName)
            if try fileSystem.kind(of: temporary) != .missing { try fileSystem.removeFile(temporary) }
            let handle = try fileSystem.open(temporary, mode: .createNew)
            do {
                try handle.write(snapshot.encoded(salt: salt), at: 0)
            } catch {
                try? handle.close()
                throw error
            }
            try handle.close()
            try fileSystem.rename(temporary, to: joinPath(path, Format.snapshotFileName))
        } catch {
            logger.warning("could not write the index snapshot; the next open reads the whole log", metadata: [
                "store.path": "\(path)", "error": "\(error)",
            ])
        }
    }
}
