// MARK: - Keyed container

/// A map being decoded. Its state, cursor included, is in its handle's memory, so its box can
/// be reused.
///
/// The handle's memory belongs to a ``ContainerBoxCache`` (or to the
/// ``OwningKeyedDecodingContainer`` wrapping this one), so the container is one pointer whatever
/// `Key` is: the standard library's box copies it for every call, and a layout that does not
/// depend on `Key` makes that copy two moves rather than the runtime's generic copy.
struct StreamingKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let handle: UnsafeMutablePointer<KeyedDecodingHandle>

    /// The decoder of the call using this container (set whenever the container is reachable).
    private var decoder: StreamingDecoder { handle.pointee.decoder }
    @inline(__always) private var state: UnsafeMutablePointer<StreamingDecoderState> { handle.pointee.state }
    @inline(__always) private var count: Int { handle.pointee.count }
    @inline(__always) private var first: Int { handle.pointee.first }
    @inline(__always) private var end: Int { handle.pointee.end }
    @inline(__always) private var depth: Int { handle.pointee.depth }
    @inline(__always) private var extraPath: Int { handle.pointee.extraPath }

    /// Whether this container's call is still running, so its bytes may be read.
    @inline(__always)
    private var isCurrent: Bool { handle.pointee.generationSource.pointee.generation == handle.pointee.generation }

    var codingPath: [any CodingKey] {
        isCurrent ? decoder.path(prefix: handle.pointee.pathCount, extra: extraPath) : []
    }

    var allKeys: [Key] {
        guard isCurrent, (try? buildIndex()) != nil else { return [] }
        let base = state.pointee.base
        return handle.pointee.entries.compactMap { entry in
            makeString(UnsafeRawBufferPointer(start: base + entry.keyStart, count: entry.keyCount)).flatMap(Key.init(stringValue:))
        }
    }

    /// Whether key bytes are the key's string.
    @inline(__always)
    private func matches(_ key: Key, _ bytes: UnsafeRawBufferPointer) -> Bool {
        let string = key.stringValue
        let fast: Bool? = string.utf8.withContiguousStorageIfAvailable { utf8 in
            utf8.count == bytes.count && (bytes.count == 0 || memcmpBytes(utf8.baseAddress!, bytes.baseAddress!, bytes.count))
        }
        if let fast { return fast }
        return string.utf8.elementsEqual(bytes)
    }

    /// A key's value: a reader at it, whether it was found at the cursor (and so should move the
    /// cursor on once read), and the key's offset (its coding path entry).
    typealias Found = (reader: RecordReader, atCursor: Bool, key: Int)

    /// Where the key's value is, or `nil` when the map has no such key.
    @inline(__always)
    private func locate(_ key: Key) throws -> Found? {
        let handle = self.handle
        guard _fastPath(handle.pointee.generationSource.pointee.generation == handle.pointee.generation) else {
            throw StoreError(.invalidArgument, "a container was used after its RecordDecoder call returned")
        }
        if _fastPath(handle.pointee.cursorIndex < handle.pointee.count) {
            let keyOffset = handle.pointee.cursor
            let base = handle.pointee.state.pointee.base
            let end = handle.pointee.end
            if KeyBytesCache.applies(to: Key.self), let entry = handle.pointee.keys.entry(key) {
                // The key's length and bytes as the record holds them, compared in one go.
                let count = Int(entry.pointee.count)
                let matched: Bool
                if _fastPath(count <= 16 && handle.pointee.state.pointee.end &- keyOffset >= 16) {
                    // Two loads (the 16 bytes are inside the record), masked to the key's length.
                    let at = base + keyOffset
                    matched = UInt64(littleEndian: at.loadUnaligned(as: UInt64.self)) & entry.pointee.headMask == entry.pointee.head
                        && UInt64(littleEndian: at.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) & entry.pointee.tailMask
                            == entry.pointee.tail
                        && count <= end &- keyOffset
                } else {
                    matched = count <= end &- keyOffset
                        && memcmpBytes(base + keyOffset, handle.pointee.keys.prefixedBytes(entry), count)
                }
                if _fastPath(matched) {
                    return (RecordReader(base, count: end, position: keyOffset &+ count), true, keyOffset)
                }
                return try search(key)
            }
            var reader = RecordReader(base, count: end, position: keyOffset)
            let bytes = try reader.readLengthPrefixed()
            if _fastPath(matches(key, bytes)) { return (reader, true, keyOffset) }
        }
        return try search(key)
    }

    @inline(never)
    private func search(_ key: Key) throws -> Found? {
        try buildIndex()
        let base = state.pointee.base
        for entry in handle.pointee.entries
        where matches(key, UnsafeRawBufferPointer(start: base + entry.keyStart, count: entry.keyCount)) {
            return (RecordReader(base, count: end, position: entry.value), false, entry.keyOffset)
        }
        return nil
    }

    /// Fills the handle's entry index, reading the map once.
    private func buildIndex() throws {
        if handle.pointee.indexed { return }
        handle.pointee.entries.removeAll(keepingCapacity: true)
        handle.pointee.entries.reserveCapacity(count)
        var reader = RecordReader(state.pointee.base, count: end, position: first)
        for _ in 0..<count {
            let keyOffset = reader.position
            let length = try reader.readLength()
            let keyStart = reader.position
            reader.position += length
            let value = reader.position
            let tag = try reader.readByte()
            try reader.skipValue(tag: tag)
            handle.pointee.entries.append(MapEntry(keyOffset: keyOffset, keyStart: keyStart, keyCount: length, value: value))
        }
        guard reader.position == end else { throw RecordReader.corruption("map length does not match its entries", at: first) }
        handle.pointee.indexed = true
    }

    /// Moves the cursor past a value read at it.
    @inline(__always)
    private func advance(_ reader: RecordReader, _ atCursor: Bool) {
        if atCursor {
            handle.pointee.cursor = reader.position
            handle.pointee.cursorIndex &+= 1
        }
    }

    private func keyNotFound(_ key: Key) -> DecodingError {
        DecodingError.keyNotFound(key, DecodingError.Context(
            codingPath: codingPath, debugDescription: "no value for the key '\(key.stringValue)'"))
    }

    @inline(__always)
    private func required(_ key: Key) throws -> Found {
        guard let found = try locate(key) else { throw keyNotFound(key) }
        return found
    }

    /// The reader at a present, non-null value, or `nil` (consuming a null at the cursor).
    @inline(__always)
    private func optional(_ key: Key) throws -> Found? {
        guard let found = try locate(key) else { return nil }
        if try found.reader.peekByte() == RecordFormat.Tag.null {
            var after = found.reader
            after.position += 1
            advance(after, found.atCursor)
            return nil
        }
        return found
    }

    @inline(never)
    private func error(_ mismatch: ValueMismatch, _ type: Any.Type, _ key: Key) -> DecodingError {
        decoder.error(mismatch, type, path: codingPath + [key])
    }

    func contains(_ key: Key) -> Bool {
        (try? locate(key)) != nil
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        let (reader, atCursor, _) = try required(key)
        guard try reader.peekByte() == RecordFormat.Tag.null else { return false }
        var after = reader
        after.position += 1
        advance(after, atCursor)
        return true
    }

    // Each primitive: find the value, read it, move the cursor.

    @inline(__always)
    private func primitive<T>(_ type: T.Type, _ key: Key, _ read: (inout RecordReader) throws -> T) throws -> T {
        let (found, atCursor, _) = try required(key)
        var reader = found
        do {
            let value = try read(&reader)
            advance(reader, atCursor)
            return value
        } catch let mismatch as ValueMismatch {
            throw error(mismatch, T.self, key)
        }
    }

    @inline(__always)
    private func optionalPrimitive<T>(_ type: T.Type, _ key: Key, _ read: (inout RecordReader) throws -> T) throws -> T? {
        guard let (found, atCursor, _) = try optional(key) else { return nil }
        var reader = found
        do {
            let value = try read(&reader)
            advance(reader, atCursor)
            return value
        } catch let mismatch as ValueMismatch {
            throw error(mismatch, T.self, key)
        }
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try primitive(type, key, StreamingDecoder.readBool)
    }

    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        // `primitive` written out: through its closure the string read stays a call.
        let (found, atCursor, _) = try required(key)
        var reader = found
        let tag = try reader.readByte()
        guard _fastPath(tag == RecordFormat.Tag.string) else { throw error(ValueMismatch(tag: tag), type, key) }
        let value = try reader.readString(smallASCII: state.pointee.smallASCII)
        advance(reader, atCursor)
        return value
    }

    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try primitive(type, key, StreamingDecoder.readDouble)
    }

    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        Float(try primitive(Double.self, key, StreamingDecoder.readDouble))
    }

    func decode(_ type: Int.Type, forKey key: Key) throws -> Int {
        try primitive(type, key) { try StreamingDecoder.readInteger(Int.self, &$0) }
    }

    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 {
        try primitive(type, key) { try StreamingDecoder.readInteger(Int8.self, &$0) }
    }

    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 {
        try primitive(type, key) { try StreamingDecoder.readInteger(Int16.self, &$0) }
    }

    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 {
        try primitive(type, key) { try StreamingDecoder.readInteger(Int32.self, &$0) }
    }

    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 {
        try primitive(type, key) { try StreamingDecoder.readInteger(Int64.self, &$0) }
    }

    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt {
        try primitive(type, key) { try StreamingDecoder.readInteger(UInt.self, &$0) }
    }

    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 {
        try primitive(type, key) { try StreamingDecoder.readInteger(UInt8.self, &$0) }
    }

    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 {
        try primitive(type, key) { try StreamingDecoder.readInteger(UInt16.self, &$0) }
    }

    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 {
        try primitive(type, key) { try StreamingDecoder.readInteger(UInt32.self, &$0) }
    }

    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 {
        try primitive(type, key) { try StreamingDecoder.readInteger(UInt64.self, &$0) }
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try nested(T.self, try required(key))
    }

    /// Decodes a nested value and moves the cursor past it (skipping it by its length).
    @inline(__always)
    private func nested<T: Decodable>(_ type: T.Type, _ found: Found) throws -> T {
        let position = found.reader.position
        var after = found.reader
        let tag = try after.readByte()
        try after.skipValue(tag: tag)
        let value = try decoder.decodeValue(T.self, at: position, depth: depth, prefix: extraPath, path: found.key)
        advance(after, found.atCursor)
        return value
    }

    // `decodeIfPresent`: one lookup; an absent key and a null are both `nil`.

    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try optionalPrimitive(type, key, StreamingDecoder.readBool)
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        let smallASCII = state.pointee.smallASCII
        return try optionalPrimitive(type, key) { try StreamingDecoder.readString(&$0, smallASCII: smallASCII) }
    }

    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try optionalPrimitive(type, key, StreamingDecoder.readDouble)
    }

    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? {
        try optionalPrimitive(Double.self, key, StreamingDecoder.readDouble).map(Float.init)
    }

    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(Int.self, &$0) }
    }

    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(Int8.self, &$0) }
    }

    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(Int16.self, &$0) }
    }

    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(Int32.self, &$0) }
    }

    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(Int64.self, &$0) }
    }

    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(UInt.self, &$0) }
    }

    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(UInt8.self, &$0) }
    }

    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(UInt16.self, &$0) }
    }

    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(UInt32.self, &$0) }
    }

    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
        try optionalPrimitive(type, key) { try StreamingDecoder.readInteger(UInt64.self, &$0) }
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let found = try optional(key) else { return nil }
        return try nested(T.self, found)
    }

    // Nested containers and super decoders.

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        let (reader, atCursor, keyOffset) = try required(key)
        let (count, first, containerEnd) = try decoder.openContainer(
            at: reader.position, depth: depth, tag: RecordFormat.Tag.map, type: [String: Any].self, prefix: extraPath, path: keyOffset)
        advance(RecordReader(state.pointee.base, count: end, position: containerEnd), atCursor)
        let decoder = self.decoder
        return decoder.keyedContainer(NestedKey.self, count: count, first: first, end: containerEnd, depth: depth + 1,
                                      pathCount: handle.pointee.pathCount,
                                      extraPath: decoder.extraPath(parent: extraPath, entry: keyOffset))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        let (reader, atCursor, keyOffset) = try required(key)
        let (count, first, containerEnd) = try decoder.openContainer(
            at: reader.position, depth: depth, tag: RecordFormat.Tag.array, type: [Any].self, prefix: extraPath, path: keyOffset)
        advance(RecordReader(state.pointee.base, count: end, position: containerEnd), atCursor)
        let decoder = self.decoder
        return StreamingUnkeyedDecodingContainer(
            decoder: decoder, count: count, position: first, end: containerEnd, depth: depth + 1,
            pathCount: handle.pointee.pathCount, extraPath: decoder.extraPath(parent: extraPath, entry: keyOffset))
    }

    func superDecoder() throws -> any Decoder {
        try superDecoder(key: SuperKey())
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        try superDecoder(key: key)
    }

    private func superDecoder(key: any CodingKey) throws -> any Decoder {
        guard isCurrent else { throw StoreError(.invalidArgument, "a container was used after its RecordDecoder call returned") }
        try buildIndex()
        let base = state.pointee.base
        var position = -1
        for entry in handle.pointee.entries
        where key.stringValue.utf8.elementsEqual(UnsafeRawBufferPointer(start: base + entry.keyStart, count: entry.keyCount)) {
            position = entry.value
            break
        }
        let path = codingPath + [key]
        guard position >= 0 else {
            // Absent: a decoder of null, as JSONDecoder gives.
            return decoder.detachedNull(depth: depth, path: path)
        }
        return decoder.detached(at: position, depth: depth, path: path)
    }
}

