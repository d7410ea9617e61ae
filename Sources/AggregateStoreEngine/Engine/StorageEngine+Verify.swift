import Logging
import Synchronization

/// What ``StorageEngine/verify(progress:)`` checked and found.
public struct VerificationReport: Sendable, Equatable {
    /// What became of the index snapshot.
    public enum SnapshotCheck: Sendable, Equatable {
        /// The store has none (it is written at clean close and after compaction).
        case absent
        /// It verifies, and its indexes with the log after it equal a rebuild from the whole log.
        case valid
        /// It verifies but no longer matches the log (a compaction or crash since it was
        /// written); open ignores it and rebuilds, so it is not a problem. The reason says why.
        case stale(String)
        /// It is damaged, or disagrees with the log: listed among the ``problems`` too.
        case damaged(String)
    }

    /// Segments re-read.
    public var segments: Int
    /// Frames whose CRCs, lengths, payloads and sequence numbers were checked.
    public var frames: Int
    /// Bytes of the frames checked.
    public var frameBytes: UInt64 = 0
    /// The last sequence number found.
    public var lastSequence: UInt64
    /// Live records in the rebuilt index.
    public var liveRecords = 0
    /// Outbox events in the log.
    public var events = 0
    /// What the index snapshot check found.
    public var snapshot = SnapshotCheck.absent
    /// Everything wrong, each naming its file and offset where it has one. Empty when healthy.
    public var problems: [StoreError]

    /// Whether nothing is wrong.
    public var isHealthy: Bool { problems.isEmpty }
}

/// How far ``StorageEngine/verify(progress:)`` has come.
public struct VerificationProgress: Sendable, Hashable {
    /// Frame bytes checked so far.
    public var bytesChecked: UInt64
    /// Frame bytes in the log.
    public var bytesTotal: UInt64
}

extension StorageEngine {
    /// Re-reads every frame of the store, checking every CRC, length, sequence number, version
    /// and event position, and compares the indexes (the event index included) with ones
    /// rebuilt from the log. Never modifies the store; commits wait while it runs (it holds the
    /// log, so no group is half written).
    ///
    /// It also checks the index snapshot: that it verifies, and that its indexes with the log
    /// after it equal the rebuild (see ``VerificationReport/SnapshotCheck``).
    ///
    /// - Parameter progress: Called after each frame checked.
    /// - Returns: A report whose ``VerificationReport/problems`` is empty when the store is healthy.
    public func verify(progress: ((VerificationProgress) -> Void)? = nil) throws(StoreError) -> VerificationReport {
        try withSettledLog { log throws(StoreError) -> VerificationReport in
            guard !writer.withLock({ $0.isClosed }) else { throw StoreError(.closed, "the store is closed") }
            // The files a compaction is writing or removing, before and after the directory is
            // read (it adds and removes them without the log lock).
            let compactingBefore = compactionState.withLock { $0.outputIds.union($0.replacedIds) }
            let recovery = Recovery(directory: path, fileSystem: fileSystem, readOnly: true, logger: logger,
                                    syncSites: configuration.syncSites)
            var report = VerificationReport(segments: 0, frames: 0, lastSequence: 0, problems: [])
            let total = state.withLock { $0.counters.frameBytes }
            var checked: UInt64 = 0
            let rebuilt: RecoveredLog
            do throws(StoreError) {
                rebuilt = try recovery.run { frame, _ in
                    checked += UInt64(frame.header.frameLength)
                    progress?(VerificationProgress(bytesChecked: checked, bytesTotal: max(total, checked)))
                }
            } catch where error.code == .corruption || error.code == .unsupportedFormat {
                report.problems.append(error)
                return report
            }
            defer { for handle in rebuilt.handles.values { try? handle.close() } }
            report.segments = rebuilt.report.segments
            report.frames = rebuilt.report.frames
            report.lastSequence = rebuilt.report.lastSequence
            report.frameBytes = rebuilt.counters.frameBytes
            report.liveRecords = rebuilt.index.liveCount
            report.events = rebuilt.counters.events
            report.snapshot = checkSnapshot(against: rebuilt)
            if case let .damaged(reason) = report.snapshot {
                report.problems.append(StoreError(.corruption, "index snapshot: \(reason)", path: joinPath(path, Format.snapshotFileName)))
            }
            if let torn = rebuilt.report.tornTail {
                report.problems.append(.corruption("torn tail of \(torn.bytes) bytes (\(torn.reason))", path: torn.path, offset: torn.offset))
            }
            let compacting = compactionState.withLock { $0.outputIds.union($0.replacedIds) }.union(compactingBefore)
                .map { SegmentHeader.fileName(for: $0) }
            for name in rebuilt.report.leftoverFiles where !compacting.contains(name) {
                report.problems.append(StoreError(.corruption, "leftover file not referenced by the manifest", path: joinPath(path, name)))
            }
            let (index, events, counters, lastSequence) = state.withLock { ($0.index, $0.events, $0.counters, $0.lastSequence) }
            if rebuilt.index != index {
                report.problems.append(StoreError(.corruption, "the in-memory index differs from one rebuilt from the log", path: path))
            }
            if rebuilt.events != events || log.nextEventPosition != events.nextPosition {
                report.problems.append(StoreError(.corruption, "the in-memory event index (last position \(events.lastPosition), next \(log.nextEventPosition)) differs from one rebuilt from the log (last position \(rebuilt.events.lastPosition))", path: path))
            }
            if rebuilt.counters != counters || rebuilt.report.lastSequence != lastSequence {
                report.problems.append(StoreError(.corruption, "the log holds \(rebuilt.counters.frames) frames up to sequence \(rebuilt.report.lastSequence); the store believes \(counters.frames) up to \(lastSequence)", path: path))
            }
            // The next segment id runs ahead in memory while a compaction writes.
            if rebuilt.manifest.segments != log.manifest.segments || rebuilt.manifest.salt != log.manifest.salt
                || rebuilt.manifest.nextSegmentId > log.manifest.nextSegmentId {
                report.problems.append(StoreError(.corruption, "the manifest on disk differs from the one in memory", path: joinPath(path, Format.manifestFileName)))
            }
            return report
        }
    }

