/// The payload of a batch frame: one commit's unit-of-work id, timestamp and operations
/// (`Docs/FORMAT.md`, section 2.3).
package struct CommitPayload: Sendable, Equatable {
    /// One operation as logged: versions are assigned and records are located in the payload.
    package enum Operation: Sendable, Equatable {
        /// A put; `record` is the range of the record's bytes within the uncompressed payload.
        case put(table: String, id: String, version: UInt64, foreignKeys: [ForeignKey], record: Range<Int>)
        /// A delete (tombstone).
        case delete(table: String, id: String, version: UInt64)
        /// An outbox event.
        case event(OutboxEvent)
    }

    /// The unit of work that committed.
    package var unitOfWorkId: String
    /// When it committed, in microseconds since the epoch.
    package var commitTimestamp: Int64
    /// The operations in batch order.
    package var operations: [Operation]

    /// Encodes a batch whose versions have been assigned (`versions` holds one per put or
    /// delete, in order). Returns the payload and its decoded form, whose record ranges point
    /// into the returned bytes, so the writer never decodes what it just encoded.
    package static func encode(
        _ batch: WriteBatch, versions: [UInt64], commitTimestamp: Int64
    ) -> (bytes: [UInt8], payload: CommitPayload) {
        var writer = ByteWriter(capacity: estimatedSize(of: batch))
        var operations: [Operation] = []
        operations.reserveCapacity(batch.operations.count)
        writer.writeString(batch.unitOfWorkId)
        writer.writeInt64(commitTimestamp)
        writer.writeVarint(UInt64(batch.operations.count))
        var nextVersion = versions.makeIterator()
        for operation in batch.operations {
            switch operation {
            case let .put(table, id, record, foreignKeys, _):
                let version = nextVersion.next()!
                writer.writeUInt8(Format.OperationTag.put.rawValue)
                writer.writeString(table)
                writer.writeString(id)
                writer.writeVarint(version)
                writer.writeVarint(UInt64(foreignKeys.count))
                for key in foreignKeys {
                    writer.writeString(key.field)
                    writer.writeString(key.value)
                }
                let start = writer.writeLengthPrefixed(record)
                operations.append(.put(table: table, id: id, version: version, foreignKeys: foreignKeys,
                                       record: start..<start + record.count))
            case let .delete(table, id, _):
                let version = nextVersion.next()!
                writer.writeUInt8(Format.OperationTag.delete.rawValue)
                writer.writeString(table)
                writer.writeString(id)
                writer.writeVarint(version)
                operations.append(.delete(table: table, id: id, version: version))
            case let .event(event):
                writer.writeUInt8(Format.OperationTag.event.rawValue)
                writer.writeString(event.id)
                writer.writeString(event.type)
                writer.writeString(event.aggregateTable)
                writer.writeString(event.aggregateId)
                writer.writeInt64(event.occurredAt)
                writer.writeLengthPrefixed(event.payload)
                operations.append(.event(event))
            }
        }
        let payload = CommitPayload(unitOfWorkId: batch.unitOfWorkId, commitTimestamp: commitTimestamp, operations: operations)
        return (writer.bytes, payload)
    }

    /// An upper estimate of the encoded size, so encoding allocates once.
    package static func estimatedSize(of batch: WriteBatch) -> Int {
        var size = 32 + batch.unitOfWorkId.utf8.count
        for operation in batch.operations {
            switch operation {
            case let .put(table, id, record, foreignKeys, _):
                size += 40 + table.utf8.count + id.utf8.count + record.count
                for key in foreignKeys { size += 10 + key.field.utf8.count + key.value.utf8.count }
            case let .delete(table, id, _):
                size += 30 + table.utf8.count + id.utf8.count
            case let .event(event):
                size += 60 + event.id.utf8.count + event.type.utf8.count + event.aggregateTable.utf8.count
                    + event.aggregateId.utf8.count + event.payload.count
            }
        }
        return size
    }

    /// Decodes a payload, rejecting unknown tags, over-long names, lengths past the end and
    /// trailing bytes. Never traps on hostile input.
    package static func decode(_ bytes: UnsafeRawBufferPointer) throws(ByteReader.Failure) -> CommitPayload {
        var reader = ByteReader(bytes)
        let unitOfWorkId = try readName(&reader, "unit-of-work id")
        let commitTimestamp = try reader.readInt64()
        let countOffset = reader.offset
        let count = try reader.readVarint()
        // Every operation takes at least 4 bytes, which bounds the count before reserving.
        guard count <= UInt64(reader.remaining / 4) else {
            throw ByteReader.Failure(reason: "operation count \(count) exceeds the payload", offset: countOffset)
        }
        var operations: [Operation] = []
        // Reserve only a little up front: an operation is far larger in memory than its 4 bytes
        // on disk, so trusting the count could reserve 20 times the payload before a byte is read.
        operations.reserveCapacity(Int(min(count, 256)))
        for _ in 0..<count {
            let tagOffset = reader.offset
            switch Format.OperationTag(rawValue: try reader.readUInt8()) {
            case .put:
                let table = try readName(&reader, "table")
                let id = try readName(&reader, "id")
                let version = try reader.readVarint()
                let keyCountOffset = reader.offset
                let keyCount = try reader.readVarint()
                guard keyCount <= UInt64(reader.remaining / 2) else {
                    throw ByteReader.Failure(reason: "foreign-key count \(keyCount) exceeds the payload", offset: keyCountOffset)
                }
                var foreignKeys: [ForeignKey] = []
                foreignKeys.reserveCapacity(Int(min(keyCount, 16)))
                for _ in 0..<keyCount {
                    let field = try readName(&reader, "foreign-key field")
                    let value = try readName(&reader, "foreign-key value")
                    foreignKeys.append(ForeignKey(field: field, value: value))
                }
                let record = try reader.readLengthPrefixedRange("record")
                operations.append(.put(table: table, id: id, version: version, foreignKeys: foreignKeys, record: record))
            case .delete:
                let table = try readName(&reader, "table")
                let id = try readName(&reader, "id")
                let version = try reader.readVarint()
                operations.append(.delete(table: table, id: id, version: version))
            case .event:
                let id = try readName(&reader, "event id")
                let type = try readName(&reader, "event type")
                let table = try readName(&reader, "event aggregate table")
                let aggregateId = try readName(&reader, "event aggregate id")
                let occurredAt = try reader.readInt64()
                let body = try reader.readLengthPrefixed("event payload")
                operations.append(.event(OutboxEvent(id: id, type: type, aggregateTable: table, aggregateId: aggregateId,
                                                     occurredAt: occurredAt, payload: body)))
            case nil:
                throw ByteReader.Failure(reason: "unknown operation tag", offset: tagOffset)
            }
        }
        guard reader.isAtEnd else {
            throw ByteReader.Failure(reason: "\(reader.remaining) trailing bytes after the operations", offset: reader.offset)
        }
        return CommitPayload(unitOfWorkId: unitOfWorkId, commitTimestamp: commitTimestamp, operations: operations)
    }

    /// A table, id, field or event name: non-empty UTF-8 of at most ``Format/maximumNameLength``
    /// bytes without NUL, the rule commits enforce (`Docs/FORMAT.md`, section 2.3).
    private static func readName(_ reader: inout ByteReader, _ what: String) throws(ByteReader.Failure) -> String {
        let offset = reader.offset
        let name = try reader.readString(limit: Format.maximumNameLength, what)
        guard !name.isEmpty, !name.utf8.contains(0) else {
            throw ByteReader.Failure(reason: "\(what) is empty or contains NUL", offset: offset)
        }
        return name
    }
}
