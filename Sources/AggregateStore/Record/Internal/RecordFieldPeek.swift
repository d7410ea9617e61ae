/// Reads one top-level field of a record without decoding the rest: the data store uses it to
/// check that a record's `id` field holds its key, at the cost of a walk over the top-level keys.
enum RecordFieldPeek {
    /// What the top-level map of `bytes` holds under `field`.
    enum Found: Equatable {
        /// The record is not a map, or has no such field.
        case missing
        /// The field holds this string.
        case string(String)
        /// The field holds something other than a string.
        case other
    }

    static func topLevel(_ field: String, in bytes: [UInt8]) throws(StoreError) -> Found {
        try bytes.withUnsafeBytesTyped { buffer throws(StoreError) -> Found in
            var reader = RecordReader(buffer)
            guard try reader.readByte() == RecordFormat.version else {
                throw StoreError(.unsupportedFormat, "unknown record format version")
            }
            guard try reader.readByte() == RecordFormat.Tag.map else { return .missing }
            let (count, _) = try reader.readContainerHeader(minimumElementSize: 2)
            let key = field.utf8
            for _ in 0..<count {
                let name = try reader.readLengthPrefixed()
                let tag = try reader.readByte()
                if name.elementsEqual(key) {
                    guard tag == RecordFormat.Tag.string else { return .other }
                    return .string(try reader.readString())
                }
                try reader.skipValue(tag: tag)
            }
            return .missing
        }
    }

    /// The value at a field path, decoded alone, or nil when the path is missing (a component
    /// is absent or a value on the way is not a map): a query tests its fields this way and
    /// decodes only the records that match.
    static func value(at components: [String], in buffer: UnsafeRawBufferPointer) throws(StoreError) -> Document? {
        var reader = RecordReader(buffer)
        try Document.readVersion(&reader)
        for component in components {
            guard try reader.readByte() == RecordFormat.Tag.map else { return nil }
            let (count, _) = try reader.readContainerHeader(minimumElementSize: 2)
            var found = false
            for _ in 0..<count {
                if try reader.readLengthPrefixed().elementsEqual(component.utf8) {
                    found = true
                    break
                }
                try reader.skipValue(tag: try reader.readByte())
            }
            guard found else { return nil }
        }
        return try Document.decodeValue(&reader, depth: components.count)
    }
}
