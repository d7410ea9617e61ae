import Logging
import Tracing

/// One action's unit of consistency: it owns the transaction boundary (begin, commit, abort),
/// and everything staged through its ``context`` is written all or nothing.
///
/// The closure form commits when the body returns and aborts when it throws:
///
/// ```swift
/// let receiptId = try UnitOfWork.run(on: store) { tx in
///     try store.create(order, in: tx)
///     return try tx.emit(OrderPlaced(orderId: order.id), about: order)
/// }
/// ```
///
/// The explicit form is for code that drives the boundary itself. A `UnitOfWork` is
/// non-copyable and ``commit()`` and ``abort()`` consume it, so it cannot be used after either;
/// one dropped without either is aborted, and a warning is logged.
///
/// ```swift
/// let uow = try UnitOfWork.begin(on: store)
/// try store.save(order, in: uow.context)
/// let receipt = try uow.commit()
/// ```
///
/// Isolation: reads see the latest committed state and the unit of work's own writes. Every
/// aggregate the unit of work writes is checked at commit against the version it read, so a
/// concurrent change makes the commit fail with ``StoreError/Code/conflict`` and write nothing.
/// Aggregates that are only read are not checked (as in snapshot isolation).
public struct UnitOfWork: ~Copyable, Sendable {
    /// The handle data-store operations take part through.
    public let context: TransactionContext
    private let span: any Span

    /// The unit of work's id.
    public var id: String { context.transaction.id }

    private init(transaction: Transaction, span: any Span) {
        self.context = TransactionContext(transaction)
        self.span = span
    }

    /// Begins a unit of work on `store`.
    ///
    /// - Parameter id: The unit of work's id; by default a new CanonicalId of kind `uow`.
    /// - Throws: ``StoreError/Code/invalidArgument`` for an empty or over-long id;
    ///   ``StoreError/Code/closed``.
    public static func begin(on store: DataStore, id: String? = nil) throws(StoreError) -> UnitOfWork {
        let id = id ?? store.configuration.ids.next(kind: "uow")
        try checkName(id, "unit-of-work id")
        guard !store.isClosed else { throw StoreError(.closed, "the store is closed") }
        let span = store.instruments.tracer.startSpan("aggstore.unitOfWork")
        span.setAttribute("aggstore.uow.id", id)
        store.logger.trace("unit of work began", metadata: ["uow.id": "\(id)"])
        return UnitOfWork(transaction: Transaction(id: id, store: store), span: span)
    }

    /// Commits: writes everything staged as one durable batch, then hands its events to the
    /// store's ``EventEngine``. A unit of work that staged nothing commits without writing.
    ///
    /// - Returns: Where the commit landed.
    /// - Throws: ``StoreError/Code/conflict`` if an aggregate it writes changed since it read
    ///   it; ``StoreError/Code/duplicate`` if it creates an id that exists; in both cases, and
    ///   for every other error, the unit of work is aborted and nothing is written, with one
    ///   exception: when the commit's own write or fsync fails (``StoreError/Code/io`` or
    ///   ``StoreError/Code/noSpace`` from this commit), the frame may have reached the disk
    ///   before the failure, so the unit of work is *in doubt*: a crash before the store is
    ///   reopened may bring it back committed, events included (as with any database whose
    ///   fsync fails). After a failed fsync the store refuses writes until it is reopened.
    @discardableResult
    public consuming func commit() throws(StoreError) -> UnitOfWorkReceipt {
        let transaction = context.transaction
        return try Self.record(Result { () throws(StoreError) in try transaction.store.commit(transaction) }, on: span)
    }

    /// Commits without blocking the calling task while the batch is written and fsynced; see
    /// ``commit()``.
    @discardableResult
    public consuming func commit() async throws(StoreError) -> UnitOfWorkReceipt {
        let transaction = context.transaction
        let result: Result<UnitOfWorkReceipt, StoreError>
        do {
            result = .success(try await transaction.store.commit(transaction))
        } catch {
            result = .failure(error)
        }
        return try Self.record(result, on: span)
    }

