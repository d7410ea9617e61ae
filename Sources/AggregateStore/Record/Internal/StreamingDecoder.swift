#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The mutable state of a decoding: the record, where the value being decoded starts, how deep
/// it is, its coding path, and the container boxes kept for reuse.
struct StreamingDecoderState {
    /// The record being decoded, owned by the caller for the duration of the call.
    var base: UnsafeRawPointer
    var end: Int
    var position: Int
    var depth: Int
    var path: CodingPathStack
    /// The extra path entries of containers from `nestedContainer` (which have no frame of their
    /// own), indexed by the containers' `extraPath`.
    var extraPaths: [[Int]]
    /// Tells the decoder and containers of the call using the workspace from ones kept past
    /// earlier calls, which read nothing: it changes when a call ends with any of them kept (see
    /// ``DecoderWorkspace/end()``). Never 0.
    var generation: UInt64
    var boxes: ContainerBoxCache<KeyedDecodingHandle>
    /// Which types met as arrays are arrays of `Decodable` elements (see ``ArrayDecoding``).
    var arrayTypes: TypeCache<(any ArrayDecoding.Type)?>
    /// ``SpecialTypeFilter/all``, here to be read without a global's lazy-initialization check.
    let specialTypes = SpecialTypeFilter.all
    /// ``SmallASCII/isAvailable``, for the same reason.
    let smallASCII = SmallASCII.isAvailable

    init(base: UnsafeRawPointer, end: Int, path: [any CodingKey]) {
        self.base = base
        self.end = end
        position = 0
        depth = 0
        self.path = CodingPathStack(basePath: path)
        extraPaths = []
        generation = 1
        boxes = ContainerBoxCache()
        arrayTypes = TypeCache()
    }

    /// Frees what the state owns.
    mutating func deallocate() {
        path.deallocate()
        arrayTypes.deallocate()
    }
}

/// Where a keyed container of ours finds its state (in its ``ContainerToken``'s memory, so the
/// container's box can be reused).
struct KeyedDecodingHandle: ContainerHandle {
    /// The decoder of the call using the container, valid while `generation` is current (and
    /// after, if `keeper` holds it). Not a strong reference, so that a box waiting in the cache
    /// leaves the decoder free to serve the next call, and its reuse costs no reference counting.
    unowned(unsafe) var decoder: StreamingDecoder
    var state: UnsafeMutablePointer<StreamingDecoderState>
    /// Where the current generation is kept, and the one this container belongs to (0 while
    /// the box waits in the cache).
    var generationSource: UnsafeMutablePointer<StreamingDecoderState>
    var generation: UInt64
    var count: Int
    var first: Int
    var end: Int
    /// The depth of the values in the map.
    var depth: Int
    var pathCount: Int
    /// The index of its extra path entries in the state, or -1.
    var extraPath: Int
    /// The offset of the entry the next key asked for most likely names: synthesized
    /// `init(from:)` asks for keys in the order synthesized `encode(to:)` wrote them. Always an
    /// entry boundary of this map.
    var cursor: Int
    var cursorIndex: Int
    /// Every entry, built on the first key not found at the cursor (its capacity is kept when
    /// the handle is reused).
    var entries: [MapEntry]
    var indexed: Bool
    /// The bytes of the keys of the box's key type.
    var keys = KeyBytesCache()
    /// Holds the decoder of a container that can outlive its call: one outside the cache, or
    /// one whose box someone still held at the end of the call.
    var keeper: StreamingDecoder?

    mutating func releaseResources() { keys.deallocate() }
    mutating func holdOwner() { keeper = decoder }
}

/// Where one entry of a map is.
struct MapEntry {
    var keyOffset: Int
    var keyStart: Int
    var keyCount: Int
    var value: Int
}

/// The memory a decoding works in, kept in ``pool`` between calls.
final class DecoderWorkspace {
    static let pool = WorkspacePool<DecoderWorkspace>(limit: 8)

    let state: UnsafeMutablePointer<StreamingDecoderState>

    init() {
        state = .allocate(capacity: 1)
        state.initialize(to: StreamingDecoderState(base: emptyRecordBytes, end: 0, path: []))
    }

    deinit {
        state.pointee.boxes.removeAll()
        state.pointee.deallocate()
        state.deinitialize(count: 1)
        state.deallocate()
    }

