import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A cache of decompressed frame payloads, bounded in bytes, so that hot records are read
/// without a `pread`, a CRC check and a decompression each time.
///
/// The payloads are copied into slabs, large blocks allocated once each, not kept as an
/// array apiece. A cache that holds tens of thousands of small payloads, each allocated on
/// whichever thread encoded or read it, would otherwise grow the allocator's heaps a page at
/// a time and scatter long-lived blocks among short-lived ones; the slabs make the bound the
/// memory actually allocated, and cost one allocation per slab.
///
/// The slabs are filled in turn and dropped oldest first (a segmented FIFO): a payload goes
/// into the slab being filled, or into a new one when it does not fit, and the oldest slabs
/// are dropped with their entries to keep the memory within the capacity. A payload larger
/// than a quarter of a slab gets a slab of its own size. A small payload read from a slab in
/// the older half of the capacity is copied into the slab being filled, so what is read
/// often outlives its slab, as in a least-recently-used cache, without a list to update on
/// every hit.
package final class ReadCache: Sendable {
    /// One block of payloads, filled from its start.
    private struct Slab {
        /// Slabs are numbered in the order they are made; those held are consecutive.
        var number: UInt64
        var memory: UnsafeMutableRawPointer
        var size: Int
        var used = 0
        /// The keys of the payloads copied into the slab, to drop when it is emptied (a key
        /// whose entry has since moved to a newer slab is skipped).
        var keys: [FrameAddress] = []
    }

    private struct State {
        var entries = CacheEntryTable()
        /// Oldest first.
        var slabs: [Slab] = []
        /// The slab that small payloads are copied into, until it is full.
        var filling: UInt64?
        var nextSlabNumber: UInt64 = 0
        /// The sum of the slabs' sizes.
        var allocated = 0
        var bytes = 0
        var hits = 0
        var misses = 0
        var isClosed = false

        func index(of slab: UInt64) -> Int { Int(slab - slabs[0].number) }
    }

    /// The capacity in payload bytes, and the most slab memory the cache allocates.
    package let capacity: Int
    /// The size of a slab that holds many payloads.
    package let slabSize: Int
    /// How many such slabs the capacity holds: a payload read from a slab at least half as
    /// many slabs older than the newest is moved to the slab being filled.
    private let slabsInCapacity: UInt64
    private let state = Mutex(State())

    /// Creates a cache holding at most `capacity` payload bytes; 0 caches nothing.
    ///
    /// Slabs are a sixteenth of the capacity, at most 1 MiB each (so 64 slabs for the default
    /// 64 MiB), and at least 64 KiB unless the whole cache is smaller.
    package init(capacity: Int) {
        self.capacity = max(0, capacity)
        slabSize = min(self.capacity, max(64 << 10, min(1 << 20, self.capacity / 16)))
        slabsInCapacity = slabSize == 0 ? 0 : UInt64(self.capacity / slabSize)
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
    /// is not cached. A payload read from a slab in the older half of the capacity moves to the
    /// slab being filled, unless it is larger than a sixteenth of a slab: the payload of a unit
    /// of work of a thousand aggregates would be copied whole for a read of one record.
    package func withPayload<T>(for key: FrameAddress, _ body: (UnsafeRawBufferPointer) -> T) -> T? {
        state.withLock { state in
            guard let entry = state.entries[key] else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            let slab = state.index(of: entry.slab)
            let bytes = BytesView(start: state.slabs[slab].memory + entry.offset, count: entry.count)
            // Handed to `body` through a Sendable view: region checking would otherwise tie the
            // whole state to the caller's closure. `body` runs under the lock, as documented.
            let result = body(bytes.buffer)
            if 2 * (state.nextSlabNumber - 1 - entry.slab) >= slabsInCapacity, entry.count <= slabSize / 16 {
                // Copied out first: making room for it may drop its own slab.
                let payload = Array(bytes.buffer)
                payload.withUnsafeBytes { Self.append($0, for: key, in: &state, capacity: capacity, slabSize: slabSize) }
            }
            return result
        }
    }

    /// Caches a copy of a payload, dropping the oldest slabs to stay within the capacity. A
    /// payload larger than the capacity is not kept, nor one already cached.
    package func insert(_ payload: [UInt8], for key: FrameAddress) {
        payload.withUnsafeBytes { insert($0, for: key) }
    }

    /// Caches a copy of the bytes of `payload`, as the form taking an array does.
    package func insert(_ payload: UnsafeRawBufferPointer, for key: FrameAddress) {
        guard payload.count <= capacity, !payload.isEmpty else { return }
        // Through a Sendable view, as in ``withPayload(for:_:)``.
        let bytes = BytesView(start: UnsafeMutableRawPointer(mutating: payload.baseAddress!), count: payload.count)
        state.withLock { state in
            guard !state.isClosed, state.entries[key] == nil else { return }
            Self.append(bytes.buffer, for: key, in: &state, capacity: capacity, slabSize: slabSize)
        }
    }

    /// Payload bytes held, entries, hits and misses so far.
    package var usage: (bytes: Int, entries: Int, hits: Int, misses: Int) {
        state.withLock { ($0.bytes, $0.entries.count, $0.hits, $0.misses) }
    }

    /// The bytes of slab memory allocated: at most ``capacity``.
    package var allocatedBytes: Int {
        state.withLock { $0.allocated }
    }

    /// Drops every entry, frees the slabs and takes no more: a committer woken as its store
    /// closes caches its commit after the close.
    package func close() {
        state.withLock { state in
            Self.release(&state)
            state.entries.removeAll()
            state.bytes = 0
            state.isClosed = true
        }
    }

    /// Copies `bytes` (at most the capacity) into the slab being filled, or into a new one
    /// when they do not fit; a payload larger than a quarter of a slab gets a slab of its own
    /// size, so that no slab wastes more than a quarter of itself at its end. A copy of a
    /// payload already cached replaces its entry.
    private static func append(_ bytes: UnsafeRawBufferPointer, for key: FrameAddress, in state: inout State,
                               capacity: Int, slabSize: Int) {
        let slab: Int
        if bytes.count > slabSize / 4 {
            slab = addSlab(size: bytes.count, in: &state, capacity: capacity)
        } else if let filling = state.filling, state.slabs[state.index(of: filling)].used + bytes.count <= slabSize {
            slab = state.index(of: filling)
        } else {
            slab = addSlab(size: slabSize, in: &state, capacity: capacity)
            state.filling = state.slabs[slab].number
        }
        let offset = state.slabs[slab].used
        (state.slabs[slab].memory + offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        state.slabs[slab].used += bytes.count
        state.slabs[slab].keys.append(key)
        let entry = CacheEntry(slab: state.slabs[slab].number, offset: offset, count: bytes.count)
        if let old = state.entries.updateValue(entry, forKey: key) {
            state.bytes -= old.count
        }
        state.bytes += bytes.count
    }

    /// Adds a slab of `size` bytes (at most the capacity) as the newest, dropping the oldest
    /// ones until it fits; returns its index.
    private static func addSlab(size: Int, in state: inout State, capacity: Int) -> Int {
        var reusable: UnsafeMutableRawPointer?
        while state.allocated + size > capacity {
            let dropped = dropOldest(&state)
            // A slab of the same size is taken over rather than freed and allocated again.
            if reusable == nil, dropped.size == size {
                reusable = dropped.memory
            } else {
                dropped.memory.deallocate()
            }
        }
        let memory = reusable ?? allocateSlab(size)
        state.slabs.append(Slab(number: state.nextSlabNumber, memory: memory, size: size))
        state.nextSlabNumber += 1
        state.allocated += size
        return state.slabs.count - 1
    }

    /// Drops the oldest slab and its entries (not those that moved to a newer slab); returns
    /// it, for its memory to be freed or reused.
    private static func dropOldest(_ state: inout State) -> Slab {
        let slab = state.slabs.removeFirst()
        for key in slab.keys {
            if let entry = state.entries.removeValue(forKey: key, if: { $0.slab == slab.number }) {
                state.bytes -= entry.count
            }
        }
        state.allocated -= slab.size
        if slab.number == state.filling { state.filling = nil }
        return slab
    }

    /// Memory for a slab, its pages made present at once on Linux (`MADV_POPULATE_WRITE`):
    /// a fresh store's filling cache otherwise took a page fault per 4 KiB it copied into
    /// (9,000 of the 16,500 page faults of a 64-task benchmark run), each a trap that a
    /// virtual machine makes dear, where one call maps the slab's pages in a loop.
    private static func allocateSlab(_ size: Int) -> UnsafeMutableRawPointer {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        #if os(Linux)
        // Only advice: a kernel without it (before 5.14) maps the pages as they are touched.
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: memory) + pageSize - 1) / pageSize * pageSize
        let end = (Int(bitPattern: memory) + size) / pageSize * pageSize
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_POPULATE_WRITE) }
        #endif
        return memory
    }

    private static func release(_ state: inout State) {
        for slab in state.slabs { slab.memory.deallocate() }
        state.slabs = []
        state.filling = nil
        state.allocated = 0
    }
}

/// Bytes passed into or out of the cache's lock, valid while the lock is held (a slab's) or
/// while the caller keeps them (a payload being inserted).
private struct BytesView: @unchecked Sendable {
    let start: UnsafeMutableRawPointer
    let count: Int

    var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: start, count: count) }
}
