#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
package import AggregateStoreEngine

/// Helpers shared by the libFuzzer harnesses in `Fuzz/` (see `Docs/FUZZING.md`).
package enum Fuzz {
    /// The salt `FuzzFrame` signs and verifies frames with.
    package static let frameSalt: UInt64 = 0
    /// The salt of the template stores `FuzzRecovery` starts from. It is fixed (the engine picks
    /// a random one outside tests) so that an input, and a corpus entry holding whole frames,
    /// replays the same way in every process.
    package static let storeSalt: UInt64 = 0x5EED_0FF0_22AB_CDEF
    /// The commit timestamp of the sample payloads, fixed so the seeds are reproducible.
    package static let sampleTimestamp: Int64 = 1_767_225_600_000_000

    /// Stops the process with `message` when a harness invariant does not hold, so libFuzzer
    /// records the input as a crash.
    package static func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                              file: StaticString = #fileID, line: UInt = #line) {
        if !condition() { fatalError("fuzz invariant violated: \(message())", file: file, line: line) }
    }

    // MARK: Signing

    /// Sets the frame CRC (salt, header bytes before it, stored payload) and then the header CRC
    /// of the frame at the start of `frame`, whose stored payload is the rest of the bytes.
    package static func sign(frame: inout [UInt8], salt: UInt64) {
        precondition(frame.count >= Format.frameHeaderLength)
        let frameCRC = frame.withUnsafeBytes { bytes in
            Frame.frameChecksum(header: bytes, stored: UnsafeRawBufferPointer(rebasing: bytes[Format.frameHeaderLength...]),
                                salt: salt)
        }
        store(CRC32C.mask(frameCRC), in: &frame, at: Format.frameCRCOffset)
        signHeader(frame: &frame)
    }

    /// Sets only the header CRC of the frame header at the start of `frame`.
    package static func signHeader(frame: inout [UInt8]) {
        let headerCRC = frame.withUnsafeBytes { bytes in
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[..<Format.frameHeaderCRCOffset]))
        }
        store(CRC32C.mask(headerCRC), in: &frame, at: Format.frameHeaderCRCOffset)
    }

    /// A frame header for `stored` with the given fields, signed with `salt`, followed by `stored`.
    package static func frame(flags: UInt16, sequence: UInt64, uncompressedLength: UInt32, stored: [UInt8],
                              salt: UInt64) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Format.frameHeaderLength)
        store(Format.frameMagic, in: &bytes, at: 0)
        store(flags, in: &bytes, at: 4)
        store(sequence, in: &bytes, at: 8)
        store(UInt32(truncatingIfNeeded: stored.count), in: &bytes, at: 16)
        store(uncompressedLength, in: &bytes, at: 20)
        bytes += stored
        sign(frame: &bytes, salt: salt)
        return bytes
    }

    // MARK: Bytes

    /// Writes `value` little-endian into `bytes` at `offset`.
    package static func store<T: FixedWidthInteger>(_ value: T, in bytes: inout [UInt8], at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { bytes[offset + index] = byte }
        }
    }

    /// The little-endian integer at `offset` of `bytes`, which must hold it.
    package static func load<T: FixedWidthInteger>(_: T.Type, from bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    /// The fuzzer's input as an array, at most `limit` bytes of it, so that one input bounds its work.
    package static func input(_ data: UnsafePointer<UInt8>, _ size: Int, limit: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: data, count: Swift.min(size, limit)))
    }

    // MARK: Payloads

    /// A payload with its records as bytes instead of ranges, for comparing decodings.
    package enum Operation: Equatable {
        case put(table: String, id: String, version: UInt64, foreignKeys: [ForeignKey], record: [UInt8])
        case delete(table: String, id: String, version: UInt64)
        case event(OutboxEvent, position: UInt64)
    }

    /// `payload` with each record copied out of `bytes`, the buffer it was decoded from.
    package static func normalized(_ payload: CommitPayload, bytes: UnsafeRawBufferPointer) -> [Operation] {
        payload.operations.map { operation in
            switch operation {
            case let .put(table, id, version, foreignKeys, record):
                check(record.lowerBound >= 0 && record.upperBound <= bytes.count,
                      "record range \(record) outside a payload of \(bytes.count) bytes")
                return .put(table: table, id: id, version: version, foreignKeys: foreignKeys,
                            record: Array(bytes[record]))
            case let .delete(table, id, version):
                return .delete(table: table, id: id, version: version)
            case let .event(event, position):
                return .event(event, position: position)
            }
        }
    }

    /// The batch, versions and first event position that encode to `operations` again (the
    /// decoder accepts only consecutive positions within a payload, so the first one says it all).
    package static func batch(unitOfWorkId: String, _ operations: [Operation])
        -> (batch: WriteBatch, versions: [UInt64], firstEventPosition: UInt64) {
        var batch = WriteBatch(unitOfWorkId: unitOfWorkId)
        var versions: [UInt64] = []
        var firstEventPosition: UInt64?
        for operation in operations {
            switch operation {
            case let .put(table, id, version, foreignKeys, record):
                batch.put(table: table, id: id, record: record, foreignKeys: foreignKeys)
                versions.append(version)
            case let .delete(table, id, version):
                batch.delete(table: table, id: id)
                versions.append(version)
            case let .event(event, position):
                firstEventPosition = firstEventPosition ?? position
                batch.append(event)
            }
        }
        return (batch, versions, firstEventPosition ?? Format.firstEventPosition)
    }

    // MARK: Samples

    /// A few batches like those of the README (sales orders, items, events): compressible and
    /// incompressible records, foreign keys (one repeated), a delete and a re-put.
    package static func sampleBatches() -> [WriteBatch] {
        var random = SplitMix64(seed: 42)
        let order = Array(#"{"orderId":"SO-1","customerId":"C-7","status":"open","lines":["#.utf8)
            + Array(repeating: Array(#"{"sku":"SKU-000","qty":1,"price":"9.99"},"#.utf8), count: 8).flatMap { $0 }
            + Array("]}".utf8)
        var first = WriteBatch(unitOfWorkId: "uow-1")
        first.put(table: "SalesOrder", id: "SO-1", record: order,
                  foreignKeys: [ForeignKey(field: "customerId", value: "C-7")])
        first.put(table: "SalesOrderItem", id: "SOI-1", record: Array(#"{"sku":"SKU-000"}"#.utf8),
                  foreignKeys: [ForeignKey(field: "orderId", value: "SO-1")])
        first.append(OutboxEvent(id: "ev-1", type: "SalesOrderPlaced", aggregateTable: "SalesOrder",
                                 aggregateId: "SO-1", occurredAt: sampleTimestamp, payload: Array("{}".utf8)))
        var second = WriteBatch(unitOfWorkId: "uow-2")
        second.put(table: "SalesOrder", id: "SO-2", record: random.bytes(96),
                   foreignKeys: [ForeignKey(field: "customerId", value: "C-7")])
        second.delete(table: "SalesOrderItem", id: "SOI-1")
        var third = WriteBatch(unitOfWorkId: "uow-3")
        third.put(table: "SalesOrder", id: "SO-1", record: Array(#"{"status":"shipped"}"#.utf8),
                  foreignKeys: [ForeignKey(field: "tag", value: "a"), ForeignKey(field: "tag", value: "b")])
        third.append(OutboxEvent(id: "ev-2", type: "SalesOrderShipped", aggregateTable: "SalesOrder",
                                 aggregateId: "SO-1", occurredAt: sampleTimestamp + 1, payload: []))
        return [first, second, third]
    }

    /// The payloads of ``sampleBatches()`` as the engine would encode them, versions and event
    /// positions assigned in order.
    package static func samplePayloads() -> [[UInt8]] {
        var versions: [String: UInt64] = [:]
        var nextEventPosition = Format.firstEventPosition
        return sampleBatches().enumerated().map { index, batch in
            var assigned: [UInt64] = []
            for operation in batch.operations {
                switch operation {
                case let .put(table, id, _, _, _), let .delete(table, id, _):
                    let version = versions["\(table)/\(id)", default: 0] + 1
                    versions["\(table)/\(id)"] = version
                    assigned.append(version)
                case .event:
                    break
                }
            }
            let encoded = CommitPayload.encode(batch, versions: assigned, firstEventPosition: nextEventPosition,
                                               commitTimestamp: sampleTimestamp + Int64(index))
            nextEventPosition += UInt64(encoded.payload.eventCount)
            return encoded.bytes
        }
    }

    /// The value of an environment variable.
    package static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    // MARK: Seeds

    /// With `AGGSTORE_FUZZ_WRITE_SEEDS=DIR` in the environment, writes `seeds()` (name, bytes)
    /// as files in DIR and exits; otherwise does nothing. Called from `LLVMFuzzerInitialize`,
    /// so each harness makes its own seed corpus from the engine's encoders
    /// (`scripts/make-fuzz-corpus.sh`).
    package static func writeSeedsIfRequested(_ seeds: () -> [(name: String, bytes: [UInt8])]) {
        guard let directory = environment("AGGSTORE_FUZZ_WRITE_SEEDS") else { return }
        for seed in seeds() {
            let path = directory + "/" + seed.name
            guard let file = fopen(path, "wb") else { fatalError("cannot create \(path)") }
            let written = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            guard written == seed.bytes.count, fclose(file) == 0 else { fatalError("cannot write \(path)") }
        }
        exit(0)
    }
}

/// A cursor over a fuzzer input that never fails: past the end it yields zeros and empty runs,
/// so a harness can take structure from any input.
package struct FuzzInput {
    private let bytes: [UInt8]
    /// The index of the next byte.
    package private(set) var position = 0

    package init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Bytes not consumed yet.
    package var remaining: Int { bytes.count - position }
    /// Whether every byte has been consumed.
    package var isAtEnd: Bool { position >= bytes.count }

    /// The next byte, or 0 at the end.
    package mutating func byte() -> UInt8 {
        guard position < bytes.count else { return 0 }
        defer { position += 1 }
        return bytes[position]
    }

    /// The next little-endian integer, zero-filled at the end.
    package mutating func integer<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) -> T {
        var value: T = 0
        for index in 0..<MemoryLayout<T>.size { value |= T(byte()) << (8 * index) }
        return value
    }

    /// Up to `count` bytes (fewer at the end of the input).
    package mutating func bytes(_ count: Int) -> [UInt8] {
        let taken = max(0, min(count, remaining))
        defer { position += taken }
        return Array(bytes[position..<position + taken])
    }

    /// Everything not consumed yet.
    package mutating func rest() -> [UInt8] { bytes(remaining) }
}
