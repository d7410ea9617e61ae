/// The payload of a batch frame: one commit's unit-of-work id, timestamp and operations
/// (`Docs/FORMAT.md`, section 2.3).
package struct CommitPayload: Sendable, Equatable {
    /// One operation as logged: versions are assigned and records are located in the payload.
    package enum Operation: Sendable, Equatable {
        /// A put; `record` is the range of the record's bytes within the uncompressed payload.
        case put(table: String, id: String, version: UInt64, foreignKeys: [ForeignKey], record: Range<Int>)
        /// A delete (tombstone).
        case delete(table: String, id: String, version: UInt64)
        /// An outbox event at its outbox position (dense from 1 over the whole log).
        case event(OutboxEvent, position: UInt64)
    }

    /// The unit of work that committed.
    package var unitOfWorkId: String
    /// When it was staged for commit, in microseconds since the epoch (the wall clock, read
    /// before the writer lock: commits staged at once may carry them out of sequence order).
    package var commitTimestamp: Int64
    /// The operations in batch order.
    package var operations: [Operation]

    /// The number of outbox events.
    package var eventCount: Int {
        operations.reduce(0) { count, operation in
            if case .event = operation { count + 1 } else { count }
        }
    }

    /// The position of the first event, or nil when the commit has none.
    package var firstEventPosition: UInt64? {
        for case let .event(_, position) in operations { return position }
        return nil
    }

    /// Encodes a batch whose versions and event positions have been assigned (`versions` holds
    /// one per put or delete, in order; the events get `firstEventPosition`, then one more
    /// each, in batch order). Returns the payload and its decoded form, whose record ranges
    /// point into the returned bytes, so the writer never decodes what it just encoded.
    package static func encode(
        _ batch: WriteBatch, versions: [UInt64], firstEventPosition: UInt64, commitTimestamp: Int64
    ) -> (bytes: [UInt8], payload: CommitPayload) {
        var payload: CommitPayload?
        let bytes = [UInt8](unsafeUninitializedCapacity: estimatedSize(of: batch)) { buffer, initializedCount in
            (initializedCount, payload) = encode(batch, versions: versions, firstEventPosition: firstEventPosition,
                                                 commitTimestamp: commitTimestamp, into: buffer)
        }
        return (bytes, payload!)
    }

    /// Encodes a batch as ``encode(_:versions:firstEventPosition:commitTimestamp:)`` does, in
    /// place at the start of `buffer`, which holds at least ``estimatedSize(of:)`` bytes (a
    /// write past them traps).
    /// - Returns: The length of the payload, and its decoded form.
    package static func encode(
        _ batch: WriteBatch, versions: [UInt64], firstEventPosition: UInt64, commitTimestamp: Int64,
        into buffer: UnsafeMutableBufferPointer<UInt8>
    ) -> (count: Int, payload: CommitPayload) {
        var operations: [Operation] = []
        operations.reserveCapacity(batch.operations.count)
        var writer = BoundedByteWriter(buffer)
        writer.writeString(batch.unitOfWorkId)
        writer.writeInt64(commitTimestamp)
        writer.writeVarint(UInt64(batch.operations.count))
        var nextVersion = versions.makeIterator()
        var nextPosition = firstEventPosition
        // Matched in place, as in ``StorageEngine/validate(_:)``.
        batch.operations.withUnsafeBufferPointer { batchOperations in
            for index in batchOperations.indices {
                switch batchOperations[index] {
                case let .put(table, id, record, foreignKeys, _):
                    let version = nextVersion.next()!
                    let start = record.withUnsafeBytes { record in
                        writePut(&writer, table: table, id: id, version: version, foreignKeys: foreignKeys, record: record)
                    }
                    operations.append(.put(table: table, id: id, version: version, foreignKeys: foreignKeys,
                                           record: start..<start + record.count))
                case let .delete(table, id, _):
                    let version = nextVersion.next()!
                    writeDelete(&writer, table: table, id: id, version: version)
                    operations.append(.delete(table: table, id: id, version: version))
                case let .event(event):
                    writeEvent(&writer, event, position: nextPosition)
                    operations.append(.event(event, position: nextPosition))
                    // Wrapping only past the last event of a payload whose positions end at
                    // UInt64.max, which the decoder accepts and the fuzzers re-encode; no engine
                    // ever gets near it.
                    nextPosition &+= 1
                }
            }
        }
        let payload = CommitPayload(unitOfWorkId: batch.unitOfWorkId, commitTimestamp: commitTimestamp, operations: operations)
        return (writer.count, payload)
    }

    /// Encodes the operations of a logged commit that compaction keeps, with the commit's own
    /// unit-of-work id, timestamp, versions and event positions. Put records are copied from
    /// `source`, the payload they were decoded from.
    package static func encode(keeping operations: [Operation], of payload: CommitPayload,
                               source: [UInt8]) -> (bytes: [UInt8], payload: CommitPayload) {
        var kept: [Operation] = []
        kept.reserveCapacity(operations.count)
        let bytes = [UInt8](unsafeUninitializedCapacity: estimatedSize(of: operations, unitOfWorkId: payload.unitOfWorkId)) { buffer, initializedCount in
            var writer = BoundedByteWriter(buffer)
            writer.writeString(payload.unitOfWorkId)
            writer.writeInt64(payload.commitTimestamp)
            writer.writeVarint(UInt64(operations.count))
            for operation in operations {
                switch operation {
                case let .put(table, id, version, foreignKeys, record):
                    let start = source.withUnsafeBytes { source in
                        writePut(&writer, table: table, id: id, version: version, foreignKeys: foreignKeys,
                                 record: UnsafeRawBufferPointer(rebasing: source[record]))
                    }
                    kept.append(.put(table: table, id: id, version: version, foreignKeys: foreignKeys, record: start..<start + record.count))
                case let .delete(table, id, version):
                    writeDelete(&writer, table: table, id: id, version: version)
                    kept.append(operation)
                case let .event(event, position):
                    writeEvent(&writer, event, position: position)
                    kept.append(operation)
                }
            }
            initializedCount = writer.count
        }
        return (bytes, CommitPayload(unitOfWorkId: payload.unitOfWorkId, commitTimestamp: payload.commitTimestamp, operations: kept))
    }

    /// Writes a put operation; returns where its record's bytes start.
    private static func writePut(_ writer: inout BoundedByteWriter, table: String, id: String, version: UInt64,
                                 foreignKeys: [ForeignKey], record: UnsafeRawBufferPointer) -> Int {
        writer.writeUInt8(Format.OperationTag.put.rawValue)
        writer.writeString(table)
        writer.writeString(id)
        writer.writeVarint(version)
        writer.writeVarint(UInt64(foreignKeys.count))
        for key in foreignKeys {
            writer.writeString(key.field)
            writer.writeString(key.value)
        }
        return writer.writeLengthPrefixed(record)
    }

    private static func writeDelete(_ writer: inout BoundedByteWriter, table: String, id: String, version: UInt64) {
        writer.writeUInt8(Format.OperationTag.delete.rawValue)
        writer.writeString(table)
        writer.writeString(id)
        writer.writeVarint(version)
    }

    private static func writeEvent(_ writer: inout BoundedByteWriter, _ event: OutboxEvent, position: UInt64) {
        writer.writeUInt8(Format.OperationTag.event.rawValue)
        writer.writeVarint(position)
        writer.writeString(event.id)
        writer.writeString(event.type)
        writer.writeString(event.aggregateTable)
        writer.writeString(event.aggregateId)
        writer.writeInt64(event.occurredAt)
        writer.writeLengthPrefixed(event.payload)
    }

    /// An upper bound of the encoded size, so that encoding writes in place into one
    /// allocation (``BoundedByteWriter`` traps past it). With lengths below 32 GiB, whose
    /// varints take at most 5 bytes, a put's fields besides its names, keys and record take
    /// at most 36 bytes (tag, two name lengths, the version, the key count, the record
    /// length), a foreign key's two lengths 10, a delete's fields 21, an event's 44 and the
    /// header's 23.
    package static func estimatedSize(of batch: WriteBatch) -> Int {
        var size = headerBound(unitOfWorkId: batch.unitOfWorkId)
        // Matched in place, as in ``StorageEngine/validate(_:)``.
        batch.operations.withUnsafeBufferPointer { operations in
            for index in operations.indices {
                switch operations[index] {
                case let .put(table, id, record, foreignKeys, _):
                    size += putBound(table: table, id: id, recordCount: record.count, foreignKeys: foreignKeys)
                case let .delete(table, id, _):
                    size += deleteBound(table: table, id: id)
                case let .event(event):
                    size += eventBound(event)
                }
            }
        }
        return size
    }

    /// A lower bound of the length of a batch's payload: the bytes it holds verbatim (names,
    /// ids, records, foreign keys and events), without their lengths and numbers. For refusing
    /// a batch that cannot fit the limit without encoding it.
    package static func minimumSize(of batch: WriteBatch) -> Int {
        var size = batch.unitOfWorkId.utf8.count
        batch.operations.withUnsafeBufferPointer { operations in
            for index in operations.indices {
                switch operations[index] {
                case let .put(table, id, record, foreignKeys, _):
                    size += foreignKeys.reduce(table.utf8.count + id.utf8.count + record.count) {
                        $0 + $1.field.utf8.count + $1.value.utf8.count
                    }
                case let .delete(table, id, _):
                    size += table.utf8.count + id.utf8.count
                case let .event(event):
                    size += event.id.utf8.count + event.type.utf8.count + event.aggregateTable.utf8.count + event.aggregateId.utf8.count
                        + event.payload.count
                }
            }
        }
        return size
    }

    /// The same upper bound as ``estimatedSize(of:)``, for operations as logged.
    package static func estimatedSize(of operations: [Operation], unitOfWorkId: String) -> Int {
        operations.reduce(headerBound(unitOfWorkId: unitOfWorkId)) { size, operation in
            switch operation {
            case let .put(table, id, _, foreignKeys, record):
                size + putBound(table: table, id: id, recordCount: record.count, foreignKeys: foreignKeys)
            case let .delete(table, id, _):
                size + deleteBound(table: table, id: id)
            case let .event(event, _):
                size + eventBound(event)
            }
        }
    }

    // The terms of the bound, shared by both forms so that they cannot drift apart.

    private static func headerBound(unitOfWorkId: String) -> Int { 32 + unitOfWorkId.utf8.count }

    private static func putBound(table: String, id: String, recordCount: Int, foreignKeys: [ForeignKey]) -> Int {
        foreignKeys.reduce(40 + table.utf8.count + id.utf8.count + recordCount) {
            $0 + 10 + $1.field.utf8.count + $1.value.utf8.count
        }
    }

    private static func deleteBound(table: String, id: String) -> Int { 30 + table.utf8.count + id.utf8.count }

    private static func eventBound(_ event: OutboxEvent) -> Int {
        60 + event.id.utf8.count + event.type.utf8.count + event.aggregateTable.utf8.count + event.aggregateId.utf8.count
            + event.payload.count
    }

    /// Decodes a payload, rejecting unknown tags, over-long names, lengths past the end,
    /// trailing bytes, and event positions that are 0 or not consecutive within the payload.
    /// Never traps on hostile input. Whether the first position follows the events of earlier
    /// frames is recovery's check (``EventIndex/positionViolation(in:)``).
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
        var previousPosition: UInt64?
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
                let positionOffset = reader.offset
                let position = try reader.readVarint()
                // Checked here because it needs nothing outside the payload; `previous < max`
                // keeps the comparison free of overflow on hostile input.
                if let previous = previousPosition {
                    guard previous < UInt64.max, position == previous + 1 else {
                        throw ByteReader.Failure(reason: "event position \(position) does not follow \(previous)", offset: positionOffset)
                    }
                } else if position == 0 {
                    throw ByteReader.Failure(reason: "event position 0 (positions start at 1)", offset: positionOffset)
                }
                previousPosition = position
                let id = try readName(&reader, "event id")
                let type = try readName(&reader, "event type")
                let table = try readName(&reader, "event aggregate table")
                let aggregateId = try readName(&reader, "event aggregate id")
                let occurredAt = try reader.readInt64()
                let body = try reader.readLengthPrefixed("event payload")
                operations.append(.event(OutboxEvent(id: id, type: type, aggregateTable: table, aggregateId: aggregateId,
                                                     occurredAt: occurredAt, payload: body),
                                         position: position))
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
