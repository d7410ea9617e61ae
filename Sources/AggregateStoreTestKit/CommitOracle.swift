package import AggregateStoreEngine

/// The crash suite's oracle, kept outside the engine: what was issued and acknowledged, and
/// the model state those commits imply. After every recovery it checks the invariants of
/// `Docs/CRASH-TESTING.md` (I1-I7, I9) and names the first one broken.
package struct CommitOracle: Sendable {
    /// One commit as the oracle knows it.
    package struct Commit: Sendable {
        package var batch: WriteBatch
        package var acknowledged: Bool
    }

    /// Commits in sequence order: `commits[k - 1]` is the commit that got, or would get, sequence k.
    package private(set) var commits: [Commit] = []
    /// A batch issued and not acknowledged that is not the last issued one is certainly not in
    /// the log (its frame was cut and a later commit took its place); counted for reports.
    package private(set) var withdrawn = 0
    /// Whether compaction may have dropped tombstones (`compactionDropsTombstones`): a deleted
    /// key may then be forgotten (version 0, no index entry), and a key written again after
    /// that starts over at version 1, so a key with a delete in its past may have any version
    /// from 1 to the modelled one. Never a ghost key, never a resurrected record.
    package var tombstonesMayBeForgotten = false

    package init(tombstonesMayBeForgotten: Bool = false) {
        self.tombstonesMayBeForgotten = tombstonesMayBeForgotten
    }

    /// The highest acknowledged sequence number.
    package var maxAcknowledged: UInt64 {
        UInt64(commits.lastIndex(where: \.acknowledged).map { $0 + 1 } ?? 0)
    }

    /// The highest sequence number that may be in the log.
    package var maxIssued: UInt64 { UInt64(commits.count) }

    /// Records that `batch` is about to be committed.
    package mutating func issue(_ batch: WriteBatch) {
        issue(group: [batch])
    }

    /// Records that `batches` are about to be committed as one group, taking the next sequence
    /// numbers in order.
    package mutating func issue(group batches: [WriteBatch]) {
        // Earlier unacknowledged attempts failed without a crash: their frames were cut, so the
        // new attempts take their sequence numbers.
        while let last = commits.last, !last.acknowledged {
            commits.removeLast()
            withdrawn += 1
        }
        commits += batches.map { Commit(batch: $0, acknowledged: false) }
    }

    /// Records that the issued batch with `sequence` was acknowledged; every batch before it
    /// must have been acknowledged already (a group's commits are acknowledged in order).
    package mutating func acknowledge(_ sequence: UInt64) {
        precondition(sequence >= 1 && sequence <= UInt64(commits.count) && maxAcknowledged == sequence - 1,
                     "acknowledged sequence \(sequence) with \(maxAcknowledged) acknowledged and \(commits.count) issued")
        commits[Int(sequence) - 1].acknowledged = true
    }

    /// Records that the issued batch with the receipt's sequence was acknowledged. A receipt whose
    /// event positions are not the ones the commits before it imply is kept, and reported by
    /// every later ``check(_:events:files:)`` as an I5 violation.
    package mutating func acknowledge(_ receipt: CommitReceipt) {
        acknowledge(receipt.sequence)
        let expected = eventPositions(of: receipt.sequence)
        if receipt.eventPositions != expected, wrongReceipt == nil {
            wrongReceipt = "commit \(receipt.sequence) was acknowledged with event positions \(receipt.eventPositions), expected \(expected)"
        }
    }

    /// The first acknowledgement whose event positions were wrong.
    package private(set) var wrongReceipt: String?

    /// Keeps only the commits a recovery found (1...L): after it, commits continue from L.
    package mutating func settle(at lastSequence: UInt64) {
        commits.removeLast(commits.count - Int(lastSequence))
        for index in commits.indices { commits[index].acknowledged = true }
    }

    /// The state implied by commits 1...L: every key's latest version, and the events in order.
    package func model(through lastSequence: UInt64) -> Model {
        var model = Model()
        for (index, commit) in commits.prefix(Int(lastSequence)).enumerated() {
            model.apply(commit.batch, sequence: UInt64(index + 1))
        }
        return model
    }

    /// Whether a key's recovered version fits the model: the modelled one, or, if tombstones
    /// may have been forgotten and the key was deleted before, a restarted one.
    private func accepts(_ version: UInt64, for expected: Model.Entry?) -> Bool {
        let modelled = expected?.version ?? 0
        guard version != modelled else { return true }
        guard tombstonesMayBeForgotten, let expected, expected.deletedSoFar else { return false }
        return expected.record == nil ? version < modelled : (1..<modelled).contains(version)
    }

    /// The outbox positions the commit with `sequence` gets: the events of the commits before
    /// it, plus one, onward (`Docs/FORMAT.md`, section 2.3).
    package func eventPositions(of sequence: UInt64) -> Range<UInt64> {
        let before = commits.prefix(Int(sequence) - 1).reduce(0) { $0 + Self.eventCount(of: $1.batch) }
        let first = UInt64(before) + 1
        return first..<first + UInt64(Self.eventCount(of: commits[Int(sequence) - 1].batch))
    }

    private static func eventCount(of batch: WriteBatch) -> Int {
        batch.operations.reduce(0) { count, operation in
            if case .event = operation { count + 1 } else { count }
        }
    }

    /// What commits 1...L imply.
    package struct Model: Sendable, Equatable {
        /// A key's latest version: its record bytes and foreign keys, or nil for a tombstone.
        package struct Entry: Sendable, Equatable {
            package var version: UInt64
            package var record: [UInt8]?
            package var foreignKeys: [ForeignKey]
            /// Whether the key was deleted at this version or before it.
            package var deletedSoFar = false
        }
        /// An event where the outbox must hold it.
        package struct Event: Sendable, Equatable {
            package var position: UInt64
            package var sequence: UInt64
            package var unitOfWorkId: String
            package var event: OutboxEvent
        }
        /// table → id → entry.
        package var entries: [String: [String: Entry]] = [:]
        /// Every event, in commit order then batch order, at positions 1, 2, 3 ...
        package var events: [Event] = []

        mutating func apply(_ batch: WriteBatch, sequence: UInt64) {
            for operation in batch.operations {
                switch operation {
                case let .put(table, id, record, foreignKeys, _):
                    let previous = entries[table]?[id]
                    entries[table, default: [:]][id] = Entry(version: (previous?.version ?? 0) + 1, record: record,
                                                             foreignKeys: foreignKeys, deletedSoFar: previous?.deletedSoFar ?? false)
                case let .delete(table, id, _):
                    let version = (entries[table]?[id]?.version ?? 0) + 1
                    entries[table, default: [:]][id] = Entry(version: version, record: nil, foreignKeys: [], deletedSoFar: true)
                case let .event(event):
                    events.append(Event(position: UInt64(events.count + 1), sequence: sequence,
                                        unitOfWorkId: batch.unitOfWorkId, event: event))
                }
            }
        }
    }

    /// A broken invariant.
    package struct Violation: Error, Sendable, CustomStringConvertible {
        /// Which invariant: "I1" ... "I9".
        package var invariant: String
        package var message: String
        package var description: String { "\(invariant): \(message)" }

        package init(invariant: String, message: String) {
            self.invariant = invariant
            self.message = message
        }
    }

    /// Checks a recovered engine against the oracle (I1-I6, I9). Returns the recovered L.
    /// - Parameter events: the outbox events read back from the log by a separate scan
    ///   (``StorageEngine/loggedEvents()``), in order; the engine's own event feed is read here.
    /// - Parameter files: the names in the store directory, for the orphan check (nil skips it).
    package func check(_ engine: StorageEngine, events: [StoredEvent], files: [String]?) throws -> UInt64 {
        let last = engine.lastSequence
        // I1 and I2: the recovered commits are exactly 1...L with max acked <= L <= max issued.
        guard last >= maxAcknowledged else {
            throw Violation(invariant: "I1", message: "acknowledged commit lost: recovered up to \(last), acknowledged up to \(maxAcknowledged)")
        }
        guard last <= maxIssued else {
            throw Violation(invariant: "I2", message: "recovered up to \(last) but only \(maxIssued) commits were issued")
        }
        // I3 and I4: every key is exactly as commits 1...L leave it; no deleted key comes back,
        // no commit is partly applied.
        let model = model(through: last)
        var universe: [String: Set<String>] = [:]
        for commit in commits {
            for operation in commit.batch.operations {
                switch operation {
                case let .put(table, id, _, _, _), let .delete(table, id, _): universe[table, default: []].insert(id)
                case .event: break
                }
            }
        }
        var live = 0
        for (table, ids) in universe {
            for id in ids {
                let expected = model.entries[table]?[id]
                let found = try engine.record(table: table, id: id)
                let (version, _) = try engine.version(table: table, id: id)
                guard found?.bytes == expected?.record, accepts(version, for: expected) else {
                    throw Violation(invariant: "I4", message: "\(table)/\(id) at L=\(last): found version \(version) "
                        + "\(found == nil ? "absent" : "present"), expected version \(expected?.version ?? 0) "
                        + "\(expected?.record == nil ? "absent" : "present") (partial or stale commit)")
                }
                if found != nil { live += 1 }
            }
        }
        for table in universe.keys {
            for customer in 0..<4 {
                let value = "C-\(customer)"
                let expected = (model.entries[table] ?? [:]).filter { $0.value.record != nil && $0.value.foreignKeys.contains(ForeignKey(field: CrashWorkload.foreignKeyField, value: value)) }.keys.sorted()
                let found = try engine.ids(table: table, field: CrashWorkload.foreignKeyField, value: value)
                guard found == expected else {
                    throw Violation(invariant: "I4", message: "foreign-key index \(table).\(value): found \(found), expected \(expected)")
                }
            }
        }
        guard try engine.statistics().liveRecords == live else {
            throw Violation(invariant: "I4", message: "the store counts \(try engine.statistics().liveRecords) live records, the model \(live)")
        }
        // The table scans: live ids per table, and the tables that have any.
        let liveIds = model.entries.mapValues { entries in entries.compactMap { $0.value.record == nil ? nil : $0.key }.sorted() }
        let liveTables = liveIds.filter { !$0.value.isEmpty }.keys.sorted()
        guard try engine.tables() == liveTables else {
            throw Violation(invariant: "I4", message: "tables() is \(try engine.tables()), the model's tables with live records \(liveTables)")
        }
        for table in Set(universe.keys).union(model.entries.keys) {
            let expected = liveIds[table] ?? []
            guard try engine.ids(table: table) == expected, try engine.liveRecordCount(table: table) == expected.count else {
                throw Violation(invariant: "I4", message: "ids(table: \(table)) is \(try engine.ids(table: table)), expected \(expected)")
            }
        }
        // The whole index, not only the keys the workload names: every key with its version
        // and liveness (tombstones included), and the complete foreign-key map.
        let index = try engine.readIndex { $0 }
        var modelKeys = 0, indexedModelKeys = 0
        var expectedForeign: [String: [String: [String: Set<String>]]] = [:]
        for (table, entries) in model.entries {
            for (id, expected) in entries {
                modelKeys += 1
                let entry = index.entry(table: table, id: id)
                if entry != nil { indexedModelKeys += 1 }
                guard accepts(entry?.version ?? 0, for: expected), (entry?.isLive ?? false) == (expected.record != nil),
                      Set(index.foreignKeys(table: table, id: id)) == Set(expected.record == nil ? [] : expected.foreignKeys)
                else {
                    throw Violation(invariant: "I4", message: "index entry of \(table)/\(id) is \(String(describing: entry)), expected version \(expected.version)")
                }
                if expected.record != nil {
                    for key in expected.foreignKeys {
                        expectedForeign[table, default: [:]][key.field, default: [:]][key.value, default: []].insert(id)
                    }
                }
            }
        }
        let indexKeys = index.keyCount
        guard indexKeys == indexedModelKeys, tombstonesMayBeForgotten || indexKeys == modelKeys else {
            throw Violation(invariant: "I4", message: "the index holds \(indexKeys) keys, the model \(modelKeys) (ghost keys or tombstones)")
        }
        guard index.foreignKeyMap() == expectedForeign else {
            throw Violation(invariant: "I4", message: "the foreign-key index differs from the model's")
        }
        if let wrongReceipt { throw Violation(invariant: "I5", message: wrongReceipt) }
        try checkEvents(engine, logged: events, expected: model.events, last: last)
        // I6: the index equals a rebuild from the log.
        let report = try engine.verify()
        guard report.isHealthy else {
            throw Violation(invariant: "I6", message: "verify: \(report.problems.map(\.description).joined(separator: "; "))")
        }
        // I9: nothing in the directory but the lock, the manifest and listed segments.
        if let files {
            let segments = Set(try engine.statistics().segments.map { SegmentHeader.fileName(for: $0.id) })
            let expected = [Format.lockFileName, Format.manifestFileName, Format.snapshotFileName]
            let orphans = files.filter { !expected.contains($0) && !segments.contains($0) }
            guard orphans.isEmpty else {
                throw Violation(invariant: "I9", message: "orphan files after recovery: \(orphans)")
            }
        }
        return last
    }
}

