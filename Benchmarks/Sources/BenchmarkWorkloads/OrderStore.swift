public import AggregateStoreDemo

/// An engine the comparison runs the same workloads on: AggregateStore, or SQLite through GRDB.
///
/// Each method measures inside the engine's own read transaction, with the same loop, so that
/// the figures differ only by what the engines do.
public protocol OrderStore: AnyObject, Sendable {
    /// The engine's name in reports.
    var name: String { get }

    /// One unit of work: the order created and its `OrderPlaced` event put in the outbox, in one
    /// transaction, durable when it returns.
    func place(_ order: SalesOrder) throws
    /// The same, from a task; concurrent calls may share an fsync if the engine can.
    func placeConcurrently(_ order: SalesOrder) async throws
    /// Loads orders for the read workloads, `perTransaction` to a transaction (1: as many
    /// units of work placed them), without waiting for fsyncs.
    func bulkLoad(_ orders: [SalesOrder], perTransaction: Int) throws

    /// Typed primary-key loads (decoded aggregates), one sample each, in one read transaction.
    func timeLoads(ids: [String]) throws -> Samples
    /// Loads of many ids at once (`IN`), one sample per list.
    func timeLoads(idLists: [[String]]) throws -> Samples
    /// Foreign-key lookups (a customer's orders, decoded), one sample each; each must find `expected`.
    func timeCustomerLookups(_ customerIds: [String], expected: Int) throws -> Samples
    /// Counts of the paid orders in EUR, a filter on fields inside the aggregate (a full scan
    /// in both engines); returns the samples and the count.
    func timePaidCount(times: Int) throws -> (samples: Samples, count: Int)

    /// The bytes the engine's files take.
    func diskBytes() throws -> Int
    /// Closes the engine.
    func close() throws
}
