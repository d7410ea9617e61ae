#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Raised inside the streaming encoder when a value uses `Encoder` in a way a single forward
/// pass cannot write (`superEncoder`, the same key twice, writing into a container after a later
/// sibling was begun); ``RecordEncoder`` then encodes the value again with ``TreeEncoder``.
struct NeedsTreeEncoding: Error {}

/// The slot of a container that could not be opened (too deep, or after the encoder gave up):
/// never equal to a live slot, so every write through it takes the slow path and fails.
let deadSlot = 255

/// ``StreamingEncoderState/innermostSerial`` when no container is open: never a container's
/// serial (live ones count up from 1, dead ones are 0).
let noOpenContainerSerial = UInt64.max

/// A container being written: its placeholder offset, element count and identity.
struct OpenContainer {
    /// The offset of the container's length placeholder (see ``RecordWriter/beginContainer(tag:headerSize:)``).
    var start: Int
    /// The bytes set aside there for the length and the count.
    var headerSize: Int
    var count: Int
    var serial: UInt64
    var isMap: Bool
    /// The coding path length to restore when the container is closed.
    var pathBase: Int
    /// A 128-bit Bloom filter of the keys written so far, to detect a repeated key cheaply.
    var bloomLow: UInt64
    var bloomHigh: UInt64
}

/// The mutable state of an encoding, kept behind a pointer so the containers can update it
/// without exclusivity checks or copy-on-write.
struct StreamingEncoderState {
    var writer: RecordWriter
    /// The open containers, innermost last; at most ``RecordFormat/maximumDepth``.
    var containers: UnsafeMutablePointer<OpenContainer>
    /// The header size the last container of each depth and kind (maps at odd indexes) needed:
    /// a record's big containers (the root, its arrays) are big in the next record too, and
    /// setting aside their header's size saves moving their content when they are closed.
    var headerHints: UnsafeMutablePointer<UInt8>
    var containerCount: Int
    /// The serial of the innermost open container (``noOpenContainerSerial`` when none): the
    /// one container that may write. A keyed container checks this one field before each entry.
    var innermostSerial: UInt64
    /// The first container index that belongs to the value being encoded now.
    var frameBase: Int
    /// The writer offset where the value being encoded now starts.
    var frameStart: Int
    var path: CodingPathStack
    /// Never reused within a workspace, so a stale container can never pass for a live one.
    var nextSerial: UInt64
    /// Set once the value needs the tree encoder; every later operation throws.
    var abandoned: Bool
    /// Tells the encoder and containers of the call using the workspace from ones kept past
    /// earlier calls: it changes when a call ends with any of them kept (see
    /// ``EncoderWorkspace/end()``). Never 0.
    var generation: UInt64
    var boxes: ContainerBoxCache<KeyedEncodingHandle>
    /// ``SpecialTypeFilter/all``, here to be read without a global's lazy-initialization check.
    let specialTypes = SpecialTypeFilter.all
    /// ``SmallASCII/isAvailable``, for the same reason.
    let smallASCII = SmallASCII.isAvailable
}

/// Where a keyed container of ours finds its state (in its ``ContainerToken``'s memory, so the
/// container's box can be reused).
struct KeyedEncodingHandle: ContainerHandle {
    /// The encoder of the call using the container, valid while `generation` is current (and
    /// after, if `keeper` holds it). Not a strong reference, so that a box waiting in the cache
    /// leaves the encoder free to serve the next call, and its reuse costs no reference counting.
    unowned(unsafe) var encoder: StreamingEncoder
    /// The encoder's state, for the writes (which need no reference count traffic).
    var state: UnsafeMutablePointer<StreamingEncoderState>
    /// The encoder's generation: `encoder` and `state` need setting only when it changes (the
    /// same generation means the same encoder).
    var generation: UInt64
    var slot: Int
    var serial: UInt64
    var pathCount: Int
    /// The bytes of the keys of the box's key type.
    var keys = KeyBytesCache()
    /// Holds the encoder of a container that can outlive its call: one outside the cache, or
    /// one whose box someone still held at the end of the call.
    var keeper: StreamingEncoder?

    mutating func releaseResources() { keys.deallocate() }
    mutating func holdOwner() { keeper = encoder }
}

/// The memory an encoding works in, kept in ``pool`` between calls: the byte buffer, the
/// container stack, the coding path and the container boxes.
final class EncoderWorkspace {
    static let pool = WorkspacePool<EncoderWorkspace>(limit: 8)

