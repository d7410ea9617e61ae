/// Reads one field of a record without decoding the rest: the data store checks a record's `id`
/// field with it, and queries test and sort on the fields they name.
enum RecordFieldPeek {
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
