import Synchronization

/// The first stage of a group commit, under the writer lock: each batch of the group is checked
/// against the store and the batches staged before it, numbered (sequence number, versions,
/// event positions) and encoded as its frame. No I/O happens here, so one group is staged while
/// the group before it is written and fsynced (see ``StorageEngine/commit(_:)``).
extension StorageEngine {
    /// The writer's numbering, guarded by the writer lock. It runs ahead of the log: it counts
    /// the commits staged but not written yet, and ``inFlight`` holds their keys.
    package struct WriterState: Sendable {
        /// The sequence number the next staged commit gets.
        package var nextSequence: UInt64
        /// The outbox position the next staged event gets.
        package var nextEventPosition: UInt64
        /// The keys written by staged commits that are not in the index yet, with the sequence
        /// number of the commit that last wrote each; a commit is checked against them first.
        package var inFlight: [TableKey: (state: KeyState, sequence: UInt64)] = [:]
        /// Counts the write failures: a group staged before a failure was numbered after
        /// commits that never reached the log, so it is refused rather than written.
        package var epoch: UInt64 = 0
        /// The error of the last failed write, for the groups it makes refuse.
        package var lastWriteFailure: StoreError?
        /// Set by a failed fsync (or a write that could not be undone): writes stop until reopen.
        package var failure: StoreError?
        package var isClosed = false
    }

    /// Refuses writes to a closed, read-only or failed store.
    func checkWritable(_ writer: WriterState) throws(StoreError) {
        guard !writer.isClosed else { throw StoreError(.closed, "the store is closed") }
        guard !configuration.readOnly else { throw StoreError(.readOnly, "the store was opened read-only") }
        if let failure = writer.failure {
            throw StoreError(.storeFailed, "the store stopped accepting writes after a failed durable write (\(failure)); reopen it")
        }
    }

    /// Stages a group's batches in order. A batch that is refused (an expectation fails, it is
    /// too large, the store is closed) gets its error and takes no number.
    func stage(_ batches: [WriteBatch], writer: inout WriterState) -> StagedGroup {
        var group = StagedGroup(epoch: writer.epoch, outcomes: Array(repeating: nil, count: batches.count))
        for (index, batch) in batches.enumerated() {
            do throws(StoreError) {
                try checkWritable(writer)
                let commit = try prepare(batch, index: index, writer: writer)
                for (key, state) in commit.keys { writer.inFlight[key] = (state, commit.sequence) }
                writer.nextSequence += 1
                writer.nextEventPosition = commit.eventPositions.upperBound
                group.commits.append(commit)
            } catch {
                group.outcomes[index] = .failure(error)
            }
        }
        return group
    }

    /// Checks a batch's expectations and encodes its frame with the writer's next sequence
    /// number and event positions.
    private func prepare(_ batch: WriteBatch, index: Int, writer: WriterState) throws(StoreError) -> StagedCommit {
        let (versions, keys) = try assignVersions(batch, over: writer.inFlight)
        let timestamp = configuration.determinism?.time ?? currentMicroseconds()
        let (payloadBytes, payload) = CommitPayload.encode(batch, versions: versions, firstEventPosition: writer.nextEventPosition,
                                                           commitTimestamp: timestamp)
        guard payloadBytes.count <= configuration.effectiveMaximumBatchSize else {
            throw StoreError(.recordTooLarge, "the batch encodes to \(payloadBytes.count) bytes; the maximum is \(configuration.effectiveMaximumBatchSize)")
        }
        let frame = Frame.encode(sequence: writer.nextSequence, payload: payloadBytes, salt: salt)
        return StagedCommit(index: index, sequence: writer.nextSequence, versions: versions, keys: keys,
                            eventPositions: writer.nextEventPosition..<writer.nextEventPosition + UInt64(payload.eventCount),
                            payload: payload, payloadBytes: payloadBytes, frame: frame)
    }

    /// Checks expectations and assigns each put and delete its version: one more than the key's
    /// latest version, counting tombstones, commits staged before it (`inFlight`) and earlier
    /// operations of this batch.
    /// - Returns: The versions, in batch order, and the keys' states after the batch.
    private func assignVersions(_ batch: WriteBatch, over inFlight: [TableKey: (state: KeyState, sequence: UInt64)])
        throws(StoreError) -> (versions: [UInt64], keys: [TableKey: KeyState]) {
        try state.withLock { state throws(StoreError) -> ([UInt64], [TableKey: KeyState]) in
            var keys: [TableKey: KeyState] = [:]
            var versions: [UInt64] = []
            for operation in batch.operations {
                let table: String, id: String, expectation: VersionExpectation, live: Bool
                switch operation {
                case let .put(t, i, _, _, e): (table, id, expectation, live) = (t, i, e, true)
                case let .delete(t, i, e): (table, id, expectation, live) = (t, i, e, false)
                case .event: continue
                }
                let key = TableKey(table: table, id: id)
                let current = keys[key] ?? inFlight[key]?.state
                    ?? state.index.entry(table: table, id: id).map { KeyState(version: $0.version, isLive: $0.isLive) }
                    ?? KeyState(version: 0, isLive: false)
                switch expectation {
                case .any:
                    break
                case .absent where current.isLive:
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
                keys[key] = KeyState(version: current.version + 1, isLive: live)
                versions.append(current.version + 1)
            }
            return (versions, keys)
        }
    }

    /// Rejects a malformed batch before it joins the queue.
    func validate(_ batch: WriteBatch) throws(StoreError) {
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
}

/// A key's latest version and whether it is live, as a commit sees it.
package struct KeyState: Sendable, Equatable {
    var version: UInt64
    var isLive: Bool
}

/// One batch of a group, checked, numbered and encoded, waiting to be written.
struct StagedCommit {
    /// The batch's place in its group.
    var index: Int
    var sequence: UInt64
    var versions: [UInt64]
    /// The batch's keys after it.
    var keys: [TableKey: KeyState]
    var eventPositions: Range<UInt64>
    var payload: CommitPayload
    var payloadBytes: [UInt8]
    var frame: [UInt8]
}

/// A staged group: its commits in sequence order and an outcome slot per batch of the group
/// (filled at once for a refused batch, after the write for the others).
struct StagedGroup {
    /// The writer's ``StorageEngine/WriterState/epoch`` when the group was staged.
    var epoch: UInt64
    var commits: [StagedCommit] = []
    var outcomes: [Result<CommitReceipt, StoreError>?]

    /// Adds the commits of a group staged right after this one, in the same epoch (no write
    /// failed in between, so its numbers follow this group's), whose batches come after this
    /// group's `offset` batches.
    mutating func append(_ later: StagedGroup, offset: Int) {
        precondition(later.epoch == epoch, "a group joined one staged before a failed write")
        outcomes += later.outcomes
        for commit in later.commits {
            var commit = commit
            commit.index += offset
            commits.append(commit)
        }
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
