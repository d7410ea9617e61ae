import Synchronization

/// A least-recently-used cache of decompressed frame payloads, bounded in bytes, so that hot
/// records are read without a `pread`, a CRC check and a decompression each time.
package final class ReadCache: Sendable {
    private struct Node {
        var key: FrameAddress
        var payload: [UInt8]
        var older: Int?
        var newer: Int?
    }

    private struct State {
        var slots: [FrameAddress: Int] = [:]
        var nodes: [Node] = []
        var free: [Int] = []
        var newest: Int?
        var oldest: Int?
        var bytes = 0
        var hits = 0
        var misses = 0
        var isClosed = false
    }

    /// The capacity in payload bytes.
    package let capacity: Int
    private let state = Mutex(State())

    /// Creates a cache holding at most `capacity` payload bytes; 0 caches nothing.
    package init(capacity: Int) {
        self.capacity = capacity
    }

    /// The cached payload of a frame, marking it most recently used.
    package func payload(for key: FrameAddress) -> [UInt8]? {
        state.withLock { state in
            guard let slot = state.slots[key] else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            Self.unlink(slot, in: &state)
            Self.pushNewest(slot, in: &state)
            return state.nodes[slot].payload
        }
    }

    /// Caches a payload, evicting the least recently used ones beyond the capacity.
    /// A payload larger than the whole cache is not kept.
    package func insert(_ payload: [UInt8], for key: FrameAddress) {
        guard payload.count <= capacity else { return }
        state.withLock { state in
            guard !state.isClosed else { return }
            if let slot = state.slots[key] {
                Self.unlink(slot, in: &state)
                Self.pushNewest(slot, in: &state)
                return
            }
            while state.bytes + payload.count > capacity, let oldest = state.oldest {
                Self.unlink(oldest, in: &state)
                state.bytes -= state.nodes[oldest].payload.count
                state.slots[state.nodes[oldest].key] = nil
                state.nodes[oldest].payload = []
                state.free.append(oldest)
            }
            let node = Node(key: key, payload: payload)
            let slot: Int
            if let reused = state.free.popLast() {
                state.nodes[reused] = node
                slot = reused
            } else {
                state.nodes.append(node)
                slot = state.nodes.count - 1
            }
            state.slots[key] = slot
            state.bytes += payload.count
            Self.pushNewest(slot, in: &state)
        }
    }

    /// Payload bytes held, entries, hits and misses so far.
    package var usage: (bytes: Int, entries: Int, hits: Int, misses: Int) {
        state.withLock { ($0.bytes, $0.slots.count, $0.hits, $0.misses) }
    }

    /// Drops every entry and takes no more: a committer woken as its store closes caches its
    /// commit after the close.
    package func close() {
        state.withLock { state in
            let (hits, misses) = (state.hits, state.misses)
            state = State()
            state.hits = hits
            state.misses = misses
            state.isClosed = true
        }
    }

    private static func unlink(_ slot: Int, in state: inout State) {
        let (older, newer) = (state.nodes[slot].older, state.nodes[slot].newer)
        if let older { state.nodes[older].newer = newer } else { state.oldest = newer }
        if let newer { state.nodes[newer].older = older } else { state.newest = older }
        state.nodes[slot].older = nil
        state.nodes[slot].newer = nil
    }

    private static func pushNewest(_ slot: Int, in state: inout State) {
        state.nodes[slot].older = state.newest
        state.nodes[slot].newer = nil
        if let newest = state.newest { state.nodes[newest].newer = slot } else { state.oldest = slot }
        state.newest = slot
    }
}