    /// The decoder of the previous call, kept when nothing else held it as that call ended: then
    /// nothing can tell it from a new one, and it serves again (saving an allocation per call).
    /// Only for calls without `userInfo`, which a decoder holds.
    private var spareDecoder: StreamingDecoder?
    /// Whether this call's decoder is ``spareDecoder``.
    private var usingSpare = false

    /// The decoder for this call.
    func decoder(userInfo: [CodingUserInfoKey: Any]) -> StreamingDecoder {
        usingSpare = userInfo.isEmpty
        if usingSpare, let spare = spareDecoder { return spare }
        let decoder = StreamingDecoder(workspace: self, userInfo: userInfo)
        if usingSpare { spareDecoder = decoder }
        return decoder
    }

    /// Ends a call: whatever of it outlives it (a container or the decoder, kept by the value's
    /// code) holds the decoder; then a new generation makes all of it refuse to work, and the
    /// next call gets a new decoder.
    private func end() {
        let escaped = state.pointee.boxes.endOfUse()
        if escaped || !(usingSpare && isKnownUniquelyReferenced(&spareDecoder)) {
            state.pointee.generation &+= 1
            spareDecoder = nil
        }
    }

    /// Decodes the record of `count` bytes at `bytes` (the caller's for the call) with a pooled
    /// workspace. (Straight-line rather than a `with` taking a closure: the closure's generic
    /// context costs on every call.)
    static func decode<T: Decodable>(
        _ type: T.Type, from bytes: UnsafeRawPointer, count: Int, userInfo: [CodingUserInfoKey: Any]
    ) throws -> T {
        let workspace = pool.take() ?? DecoderWorkspace()
        let state = workspace.state
        state.pointee.base = bytes
        state.pointee.end = count
        state.pointee.position = 0
        state.pointee.depth = 0
        state.pointee.path.truncate(to: 0)
        if !state.pointee.extraPaths.isEmpty { state.pointee.extraPaths.removeAll(keepingCapacity: true) }
        defer {
            // The caller's buffer is no longer ours: nothing of this call may read it again.
            state.pointee.base = emptyRecordBytes
            state.pointee.end = 0
            workspace.end()
            if !pool.give(workspace) { state.pointee.boxes.removeAll() }
        }
        return try StreamingDecoder.decodeRecord(T.self, workspace: workspace, userInfo: userInfo)
    }
}

/// One byte, the null tag: the bytes of an empty workspace and of an absent `superDecoder`.
/// Written once, then only read.
nonisolated(unsafe) let emptyRecordBytes: UnsafeRawPointer = {
    let bytes = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
    bytes.storeBytes(of: RecordFormat.Tag.null, as: UInt8.self)
    return UnsafeRawPointer(bytes)
}()

/// A value of another kind than the one asked for (or out of its range); the container that
/// caught it adds the coding path and throws a `DecodingError`.
struct ValueMismatch: Error {
    var tag: UInt8
    var message: String?
}

/// Decodes a `Decodable` value from record bytes in place, reading only what the type asks for.
///
/// One decoder object serves the whole value: a nested value is a frame (a position, a depth and
/// a coding path entry) on the same state. A keyed container looks a key up at its cursor first:
/// synthesized `init(from:)` asks for the keys in the order synthesized `encode(to:)` wrote them,
/// so the lookup is one comparison; any other key falls back to an index of the map's entries
/// built on first use. Containers carry their byte length, so skipping a value never reads it.
///
/// The state lives in a pooled ``DecoderWorkspace`` and the bytes belong to the caller for the
/// duration of the call; the decoder object serves the next call only if nothing kept it, and a
/// decoder or container kept past its call finds the workspace's generation changed and reads
/// nothing.
final class StreamingDecoder: Decoder {
    let workspace: DecoderWorkspace
    let state: UnsafeMutablePointer<StreamingDecoderState>
    /// The state whose generation says whether this decoder's call is still running: the
    /// workspace's (a detached decoder has a state of its own).
    let generationSource: UnsafeMutablePointer<StreamingDecoderState>
    let generation: UInt64
    let userInfo: [CodingUserInfoKey: Any]
    /// Whether `state` is this decoder's own (a detached decoder's) and freed with it.
    private let ownsState: Bool

