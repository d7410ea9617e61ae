import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
public import Logging
package import Synchronization

/// The log-structured storage engine: one writer appends each commit as one checksummed,
/// LZ4-compressed frame and fsyncs it before acknowledging; in-memory primary- and foreign-key
/// indexes serve reads.
///
/// This is the low-level layer. Component code uses the DataStore and UnitOfWork API of the
/// `AggregateStore` module, which commits through it.
///
/// ```swift
/// let engine = try StorageEngine.open(at: "/var/lib/orders")
/// var batch = WriteBatch(unitOfWorkId: "uow-1")
/// batch.put(table: "SalesOrder", id: "so-1", record: bytes, expecting: .absent)
/// try engine.commit(batch)
/// let order = try engine.record(table: "SalesOrder", id: "so-1")
/// try engine.close()
/// ```
///
/// ## Topics
/// - ``open(at:configuration:logger:)``
/// - ``commit(_:)``
/// - ``record(table:id:)``
/// - ``records(table:ids:)``
/// - ``ids(table:field:value:)``
/// - ``ids(table:)``
/// - ``tables()``
/// - ``liveRecordCount(table:)``
/// - ``events(after:limit:)``
/// - ``lastEventPosition``
/// - ``statistics()``
/// - ``verify()``
/// - ``close()``
///
/// Thread safety: all methods may be called from any thread. Concurrent commits are written
/// together (group commit: one `pwrite` and one `fdatasync` for a group, each commit its own
/// frame); reads take the index lock only briefly and never wait for a write or an fsync.
public final class StorageEngine: Sendable {
    /// The store directory.
    public let path: String
    /// The settings the store was opened with.
    public let configuration: EngineConfiguration
    /// What opening the store found and did.
    public let recoveryReport: RecoveryReport

    package let fileSystem: any FileSystem
    package let logger: Logger
    package let salt: UInt64
    package let cache: ReadCache
    private let lockHandle: any FileHandle
    /// The numbering of staged commits; see ``WriterState``. Lock order: log turn, log, writer,
    /// state.
    package let writer: Mutex<WriterState>
    /// The log's end and files; held by the group being written; see ``LogState``.
    package let log: Mutex<LogState>
    /// Commits waiting for the writer; see ``CommitQueue``.
    package let commitQueue: CommitQueue
    /// The commit groups' turn at the log, taken before ``log``: a group waits for the one
    /// being written asleep on it rather than spinning on the mutex.
    let logTurn = DispatchSemaphore(value: 1)
    /// What group commit measures of its costs, to decide when groups overlap.
    let commitCosts = CommitCosts()
    /// Where tests hold threads to make races happen (debug builds only).
    package let testHooks = TestHooks()
    /// Where commit leaders for tasks run, and where a leader that goes on writing hands the
    /// groups it wrote to be completed. The engine's own serial queues, not the global pool:
    /// they get a thread even when every worker of the pool is blocked (in user code, or in a
    /// leader or a compaction waiting, holding the log, for a queued completion).
    let leaderQueue = DispatchQueue(label: "aggstore.commit.leader")
    let completionQueue = DispatchQueue(label: "aggstore.commit.completion")
    /// Where compactions run, one at a time.
    let compactionQueue = DispatchQueue(label: "aggstore.compaction", qos: .utility)
    /// Marks ``compactionQueue``, so that a close running on it (the engine's last reference
    /// may be dropped there) does not wait for itself.
    let compactionQueueKey = DispatchSpecificKey<Bool>()
    /// What the compactor shares with the engine.
    let compactionState = Mutex(CompactionState())
    package let state: Mutex<ReadState>
    package let segments: Mutex<[UInt32: any FileHandle]>

    /// What readers see, guarded by the index lock (held briefly).
    package struct ReadState: Sendable {
        package var index: KeyIndex
        package var events: EventIndex
        package var counters: LogCounters
        package var lastSequence: UInt64
        /// The manifest in force (a copy of the log's, for statistics).
        package var manifest: Manifest
        /// The end of the last frame applied (or of the header of a segment just rolled to):
        /// the active segment's file may hold zeros written ahead of it.
        package var logEnd: FrameAddress
        package var isClosed = false
        /// Counts compaction installs. A reader pins the epoch of its index lookup (see
        /// ``StorageEngine/pinned(_:read:)``), and the segments a compaction replaced stay
        /// open until no reader of an earlier epoch is left.
        package var epoch: UInt64 = 0
        /// Readers in progress, by the epoch they pinned.
        package var pins: [UInt64: Int] = [:]
    }