// MARK: - Unkeyed container

struct StreamingUnkeyedDecodingContainer: UnkeyedDecodingContainer {
    let decoder: StreamingDecoder
    let elementCount: Int
    /// The offset of the next element.
    private var position: Int
    let end: Int
    let depth: Int
    let pathCount: Int
    /// The index of its extra keys in the decoder, or -1.
    let extraPath: Int
    private(set) var currentIndex = 0

    init(decoder: StreamingDecoder, count: Int, position: Int, end: Int, depth: Int, pathCount: Int, extraPath: Int) {
        self.decoder = decoder
        elementCount = count
        self.position = position
        self.end = end
        self.depth = depth
        self.pathCount = pathCount
        self.extraPath = extraPath
    }

    var codingPath: [any CodingKey] { decoder.path(prefix: pathCount, extra: extraPath) }
    var count: Int? { elementCount }
    var isAtEnd: Bool { currentIndex >= elementCount }

    /// A reader at the next element, or an error at the end.
    @inline(__always)
    private func next(_ type: Any.Type) throws -> RecordReader {
        guard _fastPath(decoder.isCurrent) else { throw decoder.staleError() }
        guard _fastPath(currentIndex < elementCount) else {
            throw DecodingError.valueNotFound(type, DecodingError.Context(
                codingPath: codingPath + [IndexKey(currentIndex)], debugDescription: "the array has no more elements"))
        }
        return RecordReader(decoder.base, count: end, position: position)
    }