    init(workspace: DecoderWorkspace, userInfo: [CodingUserInfoKey: Any]) {
        self.workspace = workspace
        state = workspace.state
        generationSource = workspace.state
        generation = workspace.state.pointee.generation
        self.userInfo = userInfo
        ownsState = false
    }

    /// A decoder for one value of `parent`'s record, with a state of its own, for `superDecoder()`.
    init(detachedFrom parent: StreamingDecoder, base: UnsafeRawPointer, end: Int, position: Int, depth: Int,
         path: [any CodingKey]) {
        workspace = parent.workspace
        generationSource = parent.generationSource
        generation = parent.generation
        userInfo = parent.userInfo
        state = .allocate(capacity: 1)
        state.initialize(to: StreamingDecoderState(base: base, end: end, path: path))
        state.pointee.position = position
        state.pointee.depth = depth
        state.pointee.generation = generation
        ownsState = true
    }

    deinit {
        if ownsState {
            state.pointee.deallocate()
            state.deinitialize(count: 1)
            state.deallocate()
        }
    }

    /// The record of this decoder's call (its state's, which changes from call to call).
    @inline(__always)
    var base: UnsafeRawPointer { state.pointee.base }

    /// The offset one past the record's last byte.
    @inline(__always)
    var end: Int { state.pointee.end }

    /// Whether this decoder's call is still running, so its bytes may be read.
    @inline(__always)
    var isCurrent: Bool { generationSource.pointee.generation == generation }

    /// The error for a decoder or container used after its call.
    func staleError() -> StoreError {
        StoreError(.invalidArgument, "a decoder or container was used after its RecordDecoder call returned")
    }

    var codingPath: [any CodingKey] {
        isCurrent ? state.pointee.path.path(prefix: Int.max, bytes: base, count: end) : []
    }

    /// Decodes a whole record: checks the version, the root value's extent, then decodes it.
    static func decodeRecord<T: Decodable>(_ type: T.Type, workspace: DecoderWorkspace, userInfo: [CodingUserInfoKey: Any]) throws -> T {
        let state = workspace.state
        var reader = RecordReader(state.pointee.base, count: state.pointee.end)
        try Document.readVersion(&reader)
        let root = reader.position
        let tag = try reader.readByte()
        try reader.skipValue(tag: tag)
        guard reader.position == reader.end else {
            throw RecordReader.corruption("\(reader.end - reader.position) bytes after the value", at: reader.position)
        }
        let decoder = workspace.decoder(userInfo: userInfo)
        return try decoder.decodeValue(T.self, at: root, depth: 0, prefix: -1, path: CodingPathStack.none)
    }

    // MARK: Values

    /// Decodes the value at `position` (its tag): a special type directly, an array through
    /// ``ArrayDecoding``, anything else through its `init(from:)` with this decoder moved to the
    /// value. `prefix` is the `extraPath` of the calling container, or -1.
    @inline(__always)
    func decodeValue<T: Decodable>(
        _ type: T.Type, at position: Int, depth: Int, prefix: Int, path entry: Int
    ) throws -> T {
        if let special = SpecialType(T.self, filter: state.pointee.specialTypes) {
            return try decodeSpecial(special, T.self, at: position, depth: depth, prefix: prefix, path: entry)
        }
        let state = self.state
        let savedPosition = state.pointee.position
        let savedDepth = state.pointee.depth
        let savedPathCount = state.pointee.path.count
        state.pointee.position = position
        state.pointee.depth = depth
        if prefix >= 0 { for extra in state.pointee.extraPaths[prefix] { state.pointee.path.push(extra) } }
        if entry != CodingPathStack.none { state.pointee.path.push(entry) }
        defer {
            state.pointee.position = savedPosition
            state.pointee.depth = savedDepth
            state.pointee.path.truncate(to: savedPathCount)
        }
        if base.load(fromByteOffset: position, as: UInt8.self) == RecordFormat.Tag.array,
           let array = arrayDecoding(T.self) {
            return try array.decodeArray(from: self, at: position, depth: depth, as: T.self)
        }
        return try T(from: self)
    }

