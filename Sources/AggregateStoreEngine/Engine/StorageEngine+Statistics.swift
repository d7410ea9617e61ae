import Synchronization

extension StorageEngine {
    /// Counts over the log and the indexes: segments with their live and dead bytes, tables
    /// with their live records, the sequence and outbox ranges, the indexes' memory.
    ///
    /// - Parameters:
    ///   - scanningLog: Also read every frame of the log to count each table's overwritten
    ///     versions, tombstones and dead bytes (the indexes know only the live ones). The read
    ///     costs about as much as a full recovery; commits go on meanwhile, and what they add
    ///     after the statistics were taken is not counted.
    ///   - progress: Called after each frame of that read.
    /// - Throws: ``StoreError/Code/closed``; ``StoreError/Code/corruption`` if the scan meets damage.
    public func statistics(scanningLog: Bool = false,
                           progress: ((StatisticsProgress) -> Void)? = nil) throws(StoreError) -> EngineStatistics {
        // What the indexes know, taken under their lock; the files are read after it, pinned,
        // so that a compaction finishing meanwhile keeps this manifest's segments.
        struct Found {
            var counters: LogCounters
            var liveRecords: Int
            var liveBytes: UInt64
            var liveCounts: [String: Int]
            var liveBytesByTable: [String: UInt64]
            var liveRecordsBySegment: [UInt32: Int]
            var lastSequence: UInt64
            var events: (first: UInt64, last: UInt64)
            var memory: Int
            var manifest: Manifest
            var logEnd: FrameAddress
        }
        return try pinned { (state: ReadState) -> Found in
            Found(counters: state.counters, liveRecords: state.index.liveCount, liveBytes: state.index.liveRecordBytes,
                  liveCounts: state.index.liveCounts(), liveBytesByTable: state.index.liveBytesByTable(),
                  liveRecordsBySegment: state.index.liveRecordsBySegment(), lastSequence: state.lastSequence,
                  events: (state.events.firstPosition, state.events.lastPosition),
                  memory: state.index.memoryFootprint + state.events.memoryFootprint, manifest: state.manifest,
                  logEnd: state.logEnd)
        } read: { found throws(StoreError) -> EngineStatistics in
            // Measured by what the log holds, not by file size: the active segment's file may
            // hold zeros written ahead of its frames, and a sealed one zeros whose cut at the
            // roll was lost. The read state moves its log end and its manifest together.
            let sizes = found.manifest.segments.map { $0.isActive ? found.logEnd.offset : $0.sealedLength }
            let header = UInt64(Format.segmentHeaderLength)
            let space = self.space(ofSegments: zip(found.manifest.segments, sizes).map { ($0.id, $1 > header ? $1 - header : 0) })
            let segments = zip(found.manifest.segments, zip(sizes, space)).map { entry, measured in
                EngineStatistics.Segment(id: entry.id, bytes: measured.0, sealed: !entry.isActive, baseSequence: entry.baseSequence,
                                         liveRecords: found.liveRecordsBySegment[UInt32(entry.id), default: 0],
                                         liveBytes: measured.1.live, deadBytes: measured.1.dead)
            }
            var tables = found.liveCounts.mapValues { count in EngineStatistics.Table(liveRecords: count, liveBytes: 0) }
            for (table, bytes) in found.liveBytesByTable { tables[table]?.liveBytes = bytes }
            if scanningLog {
                try countVersions(in: found.manifest, sizes: sizes, through: found.lastSequence, into: &tables, progress: progress)
            }
            let counters = found.counters
            return EngineStatistics(
                segments: segments, frames: counters.frames, firstSequence: found.manifest.segments.first?.baseSequence ?? 1,
                lastSequence: found.lastSequence, logBytes: sizes.reduce(0, +),
                payloadBytes: counters.payloadBytes, storedBytes: counters.storedBytes,
                liveRecords: found.liveRecords, deadRecords: counters.puts + counters.deletes - found.liveRecords,
                liveRecordBytes: found.liveBytes, puts: counters.puts, deletes: counters.deletes, events: counters.events,
                firstEventPosition: found.events.first, lastEventPosition: found.events.last,
                tables: found.liveCounts, tableStatistics: tables, indexMemoryBytes: found.memory, logScanned: scanningLog)
        }
    }

    /// Reads every frame up to `lastSequence` and counts each table's puts, their bytes, and
    /// its deletes; the dead bytes are the puts' bytes less the live ones.
    private func countVersions(in manifest: Manifest, sizes: [UInt64], through lastSequence: UInt64,
                               into tables: inout [String: EngineStatistics.Table],
                               progress: ((StatisticsProgress) -> Void)?) throws(StoreError) {
        var puts: [String: (count: Int, bytes: UInt64)] = [:]
        var deletes: [String: Int] = [:]
        let total = sizes.reduce(0, +)
        var done: UInt64 = 0
        for (entry, size) in zip(manifest.segments, sizes) {
            // A handle of its own: the engine's are shared with readers and closed by close().
            let path = segmentPath(UInt32(entry.id))
            let handle = try fileSystem.open(path, mode: .readOnly)
            defer { try? handle.close() }
            let header = try SegmentHeader.decode(try handle.read(at: 0, count: Format.segmentHeaderLength), path: path)
            // Commits go on meanwhile: a bad frame there may be one being written, and what
            // follows it written since (space written ahead), so the scan just stops there.
            var scanner = SegmentScanner(handle: handle, salt: salt, header: header, isLast: entry.isActive)
            scanner.lastSegmentIsBeingWritten = true
            _ = try scanner.scan { frame in
                guard frame.header.sequence <= lastSequence else { return }
                for operation in frame.payload.operations {
                    switch operation {
                    case let .put(table, _, _, _, record):
                        puts[table, default: (0, 0)].count += 1
                        puts[table, default: (0, 0)].bytes += UInt64(record.count)
                    case let .delete(table, _, _):
                        deletes[table, default: 0] += 1
                    case .event:
                        break
                    }
                }
                progress?(StatisticsProgress(bytesRead: done + min(size, frame.offset + UInt64(frame.header.frameLength)),
                                             bytesTotal: total))
            }
            done += size
        }
        for table in Set(tables.keys).union(puts.keys).union(deletes.keys) {
            var statistics = tables[table] ?? EngineStatistics.Table(liveRecords: 0, liveBytes: 0)
            let put = puts[table] ?? (0, 0)
            statistics.versions = put.count
            statistics.tombstones = deletes[table, default: 0]
            statistics.deadBytes = put.bytes > statistics.liveBytes ? put.bytes - statistics.liveBytes : 0
            tables[table] = statistics
        }
    }
}
