import Logging
import Synchronization

/// Counts that describe a store, from ``StorageEngine/statistics()``.
public struct EngineStatistics: Sendable, Hashable, Codable {
    /// One segment file.
    public struct Segment: Sendable, Hashable, Codable {
        /// The segment id.
        public var id: UInt64
        /// Its file size in bytes.
        public var bytes: UInt64
        /// Whether it is sealed (only the last segment is not).
        public var sealed: Bool
        /// The sequence number of its first frame.
        public var baseSequence: UInt64
    }

    /// The segments in order.
    public var segments: [Segment]
    /// Frames (commits) in the log.
    public var frames: Int
    /// The last commit sequence number.
    public var lastSequence: UInt64
    /// Bytes of all segment files.
    public var logBytes: UInt64
    /// Uncompressed payload bytes of all frames.
    public var payloadBytes: UInt64
    /// Payload bytes as stored, after compression.
    public var storedBytes: UInt64
    /// Live records: the latest version of each key that is not deleted.
    public var liveRecords: Int
    /// Dead record versions: overwritten puts and tombstones, which compaction can reclaim.
    public var deadRecords: Int
    /// Bytes of live records.
    public var liveRecordBytes: UInt64
    /// Puts, deletes and outbox events in the log.
    public var puts: Int, deletes: Int, events: Int
    /// Live records per table.
    public var tables: [String: Int]

    /// Uncompressed over stored payload bytes (1 when nothing is compressed, or the log is empty).
    public var compressionRatio: Double {
        storedBytes == 0 ? 1 : Double(payloadBytes) / Double(storedBytes)
    }
}

/// What ``StorageEngine/verify()`` checked and found.
public struct VerificationReport: Sendable, Equatable {
    /// Segments re-read.
    public var segments: Int
    /// Frames whose CRCs, lengths, payloads and sequence numbers were checked.
    public var frames: Int
    /// The last sequence number found.
    public var lastSequence: UInt64
    /// Everything wrong, each naming its file and offset where it has one. Empty when healthy.
    public var problems: [StoreError]

    /// Whether nothing is wrong.
    public var isHealthy: Bool { problems.isEmpty }
}

extension StorageEngine {
    /// Counts over the log and the indexes.
    public func statistics() throws(StoreError) -> EngineStatistics {
        // What the index knows, taken under its lock; the segments' sizes after it.
        struct Counts {
            var counters: LogCounters
            var liveRecords: Int
            var liveBytes: UInt64
            var tables: [String: Int]
            var lastSequence: UInt64
            var manifest: Manifest
        }
        return try pinned { (state: ReadState) -> Counts in
            Counts(counters: state.counters, liveRecords: state.index.liveCount, liveBytes: state.index.liveRecordBytes,
                          tables: state.index.liveCounts(), lastSequence: state.lastSequence, manifest: state.manifest)
        } read: { counts throws(StoreError) -> EngineStatistics in
            // Pinned: a compaction finishing meanwhile keeps this manifest's segments open.
            var segments: [EngineStatistics.Segment] = []
            var logBytes: UInt64 = 0
            for entry in counts.manifest.segments {
                // Under the segments lock, so close() cannot close the handle in between.
                let size = try self.segments.withLock { handles throws(StoreError) -> UInt64 in
                    guard let handle = handles[UInt32(entry.id)] else { throw StoreError(.closed, "the store is closed") }
                    return try handle.size()
                }
                logBytes += size
                segments.append(.init(id: entry.id, bytes: size, sealed: !entry.isActive, baseSequence: entry.baseSequence))
            }
            let counters = counts.counters
            return EngineStatistics(
                segments: segments, frames: counters.frames, lastSequence: counts.lastSequence, logBytes: logBytes,
                payloadBytes: counters.payloadBytes, storedBytes: counters.storedBytes,
                liveRecords: counts.liveRecords, deadRecords: counters.puts + counters.deletes - counts.liveRecords,
                liveRecordBytes: counts.liveBytes, puts: counters.puts, deletes: counters.deletes, events: counters.events,
                tables: counts.tables)
        }
    }

    /// Re-reads every frame of the store, checking every CRC, length, sequence number, version
    /// and event position, and compares the indexes (the event index included) with ones
    /// rebuilt from the log. Never modifies the store; commits wait while it runs (it holds the
    /// log, so no group is half written).
    ///
    /// - Returns: A report whose ``VerificationReport/problems`` is empty when the store is healthy.
    public func verify() throws(StoreError) -> VerificationReport {
        try withSettledLog { log throws(StoreError) -> VerificationReport in
            guard !writer.withLock({ $0.isClosed }) else { throw StoreError(.closed, "the store is closed") }
            // The files a compaction is writing or removing, before and after the directory is
            // read (it adds and removes them without the log lock).
            let compactingBefore = compactionState.withLock { $0.outputIds.union($0.replacedIds) }
            let recovery = Recovery(directory: path, fileSystem: fileSystem, readOnly: true, logger: logger,
                                    syncSites: configuration.syncSites)
            var report = VerificationReport(segments: 0, frames: 0, lastSequence: 0, problems: [])
            let rebuilt: RecoveredLog
            do throws(StoreError) {
                rebuilt = try recovery.run()
            } catch where error.code == .corruption || error.code == .unsupportedFormat {
                report.problems.append(error)
                return report
            }
            defer { for handle in rebuilt.handles.values { try? handle.close() } }
            report.segments = rebuilt.report.segments
            report.frames = rebuilt.report.frames
            report.lastSequence = rebuilt.report.lastSequence
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
}
