extension Document {
    /// Encodes the document as a record: the format version byte, then the value.
    ///
    /// The encoding is canonical: equal documents (see ``==(_:_:)``) encode to equal bytes.
    /// `Docs/RECORD-FORMAT.md` describes it.
    ///
    /// ```swift
    /// let document: Document = ["id": "SO-1", "quantity": 3]
    /// let bytes = try document.encoded()
    /// ```
    ///
    /// - Returns: The record bytes.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when arrays and maps
    ///   nest deeper than ``maximumDepth``.
    public func encoded() throws(StoreError) -> [UInt8] {
        var writer = RecordWriter(capacity: 256)
        defer { writer.deallocate() }
        writer.append(RecordFormat.version)
        try encode(into: &writer, depth: 0)
        return writer.bytes()
    }

    /// Appends the value (without the version byte).
    func encode(into writer: inout RecordWriter, depth: Int) throws(StoreError) {
        switch self {
        case .null:
            writer.append(RecordFormat.Tag.null)
        case .bool(let value):
            writer.append(value ? RecordFormat.Tag.true : RecordFormat.Tag.false)
        case .integer(let value):
            writer.appendTagged(RecordFormat.Tag.integer, zigZag: value)
        case .double(let value):
            writer.appendDouble(value)
        case .decimal(let value):
            writer.appendDecimal(DecimalParts(value))
        case .string(let value):
            writer.append(RecordFormat.Tag.string)
            writer.appendLengthPrefixed(value)
        case .bytes(let value):
            writer.append(RecordFormat.Tag.bytes)
            value.withUnsafeBytes { writer.appendLengthPrefixed($0) }
        case .timestamp(let value):
            writer.appendTagged(RecordFormat.Tag.timestamp, zigZag: value.microsecondsSinceEpoch)
        case .array(let elements):
            guard depth < RecordFormat.maximumDepth else { throw Self.tooDeep() }
            let start = writer.beginContainer(tag: RecordFormat.Tag.array)
            for element in elements { try element.encode(into: &writer, depth: depth + 1) }
            writer.endContainer(at: start, count: elements.count)
        case .map(let map):
            guard depth < RecordFormat.maximumDepth else { throw Self.tooDeep() }
            let start = writer.beginContainer(tag: RecordFormat.Tag.map)
            for position in map.keys.indices {
                writer.appendLengthPrefixed(map.keys[position])
                try map.values[position].encode(into: &writer, depth: depth + 1)
            }
            writer.endContainer(at: start, count: map.keys.count)
        }
    }

    private static func tooDeep() -> StoreError {
        StoreError(.invalidArgument, "the document nests arrays and maps deeper than \(RecordFormat.maximumDepth) levels")
    }

    /// Decodes a record written by ``encoded()`` or by ``RecordEncoder``.
    ///
    /// Decoding checks every byte: a bad length, count, tag, UTF-8 sequence, repeated map key,
    /// trailing byte or a nesting deeper than ``maximumDepth`` throws; it never traps, and it
    /// allocates no more than the input's size warrants.
    ///
    /// ```swift
    /// let stored = try engine.record(table: "SalesOrder", id: "SO-1")
    /// let order = try Document(decoding: stored!.bytes)
    /// print(order.value(at: "shippingAddress.city") ?? .null)
    /// ```
    ///
    /// - Parameter bytes: The record.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/unsupportedFormat`` when the version
    ///   byte is unknown, ``StoreError/Code/corruption`` (with the byte ``StoreError/offset``)
    ///   when the bytes are malformed.
    public init(decoding bytes: some Collection<UInt8>) throws(StoreError) {
        do {
            if let document = try bytes.withContiguousStorageIfAvailable({ buffer throws(StoreError) -> Document in
                try Document(decoding: UnsafeRawBufferPointer(buffer))
            }) {
                self = document
                return
            }
        } catch {
            throw error as? StoreError ?? StoreError(.corruption, "\(error)")
        }
        self = try [UInt8](bytes).withUnsafeBytesTyped { buffer throws(StoreError) in try Document(decoding: buffer) }
    }

    /// Decodes a record from memory the caller owns for the duration of the call.
    ///
    /// - Parameter buffer: The record.
    /// - Throws: ``StoreError`` as `init(decoding:)` does.
    public init(decoding buffer: UnsafeRawBufferPointer) throws(StoreError) {
        var reader = RecordReader(buffer)
        try Self.readVersion(&reader)
        self = try Self.decodeValue(&reader, depth: 0)
        guard reader.position == reader.end else {
            throw RecordReader.corruption("\(reader.end - reader.position) bytes after the value", at: reader.position)
        }
    }