    @inline(__always)
    private mutating func advance(_ reader: RecordReader) {
        position = reader.position
        currentIndex &+= 1
    }

    @inline(__always)
    private mutating func primitive<T>(_ type: T.Type, _ read: (inout RecordReader) throws -> T) throws -> T {
        var reader = try next(type)
        do {
            let value = try read(&reader)
            advance(reader)
            return value
        } catch let mismatch as ValueMismatch {
            throw decoder.error(mismatch, T.self, path: codingPath + [IndexKey(currentIndex)])
        }
    }

    mutating func decodeNil() throws -> Bool {
        var reader = try next(Never.self)
        guard try reader.readByte() == RecordFormat.Tag.null else { return false }
        advance(reader)
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try primitive(type, StreamingDecoder.readBool) }
    mutating func decode(_ type: String.Type) throws -> String {
        let smallASCII = decoder.state.pointee.smallASCII
        return try primitive(type) { try StreamingDecoder.readString(&$0, smallASCII: smallASCII) }
    }
    mutating func decode(_ type: Double.Type) throws -> Double { try primitive(type, StreamingDecoder.readDouble) }
    mutating func decode(_ type: Float.Type) throws -> Float { Float(try primitive(Double.self, StreamingDecoder.readDouble)) }
    mutating func decode(_ type: Int.Type) throws -> Int { try primitive(type) { try StreamingDecoder.readInteger(Int.self, &$0) } }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try primitive(type) { try StreamingDecoder.readInteger(Int8.self, &$0) } }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try primitive(type) { try StreamingDecoder.readInteger(Int16.self, &$0) } }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try primitive(type) { try StreamingDecoder.readInteger(Int32.self, &$0) } }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try primitive(type) { try StreamingDecoder.readInteger(Int64.self, &$0) } }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try primitive(type) { try StreamingDecoder.readInteger(UInt.self, &$0) } }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try primitive(type) { try StreamingDecoder.readInteger(UInt8.self, &$0) } }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try primitive(type) { try StreamingDecoder.readInteger(UInt16.self, &$0) } }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try primitive(type) { try StreamingDecoder.readInteger(UInt32.self, &$0) } }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try primitive(type) { try StreamingDecoder.readInteger(UInt64.self, &$0) } }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        var reader = try next(type)
        let start = reader.position
        let tag = try reader.readByte()
        try reader.skipValue(tag: tag)
        let value = try decoder.decodeValue(T.self, at: start, depth: depth, prefix: extraPath, path: CodingPathStack.index(currentIndex))
        advance(reader)
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let reader = try next([String: Any].self)
        let key = CodingPathStack.index(currentIndex)
        let (count, first, containerEnd) = try decoder.openContainer(
            at: reader.position, depth: depth, tag: RecordFormat.Tag.map, type: [String: Any].self, prefix: extraPath, path: key)
        advance(RecordReader(decoder.base, count: end, position: containerEnd))
        return decoder.keyedContainer(NestedKey.self, count: count, first: first, end: containerEnd, depth: depth + 1,
                                      pathCount: pathCount, extraPath: decoder.extraPath(parent: extraPath, entry: key))
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let reader = try next([Any].self)
        let key = CodingPathStack.index(currentIndex)
        let (count, first, containerEnd) = try decoder.openContainer(
            at: reader.position, depth: depth, tag: RecordFormat.Tag.array, type: [Any].self, prefix: extraPath, path: key)
        advance(RecordReader(decoder.base, count: end, position: containerEnd))
        return StreamingUnkeyedDecodingContainer(
            decoder: decoder, count: count, position: first, end: containerEnd, depth: depth + 1,
            pathCount: pathCount, extraPath: decoder.extraPath(parent: extraPath, entry: key))
    }

    mutating func superDecoder() throws -> any Decoder {
        var reader = try next((any Decoder).self)
        let start = reader.position
        let tag = try reader.readByte()
        try reader.skipValue(tag: tag)
        let path = codingPath + [IndexKey(currentIndex)]
        advance(reader)
        return decoder.detached(at: start, depth: depth, path: path)
    }
}

