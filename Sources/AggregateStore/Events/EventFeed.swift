/// The change feed: every committed event after a position, in position order, then each new
/// one as it is committed. It ends when the store closes or the task is cancelled.
///
/// ```swift
/// for try await event in store.events.events(after: 0) {
///     print(event.position, event.event.type)
/// }
/// ```
public struct EventFeed: AsyncSequence, Sendable {
    /// An event with its position, commit and unit of work.
    public typealias Element = StoredEvent

    let engine: StorageEngine
    let signal: CommitSignal
    let position: UInt64
    let batchSize: Int

    /// Creates the feed's iterator.
    public func makeAsyncIterator() -> Iterator {
        Iterator(feed: self, position: position)
    }

    /// Reads the feed in batches, waiting for commits when it has caught up.
    public struct Iterator: AsyncIteratorProtocol {
        let feed: EventFeed
        var position: UInt64
        var buffer: [StoredEvent] = []
        var index = 0

        /// The next event, or nil once the store is closed or the task cancelled.
        /// - Throws: ``StoreError`` if a stored event cannot be read (corruption, I/O).
        public mutating func next() async throws(StoreError) -> StoredEvent? {
            while index == buffer.count {
                if Task.isCancelled || feed.signal.isStopped { return nil }
                let generation = feed.signal.generation
                do {
                    buffer = try feed.engine.events(after: position, limit: feed.batchSize)
                } catch where error.code == .closed {
                    return nil
                }
                index = 0
                if buffer.isEmpty { await feed.signal.wait(after: generation) }
            }
            let event = buffer[index]
            index += 1
            position = event.position
            return event
        }
    }
}
