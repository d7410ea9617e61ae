package import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension StorageEngine {
    /// Scans the active segment of a store another process is writing, up to its last valid
    /// frame. A bad frame there may be a write in progress, and what follows it may have been
    /// written since (space written ahead), so the scan cannot judge it at once; but a write
    /// moves on. So a scan that stops at bad bytes is repeated: if the stop moves, the writer is
    /// at work and the first stop was a write in progress. If it stays at the same offset for
    /// ``badTailRescans`` scans 20 ms apart, the segment is judged as recovery judges it: bad
    /// bytes followed by a valid frame of a later write are damage; bad bytes with nothing
    /// valid after them are a write not yet done (or a torn tail), left out of the copy.
    private static func scanActiveSegment(_ handle: any FileHandle, salt: UInt64,
                                          header: SegmentHeader) throws(StoreError) -> SegmentScanner.Outcome {
        var scanner = SegmentScanner(handle: handle, salt: salt, header: header, isLast: true)
        scanner.lastSegmentIsBeingWritten = true
        let first = try scanner.scan { _ in }
        guard let bad = first.tornTail else { return first }
        for _ in 0..<badTailRescans {
            usleep(20_000)
            let again = try scanner.scan { _ in }
            guard let stillBad = again.tornTail, stillBad.offset == bad.offset else { return again }
        }
        scanner.lastSegmentIsBeingWritten = false
        return try scanner.scan { _ in }
    }

    /// How many more times a scan that stops at bad bytes is repeated before they are judged.
    static let badTailRescans = 5

    /// Copies a store that another process has open and is committing to, at the file level
    /// and without its lock (`Docs/FORMAT.md`, section 4.5): what `aggstore backup` does when
    /// the store is locked.
    ///
    /// It reads `MANIFEST`, then opens every segment it lists. A segment that is gone was
    /// replaced by a compaction since the manifest was read: it starts over with the new
    /// manifest. Once every segment is open, none can vanish under it (an open file outlives
    /// its unlinking), and sealed segments never change, so they are copied whole. The last
    /// listed segment is scanned with the frame checks of recovery and copied up to the end of
    /// its last valid frame: a frame still being written is left out, and bad bytes that stay
    /// bad across repeated scans are damage (see `scanActiveSegment`).
    /// The copy's manifest is the manifest read, so the copy holds a prefix of the log: every
    /// commit the other process had acknowledged when the manifest was read, and possibly
    /// later ones. (A commit whose frame was written but whose fsync then failed may be in the
    /// copy, as it may be in the store after a crash at that moment.)
    ///
    /// The copy is written and checked as by ``backup(to:progress:)``.
    ///
    /// - Parameters:
    ///   - source: The store directory; never changed.
    ///   - destination: The copy's directory; it must not exist.
    ///   - fileSystem: The file-system seam.
    ///   - logger: Where the check of the copy reports.
    ///   - progress: Called as bytes are copied.
    /// - Throws: ``StoreError/Code/notFound`` if `source` has no manifest;
    ///   ``StoreError/Code/corruption`` if its manifest or a segment is damaged, or if it kept
    ///   changing for ``maximumLocklessAttempts`` attempts (`Code.io`);
    ///   ``StoreError/Code/duplicate``, ``StoreError/Code/noSpace`` and ``StoreError/Code/io``
    ///   as ``backup(to:progress:)``. On failure nothing is left at `destination`.
    package static func backupFiles(of source: String, to destination: String, fileSystem: any FileSystem = PosixFileSystem(),
                                    logger: Logger, progress: (BackupProgress) -> Void = { _ in }) throws(StoreError) -> BackupReport {
        guard !destination.isEmpty else { throw StoreError(.invalidArgument, "the backup path is empty") }
        guard try fileSystem.kind(of: destination) == .missing else {
            throw StoreError(.duplicate, "\(destination) already exists; a backup needs a new directory", path: destination)
        }
        var restarts = 0
        while true {
            guard let snapshot = try openListedSegments(of: source, fileSystem: fileSystem) else {
                restarts += 1
                guard restarts < maximumLocklessAttempts else {
                    throw StoreError(.io, "the store at \(source) changed under \(restarts) attempts to copy it (compactions); try again",
                                     path: source)
                }
                continue
            }
            defer { for handle in snapshot.handles { try? handle.close() } }
            var report = try copy(snapshot, to: destination, fileSystem: fileSystem, logger: logger, progress: progress)
            report.restarts = restarts
            return report
        }
    }

    /// How many times a backup without the lock starts over before it gives up.
    package static let maximumLocklessAttempts = 16

    /// A manifest and an open handle for each segment it lists, with the length to copy.
    private struct SourceSnapshot {
        var manifest: Manifest
        var handles: [any FileHandle]
        var lengths: [UInt64]
        var lastSequence: UInt64
    }

    /// Reads the manifest and opens its segments; nil if one was gone (start over).
    private static func openListedSegments(of source: String, fileSystem: any FileSystem) throws(StoreError) -> SourceSnapshot? {
        let manifestPath = joinPath(source, Format.manifestFileName)
        guard try fileSystem.kind(of: manifestPath) == .file else {
            throw StoreError(.notFound, "no store at \(source) (no \(Format.manifestFileName))", path: source)
        }
        let manifest = try Manifest.read(in: source, fileSystem: fileSystem)
        var handles: [any FileHandle] = []
        do throws(StoreError) {
            for segment in manifest.segments {
                let path = joinPath(source, SegmentHeader.fileName(for: segment.id))
                do {
                    handles.append(try fileSystem.open(path, mode: .readOnly))
                } catch where error.code == .notFound || error.errno == 2 /* ENOENT */ {
                    for handle in handles { try? handle.close() }
                    return nil
                }
            }
            var lengths: [UInt64] = []
            var lastSequence: UInt64 = 0
            for (segment, handle) in zip(manifest.segments, handles) {
                let header = try SegmentHeader.decode(try handle.read(at: 0, count: Format.segmentHeaderLength), path: handle.path)
                guard header.salt == manifest.salt, header.segmentId == segment.id, header.baseSequence == segment.baseSequence else {
                    throw StoreError.corruption("segment header does not match the manifest (salt, id or base sequence)",
                                                path: handle.path, offset: 0)
                }
                if segment.isActive {
                    // The other process appends here now: copy only whole, valid frames.
                    let outcome = try scanActiveSegment(handle, salt: manifest.salt, header: header)
                    lengths.append(outcome.endOffset)
                    lastSequence = outcome.lastSequence
                } else {
                    let size = try handle.size()
                    guard size >= segment.sealedLength else {
                        throw StoreError.corruption("sealed segment has \(size) bytes; the manifest records \(segment.sealedLength)",
                                                    path: handle.path, offset: size)
                    }
                    lengths.append(segment.sealedLength)
                }
            }
            return SourceSnapshot(manifest: manifest, handles: handles, lengths: lengths, lastSequence: lastSequence)
        } catch {
            for handle in handles { try? handle.close() }
            throw error
        }
    }

    /// Writes the copy of an opened source.
    private static func copy(_ source: SourceSnapshot, to destination: String, fileSystem: any FileSystem, logger: Logger,
                             progress: (BackupProgress) -> Void) throws(StoreError) -> BackupReport {
        let total = source.lengths.reduce(0, +)
        var writer = try BackupWriter(directory: destination, fileSystem: fileSystem)
        do throws(StoreError) {
            for (index, segment) in source.manifest.segments.enumerated() {
                let handle = source.handles[index]
                try writer.copySegment(id: segment.id, length: source.lengths[index]) { offset, count throws(StoreError) in
                    try handle.read(at: offset, count: count)
                } progress: { copied in
                    progress(BackupProgress(bytesCopied: copied, bytesTotal: total))
                }
            }
            let report = try writer.finish(manifest: source.manifest, lastSequence: source.lastSequence, logger: logger)
            return BackupReport(destination: destination, segments: source.manifest.segments.count, bytes: total,
                                frames: report.frames, lastSequence: source.lastSequence)
        } catch {
            writer.abandon()
            throw error
        }
    }
}