    /// Opens the store at `path`, creating it if the directory holds none, and recovers it.
    ///
    /// - Parameters:
    ///   - path: The store directory; created (with its parent fsynced) if missing.
    ///   - configuration: Settings; see ``EngineConfiguration``.
    ///   - logger: Where recovery and failures are reported.
    /// - Returns: The open engine; ``recoveryReport`` says what recovery did.
    /// - Throws: ``StoreError/Code/locked`` if another process or handle has the store open,
    ///   ``StoreError/Code/corruption`` with the file and offset of any damage that is not a
    ///   torn tail, ``StoreError/Code/io`` for failed system calls.
    public static func open(at path: String, configuration: EngineConfiguration = EngineConfiguration(),
                            logger: Logger = Logger.current) throws(StoreError) -> StorageEngine {
        try open(at: path, configuration: configuration, fileSystem: PosixFileSystem(), logger: logger)
    }

    /// Opens the store through a given file system (the seam tests use to inject faults).
    package static func open(at path: String, configuration: EngineConfiguration = EngineConfiguration(),
                             fileSystem: any FileSystem, logger: Logger = Logger.current) throws(StoreError) -> StorageEngine {
        let started = monotonicSeconds()
        try configuration.validate()
        guard !path.isEmpty else { throw StoreError(.invalidArgument, "the store path is empty") }
        let lockHandle = try lockStore(at: path, configuration: configuration, fileSystem: fileSystem)
        do {
            let recovery = Recovery(directory: path, fileSystem: fileSystem, readOnly: configuration.readOnly, logger: logger,
                                    syncSites: configuration.syncSites, determinism: configuration.determinism, usesSnapshot: true)
            var log = try recovery.run()
            log.report.duration = monotonicSeconds() - started
            logger.debug("opened store", metadata: ["store.path": "\(path)", "store.recovery": "\(log.report)"])
            return StorageEngine(path: path, configuration: configuration, fileSystem: fileSystem, logger: logger,
                                 lockHandle: lockHandle, log: log)
        } catch {
            try? lockHandle.close()
            throw error
        }
    }

    /// Creates the directory if needed and takes the store lock without waiting.
    private static func lockStore(at path: String, configuration: EngineConfiguration,
                                  fileSystem: any FileSystem) throws(StoreError) -> any FileHandle {
        switch try fileSystem.kind(of: path) {
        case .directory:
            break
        case .file:
            throw StoreError(.invalidArgument, "\(path) is a file, not a store directory", path: path)
        case .missing:
            guard !configuration.readOnly else { throw StoreError(.notFound, "no store at \(path)", path: path) }
            // Its entry in the parent is made durable once the store is created in it.
            try fileSystem.createDirectory(path)
        }
        let lockPath = joinPath(path, Format.lockFileName)
        let handle: any FileHandle
        if configuration.readOnly {
            guard try fileSystem.kind(of: lockPath) == .file else {
                throw StoreError(.notFound, "no store at \(path) (no \(Format.lockFileName))", path: path)
            }
            handle = try fileSystem.open(lockPath, mode: .readOnly)
        } else {
            // The lock file's durability does not matter: a lost one is created again.
            handle = try fileSystem.open(lockPath, mode: .createIfMissing)
        }
        var locked = false
        do throws(StoreError) {
            // A process that forks holds copies of all our descriptors, the lock's among them,
            // until its child calls exec: a lock just released by a close here can look held
            // for that moment, longer on a loaded machine. So a held lock is tried again for a
            // while (after 1, 2, 4, ... 256 ms, about half a second in all) before the store is
            // reported locked.
            for pause in [0, 1, 2, 4, 8, 16, 32, 64, 128, 256] {
                if pause > 0 { usleep(useconds_t(pause * 1000)) }
                locked = try handle.tryLock(exclusive: !configuration.readOnly)
                if locked { break }
            }
        } catch {
            try? handle.close()
            throw error
        }
        guard locked else {
            try? handle.close()
            throw StoreError(.locked, "the store at \(path) is open in another process or handle", path: lockPath)
        }
        return handle
    }

