/// AggregateStore: an embedded, append-only, log-structured store for the aggregates of a
/// service component, with a transactional outbox.
///
/// This module is the API for component developers. Its DataStore, UnitOfWork and query DSL
/// are built on ``StorageEngine``, the low-level engine re-exported here with its types
/// (``WriteBatch``, ``StoreError``, ``EngineConfiguration``, ``RecoveryReport``).
@_exported public import AggregateStoreEngine