    /// A buffer larger than this is not kept for the next call.
    static let keptBufferCapacity = 64 * 1024

    let state: UnsafeMutablePointer<StreamingEncoderState>

    init() {
        state = .allocate(capacity: 1)
        let containers = UnsafeMutablePointer<OpenContainer>.allocate(capacity: RecordFormat.maximumDepth + 1)
        let headerHints = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * (RecordFormat.maximumDepth + 1))
        headerHints.initialize(repeating: 2, count: 2 * (RecordFormat.maximumDepth + 1))
        state.initialize(to: StreamingEncoderState(
            writer: RecordWriter(capacity: 1024), containers: containers, headerHints: headerHints, containerCount: 0,
            innermostSerial: noOpenContainerSerial,
            frameBase: 0, frameStart: 0, path: CodingPathStack(), nextSerial: 1, abandoned: false,
            generation: 1, boxes: ContainerBoxCache()))
    }

    deinit {
        state.pointee.boxes.removeAll()
        state.pointee.writer.deallocate()
        state.pointee.path.deallocate()
        state.pointee.containers.deallocate()
        state.pointee.headerHints.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// The encoder of the previous call, kept when nothing else held it as that call ended: then
    /// nothing can tell it from a new one, and it serves again (saving an allocation per call).
    /// Only for calls without `userInfo`, which an encoder holds.
    private var spareEncoder: StreamingEncoder?
    /// Whether this call's encoder is ``spareEncoder``.
    private var usingSpare = false

    /// Gets a workspace ready for a call.
    func begin() {
        state.pointee.writer.count = 0
        state.pointee.containerCount = 0
        state.pointee.innermostSerial = noOpenContainerSerial
        state.pointee.frameBase = 0
        state.pointee.frameStart = 0
        state.pointee.path.truncate(to: 0)
        state.pointee.abandoned = false
    }

    /// The encoder for this call.
    func encoder(userInfo: [CodingUserInfoKey: Any]) -> StreamingEncoder {
        usingSpare = userInfo.isEmpty
        if usingSpare, let spare = spareEncoder { return spare }
        let encoder = StreamingEncoder(workspace: self, userInfo: userInfo)
        if usingSpare { spareEncoder = encoder }
        return encoder
    }

    /// Ends a call: invalidates its encoder and containers and returns the workspace to the pool.
    func end() {
        // Whatever of this call outlives it (a container or the encoder, kept by the value's
        // code) holds the encoder: then a new generation makes all of it refuse to work, and the
        // next call gets a new encoder.
        let escaped = state.pointee.boxes.endOfUse()
        if escaped || !(usingSpare && isKnownUniquelyReferenced(&spareEncoder)) {
            state.pointee.generation &+= 1
            spareEncoder = nil
        }
        if state.pointee.writer.capacity > Self.keptBufferCapacity {
            state.pointee.writer.deallocate()
            state.pointee.writer = RecordWriter(capacity: 1024)
        }
        if !Self.pool.give(self) {
            state.pointee.boxes.removeAll()
        }
    }

    /// Encodes a record with a pooled workspace. (Straight-line rather than a `with` taking a
    /// closure: the closure's generic context costs on every call.)
    static func encode<T: Encodable>(_ value: T, userInfo: [CodingUserInfoKey: Any]) throws -> [UInt8] {
        let workspace = pool.take() ?? EncoderWorkspace()
        workspace.begin()
        defer { workspace.end() }
        return try workspace.encoder(userInfo: userInfo).encodeRecord(value)
    }
}

/// Writes an `Encodable` value straight into record bytes in one forward pass.
///
/// One encoder object serves the whole value: a nested value is a frame on the same state, not
/// a new encoder; containers are small structs pointing at the state. A container's byte length
/// and count are filled in when the frame that opened it ends, or when its parent writes its next
/// element. The state lives in a pooled ``EncoderWorkspace``; the encoder object serves the next
/// call only if nothing kept it, so one kept past its call is recognized (by its `generation`)
/// and refused.
final class StreamingEncoder: Encoder {
    let workspace: EncoderWorkspace
    let state: UnsafeMutablePointer<StreamingEncoderState>
    let userInfo: [CodingUserInfoKey: Any]
    let generation: UInt64

    init(workspace: EncoderWorkspace, userInfo: [CodingUserInfoKey: Any]) {
        self.workspace = workspace
        state = workspace.state
        generation = workspace.state.pointee.generation
        self.userInfo = userInfo
    }