    /// `T` as an ``ArrayDecoding`` type, if it is an array; the answer is kept per type, as the
    /// runtime's conformance lookup costs more than decoding a small array.
    @inline(never)
    private func arrayDecoding<T>(_ type: T.Type) -> (any ArrayDecoding.Type)? {
        workspace.state.pointee.arrayTypes.answer(for: ObjectIdentifier(T.self)) { T.self as? any ArrayDecoding.Type }
    }

    @inline(never)
    func decodeSpecial<T>(
        _ special: SpecialType, _ type: T.Type, at position: Int, depth: Int, prefix: Int, path entry: Int
    ) throws -> T {
        var reader = RecordReader(base, count: end, position: position)
        switch special {
        case .string, .bool, .int, .int64, .int32, .double, .float:
            do {
                switch special {
                case .string: return unsafeBitCast(try Self.readString(&reader, smallASCII: state.pointee.smallASCII), to: T.self)
                case .bool: return unsafeBitCast(try Self.readBool(&reader), to: T.self)
                case .int: return unsafeBitCast(try Self.readInteger(Int.self, &reader), to: T.self)
                case .int64: return unsafeBitCast(try Self.readInteger(Int64.self, &reader), to: T.self)
                case .int32: return unsafeBitCast(try Self.readInteger(Int32.self, &reader), to: T.self)
                case .double: return unsafeBitCast(try Self.readDouble(&reader), to: T.self)
                default: return unsafeBitCast(Float(try Self.readDouble(&reader)), to: T.self)
                }
            } catch let mismatch as ValueMismatch {
                throw error(mismatch, T.self, path: errorPath(prefix: prefix, path: entry))
            }
        default:
            break
        }
        let tag = try reader.readByte()
        switch special {
        case .string, .bool, .int, .int64, .int32, .double, .float:
            preconditionFailure("handled above")
        case .date, .timestamp:
            guard tag == RecordFormat.Tag.timestamp else { throw mismatch(T.self, tag: tag, prefix: prefix, path: entry) }
            let timestamp = Timestamp(microsecondsSinceEpoch: try reader.readZigZag())
            return special == .date ? unsafeBitCast(timestamp.date, to: T.self) : unsafeBitCast(timestamp, to: T.self)
        case .decimal:
            let decimal: Decimal
            switch tag {
            case RecordFormat.Tag.decimal: decimal = try reader.readDecimal().decimal
            case RecordFormat.Tag.integer: decimal = Decimal(try reader.readZigZag())
            case RecordFormat.Tag.double:
                let double = Double(bitPattern: try reader.readDoubleBits())
                guard double.isFinite, let value = Decimal(string: double.description) else {
                    throw DecodingError.dataCorrupted(context(prefix: prefix, path: entry, "\(double) is not a decimal number"))
                }
                decimal = value
            default: throw mismatch(T.self, tag: tag, prefix: prefix, path: entry)
            }
            return unsafeBitCast(decimal, to: T.self)
        case .data, .bytes:
            guard tag == RecordFormat.Tag.bytes else {
                if special == .bytes && tag == RecordFormat.Tag.array {
                    // An array of small integers (from JSON, say): through `[UInt8]`'s own conformance.
                    return try decodeGeneric(T.self, at: position, depth: depth, prefix: prefix, path: entry)
                }
                throw mismatch(T.self, tag: tag, prefix: prefix, path: entry)
            }
            let bytes = try reader.readLengthPrefixed()
            return special == .data ? unsafeBitCast(Data(bytes), to: T.self) : unsafeBitCast([UInt8](bytes), to: T.self)
        case .url:
            guard tag == RecordFormat.Tag.string else { throw mismatch(T.self, tag: tag, prefix: prefix, path: entry) }
            let string = try reader.readString()
            guard let url = URL(string: string) else {
                throw DecodingError.dataCorrupted(context(prefix: prefix, path: entry, "'\(string)' is not a URL"))
            }
            return unsafeBitCast(url, to: T.self)
        case .document:
            reader.position = position
            return unsafeBitCast(try Document.decodeValue(&reader, depth: depth), to: T.self)
        }
    }

