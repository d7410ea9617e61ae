public import Logging
import Synchronization

/// The store of a component's aggregates: it owns the files, the tables and the outbox, and
/// takes part in units of work through their ``TransactionContext``.
///
/// A `DataStore` never begins, commits or aborts anything: a ``UnitOfWork`` owns those
/// boundaries. Every data-store operation takes the context of the unit of work it is part of,
/// stages its writes there, and sees them in later reads of the same unit of work; the unit of
/// work's commit writes them, with its events, as one durable batch.
///
/// ```swift
/// let store = try DataStore.open(at: "/var/lib/orders")
/// try UnitOfWork.run(on: store) { tx in
///     guard var order = try store.load(SalesOrder.self, id: "so-1", in: tx) else { return }
///     order.status = "paid"
///     try store.save(order, in: tx)
///     try tx.emit(OrderPaid(orderId: order.id), about: order)
/// }
/// ```
///
/// ## Topics
/// - ``open(at:configuration:logger:)``
/// - ``create(_:in:)``
/// - ``load(_:id:in:)``
/// - ``save(_:in:)``
/// - ``update(_:id:set:in:)``
/// - ``delete(_:id:in:)``
/// - ``load(_:ids:in:)``
/// - ``find(_:where:equals:in:)``
/// - ``events``
/// - ``close()``
///
/// Thread safety: a `DataStore` may be shared by any number of threads and tasks; each unit of
/// work belongs to the code that began it.
public final class DataStore: Sendable {
    /// The storage engine underneath, for statistics and verification.
    public let engine: StorageEngine
    /// The settings the store was opened with.
    public let configuration: Configuration
    /// Publishes committed events to subscribers and publishers.
    public let events: EventEngine
    let logger: Logger
    let instruments: Instruments
    let encoder = RecordEncoder()
    let decoder = RecordDecoder()

    private init(engine: StorageEngine, configuration: Configuration, logger: Logger) {
        self.engine = engine
        self.configuration = configuration
        self.logger = logger
        self.instruments = Instruments(configuration: configuration)
        self.events = EventEngine(engine: engine, configuration: configuration, logger: logger, instruments: instruments)
    }

    /// Opens the store in `path`, creating it if needed, and recovers it after a crash.
    ///
    /// - Parameters:
    ///   - path: The store directory.
    ///   - configuration: Settings; the defaults suit production.
    ///   - logger: Where the store logs; it never creates a global logger. Nothing is logged by
    ///     default.
    /// - Throws: ``StoreError/Code/locked`` if another process has the store open;
    ///   ``StoreError/Code/corruption`` naming the damaged file and offset;
    ///   ``StoreError/Code/io``.
    public static func open(at path: String, configuration: Configuration = Configuration(),
                            logger: Logger = Logger(label: "aggstore", factory: { _ in SwiftLogNoOpLogHandler() })) throws(StoreError) -> DataStore {
        try open(at: path, configuration: configuration, fileSystem: PosixFileSystem(), logger: logger)
    }

    /// Opens the store over another file system: the crash suite's simulated disks.
    package static func open(at path: String, configuration: Configuration = Configuration(), fileSystem: any FileSystem,
                             logger: Logger = Logger(label: "aggstore", factory: { _ in SwiftLogNoOpLogHandler() })) throws(StoreError) -> DataStore {
        let engine = try StorageEngine.open(at: path, configuration: configuration.engine, fileSystem: fileSystem, logger: logger)
        let store = DataStore(engine: engine, configuration: configuration, logger: logger)
        store.events.start()
        return store
    }

    /// Stops event delivery and closes the files. Units of work still active fail to commit.
    public func close() throws(StoreError) {
        events.stop()
        try engine.close()
    }

    /// Checks that a context belongs to this store and is still active.
    package func participate(_ context: borrowing TransactionContext) throws(StoreError) -> Transaction {
        let transaction = context.transaction
        guard transaction.store === self else {
            throw StoreError(.invalidArgument, "unit of work \(transaction.id) belongs to another store")
        }
        try transaction.checkActive()
        return transaction
    }
}