// MARK: - Single-value container

struct StreamingSingleValueDecodingContainer: SingleValueDecodingContainer {
    let decoder: StreamingDecoder
    let position: Int
    let depth: Int

    var codingPath: [any CodingKey] { decoder.codingPath }

    @inline(__always)
    private func primitive<T>(_ type: T.Type, _ read: (inout RecordReader) throws -> T) throws -> T {
        guard _fastPath(decoder.isCurrent) else { throw decoder.staleError() }
        var reader = RecordReader(decoder.base, count: decoder.end, position: position)
        do {
            return try read(&reader)
        } catch let mismatch as ValueMismatch {
            throw decoder.error(mismatch, T.self, path: codingPath)
        }
    }

    func decodeNil() -> Bool {
        guard decoder.isCurrent else { return false }
        return (try? RecordReader(decoder.base, count: decoder.end, position: position).peekByte()) == RecordFormat.Tag.null
    }

    func decode(_ type: Bool.Type) throws -> Bool { try primitive(type, StreamingDecoder.readBool) }
    func decode(_ type: String.Type) throws -> String {
        let smallASCII = decoder.state.pointee.smallASCII
        return try primitive(type) { try StreamingDecoder.readString(&$0, smallASCII: smallASCII) }
    }
    func decode(_ type: Double.Type) throws -> Double { try primitive(type, StreamingDecoder.readDouble) }
    func decode(_ type: Float.Type) throws -> Float { Float(try primitive(Double.self, StreamingDecoder.readDouble)) }
    func decode(_ type: Int.Type) throws -> Int { try primitive(type) { try StreamingDecoder.readInteger(Int.self, &$0) } }
    func decode(_ type: Int8.Type) throws -> Int8 { try primitive(type) { try StreamingDecoder.readInteger(Int8.self, &$0) } }
    func decode(_ type: Int16.Type) throws -> Int16 { try primitive(type) { try StreamingDecoder.readInteger(Int16.self, &$0) } }
    func decode(_ type: Int32.Type) throws -> Int32 { try primitive(type) { try StreamingDecoder.readInteger(Int32.self, &$0) } }
    func decode(_ type: Int64.Type) throws -> Int64 { try primitive(type) { try StreamingDecoder.readInteger(Int64.self, &$0) } }
    func decode(_ type: UInt.Type) throws -> UInt { try primitive(type) { try StreamingDecoder.readInteger(UInt.self, &$0) } }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try primitive(type) { try StreamingDecoder.readInteger(UInt8.self, &$0) } }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try primitive(type) { try StreamingDecoder.readInteger(UInt16.self, &$0) } }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try primitive(type) { try StreamingDecoder.readInteger(UInt32.self, &$0) } }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try primitive(type) { try StreamingDecoder.readInteger(UInt64.self, &$0) } }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard _fastPath(decoder.isCurrent) else { throw decoder.staleError() }
        return try decoder.decodeValue(T.self, at: position, depth: depth, prefix: -1, path: CodingPathStack.none)
    }
}
