/// The events of one commit, as the event index records them: where they start in the outbox,
/// how many there are, and where their frame lives. One per commit with events, not one per
/// event, so the index stays small; the events themselves are read from the frame.
package struct EventRun: Sendable, Hashable {
    /// The position of the commit's first event.
    package var firstPosition: UInt64
    /// The commit's sequence number.
    package var sequence: UInt64
    /// The frame's byte offset in its segment.
    package var frameOffset: UInt64
    /// The segment holding the frame.
    package var segment: UInt32
    /// The frame's stored payload length, so that reading it is one `pread`.
    package var storedLength: UInt32
    /// How many events the commit has (at least 1).
    package var count: UInt32
    /// About how many bytes of the payload the events take (what compaction keeps of the
    /// frame for them).
    package var bytes: UInt32 = 0

    /// The position of the commit's last event.
    package var lastPosition: UInt64 { firstPosition + UInt64(count) - 1 }

    /// The frame holding the events.
    package var frame: FrameAddress { FrameAddress(segment: segment, offset: frameOffset) }
}

/// The in-memory event index, rebuilt from the log on open and extended by every commit with
/// events: the runs in position order, which is commit order (`Docs/FORMAT.md`, section 2.3).
///
/// A value type, like ``KeyIndex``: the writer extends it under the index lock, and
/// ``StorageEngine/verify()`` compares it with one rebuilt from the log.
package struct EventIndex: Sendable, Equatable {
    /// The runs, ascending by position; consecutive runs are contiguous except where compaction
    /// dropped the events before a durable cursor.
    package private(set) var runs: [EventRun] = []

    package init() {}

    /// An index of the given runs, as a snapshot recorded them.
    package init(runs: [EventRun]) {
        self.runs = runs
    }

    /// The position of the last event in the log (0 when there is none).
    package var lastPosition: UInt64 { runs.last?.lastPosition ?? Format.firstEventPosition - 1 }

    /// The position the next event gets.
    package var nextPosition: UInt64 { lastPosition + 1 }

    /// The position of the first event still in the log (compaction drops the events every
    /// durable cursor has passed), or ``nextPosition`` when there is none.
    package var firstPosition: UInt64 { runs.first?.firstPosition ?? nextPosition }

    /// The heap bytes of the runs, for statistics.
    package var memoryFootprint: Int { runs.capacity * MemoryLayout<EventRun>.stride }

    /// Describes the first event of `payload` whose position is not the next one, or nil if
    /// all are in order. Recovery checks this before applying a frame, so a frame that verifies
    /// but leaves a gap in the outbox, or repeats a position, is reported as corruption rather
    /// than trusted.
    ///
    /// Past a compacted segment (`consecutive` false), the first event of a commit need only
    /// come after the last one before it: compaction drops the events every durable cursor has
    /// passed. A commit's own events stay consecutive (compaction keeps or drops them together).
    package func positionViolation(in payload: CommitPayload, consecutive: Bool = true) -> String? {
        var expected = nextPosition
        var first = true
        for case let .event(event, position) in payload.operations {
            let fits = first && !consecutive ? position >= expected : position == expected
            guard fits else {
                return "event \(event.id) has position \(position), expected \(first && !consecutive ? "at least " : "")\(expected)"
            }
            expected = position &+ 1
            first = false
        }
        return nil
    }

    /// Records the events of one logged commit, in sequence order; a commit without events
    /// adds nothing. The positions must have passed ``positionViolation(in:)``.
    package mutating func apply(_ payload: CommitPayload, sequence: UInt64, frame: FrameAddress, storedLength: Int) {
        guard let first = payload.firstEventPosition else { return }
        // A payload is at most 1 GiB and an event takes more than 4 bytes of it, so the count fits.
        var bytes = 0
        for case let .event(event, _) in payload.operations {
            bytes += 24 + event.id.utf8.count + event.type.utf8.count + event.aggregateTable.utf8.count
                + event.aggregateId.utf8.count + event.payload.count
        }
        runs.append(EventRun(firstPosition: first, sequence: sequence, frameOffset: frame.offset, segment: frame.segment,
                             storedLength: UInt32(storedLength), count: UInt32(payload.eventCount),
                             bytes: UInt32(clamping: bytes)))
    }

    /// Applies a compaction: every run whose frame is in `replaced` moves to its frame's new
    /// address in `moved`, or is dropped if the compaction dropped its events.
    package mutating func compacted(replaced: Set<UInt32>, moved: [FrameAddress: (address: FrameAddress, storedLength: UInt32)]) {
        runs = runs.compactMap { run in
            guard replaced.contains(run.segment) else { return run }
            guard let target = moved[run.frame] else { return nil }
            var run = run
            run.segment = target.address.segment
            run.frameOffset = target.address.offset
            run.storedLength = target.storedLength
            return run
        }
    }

    /// The runs that hold the first `limit` events after `position`: from the run holding
    /// position + 1 on, until they hold `limit` such events or the log ends.
    package func runs(after position: UInt64, limit: Int) -> ArraySlice<EventRun> {
        // The first run whose last event lies after `position` (binary search: runs are sorted).
        var low = 0, high = runs.count
        while low < high {
            let middle = (low + high) / 2
            if runs[middle].lastPosition <= position { low = middle + 1 } else { high = middle }
        }
        var end = low
        var covered = 0
        while end < runs.count, covered < limit {
            let run = runs[end]
            covered += Int(run.lastPosition - max(position, run.firstPosition - 1))
            end += 1
        }
        return runs[low..<end]
    }
}