    private init(path: String, configuration: EngineConfiguration, fileSystem: any FileSystem, logger: Logger,
                 lockHandle: any FileHandle, log: RecoveredLog) {
        self.path = path
        self.configuration = configuration
        self.fileSystem = fileSystem
        self.logger = logger
        self.lockHandle = lockHandle
        self.salt = log.manifest.salt
        self.recoveryReport = log.report
        self.cache = ReadCache(capacity: configuration.readCacheSize)
        compactionQueue.setSpecific(key: compactionQueueKey, value: true)
        self.commitQueue = CommitQueue(maximumGroupSize: configuration.maximumCommitGroupSize,
                                       maximumGroupBytes: Self.maximumGroupBytes)
        let active = log.manifest.segments.last!
        self.log = Mutex(LogState(manifest: log.manifest, activeHandle: log.handles[active.id]!, activeId: active.id,
                                  activeEnd: log.activeEnd, framesInActive: log.framesInActive,
                                  nextSequence: log.nextSequence, nextEventPosition: log.events.nextPosition,
                                  lastFrameOffset: log.lastFrameOffset, hasCompactedSegments: log.compacted,
                                  writtenEnd: log.activeEnd))
        writer = Mutex(WriterState(nextSequence: log.nextSequence, nextEventPosition: log.events.nextPosition))
        state = Mutex(ReadState(index: log.index, events: log.events, counters: log.counters,
                                lastSequence: log.nextSequence - 1, manifest: log.manifest,
                                logEnd: FrameAddress(segment: UInt32(active.id), offset: log.activeEnd)))
        var handles: [UInt32: any FileHandle] = [:]
        for (id, handle) in log.handles { handles[UInt32(id)] = handle }
        segments = Mutex(handles)
    }

    /// The sequence number of the last acknowledged commit (0 for an empty store).
    public var lastSequence: UInt64 {
        state.withLock { $0.lastSequence }
    }

    /// A commit group stops taking commits once their estimated bytes reach this, so that a
    /// group of large batches is not held in memory all at once.
    static var maximumGroupBytes: Int { 4 << 20 }

    /// Closes the store: later calls fail with ``StoreError/Code/closed``. Waits for the group
    /// being written; a group staged but not yet written fails with ``StoreError/Code/closed``
    /// and writes nothing. Closing twice is allowed.
    /// - Throws: ``StoreError/Code/io`` if a file fails to close; the store is closed regardless.
    public func close() throws(StoreError) {
        stopCompaction()
        let alreadyClosed = withSettledLog { log in
            let (alreadyClosed, failed) = writer.withLock { writer in
                defer { writer.isClosed = true }
                return (writer.isClosed, writer.failure != nil)
            }
            // A clean close leaves a snapshot, so the next open reads only what follows it.
            if !alreadyClosed, !failed, !configuration.readOnly, configuration.writesIndexSnapshot { writeSnapshot(log) }
            // And no space written ahead of the frames (best effort: an open accepts and cuts it).
            if !alreadyClosed, !failed, !configuration.readOnly { cutSpaceWrittenAhead(&log) }
            return alreadyClosed
        }
        guard !alreadyClosed else { return }
        state.withLock { $0.isClosed = true }
        cache.close()
        let handles = segments.withLock { handles in
            defer { handles = [:] }
            return Array(handles.values)
        }
        var firstError: StoreError?
        for handle in handles {
            do { try handle.close() } catch { firstError = firstError ?? error }
        }
        do { try lockHandle.close() } catch { firstError = firstError ?? error }
        if let firstError { throw firstError }
    }

    /// Runs `body` holding the log, once the indexes have taken every durable commit: no
    /// group is being written, and none is waiting to be applied.
    func withSettledLog<Result, Failure: Error>(_ body: (inout LogState) throws(Failure) -> Result) throws(Failure) -> Result {
        try log.withLock { (log: inout LogState) throws(Failure) -> Result in
            log.lastGroupApplied.wait()
            return try body(&log)
        }
    }

    deinit {
        let open = writer.withLock { !$0.isClosed }
        if open { try? close() }
    }
}

/// The directory containing `path` ("." for a bare name).
package func parentDirectory(of path: String) -> String {
    var trimmed = Substring(path)
    while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
    guard let slash = trimmed.lastIndex(of: "/") else { return "." }
    return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
}