    /// Whether this encoder's call is the one using the workspace.
    @inline(__always)
    var isCurrent: Bool { state.pointee.generation == generation }

    var codingPath: [any CodingKey] { isCurrent ? path(prefix: Int.max) : [] }

    /// Encodes a whole record: the version byte and the value.
    func encodeRecord<T: Encodable>(_ value: T) throws -> [UInt8] {
        state.pointee.writer.append(RecordFormat.version)
        try encodeValue(value, path: CodingPathStack.none)
        if state.pointee.abandoned { throw NeedsTreeEncoding() }
        return state.pointee.writer.bytes()
    }

    // MARK: Values

    /// Encodes a value whose key (if any) has been written: the special types directly, any other
    /// type through its `encode(to:)` as a new frame.
    @inline(__always)
    func encodeValue<T: Encodable>(_ value: T, path entry: Int) throws {
        if let special = SpecialType(T.self, filter: state.pointee.specialTypes) {
            try encodeSpecial(special, value, path: entry)
            return
        }
        let state = self.state
        let savedBase = state.pointee.frameBase
        let savedStart = state.pointee.frameStart
        state.pointee.frameBase = state.pointee.containerCount
        state.pointee.frameStart = state.pointee.writer.count
        let savedPath = state.pointee.path.count
        if entry != CodingPathStack.none { state.pointee.path.push(entry) }
        do {
            try value.encode(to: self)
        } catch {
            // The state is no longer a forward pass; if the caller goes on (having caught the
            // error), the tree encoder must take over.
            state.pointee.abandoned = true
            throw error
        }
        if _slowPath(state.pointee.abandoned) { throw NeedsTreeEncoding() }
        closeContainers(downTo: state.pointee.frameBase)
        if state.pointee.writer.count == state.pointee.frameStart {
            // The value wrote nothing: an empty map, as JSONEncoder writes `{}`.
            let start = state.pointee.writer.beginContainer(tag: RecordFormat.Tag.map)
            state.pointee.writer.endContainer(at: start, count: 0)
        }
        state.pointee.path.truncate(to: savedPath)
        state.pointee.frameBase = savedBase
        state.pointee.frameStart = savedStart
    }

    @inline(never)
    func encodeSpecial<T>(_ special: SpecialType, _ value: T, path entry: Int) throws {
        let state = self.state
        switch special {
        case .string: write(identityCast(value, to: String.self))
        case .bool: write(identityCast(value, to: Bool.self))
        case .int: write(Int64(identityCast(value, to: Int.self)))
        case .int64: write(identityCast(value, to: Int64.self))
        case .int32: write(Int64(identityCast(value, to: Int32.self)))
        case .double: write(identityCast(value, to: Double.self))
        case .float: write(Double(identityCast(value, to: Float.self)))
        case .date:
            let date = identityCast(value, to: Date.self)
            guard let timestamp = Timestamp(exactly: date) else {
                throw invalidValue(date, path: entry, "the date \(date.timeIntervalSince1970) is outside the range of a timestamp")
            }
            state.pointee.writer.appendTagged(RecordFormat.Tag.timestamp, zigZag: timestamp.microsecondsSinceEpoch)
        case .timestamp:
            let timestamp = identityCast(value, to: Timestamp.self)
            state.pointee.writer.appendTagged(RecordFormat.Tag.timestamp, zigZag: timestamp.microsecondsSinceEpoch)
        case .decimal:
            state.pointee.writer.appendDecimal(DecimalParts(identityCast(value, to: Decimal.self)))
        case .data:
            let data = identityCast(value, to: Data.self)
            state.pointee.writer.append(RecordFormat.Tag.bytes)
            data.withUnsafeBytes { state.pointee.writer.appendLengthPrefixed($0) }
        case .bytes:
            let bytes = identityCast(value, to: [UInt8].self)
            state.pointee.writer.append(RecordFormat.Tag.bytes)
            bytes.withUnsafeBytes { state.pointee.writer.appendLengthPrefixed($0) }
        case .url:
            state.pointee.writer.append(RecordFormat.Tag.string)
            state.pointee.writer.appendLengthPrefixed(identityCast(value, to: URL.self).absoluteString)
        case .document:
            let document = identityCast(value, to: Document.self)
            do {
                try document.encode(into: &state.pointee.writer, depth: state.pointee.containerCount)
            } catch {
                state.pointee.abandoned = true
                throw error
            }
        }
    }