    /// `decodeValue` without the special-type check, for the fallbacks of `decodeSpecial`.
    private func decodeGeneric<T>(
        _ type: T.Type, at position: Int, depth: Int, prefix: Int, path entry: Int
    ) throws -> T {
        guard let decodable = T.self as? any Decodable.Type else {
            throw mismatch(T.self, tag: RecordFormat.Tag.array, prefix: prefix, path: entry)
        }
        let state = self.state
        let savedPosition = state.pointee.position
        let savedDepth = state.pointee.depth
        let savedPathCount = state.pointee.path.count
        state.pointee.position = position
        state.pointee.depth = depth
        if prefix >= 0 { for extra in state.pointee.extraPaths[prefix] { state.pointee.path.push(extra) } }
        if entry != CodingPathStack.none { state.pointee.path.push(entry) }
        defer {
            state.pointee.position = savedPosition
            state.pointee.depth = savedDepth
            state.pointee.path.truncate(to: savedPathCount)
        }
        return try decodable.init(from: self) as! T
    }

    // MARK: Errors

    /// The path of a value: the frame's path, the container's extra keys, the value's key.
    func errorPath(prefix: Int, path entry: Int) -> [any CodingKey] {
        var path = codingPath
        if prefix >= 0 { path += state.pointee.extraPaths[prefix].map { key($0) } }
        if entry != CodingPathStack.none { path.append(key(entry)) }
        return path
    }

    /// A path entry as a key.
    func key(_ entry: Int) -> any CodingKey {
        CodingPathStack.codingKey(entry, bytes: base, count: end)
    }

    func context(prefix: Int, path entry: Int, _ message: String) -> DecodingError.Context {
        DecodingError.Context(codingPath: errorPath(prefix: prefix, path: entry), debugDescription: message)
    }

    func mismatch(_ type: Any.Type, tag: UInt8, prefix: Int, path entry: Int) -> DecodingError {
        error(ValueMismatch(tag: tag), type, path: errorPath(prefix: prefix, path: entry))
    }

    /// The `DecodingError` for a value of another kind or out of range.
    @inline(never)
    func error(_ mismatch: ValueMismatch, _ type: Any.Type, path: [any CodingKey]) -> DecodingError {
        if let message = mismatch.message {
            return DecodingError.dataCorrupted(DecodingError.Context(codingPath: path, debugDescription: message))
        }
        if mismatch.tag == RecordFormat.Tag.null {
            return DecodingError.valueNotFound(type, DecodingError.Context(codingPath: path, debugDescription: "found null"))
        }
        return DecodingError.typeMismatch(type, DecodingError.Context(
            codingPath: path, debugDescription: "found \(Self.kindName(mismatch.tag))"))
    }

    static func kindName(_ tag: UInt8) -> String {
        switch tag {
        case RecordFormat.Tag.null: return "null"
        case RecordFormat.Tag.false, RecordFormat.Tag.true: return "a boolean"
        case RecordFormat.Tag.integer: return "an integer"
        case RecordFormat.Tag.double: return "a double"
        case RecordFormat.Tag.decimal: return "a decimal"
        case RecordFormat.Tag.string: return "a string"
        case RecordFormat.Tag.bytes: return "bytes"
        case RecordFormat.Tag.timestamp: return "a timestamp"
        case RecordFormat.Tag.array: return "an array"
        case RecordFormat.Tag.map: return "a map"
        default: return "tag \(tag)"
        }
    }

    // MARK: Primitives (throw `ValueMismatch` for the caller to place)

    @inline(__always)
    static func readBool(_ reader: inout RecordReader) throws -> Bool {
        let tag = try reader.readByte()
        if tag == RecordFormat.Tag.true { return true }
        if tag == RecordFormat.Tag.false { return false }
        throw ValueMismatch(tag: tag)
    }

    @inline(__always)
    static func readString(_ reader: inout RecordReader, smallASCII: Bool) throws -> String {
        let tag = try reader.readByte()
        guard _fastPath(tag == RecordFormat.Tag.string) else { throw ValueMismatch(tag: tag) }
        return try reader.readString(smallASCII: smallASCII)
    }

    @inline(__always)
    static func readDouble(_ reader: inout RecordReader) throws -> Double {
        let tag = try reader.readByte()
        if _fastPath(tag == RecordFormat.Tag.double) { return Double(bitPattern: try reader.readDoubleBits()) }
        if tag == RecordFormat.Tag.integer { return Double(try reader.readZigZag()) }
        if tag == RecordFormat.Tag.decimal {
            let parts = try reader.readDecimal()
            return Double(parts.decimal.description) ?? .nan
        }
        throw ValueMismatch(tag: tag)
    }