    /// Checks the index snapshot against a rebuild of the whole log: it must decode and verify
    /// under the store's salt, and when open would use it, what open would load (the snapshot
    /// and the log after it) must equal the rebuild.
    private func checkSnapshot(against rebuilt: RecoveredLog) -> VerificationReport.SnapshotCheck {
        let snapshotPath = joinPath(path, Format.snapshotFileName)
        let bytes: [UInt8]
        do throws(StoreError) {
            guard try fileSystem.listDirectory(path).contains(Format.snapshotFileName) else { return .absent }
            let handle = try fileSystem.open(snapshotPath, mode: .readOnly)
            defer { try? handle.close() }
            bytes = try handle.read(at: 0, count: Int(try handle.size()))
        } catch {
            return .damaged("it cannot be read: \(error.message)")
        }
        if case let .failure(defect) = IndexSnapshot.decode(bytes, salt: rebuilt.manifest.salt) {
            return .damaged(defect.description)
        }
        let fromSnapshot: RecoveredLog
        do throws(StoreError) {
            fromSnapshot = try Recovery(directory: path, fileSystem: fileSystem, readOnly: true, logger: logger,
                                        syncSites: configuration.syncSites, usesSnapshot: true).run()
        } catch {
            return .damaged("an open from it fails: \(error.message)")
        }
        defer { for handle in fromSnapshot.handles.values { try? handle.close() } }
        switch fromSnapshot.report.snapshot {
        case let .ignored(reason)?:
            return .stale(reason)
        case .used?:
            guard fromSnapshot.index == rebuilt.index, fromSnapshot.events == rebuilt.events,
                  fromSnapshot.counters == rebuilt.counters, fromSnapshot.nextSequence == rebuilt.nextSequence else {
                return .damaged("its indexes with the log after it differ from a rebuild from the whole log")
            }
            return .valid
        case nil:
            return .absent
        }
    }
}
