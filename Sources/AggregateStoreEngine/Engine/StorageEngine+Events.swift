import Synchronization

/// An outbox event as read back from the log, with where it stands in the outbox and which
/// commit wrote it.
public struct StoredEvent: Sendable, Hashable {
    /// The event's outbox position: dense from 1 over the whole log, in commit order and then
    /// batch order, so a consumer that remembers the last position it handled resumes with
    /// ``StorageEngine/events(after:limit:)`` and misses nothing.
    public var position: UInt64
    /// The sequence number of the commit that wrote the event.
    public var sequence: UInt64
    /// The unit of work of that commit (``WriteBatch/unitOfWorkId``).
    public var unitOfWorkId: String
    /// When that commit was written, in microseconds since 1970-01-01T00:00:00Z.
    public var committedAt: Int64
    /// The event as it was appended to the batch.
    public var event: OutboxEvent

    /// Creates a stored event (the engine makes them; this is for tests and adapters).
    public init(position: UInt64, sequence: UInt64, unitOfWorkId: String, committedAt: Int64, event: OutboxEvent) {
        self.position = position
        self.sequence = sequence
        self.unitOfWorkId = unitOfWorkId
        self.committedAt = committedAt
        self.event = event
    }
}

extension StorageEngine {
    /// The position of the last event in the log, 0 when it holds none. Only acknowledged
    /// commits count.
    public var lastEventPosition: UInt64 {
        state.withLock { $0.events.lastPosition }
    }

    /// The outbox events whose position is greater than `position`, in ascending position
    /// order, at most `limit` of them: the event feed a relay polls.
    ///
    /// ```swift
    /// var cursor: UInt64 = 0
    /// while true {
    ///     let page = try engine.events(after: cursor, limit: 100)
    ///     guard let last = page.last else { break }
    ///     try publish(page)
    ///     cursor = last.position
    /// }
    /// ```
    ///
    /// Served by the in-memory event index, which knows for each commit with events its first
    /// position, its event count and its frame. Each commit's frame is read with one `pread`,
    /// its CRCs verified and its payload decompressed, unless it is in the read cache. Only
    /// acknowledged commits are visible. Works in read-only mode.
    ///
    /// - Parameters:
    ///   - position: The last position already seen; 0 reads from the first event.
    ///   - limit: The largest number of events to return, at least 1.
    /// - Returns: The events, fewer than `limit` (possibly none) when the log ends first.
    /// - Throws: ``StoreError/Code/invalidArgument`` for a limit below 1,
    ///   ``StoreError/Code/closed``, ``StoreError/Code/corruption`` (with the file and offset) if
    ///   a frame no longer verifies or no longer holds the events the index expects,
    ///   ``StoreError/Code/io``.
    public func events(after position: UInt64, limit: Int) throws(StoreError) -> [StoredEvent] {
        guard limit >= 1 else { throw StoreError(.invalidArgument, "the event limit is \(limit); it must be at least 1") }
        // Only the runs are copied under the index lock; frames are read after it is released,
        // so a slow read never holds up commits or other readers.
        return try pinned { (state: ReadState) in state.events.runs(after: position, limit: limit) } read: { runs throws(StoreError) -> [StoredEvent] in
            var events: [StoredEvent] = []
            events.reserveCapacity(min(limit, runs.reduce(0) { $0 + Int($1.count) }))
            for run in runs {
                try appendEvents(of: run, after: position, limit: limit, to: &events)
                if events.count == limit { break }
            }
            return events
        }
    }

    /// Reads one commit's frame and appends its events after `position`, up to `limit` in all.
    private func appendEvents(of run: EventRun, after position: UInt64, limit: Int,
                              to events: inout [StoredEvent]) throws(StoreError) {
        let bytes = try framePayload(at: run.frame, storedLength: run.storedLength)
        let path = segmentPath(run.segment)
        let payload: CommitPayload
        do throws(ByteReader.Failure) {
            payload = try bytes.withUnsafeBytesTyped { buffer throws(ByteReader.Failure) in try CommitPayload.decode(buffer) }
        } catch {
            throw .corruption("frame verifies but its payload is malformed: \(error.reason) at payload offset \(error.offset)",
                              path: path, offset: run.frameOffset)
        }
        // The frame verified, so this only fails if the index points at the wrong frame.
        guard payload.firstEventPosition == run.firstPosition, payload.eventCount == Int(run.count) else {
            throw .corruption("frame holds \(payload.eventCount) events from position \(payload.firstEventPosition ?? 0); "
                              + "the event index expects \(run.count) from position \(run.firstPosition)",
                              path: path, offset: run.frameOffset)
        }
        for case let .event(event, eventPosition) in payload.operations where eventPosition > position {
            guard events.count < limit else { return }
            events.append(StoredEvent(position: eventPosition, sequence: run.sequence, unitOfWorkId: payload.unitOfWorkId,
                                      committedAt: payload.commitTimestamp, event: event))
        }
    }
}
