import Dispatch
import Synchronization
import Logging

extension DataStore {
    /// Whether the store has been closed.
    var isClosed: Bool { engine.state.withLock { $0.isClosed } }

    /// The participant's side of a unit of work's commit: prepare the staged writes and events
    /// as one batch, persist it (the engine checks every expectation when it stages the batch
    /// and fsyncs before returning), then hand the events to the event engine.
    func commit(_ transaction: Transaction) throws(StoreError) -> UnitOfWorkReceipt {
        let start = DispatchTime.now().uptimeNanoseconds
        guard let batch = try prepareCommit(transaction) else { return emptyCommit(transaction, start: start) }
        let outcome = Result { () throws(StoreError) in try engine.commit(batch) }
        return try finishCommit(transaction, outcome, start: start)
    }

    /// ``commit(_:)`` without blocking the calling task while the batch is written and fsynced.
    func commit(_ transaction: Transaction) async throws(StoreError) -> UnitOfWorkReceipt {
        let start = DispatchTime.now().uptimeNanoseconds
        guard let batch = try prepareCommit(transaction) else { return emptyCommit(transaction, start: start) }
        let outcome: Result<CommitReceipt, StoreError>
        do {
            outcome = .success(try await engine.commit(batch))
        } catch {
            outcome = .failure(error)
        }
        return try finishCommit(transaction, outcome, start: start)
    }

    /// The unit of work's batch, or nil when it staged nothing.
    private func prepareCommit(_ transaction: Transaction) throws(StoreError) -> WriteBatch? {
        do {
            return try transaction.prepare()
        } catch {
            log(.debug, "unit of work cannot commit", unitOfWork: transaction.id, metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// Commits a unit of work that staged nothing: nothing is written.
    private func emptyCommit(_ transaction: Transaction, start: UInt64) -> UnitOfWorkReceipt {
        transaction.finish(committed: true)
        instruments.committed(transaction.id, nanoseconds: Int64(DispatchTime.now().uptimeNanoseconds - start), receipt: nil)
        log(.debug, "unit of work committed; nothing to write", unitOfWork: transaction.id)
        let next = engine.lastEventPosition + 1
        return UnitOfWorkReceipt(unitOfWorkId: transaction.id, sequence: nil, eventPositions: next..<next)
    }

    /// Records the engine's outcome: the unit of work's end, its metrics and log line, and the
    /// event engine's wake-up.
    private func finishCommit(_ transaction: Transaction, _ outcome: Result<CommitReceipt, StoreError>,
                              start: UInt64) throws(StoreError) -> UnitOfWorkReceipt {
        let receipt: CommitReceipt
        switch outcome {
        case let .success(committed):
            receipt = committed
        case let .failure(error):
            transaction.finish(committed: false)
            if error.code == .conflict || error.code == .duplicate { instruments.conflicted(transaction.id) }
            instruments.aborted(transaction.id, reason: "\(error.code)")
            if error.code == .io || error.code == .noSpace {
                log(.error, "unit of work failed to commit; in doubt until the store is reopened", unitOfWork: transaction.id,
                    metadata: ["error": "\(error)"])
            } else {
                log(.info, "unit of work failed to commit; nothing was written", unitOfWork: transaction.id, metadata: ["error": "\(error)"])
            }
            throw error
        }
        transaction.finish(committed: true)
        let elapsed = Int64(DispatchTime.now().uptimeNanoseconds - start)
        instruments.committed(transaction.id, nanoseconds: elapsed, receipt: receipt)
        log(.debug, "unit of work committed", unitOfWork: transaction.id, metadata: [
            "aggstore.sequence": "\(receipt.sequence)",
            "aggstore.writes": "\(receipt.versions.count)",
            "aggstore.events": "\(receipt.eventPositions.count)",
            "aggstore.groupSize": "\(receipt.groupSize)",
        ])
        if !receipt.eventPositions.isEmpty { events.committed(through: receipt.eventPositions.upperBound - 1) }
        return UnitOfWorkReceipt(unitOfWorkId: transaction.id, sequence: receipt.sequence, eventPositions: receipt.eventPositions)
    }

    /// Logs and counts an abort.
    func didAbort(_ transaction: Transaction, reason: String) {
        instruments.aborted(transaction.id, reason: reason)
        log(.debug, "unit of work aborted; nothing was written", unitOfWork: transaction.id, metadata: ["reason": "\(reason)"])
    }

    /// Logs with the unit of work's id in the metadata. Nothing is built when the level is off:
    /// setting the id on a copy of the logger for every unit of work made the log handler
    /// render its metadata each time (about 5 µs of a 40 µs unit of work).
    func log(_ level: Logger.Level, _ message: @autoclosure () -> Logger.Message, unitOfWork id: String,
             metadata: @autoclosure () -> Logger.Metadata = [:]) {
        guard logger.logLevel <= level else { return }
        var metadata = metadata()
        metadata["uow.id"] = "\(id)"
        logger.log(level: level, message(), metadata: metadata)
    }
}
