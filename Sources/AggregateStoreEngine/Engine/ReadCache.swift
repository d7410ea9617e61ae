import Synchronization

/// A cache of decompressed frame payloads, bounded in bytes, so that hot records are read
/// without a `pread`, a CRC check and a decompression each time.
///
/// The payloads are copied into slabs, a few large blocks allocated once each, not kept as
/// an array apiece. A cache that holds tens of thousands of small payloads, each allocated
/// on whichever thread encoded or read it, would otherwise grow the allocator's heaps a page
/// at a time and scatter long-lived blocks among short-lived ones; the slabs make the bound
/// the memory actually used, and cost one allocation per slab.
///
/// The slabs form a ring, filled in turn (a segmented FIFO): when the slab being filled is
/// full, the next one is emptied, dropping its entries, and filled next. A payload read from
/// the older half of the ring is copied into the slab being filled, so what is read often
/// survives its slab's turn, as in a least-recently-used cache, without a list to update on
/// every hit.
package final class ReadCache: Sendable {
    /// Where a cached payload is.
    private struct Entry {
        var slab: Int
        var offset: Int
        var count: Int
    }

    /// One block of payloads, filled from its start.
    private struct Slab {
        /// Allocated when the slab is first filled.
        var memory: UnsafeMutableRawPointer?
        var used = 0
        /// The keys of the payloads copied into the slab, to drop when it is emptied (a key
        /// whose entry has since moved to a newer slab is skipped).
        var keys: [FrameAddress] = []
    }

    private struct State {
        var entries: [FrameAddress: Entry] = [:]
        var slabs: [Slab]
        /// The slab being filled.
        var current = 0
        var bytes = 0
        var hits = 0
        var misses = 0
        var isClosed = false
    }

    /// The capacity in payload bytes.
    package let capacity: Int
    /// The size of a slab: the largest payload that is cached.
    package let slabSize: Int
    private let state: Mutex<State>

    /// Creates a cache holding at most `capacity` payload bytes; 0 caches nothing.
    ///
    /// The capacity is split into slabs of a sixteenth of it, at most 1 MiB each (so at least
    /// 64 slabs for the default 64 MiB), and at least 64 KiB unless the whole cache is smaller.
    package init(capacity: Int) {
        self.capacity = max(0, capacity)
        slabSize = min(self.capacity, max(64 << 10, min(1 << 20, self.capacity / 16)))
        let count = slabSize == 0 ? 0 : self.capacity / slabSize
        state = Mutex(State(slabs: Array(repeating: Slab(), count: count)))
    }

    deinit {
        state.withLock { Self.release(&$0) }
    }

    /// A copy of a cached payload.
    package func payload(for key: FrameAddress) -> [UInt8]? {
        withPayload(for: key) { Array($0) }
    }

    /// Calls `body` with a cached payload's bytes, under the cache's lock (so `body` should
    /// only copy what it needs), and counts a hit; returns nil, counting a miss, if the payload
    /// is not cached. A payload read from the older half of the ring moves to the newest slab.
    package func withPayload<T>(for key: FrameAddress, _ body: (UnsafeRawBufferPointer) -> T) -> T? {
        state.withLock { state in
            guard let entry = state.entries[key], let memory = state.slabs[entry.slab].memory else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            // Handed to `body` through a Sendable view: region checking would otherwise tie the
            // whole state to the caller's closure. `body` runs under the lock, as documented.
            let result = body(SlabBytes(start: memory + entry.offset, count: entry.count).buffer)
            let age = (state.current - entry.slab + state.slabs.count) % state.slabs.count
            if 2 * age >= state.slabs.count {
                Self.append(UnsafeRawBufferPointer(start: memory + entry.offset, count: entry.count), for: key,
                            in: &state, slabSize: slabSize)
            }
            return result
        }
    }

    /// Caches a copy of a payload, emptying the oldest slab when the ring is full. A payload
    /// larger than a slab is not kept, nor one already cached.
    package func insert(_ payload: [UInt8], for key: FrameAddress) {
        guard payload.count <= slabSize, !payload.isEmpty else { return }
        state.withLock { state in
            guard !state.isClosed, state.entries[key] == nil else { return }
            payload.withUnsafeBytes { Self.append($0, for: key, in: &state, slabSize: slabSize) }
        }
    }

    /// Payload bytes held, entries, hits and misses so far.
    package var usage: (bytes: Int, entries: Int, hits: Int, misses: Int) {
        state.withLock { ($0.bytes, $0.entries.count, $0.hits, $0.misses) }
    }

    /// The bytes of slab memory allocated: at most ``capacity``.
    package var allocatedBytes: Int {
        state.withLock { state in state.slabs.reduce(0) { $0 + ($1.memory == nil ? 0 : slabSize) } }
    }

    /// Drops every entry, frees the slabs and takes no more: a committer woken as its store
    /// closes caches its commit after the close.
    package func close() {
        state.withLock { state in
            Self.release(&state)
            state.entries = [:]
            state.bytes = 0
            state.isClosed = true
        }
    }

    /// Copies `bytes` into the slab being filled, moving on to the next slab (emptied first)
    /// when they do not fit; a copy of a payload already cached replaces its entry.
    private static func append(_ bytes: UnsafeRawBufferPointer, for key: FrameAddress, in state: inout State, slabSize: Int) {
        if state.slabs[state.current].used + bytes.count > slabSize {
            state.current = (state.current + 1) % state.slabs.count
            empty(state.current, in: &state)
        }
        let slab = state.current
        if state.slabs[slab].memory == nil {
            state.slabs[slab].memory = .allocate(byteCount: slabSize, alignment: 16)
        }
        let offset = state.slabs[slab].used
        // A move (see ``withPayload(for:_:)``) whose room is made by emptying its own slab
        // copies the payload to that slab's start, over itself: `copyMemory` allows overlap.
        (state.slabs[slab].memory! + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        state.slabs[slab].used += bytes.count
        state.slabs[slab].keys.append(key)
        if let old = state.entries.updateValue(Entry(slab: slab, offset: offset, count: bytes.count), forKey: key) {
            state.bytes -= old.count
        }
        state.bytes += bytes.count
    }

    /// Drops the entries of a slab (not those that moved to a newer one) for it to be refilled.
    private static func empty(_ slab: Int, in state: inout State) {
        for key in state.slabs[slab].keys {
            guard let entry = state.entries[key], entry.slab == slab else { continue }
            state.entries[key] = nil
            state.bytes -= entry.count
        }
        state.slabs[slab].keys.removeAll(keepingCapacity: true)
        state.slabs[slab].used = 0
    }

    private static func release(_ state: inout State) {
        for index in state.slabs.indices {
            state.slabs[index].memory?.deallocate()
            state.slabs[index] = Slab()
        }
    }
}

/// Bytes in a slab, valid while the cache's lock is held.
private struct SlabBytes: @unchecked Sendable {
    let start: UnsafeMutableRawPointer
    let count: Int

    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: start, count: count) }
}
