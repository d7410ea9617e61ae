package import Logging

/// Writes the copy a backup makes (`Docs/FORMAT.md`, section 4.5): a new store directory, its
/// segments copied byte for byte, each fsynced, the directory fsynced, and the manifest last,
/// so that a directory without a `MANIFEST` is an unfinished copy (and one whose segments hold
/// frames fails to open rather than opening as an empty store). Before it reports success it
/// opens the copy read-only, which recovers it: a copy that is returned is known to open.
///
/// On any failure ``abandon()`` removes what it created, directory included: no half copy is
/// left for someone to mistake for a backup.
package struct BackupWriter {
    /// The copy's directory.
    package let directory: String
    private let fileSystem: any FileSystem
    /// The files created so far, to remove on failure.
    private var created: [String] = []
    /// Bytes written so far, for progress.
    private(set) var bytesWritten: UInt64 = 0

    /// Bytes copied per read and write: large enough that a multi-gigabyte copy is a few
    /// thousand system calls, small enough that memory stays flat.
    static let chunkSize = 1 << 20

    /// Creates the copy's directory and makes its entry durable.
    /// - Throws: ``StoreError/Code/duplicate`` if something already exists at `directory`
    ///   (nothing is changed); ``StoreError/Code/notFound`` if its parent is missing;
    ///   ``StoreError/Code/io``.
    package init(directory: String, fileSystem: any FileSystem) throws(StoreError) {
        guard try fileSystem.kind(of: directory) == .missing else {
            throw StoreError(.duplicate, "\(directory) already exists; a backup needs a new directory", path: directory)
        }
        // mkdir fails with EEXIST if the directory appeared since the check: still duplicate,
        // and still nothing of someone else's is touched.
        try fileSystem.createDirectory(directory)
        self.directory = directory
        self.fileSystem = fileSystem
        do throws(StoreError) {
            try fileSystem.syncDirectory(parentDirectory(of: directory))
        } catch {
            abandon()
            throw error
        }
    }

    /// Copies `length` bytes of segment `id` (read through `read`), then fsyncs the copy.
    /// - Parameters:
    ///   - read: Reads up to `count` bytes at an offset of the source segment.
    ///   - progress: Called with the bytes written so far, after each chunk.
    /// - Throws: ``StoreError/Code/corruption`` if the source is shorter than `length`;
    ///   ``StoreError/Code/io`` and ``StoreError/Code/noSpace`` from the writes and the fsync.
    package mutating func copySegment(id: UInt64, length: UInt64,
                                      read: (_ offset: UInt64, _ count: Int) throws(StoreError) -> [UInt8],
                                      progress: (UInt64) -> Void) throws(StoreError) {
        let path = joinPath(directory, SegmentHeader.fileName(for: id))
        let handle = try fileSystem.open(path, mode: .createNew)
        created.append(path)
        do throws(StoreError) {
            var offset: UInt64 = 0
            while offset < length {
                let count = Int(min(UInt64(Self.chunkSize), length - offset))
                let bytes = try read(offset, count)
                guard bytes.count == count else {
                    throw StoreError.corruption("segment \(id) ends at \(offset + UInt64(bytes.count)) bytes; the manifest needs \(length)",
                                                path: SegmentHeader.fileName(for: id), offset: offset + UInt64(bytes.count))
                }
                try handle.write(bytes, at: offset)
                offset += UInt64(count)
                bytesWritten += UInt64(count)
                progress(bytesWritten)
            }
            try handle.sync(.full)
        } catch {
            try? handle.close()
            throw error
        }
        try handle.close()
    }

    /// Creates the copy's `LOCK`, makes the segments' directory entries durable, installs the
    /// manifest, then opens the copy read-only (a full recovery: every frame is checked) and
    /// checks that it ends at `lastSequence`.
    /// - Returns: What the copy's recovery found.
    /// - Throws: ``StoreError/Code/corruption`` if the copy does not open or ends elsewhere;
    ///   ``StoreError/Code/io`` and ``StoreError/Code/noSpace``.
    package mutating func finish(manifest: Manifest, lastSequence: UInt64, logger: Logger) throws(StoreError) -> RecoveryReport {
        // A read-only open needs the lock file; its durability does not matter (open recreates it).
        let lockPath = joinPath(directory, Format.lockFileName)
        let lock = try fileSystem.open(lockPath, mode: .createNew)
        created.append(lockPath)
        try lock.close()
        try fileSystem.syncDirectory(directory)
        created.append(joinPath(directory, Format.manifestTemporaryFileName))
        created.append(joinPath(directory, Format.manifestFileName))
        // The copy is a store being created; its syncs always run (the crash suite's mutation
        // gate, which can disable a site, does not make backups).
        try manifest.install(in: directory, fileSystem: fileSystem, syncSites: .all, fileSite: .createManifestFile,
                             directorySite: .createSegmentDirectory)
        var configuration = EngineConfiguration()
        configuration.readOnly = true
        let copy = try StorageEngine.open(at: directory, configuration: configuration, fileSystem: fileSystem, logger: logger)
        let report = copy.recoveryReport
        try copy.close()
        guard report.tornTail == nil, report.lastSequence == lastSequence else {
            throw StoreError(.corruption, "the copy at \(directory) ends at sequence \(report.lastSequence)"
                             + (report.tornTail.map { " with a torn tail at offset \($0.offset)" } ?? "")
                             + "; \(lastSequence) was copied", path: directory)
        }
        return report
    }

    /// Removes every file created and the directory. Best effort: it runs after a failure,
    /// and a failing disk may refuse even this.
    package func abandon() {
        for path in created.reversed() where (try? fileSystem.kind(of: path)) == .file {
            try? fileSystem.removeFile(path)
        }
        try? fileSystem.removeDirectory(directory)
    }
}