extension CommitOracle {
    /// I5: the outbox holds exactly the events of commits 1...L, each once, in commit order then
    /// batch order, at positions 1, 2, 3 ... with no gap, each with its content, commit sequence
    /// and unit of work, and nothing of a commit that was not recovered. An in-flight commit is
    /// in 1...L or not, so its events are all there or none is. Checked twice: in the log as a
    /// separate scan reads it (`logged`), and in the engine's event feed and its paging.
    func checkEvents(_ engine: StorageEngine, logged: [StoredEvent], expected: [Model.Event], last: UInt64) throws {
        let found = logged.map { Model.Event(position: $0.position, sequence: $0.sequence, unitOfWorkId: $0.unitOfWorkId, event: $0.event) }
        if found != expected {
            let index = zip(found, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(found.count, expected.count)
            throw Violation(invariant: "I5", message: "the log holds \(found.count) events, commits 1...\(last) imply \(expected.count); "
                + "first difference at index \(index): found \(index < found.count ? "\(found[index])" : "nothing"), "
                + "expected \(index < expected.count ? "\(expected[index])" : "nothing")")
        }
        let feed = try engine.events(after: 0, limit: Int.max)
        guard feed == logged else {
            throw Violation(invariant: "I5", message: "events(after: 0) returns \(feed.count) events that differ from the \(logged.count) in the log")
        }
        guard engine.lastEventPosition == UInt64(expected.count) else {
            throw Violation(invariant: "I5", message: "lastEventPosition is \(engine.lastEventPosition), the log holds \(expected.count) events")
        }
        // Pages of three cross commit boundaries (a commit has 0-2 events in the workload). Only
        // the start and the last 30 events are paged, where the recovered and in-flight commits
        // are: paging a long log three events at a time would slow the SIGKILL class down.
        for start in Set([0, max(0, feed.count - 30)]) {
            var paged: [StoredEvent] = []
            while paged.count < 30 {
                let page = try engine.events(after: paged.last?.position ?? UInt64(start), limit: 3)
                guard !page.isEmpty, page.count <= 3 else { break }
                paged += page
            }
            let expected = feed.dropFirst(start).prefix(paged.count)
            guard paged.elementsEqual(expected), paged.count == min(30, feed.count - start) else {
                throw Violation(invariant: "I5", message: "paging by three after position \(start) returns \(paged.count) events that differ from events(after: 0)")
            }
        }
    }
}

extension StorageEngine {
    /// The outbox events of the log, in position order, read back frame by frame by a
    /// read-only recovery of the files: independent of the engine's event index.
    package func loggedEvents() throws(StoreError) -> [StoredEvent] {
        var events: [StoredEvent] = []
        let recovery = Recovery(directory: path, fileSystem: fileSystem, readOnly: true, logger: logger)
        let log = try recovery.run { frame, _ in
            for case let .event(event, position) in frame.payload.operations {
                events.append(StoredEvent(position: position, sequence: frame.header.sequence,
                                          unitOfWorkId: frame.payload.unitOfWorkId,
                                          committedAt: frame.payload.commitTimestamp, event: event))
            }
        }
        for handle in log.handles.values { try? handle.close() }
        return events
    }
}