    /// Ends the unit of work's span with the commit's outcome.
    private static func record(_ result: Result<UnitOfWorkReceipt, StoreError>, on span: any Span) throws(StoreError) -> UnitOfWorkReceipt {
        defer { span.end() }
        switch result {
        case let .success(receipt):
            span.setAttribute("aggstore.uow.outcome", "committed")
            return receipt
        case let .failure(error):
            span.setAttribute("aggstore.uow.outcome", "failed")
            span.recordError(error)
            throw error
        }
    }

    /// Aborts: discards everything staged. Nothing is written.
    public consuming func abort() {
        let transaction = context.transaction
        if transaction.abort() { transaction.store.didAbort(transaction, reason: "aborted") }
        span.setAttribute("aggstore.uow.outcome", "aborted")
        span.end()
    }

    deinit {
        let transaction = context.transaction
        if transaction.abort() {
            transaction.store.logger.warning("unit of work dropped without commit or abort; aborted",
                                             metadata: ["uow.id": "\(transaction.id)"])
            transaction.store.didAbort(transaction, reason: "dropped")
            span.setAttribute("aggstore.uow.outcome", "dropped")
            span.end()
        }
    }
}

extension UnitOfWork {
    /// Runs `body` in a new unit of work on `store` and commits it when `body` returns; if
    /// `body` throws, the unit of work is aborted, nothing is written, and the error is
    /// rethrown.
    ///
    /// ```swift
    /// try UnitOfWork.run(on: store) { tx in
    ///     try store.update(SalesOrder.self, id: "so-1", set: ["status": "paid"], in: tx)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - store: The data store taking part.
    ///   - id: The unit of work's id; by default a new CanonicalId of kind `uow`.
    ///   - body: The action. Its context cannot escape it.
    /// - Returns: What `body` returns.
    ///
    /// In an `async` function the asynchronous variant is chosen even for a closure that does
    /// not await, so the commit never blocks a task; this one is disfavoured for that reason.
    @discardableResult
    @_disfavoredOverload
    public static func run<T>(on store: DataStore, id: String? = nil,
                              _ body: (borrowing TransactionContext) throws -> T) throws -> T {
        let unitOfWork = try begin(on: store, id: id)
        let result: T
        do {
            result = try body(unitOfWork.context)
        } catch {
            unitOfWork.abort()
            throw error
        }
        try unitOfWork.commit()
        return result
    }

    /// Runs an asynchronous `body` in a new unit of work; see ``run(on:id:_:)``. The commit's
    /// write and fsync do not block the calling task.
    @discardableResult
    ///
    /// The body runs in the caller's isolation (an actor's, the main actor's, or none), so it
    /// may touch the caller's state.
    public static func run<T>(on store: DataStore, id: String? = nil, isolation: isolated (any Actor)? = #isolation,
                              _ body: (borrowing TransactionContext) async throws -> T) async throws -> T {
        let unitOfWork = try begin(on: store, id: id)
        let result: T
        do {
            result = try await body(unitOfWork.context)
        } catch {
            unitOfWork.abort()
            throw error
        }
        try await unitOfWork.commit()
        return result
    }
}

/// Where a committed unit of work landed.
public struct UnitOfWorkReceipt: Sendable, Hashable {
    /// The unit of work's id.
    public var unitOfWorkId: String
    /// The sequence number of its commit in the log, or nil if it staged nothing and wrote
    /// nothing.
    public var sequence: UInt64?
    /// The positions its events were given in the outbox, in the order they were emitted.
    public var eventPositions: Range<UInt64>
}

extension Span {
    /// Sets a string attribute, only on a span that records: with the default no-op tracer,
    /// building the attribute cost a unit of work about 1,700 instructions for nothing.
    fileprivate func setAttribute(_ key: String, _ value: String) {
        if isRecording { attributes[key] = value }
    }
}