    static func readVersion(_ reader: inout RecordReader) throws(StoreError) {
        guard reader.remaining > 0 else { throw RecordReader.corruption("empty record", at: 0) }
        let version = try reader.readByte()
        guard version == RecordFormat.version else {
            throw StoreError(.unsupportedFormat, "record format version \(version) is not supported (expected \(RecordFormat.version))",
                             offset: 0)
        }
    }

    static func decodeValue(_ reader: inout RecordReader, depth: Int) throws(StoreError) -> Document {
        let tagOffset = reader.position
        let tag = try reader.readByte()
        switch tag {
        case RecordFormat.Tag.null: return .null
        case RecordFormat.Tag.false: return .bool(false)
        case RecordFormat.Tag.true: return .bool(true)
        case RecordFormat.Tag.integer: return .integer(try reader.readZigZag())
        case RecordFormat.Tag.double: return .double(Double(bitPattern: try reader.readDoubleBits()))
        case RecordFormat.Tag.decimal: return .decimal(try reader.readDecimal().decimal)
        case RecordFormat.Tag.string: return .string(try reader.readString())
        case RecordFormat.Tag.bytes: return .bytes([UInt8](try reader.readLengthPrefixed()))
        case RecordFormat.Tag.timestamp: return .timestamp(Timestamp(microsecondsSinceEpoch: try reader.readZigZag()))
        case RecordFormat.Tag.array:
            guard depth < RecordFormat.maximumDepth else {
                throw RecordReader.corruption("arrays and maps nest deeper than \(RecordFormat.maximumDepth) levels", at: tagOffset)
            }
            let (count, end) = try reader.readContainerHeader(minimumElementSize: 1)
            var elements: [Document] = []
            elements.reserveCapacity(count)
            for _ in 0..<count {
                elements.append(try decodeValue(&reader, depth: depth + 1))
            }
            try checkEnd(reader, end, tagOffset)
            return .array(elements)
        case RecordFormat.Tag.map:
            guard depth < RecordFormat.maximumDepth else {
                throw RecordReader.corruption("arrays and maps nest deeper than \(RecordFormat.maximumDepth) levels", at: tagOffset)
            }
            let (count, end) = try reader.readContainerHeader(minimumElementSize: 2)
            var keys: [String] = []
            var values: [Document] = []
            keys.reserveCapacity(count)
            values.reserveCapacity(count)
            var seen: Set<UTF8Key>? = count > 16 ? Set(minimumCapacity: count) : nil
            for _ in 0..<count {
                let keyOffset = reader.position
                let key = try reader.readString()
                if seen != nil {
                    guard seen!.insert(UTF8Key(key)).inserted else { throw duplicateKey(key, keyOffset) }
                } else {
                    for existing in keys where existing.utf8.count == key.utf8.count && existing.utf8.elementsEqual(key.utf8) {
                        throw duplicateKey(key, keyOffset)
                    }
                }
                keys.append(key)
                values.append(try decodeValue(&reader, depth: depth + 1))
            }
            try checkEnd(reader, end, tagOffset)
            return .map(Map(uncheckedKeys: keys, values: values))
        default:
            throw RecordReader.corruption("unknown tag \(tag)", at: tagOffset)
        }
    }

    private static func duplicateKey(_ key: String, _ offset: Int) -> StoreError {
        RecordReader.corruption("repeated map key '\(key)'", at: offset)
    }

    @inline(__always)
    private static func checkEnd(_ reader: RecordReader, _ end: Int, _ tagOffset: Int) throws(StoreError) {
        guard reader.position == end else {
            throw RecordReader.corruption("container length does not match its elements", at: tagOffset)
        }
    }
}

/// A string compared and hashed by its UTF-8 bytes, as map keys are.
struct UTF8Key: Hashable {
    var string: String

    init(_ string: String) { self.string = string }

    static func == (lhs: UTF8Key, rhs: UTF8Key) -> Bool { lhs.string.utf8.elementsEqual(rhs.string.utf8) }

    func hash(into hasher: inout Hasher) {
        for byte in string.utf8 { hasher.combine(byte) }
    }
}