    @inline(__always)
    static func readInteger<I: FixedWidthInteger>(_ type: I.Type, _ reader: inout RecordReader) throws -> I {
        let tag = try reader.readByte()
        if _fastPath(tag == RecordFormat.Tag.integer) {
            let value = try reader.readZigZag()
            guard let result = I(exactly: value) else {
                throw ValueMismatch(tag: tag, message: "\(value) does not fit in \(I.self)")
            }
            return result
        }
        if tag == RecordFormat.Tag.double {
            let value = Double(bitPattern: try reader.readDoubleBits())
            guard let result = I(exactly: value) else {
                throw ValueMismatch(tag: tag, message: "\(value) is not a \(I.self)")
            }
            return result
        }
        throw ValueMismatch(tag: tag)
    }

    // MARK: Containers

    /// Reads the header of the container at `position`; checks its kind and depth. `type` (for
    /// the error) is an autoclosure because `[Element].self` in generic code is a metadata lookup.
    @inline(__always)
    func openContainer(
        at position: Int, depth: Int, tag expected: UInt8, type: @autoclosure () -> Any.Type, prefix: Int, path entry: Int
    ) throws -> (count: Int, first: Int, end: Int) {
        var reader = RecordReader(base, count: end, position: position)
        let tag = try reader.readByte()
        guard _fastPath(tag == expected) else { throw mismatch(type(), tag: tag, prefix: prefix, path: entry) }
        guard _fastPath(depth < RecordFormat.maximumDepth) else {
            throw RecordReader.corruption("arrays and maps nest deeper than \(RecordFormat.maximumDepth) levels", at: position)
        }
        let (count, containerEnd) = try reader.readContainerHeader(
            minimumElementSize: expected == RecordFormat.Tag.map ? 2 : 1)
        return (count, reader.position, containerEnd)
    }

    /// A keyed container for a map, in a reused box when one is free.
    @inline(__always)
    func keyedContainer<Key: CodingKey>(
        _ type: Key.Type, count: Int, first: Int, end: Int, depth: Int, pathCount: Int, extraPath: Int
    ) -> KeyedDecodingContainer<Key> {
        // A detached decoder's state keeps no boxes: it is short-lived and rare.
        guard state.pointee.boxes.isSupported, !ownsState else {
            return KeyedDecodingContainer(OwningKeyedDecodingContainer<Key>(token: ContainerToken(KeyedDecodingHandle(
                decoder: self, state: state, generationSource: generationSource, generation: generation,
                count: count, first: first, end: end, depth: depth, pathCount: pathCount, extraPath: extraPath,
                cursor: first, cursorIndex: 0, entries: [], indexed: false, keeper: self))))
        }
        let keyType = ObjectIdentifier(Key.self)
        if let index = state.pointee.boxes.reusable(for: keyType) {
            let handle = state.pointee.boxes.handle(at: index)
            // The same generation means the same decoder (a decoder object serves again only
            // within its generation).
            if handle.pointee.generation != generation {
                handle.pointee.decoder = self
                handle.pointee.generation = generation
            }
            handle.pointee.count = count
            handle.pointee.first = first
            handle.pointee.end = end
            handle.pointee.depth = depth
            handle.pointee.pathCount = pathCount
            handle.pointee.extraPath = extraPath
            handle.pointee.cursor = first
            handle.pointee.cursorIndex = 0
            handle.pointee.indexed = false
            return state.pointee.boxes.container(at: index, as: KeyedDecodingContainer<Key>.self)
        }
        return newKeyedContainer(Key.self, keyType: keyType, handle: KeyedDecodingHandle(
            decoder: self, state: state, generationSource: generationSource, generation: generation,
            count: count, first: first, end: end, depth: depth, pathCount: pathCount, extraPath: extraPath,
            cursor: first, cursorIndex: 0, entries: [], indexed: false))
    }