    func invalidValue(_ value: Any, path entry: Int, _ message: String) -> EncodingError {
        var path = self.path(prefix: Int.max)
        if entry != CodingPathStack.none {
            let writer = state.pointee.writer
            path.append(CodingPathStack.codingKey(entry, bytes: writer.base, count: writer.count))
        }
        return EncodingError.invalidValue(value, EncodingError.Context(codingPath: path, debugDescription: message))
    }

    // MARK: Containers

    /// Opens a container at the top of the stack; returns its slot, or `deadSlot` when too deep.
    @inline(__always)
    func openContainer(isMap: Bool, pathBase: Int) -> (slot: Int, serial: UInt64) {
        let state = self.state
        let slot = state.pointee.containerCount
        guard _fastPath(slot < RecordFormat.maximumDepth) else {
            state.pointee.abandoned = true
            return (deadSlot, 0)
        }
        let serial = state.pointee.nextSerial
        state.pointee.nextSerial &+= 1
        let headerSize = Int(state.pointee.headerHints[slot &* 2 &+ (isMap ? 1 : 0)])
        let start = state.pointee.writer.beginContainer(tag: isMap ? RecordFormat.Tag.map : RecordFormat.Tag.array,
                                                        headerSize: headerSize)
        state.pointee.containers[slot] = OpenContainer(
            start: start, headerSize: headerSize, count: 0, serial: serial, isMap: isMap, pathBase: pathBase, bloomLow: 0, bloomHigh: 0)
        state.pointee.containerCount = slot + 1
        state.pointee.innermostSerial = serial
        return (slot, serial)
    }

    /// Closes the containers from the innermost down to index `base`, filling in their headers.
    @inline(__always)
    func closeContainers(downTo base: Int) {
        let state = self.state
        var index = state.pointee.containerCount
        guard index > base else { return }
        while index > base {
            index -= 1
            let container = state.pointee.containers[index]
            let headerSize = state.pointee.writer.endContainer(
                at: container.start, count: container.count, headerSize: container.headerSize)
            state.pointee.headerHints[index &* 2 &+ (container.isMap ? 1 : 0)] = UInt8(truncatingIfNeeded: min(headerSize, 10))
            state.pointee.path.truncate(to: container.pathBase)
        }
        state.pointee.containerCount = base
        state.pointee.innermostSerial = base > 0 ? state.pointee.containers[base - 1].serial : noOpenContainerSerial
    }

    /// Makes the container in `slot` the innermost one again (closing the ones its nested
    /// containers left open), or gives up when it belongs to a finished frame or call.
    @inline(never)
    func reactivate(slot: Int, serial: UInt64) throws {
        let state = self.state
        guard isCurrent, !state.pointee.abandoned, slot >= state.pointee.frameBase, slot < state.pointee.containerCount,
              state.pointee.containers[slot].serial == serial else {
            if isCurrent { state.pointee.abandoned = true }
            throw NeedsTreeEncoding()
        }
        closeContainers(downTo: slot + 1)
    }

    /// Gives up on the forward pass (the caller then throws).
    func abandon() -> NeedsTreeEncoding {
        if isCurrent { state.pointee.abandoned = true }
        return NeedsTreeEncoding()
    }

    /// A keyed container for `slot`, in a reused box when one is free.
    @inline(__always)
    func keyedContainer<Key: CodingKey>(_ type: Key.Type, slot: Int, serial: UInt64, pathCount: Int) -> KeyedEncodingContainer<Key> {
        guard state.pointee.boxes.isSupported else {
            return KeyedEncodingContainer(StreamingKeyedEncodingContainer<Key, ContainerToken<KeyedEncodingHandle>>(token: ContainerToken(KeyedEncodingHandle(
                encoder: self, state: state, generation: generation, slot: slot, serial: serial, pathCount: pathCount,
                keeper: self))))
        }
        let keyType = ObjectIdentifier(Key.self)
        if let index = state.pointee.boxes.reusable(for: keyType) {
            let handle = state.pointee.boxes.handle(at: index)
            if handle.pointee.generation != generation {
                handle.pointee.encoder = self
                handle.pointee.state = state
                handle.pointee.generation = generation
            }
            handle.pointee.slot = slot
            handle.pointee.serial = serial
            handle.pointee.pathCount = pathCount
            return state.pointee.boxes.container(at: index, as: KeyedEncodingContainer<Key>.self)
        }
        return newKeyedContainer(Key.self, keyType: keyType, handle: KeyedEncodingHandle(
            encoder: self, state: state, generation: generation, slot: slot, serial: serial, pathCount: pathCount))
    }

