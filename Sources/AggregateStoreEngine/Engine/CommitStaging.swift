import Dispatch
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The first stage of a commit, done by its own caller under the writer lock: the batch is
/// checked against the store and the commits staged before it, numbered (sequence number,
/// versions, event positions), encoded as its frame and queued for the log. No I/O happens
/// here, so callers stage their commits while a group is written and fsynced (see
/// ``StorageEngine/commit(_:)``).
extension StorageEngine {
    /// The writer's numbering, guarded by the writer lock. It runs ahead of the log: it counts
    /// the commits staged but not written yet, and ``inFlight`` holds their keys.
    package struct WriterState: Sendable {
        /// The sequence number the next staged commit gets.
        package var nextSequence: UInt64
        /// The outbox position the next staged event gets.
        package var nextEventPosition: UInt64
        /// The keys written by staged commits, with the sequence number of the commit that last
        /// wrote each; a commit is checked against them first, unless that commit is applied
        /// (then the index has the same state). Applied ones are swept out by the stagers, in
        /// bulk (see ``sweepAppliedKeys(_:)``), not by the path that applies the groups.
        package var inFlight: [TableKey: (state: KeyState, sequence: UInt64)] = [:]
        /// The size of ``inFlight`` at which the next sweep runs.
        var inFlightSweepSize = StorageEngine.minimumInFlightSweepSize
        /// Counts the write failures: a commit staged before a failure was numbered after
        /// commits that never reached the log, so it is refused rather than written.
        package var epoch: UInt64 = 0
        /// The error of the last failed write, for the commits it makes refuse.
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

    /// Stages a batch and queues it for the log. It is checked and numbered, and queued, in
    /// one step under the writer lock, so that the queue is in sequence order; then it is
    /// encoded outside the lock, so that callers encode in parallel (a leader takes only
    /// commits whose frames are ready). A batch that is refused (an expectation fails, it is
    /// too large, the store is closed) gets its error, takes no number and is not queued.
    /// - Parameter waiter: How the caller waits for the outcome.
    /// - Returns: The queued request or the error, and whether the caller now leads.
    func stage(_ batch: WriteBatch, waiter: CommitRequest.Waiter) -> (request: Result<CommitRequest, StoreError>, leads: Bool) {
        let started = DispatchTime.now().uptimeNanoseconds
        let estimatedPayloadSize = CommitPayload.estimatedSize(of: batch), maximumBatchSize = configuration.effectiveMaximumBatchSize
        if estimatedPayloadSize > maximumBatchSize, let refusal = StagingSlot.refusal(ofBytesIn: batch, maximumBatchSize: maximumBatchSize) {
            return (.failure(refusal), false)
        }
        var slot = StagingSlot(batch, waiter: waiter, estimatedPayloadSize: estimatedPayloadSize, maximumBatchSize: maximumBatchSize,
                               timestamp: commitTimestamp())
        let leads = writer.withLockYielding { writer in
            checkAndNumber(&slot, batch, writer: &writer)
            sweepAppliedKeys(&writer)
            return slot.refusal == nil && commitQueue.enqueue(CollectionOfOne(slot.request))
        }
        if let numbers = slot.numbers { slot.request.markStaged(StagedCommit(encoding: batch, numbers, estimatedSize: slot.estimatedPayloadSize)) }
        // One commit in eight is timed, by its sequence number: the moving average needs no
        // more, and each sample costs a clock read and a write to a line all stagers share.
        if let sequence = slot.sequence, sequence % 8 == 0 {
            commitCosts.recordStaging(DispatchTime.now().uptimeNanoseconds - started)
        }
        return (slot.outcome, leads)
    }

    /// Stages one caller's batches in order, as ``stage(_:waiter:)`` does each, and queues
    /// them together, for the crash suite's group commits.
    /// - Parameter waiter: How the caller of each batch waits for its outcome.
    /// - Returns: Each batch's queued request or error, and whether the caller now leads.
    func stage(_ batches: [WriteBatch], waiter: () -> CommitRequest.Waiter)
        -> (requests: [Result<CommitRequest, StoreError>], leads: Bool) {
        let started = DispatchTime.now().uptimeNanoseconds
        defer { commitCosts.recordStaging((DispatchTime.now().uptimeNanoseconds - started) / UInt64(max(1, batches.count))) }
        let maximumBatchSize = configuration.effectiveMaximumBatchSize
        var slots = batches.map { batch in
            var slot = StagingSlot(batch, waiter: waiter(), estimatedPayloadSize: CommitPayload.estimatedSize(of: batch),
                                   maximumBatchSize: maximumBatchSize, timestamp: commitTimestamp())
            if slot.mayBeTooLarge { slot.refusal = StagingSlot.refusal(ofBytesIn: batch, maximumBatchSize: maximumBatchSize) }
            return slot
        }
        let leads = writer.withLockYielding { writer in
            // A slot refused on its size already is left as it is.
            for index in slots.indices where slots[index].refusal == nil { checkAndNumber(&slots[index], batches[index], writer: &writer) }
            sweepAppliedKeys(&writer)
            return commitQueue.enqueue(slots.lazy.filter { $0.refusal == nil }.map(\.request))
        }
        for (slot, batch) in zip(slots, batches) {
            if let numbers = slot.numbers { slot.request.markStaged(StagedCommit(encoding: batch, numbers, estimatedSize: slot.estimatedPayloadSize)) }
        }
        return (slots.map(\.outcome), leads)
    }

    /// Checks and numbers a batch not refused yet under the writer lock and counts it as
    /// staged, or records its refusal in its slot. A batch whose size bound exceeds the limit
    /// (but whose bytes alone do not, see ``StagingSlot/refusal(ofBytesIn:maximumBatchSize:)``)
    /// is encoded here, where it can still be refused before it takes a number, and before its
    /// frame is compressed; the others are encoded after the lock.
    private func checkAndNumber(_ slot: inout StagingSlot, _ batch: WriteBatch, writer: inout WriterState) {
        do throws(StoreError) {
            try checkWritable(writer)
            let numbers = try number(batch, &slot.keys, timestamp: slot.timestamp, writer: writer)
            if slot.mayBeTooLarge {
                slot.request.markStaged(try StagedCommit(encoding: batch, numbers, estimatedSize: slot.estimatedPayloadSize,
                                                         maximumPayloadLength: configuration.effectiveMaximumBatchSize))
            } else {
                slot.numbers = numbers
            }
            // A key written twice is recorded twice, in order: the last state stays.
            for (key, state) in numbers.keys.entries { writer.inFlight[key] = (state, numbers.sequence) }
            slot.sequence = numbers.sequence
            writer.nextSequence += 1
            writer.nextEventPosition = numbers.eventPositions.upperBound
        } catch {
            slot.refusal = error
        }
    }

    /// Forgets the staged keys of applied commits once ``WriterState/inFlight`` has doubled
    /// since the last sweep: one pass over it every so many commits, where forgetting each
    /// commit's keys as it was applied took the writer lock on the serial path that applies the
    /// groups. Called holding the writer lock.
    private func sweepAppliedKeys(_ writer: inout WriterState) {
        guard writer.inFlight.count >= writer.inFlightSweepSize else { return }
        let applied = state.withLock { $0.lastSequence }
        writer.inFlight = writer.inFlight.filter { $0.value.sequence > applied }
        writer.inFlightSweepSize = max(Self.minimumInFlightSweepSize, 2 * writer.inFlight.count)
        // Room until the next sweep, at once: regrowing from the few keys kept rehashes them
        // at every doubling, under the writer lock.
        writer.inFlight.reserveCapacity(writer.inFlightSweepSize)
    }

    /// The fewest staged keys swept at once.
    static var minimumInFlightSweepSize: Int { 1024 }

    /// Checks a batch's expectations and numbers it with the writer's next sequence number,
    /// versions and event positions.
    private func number(_ batch: WriteBatch, _ keys: inout BatchKeys, timestamp: Int64, writer: WriterState) throws(StoreError) -> CommitNumbers {
        let (versions, eventCount) = try assignVersions(batch, &keys, over: writer.inFlight)
        return CommitNumbers(epoch: writer.epoch, sequence: writer.nextSequence, versions: versions, keys: keys,
                             eventPositions: writer.nextEventPosition..<writer.nextEventPosition + UInt64(eventCount),
                             timestamp: timestamp)
    }

    /// A commit's timestamp, read before the writer lock: the clock is not read under it.
    private func commitTimestamp() -> Int64 {
        configuration.determinism?.time ?? currentMicroseconds()
    }

    /// Checks expectations and assigns each put and delete its version: one more than the key's
    /// latest version, counting tombstones, commits staged before it and not applied yet
    /// (`inFlight`) and earlier operations of this batch.
    /// Each key's state after its operation is recorded in `keys`.
    /// - Returns: The versions, in batch order, and the batch's number of events.
    private func assignVersions(_ batch: WriteBatch, _ keys: inout BatchKeys, over inFlight: [TableKey: (state: KeyState, sequence: UInt64)])
        throws(StoreError) -> (versions: [UInt64], eventCount: Int) {
        var versions: [UInt64] = []
        versions.reserveCapacity(keys.entries.count)
        var eventCount = 0
        // Matched in place, as in ``validate(_:)``. The index is read in the lock's own closure,
        // not in one nested inside it: through a nested closure's capture, each lookup copied
        // the whole index (a dozen buffers retained and released, on lines the applying
        // thread writes).
        try batch.operations.withUnsafeBufferPointer { operations throws(StoreError) in
            try state.withLock { state throws(StoreError) in
                for index in operations.indices {
                    let expectation: VersionExpectation, live: Bool
                    switch operations[index] {
                    case let .put(_, _, _, _, e): (expectation, live) = (e, true)
                    case let .delete(_, _, e): (expectation, live) = (e, false)
                    case .event:
                        eventCount += 1
                        continue
                    }
                    let key = keys.key(at: versions.count)
                    let current: KeyState
                    if let earlier = keys.stateBefore(versions.count) {
                        current = earlier
                    } else if let staged = inFlight[key], staged.sequence > state.lastSequence {
                        current = staged.state
                    } else if let entry = state.index.entry(table: key.table, id: key.id) {
                        current = KeyState(version: entry.version, isLive: entry.isLive)
                    } else {
                        current = KeyState(version: 0, isLive: false)
                    }
                    switch expectation {
                    case .any:
                        break
                    case .absent where current.isLive:
                        throw StoreError(.duplicate, "\(key.table)/\(key.id) already exists (version \(current.version))")
                    case .absent:
                        break
                    case let .version(expected) where expected != current.version:
                        throw StoreError(.conflict, "\(key.table)/\(key.id) is at version \(current.version), expected \(expected)")
                    case .version:
                        break
                    }
                    guard current.version < UInt64.max else {
                        throw StoreError(.invalidArgument, "\(key.table)/\(key.id) has reached the last version number")
                    }
                    keys.record(KeyState(version: current.version + 1, isLive: live), at: versions.count)
                    versions.append(current.version + 1)
                }
            }
        }
        return (versions, eventCount)
    }

    /// Rejects a malformed batch before it joins the queue.
    func validate(_ batch: WriteBatch) throws(StoreError) {
        guard !batch.isEmpty else { throw StoreError(.invalidArgument, "the batch is empty") }
        try checkName(batch.unitOfWorkId, "unit-of-work id")
        // Through a buffer pointer, whose elements are matched in place: iterating the array
        // copies each operation (retaining its strings and arrays) and releases it after.
        try batch.operations.withUnsafeBufferPointer { operations throws(StoreError) in
            for index in operations.indices {
                switch operations[index] {
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
}

/// A key's latest version and whether it is live, as a commit sees it.
package struct KeyState: Sendable, Equatable {
    var version: UInt64
    var isLive: Bool
}

/// One batch's place in ``StorageEngine/stage(_:waiter:)``.
private struct StagingSlot {
    var request: CommitRequest
    /// The batch's ``CommitPayload/estimatedSize(of:)``, computed once by the caller.
    var estimatedPayloadSize: Int
    /// The batch's keys, hashed before the writer lock.
    var keys: BatchKeys
    /// The commit's timestamp.
    var timestamp: Int64
    /// The sequence number the batch took, once numbered.
    var sequence: UInt64?
    /// Whether the batch must be encoded under the lock, to be refused if too large.
    var mayBeTooLarge: Bool
    /// The numbers of a batch to be encoded after the lock.
    var numbers: CommitNumbers?
    /// Why the batch was refused.
    var refusal: StoreError?

    /// A slot whose size checks are done before the lock, as they need none: its caller has
    /// bounded the batch's payload and checked ``refusal(ofBytesIn:maximumBatchSize:)``.
    init(_ batch: WriteBatch, waiter: CommitRequest.Waiter, estimatedPayloadSize: Int, maximumBatchSize: Int, timestamp: Int64) {
        request = CommitRequest(waiter: waiter)
        self.estimatedPayloadSize = estimatedPayloadSize
        keys = BatchKeys(batch)
        self.timestamp = timestamp
        mayBeTooLarge = estimatedPayloadSize > maximumBatchSize
    }

    /// The refusal of a batch whose bytes alone exceed the limit, checked before its slot is
    /// made: it is refused without the writer lock or an allocation of its size. Out of line,
    /// as only batches whose size bound exceeds the limit need it.
    @inline(never)
    static func refusal(ofBytesIn batch: WriteBatch, maximumBatchSize: Int) -> StoreError? {
        let least = CommitPayload.minimumSize(of: batch)
        guard least > maximumBatchSize else { return nil }
        return StoreError(.recordTooLarge, "the batch holds at least \(least) bytes; the maximum is \(maximumBatchSize)")
    }

    /// The queued request, or the refusal.
    var outcome: Result<CommitRequest, StoreError> { refusal.map { .failure($0) } ?? .success(request) }
}

/// A commit's numbers, assigned under the writer lock.
struct CommitNumbers: Sendable {
    /// The writer's ``StorageEngine/WriterState/epoch`` when the commit was numbered: a write
    /// that fails after that makes its numbers stale.
    var epoch: UInt64
    var sequence: UInt64
    var versions: [UInt64]
    /// The batch's keys, with their states after each operation.
    var keys: BatchKeys
    var eventPositions: Range<UInt64>
    var timestamp: Int64
}

/// One commit, checked, numbered and encoded, waiting to be written.
struct StagedCommit: Sendable {
    /// See ``CommitNumbers/epoch``.
    var epoch: UInt64
    var sequence: UInt64
    var versions: [UInt64]
    var eventPositions: Range<UInt64>
    var payload: CommitPayload
    /// The encoded payload, then its frame: one allocation for both, as a commit's allocations
    /// cost more than their bytes on the committing threads (of their length for a batch
    /// staged in the thread's scratch buffer, see ``ThreadScratch``).
    var bytes: [UInt8]
    /// The length of the payload, at the start of ``bytes``.
    var payloadLength: Int

    /// The frame's length, at the end of ``bytes``.
    var frameLength: Int { bytes.count - payloadLength }

    /// Encodes a numbered batch as its payload and its frame, in one allocation. The frame is
    /// not checksummed: the leader checksums it as it places it in its group's write.
    /// - Parameter estimatedSize: The batch's ``CommitPayload/estimatedSize(of:)``, an upper
    ///   bound of its payload's length.
    init(encoding batch: borrowing WriteBatch, _ numbers: borrowing CommitNumbers, estimatedSize: Int) {
        // No payload is longer than Int.max bytes: this never throws.
        try! self.init(encoding: batch, numbers, estimatedSize: estimatedSize, maximumPayloadLength: .max)
    }

    /// Encodes a numbered batch as ``init(encoding:_:estimatedSize:)`` does, unless its payload
    /// is longer than `maximumPayloadLength`: a batch whose size bound exceeds the limit is
    /// refused once its payload is encoded, before its frame is compressed (and before a length
    /// past the frame header's 32 bits could be converted).
    /// - Throws: ``StoreError/Code/recordTooLarge``, with the payload's length.
    init(encoding batch: borrowing WriteBatch, _ numbers: borrowing CommitNumbers, estimatedSize: Int,
         maximumPayloadLength: Int) throws(StoreError) {
        // Room for the payload, then for its frame with the payload stored uncompressed.
        let room = 2 * estimatedSize + Format.frameHeaderLength
        var encoded: (payload: CommitPayload, payloadLength: Int)?
        // A batch of usual size is encoded in the thread's scratch buffer and copied out at its
        // length; a larger one, into an allocation of the room. The room is about twice the
        // bytes (1,088-2,432 for the demo's orders) and the commit holds its allocation while
        // it waits; at their length, a quarter of the demo's fit the 1,032 bytes that glibc
        // serves from a per-thread cache, without an arena's lock.
        var bytes = try ThreadScratch.withBuffer(count: room) { buffer throws(StoreError) -> [UInt8] in
            let (payload, payloadLength, frameLength) = try Self.encode(batch, numbers, estimatedSize: estimatedSize,
                                                                         maximumPayloadLength: maximumPayloadLength, into: buffer)
            encoded = (payload, payloadLength)
            return Array(UnsafeRawBufferPointer(rebasing: buffer[..<(payloadLength + frameLength)]))
        }
        if bytes == nil {
            var failure: StoreError?
            bytes = [UInt8](unsafeUninitializedCapacity: room) { buffer, initializedCount in
                do throws(StoreError) {
                    let (payload, payloadLength, frameLength) = try Self.encode(
                        batch, numbers, estimatedSize: estimatedSize, maximumPayloadLength: maximumPayloadLength,
                        into: UnsafeMutableRawBufferPointer(buffer))
                    encoded = (payload, payloadLength)
                    initializedCount = payloadLength + frameLength
                } catch {
                    failure = error
                    initializedCount = 0
                }
            }
            if let failure { throw failure }
            // The commit waits in the queue and its caller keeps it until it is cached: a
            // well-compressed large batch must not keep the room of its payload twice over.
            bytes = bytes!.trimmingSlack()
        }
        (epoch, sequence, versions, eventPositions) = (numbers.epoch, numbers.sequence, numbers.versions, numbers.eventPositions)
        (payload, payloadLength) = encoded!
        self.bytes = bytes!
    }

    /// Encodes the payload at the start of `buffer` (`estimatedSize` bytes, its bound), then its
    /// frame right after it.
    /// - Returns: The payload, and the lengths of its bytes and of the frame's.
    private static func encode(_ batch: borrowing WriteBatch, _ numbers: borrowing CommitNumbers, estimatedSize: Int,
                               maximumPayloadLength: Int, into buffer: UnsafeMutableRawBufferPointer)
        throws(StoreError) -> (CommitPayload, payloadLength: Int, frameLength: Int) {
        let (payloadLength, payload) = CommitPayload.encode(
            batch, versions: numbers.versions, firstEventPosition: numbers.eventPositions.lowerBound, commitTimestamp: numbers.timestamp,
            into: UnsafeMutableBufferPointer(rebasing: buffer.bindMemory(to: UInt8.self)[..<estimatedSize]))
        guard payloadLength <= maximumPayloadLength else {
            throw StoreError(.recordTooLarge, "the batch encodes to \(payloadLength) bytes; the maximum is \(maximumPayloadLength)")
        }
        let frameLength = Frame.encode(sequence: numbers.sequence, payload: UnsafeRawBufferPointer(rebasing: buffer[..<payloadLength]),
                                       into: UnsafeMutableRawBufferPointer(rebasing: buffer[payloadLength...]))
        return (payload, payloadLength, frameLength)
    }
}

/// A primary key.
package struct TableKey: Hashable, Sendable {
    package let table: String
    package let id: String
    /// The two strings hashed once: a staged key is looked up and stored several times, most
    /// of them under the writer lock.
    private let hash: Int

    package init(table: String, id: String) {
        self.table = table
        self.id = id
        var hasher = Hasher()
        hasher.combine(table)
        hasher.combine(id)
        hash = hasher.finalize()
    }

    package static func == (lhs: TableKey, rhs: TableKey) -> Bool {
        lhs.hash == rhs.hash && lhs.table == rhs.table && lhs.id == rhs.id
    }

    package func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }
}

/// Checks a table, id, field or event name: non-empty UTF-8 of at most
/// ``Format/maximumNameLength`` bytes without NUL.
package func checkName(_ name: String, _ what: String) throws(StoreError) {
    let length = name.utf8.count
    guard length > 0 else { throw StoreError(.invalidArgument, "the \(what) is empty") }
    guard length <= Format.maximumNameLength else {
        throw StoreError(.invalidArgument, "the \(what) has \(length) bytes; the maximum is \(Format.maximumNameLength)")
    }
    // Through the contiguous bytes when there are some, with `memchr`: the generic `contains`
    // over a String's UTF-8 view costs more than the rest of the check.
    let hasNUL = name.utf8.withContiguousStorageIfAvailable { bytes in bytes.baseAddress.map { memchr($0, 0, bytes.count) != nil } ?? false } ?? name.utf8.contains(0)
    guard !hasNUL else { throw StoreError(.invalidArgument, "the \(what) contains a NUL byte") }
}