    @inline(never)
    private func newKeyedContainer<Key: CodingKey>(
        _ type: Key.Type, keyType: ObjectIdentifier, handle: KeyedDecodingHandle
    ) -> KeyedDecodingContainer<Key> {
        let memory = UnsafeMutablePointer<KeyedDecodingHandle>.allocate(capacity: 1)
        memory.initialize(to: handle)
        let container = KeyedDecodingContainer(StreamingKeyedDecodingContainer<Key>(handle: memory))
        state.pointee.boxes.insert(keyType: keyType, container: container, handle: memory)
        return container
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard isCurrent else { throw staleError() }
        let state = self.state
        let depth = state.pointee.depth
        let (count, first, containerEnd) = try openContainer(
            at: state.pointee.position, depth: depth, tag: RecordFormat.Tag.map,
            type: [String: Any].self, prefix: -1, path: CodingPathStack.none)
        return keyedContainer(Key.self, count: count, first: first, end: containerEnd, depth: depth + 1,
                              pathCount: state.pointee.path.count, extraPath: -1)
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard isCurrent else { throw staleError() }
        let state = self.state
        let (count, first, containerEnd) = try openContainer(
            at: state.pointee.position, depth: state.pointee.depth, tag: RecordFormat.Tag.array,
            type: [Any].self, prefix: -1, path: CodingPathStack.none)
        return StreamingUnkeyedDecodingContainer(
            decoder: self, count: count, position: first, end: containerEnd, depth: state.pointee.depth + 1,
            pathCount: state.pointee.path.count, extraPath: -1)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        guard isCurrent else { throw staleError() }
        return StreamingSingleValueDecodingContainer(decoder: self, position: state.pointee.position, depth: state.pointee.depth)
    }

    /// The coding path of a container.
    func path(prefix count: Int, extra: Int) -> [any CodingKey] {
        let path = state.pointee.path.path(prefix: count, bytes: base, count: end)
        return extra >= 0 ? path + state.pointee.extraPaths[extra].map { key($0) } : path
    }

    /// Registers the extra path of a container from `nestedContainer`: its parent's extra keys
    /// and its own key.
    func extraPath(parent: Int, entry: Int) -> Int {
        let path = (parent >= 0 ? state.pointee.extraPaths[parent] : []) + [entry]
        state.pointee.extraPaths.append(path)
        return state.pointee.extraPaths.count - 1
    }

    /// A separate decoder for the value at `position`, for `superDecoder()`.
    func detached(at position: Int, depth: Int, path: [any CodingKey]) -> StreamingDecoder {
        StreamingDecoder(detachedFrom: self, base: base, end: end, position: position, depth: depth, path: path)
    }

    /// A separate decoder of null, for the `superDecoder()` of an absent key.
    func detachedNull(depth: Int, path: [any CodingKey]) -> StreamingDecoder {
        StreamingDecoder(detachedFrom: self, base: emptyRecordBytes, end: 1, position: 0, depth: depth, path: path)
    }
}

/// Arrays, decoded element by element straight into a buffer of the right capacity, without an
/// unkeyed container.
///
/// A protocol over `RangeReplaceableCollection` rather than an extension of `Array` alone: its
/// default implementation builds the array through the conformance's witnesses, which receive
/// the array type's metadata from the existential metatype ``StreamingDecoder`` keeps. Code
/// written against `[Element]` would look `Array<Element>` up in the runtime's metadata cache on
/// every array (a third of the cost of decoding a small one).
protocol ArrayDecoding: RangeReplaceableCollection where Element: Decodable {}

extension ArrayDecoding {
    /// Decodes the array at `position` as `T`, which is this type.
    static func decodeArray<T>(from decoder: StreamingDecoder, at position: Int, depth: Int, as type: T.Type) throws -> T {
        let (count, first, end) = try decoder.openContainer(
            at: position, depth: depth, tag: RecordFormat.Tag.array, type: Self.self, prefix: -1, path: CodingPathStack.none)
        var elements = Self()
        elements.reserveCapacity(count)
        var next = first
        for index in 0..<count {
            var reader = RecordReader(decoder.base, count: end, position: next)
            let tag = try reader.readByte()
            try reader.skipValue(tag: tag)
            elements.append(try decoder.decodeValue(Element.self, at: next, depth: depth + 1, prefix: -1, path: CodingPathStack.index(index)))
            next = reader.position
        }
        // `T` is `Self`: hand the array over without a dynamic cast (or a copy).
        return unsafeBitCast(elements, to: T.self)
    }
}

extension Array: ArrayDecoding where Element: Decodable {}