    @inline(never)
    private func newKeyedContainer<Key: CodingKey>(
        _ type: Key.Type, keyType: ObjectIdentifier, handle: KeyedEncodingHandle
    ) -> KeyedEncodingContainer<Key> {
        let memory = UnsafeMutablePointer<KeyedEncodingHandle>.allocate(capacity: 1)
        memory.initialize(to: handle)
        let container = KeyedEncodingContainer(StreamingKeyedEncodingContainer<Key, Void>(handle: memory))
        state.pointee.boxes.insert(keyType: keyType, container: container, handle: memory)
        return container
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let state = self.state
        guard isCurrent else { return keyedContainer(Key.self, slot: deadSlot, serial: 0, pathCount: 0) }
        let base = state.pointee.frameBase
        if state.pointee.containerCount > base {
            // The value asks again (as a subclass calling `super.encode(to:)` does): same container.
            let existing = state.pointee.containers[base]
            if !existing.isMap { state.pointee.abandoned = true }
            return keyedContainer(Key.self, slot: base, serial: existing.serial, pathCount: state.pointee.path.count)
        }
        if state.pointee.writer.count != state.pointee.frameStart { state.pointee.abandoned = true }
        let (slot, serial) = openContainer(isMap: true, pathBase: state.pointee.path.count)
        return keyedContainer(Key.self, slot: slot, serial: serial, pathCount: state.pointee.path.count)
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let state = self.state
        guard isCurrent else { return StreamingUnkeyedEncodingContainer(encoder: self, slot: deadSlot, serial: 0, pathCount: 0) }
        let base = state.pointee.frameBase
        if state.pointee.containerCount > base {
            let existing = state.pointee.containers[base]
            if existing.isMap { state.pointee.abandoned = true }
            return StreamingUnkeyedEncodingContainer(encoder: self, slot: base, serial: UInt32(truncatingIfNeeded: existing.serial),
                                                     pathCount: state.pointee.path.count)
        }
        if state.pointee.writer.count != state.pointee.frameStart { state.pointee.abandoned = true }
        let (slot, serial) = openContainer(isMap: false, pathBase: state.pointee.path.count)
        return StreamingUnkeyedEncodingContainer(encoder: self, slot: slot, serial: UInt32(truncatingIfNeeded: serial),
                                                 pathCount: state.pointee.path.count)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        StreamingSingleValueEncodingContainer(encoder: self)
    }

    /// The coding path of a container, from its frame's path.
    func path(prefix count: Int) -> [any CodingKey] {
        guard isCurrent else { return [] }
        let writer = state.pointee.writer
        return state.pointee.path.path(prefix: count, bytes: writer.base, count: writer.count)
    }
}

// MARK: - Primitive writes shared by the containers

extension UnsafeMutablePointer where Pointee == StreamingEncoderState {
    @inline(__always)
    func writeNil() {
        pointee.writer.append(RecordFormat.Tag.null)
    }

    @inline(__always)
    func write(_ value: Bool) {
        pointee.writer.append(value ? RecordFormat.Tag.true : RecordFormat.Tag.false)
    }

    @inline(__always)
    func write(_ value: String) {
        pointee.writer.append(RecordFormat.Tag.string)
        pointee.writer.appendLengthPrefixed(value)
    }

    @inline(__always)
    func write(_ value: Double) {
        pointee.writer.appendDouble(value)
    }

    @inline(__always)
    func write(_ value: Int64) {
        pointee.writer.appendTagged(RecordFormat.Tag.integer, zigZag: value)
    }
}

extension StreamingEncoder {
    @inline(__always)
    func writeNil() { state.writeNil() }

    @inline(__always)
    func write(_ value: Bool) { state.write(value) }

    @inline(__always)
    func write(_ value: String) { state.write(value) }

    @inline(__always)
    func write(_ value: Double) { state.write(value) }

    @inline(__always)
    func write(_ value: Int64) { state.write(value) }

    @inline(__always)
    func write(unsigned value: UInt64, path entry: Int) throws {
        guard value <= UInt64(Int64.max) else {
            throw invalidValue(value, path: entry, "\(value) is larger than the largest integer a record holds (Int64.max)")
        }
        write(Int64(value))
    }
}
