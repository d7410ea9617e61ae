// libFuzzer target for recovery: `StorageEngine.open` on damaged store files, in memory.
// See Docs/FUZZING.md.
//
// Valid stores (templates) are made once per process with the engine itself, on an
// `InMemoryFileSystem`, with a fixed salt and clock (`EngineConfiguration.determinism`) so that
// inputs replay byte for byte in every process. Each input copies a template into a
// fresh file system, damages it, and opens it (read-only with bit 4 of the mode byte). The
// templates: the sample batches in one segment; with bit 3 of the mode byte, the next byte
// picks one of the others: if its low two bits are not both set, more batches in a 4 KiB
// segment size, so that the log spans sealed segments; if they are, one segment of 4 MiB and a
// little more, big frames then small ones across the 4 MiB the scanner reads at a time (ten
// times slower to open than the others, so made the rarer choice).
//
// Input: a mode byte (and the template byte), then bytes used by the damage `mode & 7`, made
// to the last segment, or with bit 6 to the first:
//   0  append the bytes after the valid frames.
//   1  append frames built from the bytes (see `appendFrames`), signed with the store's salt,
//      so that frames which verify reach payload decoding, the sequence, version and
//      event-position checks.
//   2  replace everything after the segment header with the bytes.
//   3  XOR bytes in place: (offset:u16, value:u8) pairs (see `offset(_:in:)`).
//   4  truncate at offset:u16, then append the bytes.
//   5  replace MANIFEST with the bytes (remove it when there are none).
//   6  XOR bytes of MANIFEST in place, (offset:u16, value:u8) pairs, then fix its CRC.
//   7  add a file (kind:u8, then its bytes): a segment past the last, two past, MANIFEST.tmp, or
//      the segment numbered by the next byte (replacing a listed one).
// With bit 7, every frame whose magic and length still fit is re-signed after the damage, so
// that damaged headers and payloads verify and must be caught by the later checks.
//
// The open must succeed or throw a `corruption` or `unsupportedFormat` error naming a file and
// offset. If it succeeds, every record and foreign key must read back, `statistics()` must
// work, the event feed must hold every event at positions 1...last, the table scans must
// match the index, `verify()` must be clean (unless a read-only open left a torn tail or leftovers), and
// appending after valid frames must not lose a commit. With bit 5 a writable store must then
// take a commit, and reopen with it.
import AggregateStoreEngine
import AggregateStoreTestKit
import FuzzSupport
import Logging

/// Inputs are cut here: the damaged files stay small, and so do the allocations they cause.
let inputLimit = 1 << 16
let directory = "/store"
let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
/// With `AGGSTORE_FUZZ_VERBOSE` set, each input prints what the open did (to replay a corpus and
/// see which checks it reaches).
let verbose = Fuzz.environment("AGGSTORE_FUZZ_VERBOSE") != nil

/// A valid store's files.
struct Template: Sendable {
    var manifest: [UInt8]
    /// Segment ids and bytes, in manifest order.
    var segments: [(id: UInt64, bytes: [UInt8])]
    var lastSequence: UInt64
}

/// The shapes of template store.
enum Shape: Sendable {
    /// The sample batches in one segment.
    case single
    /// More batches in a 4 KiB segment size: sealed segments and an active one.
    case multiple
    /// One segment of a little over 4 MiB: the sample batches, two 2 MiB frames, then small
    /// frames across the end of the scanner's first 4 MiB read.
    case large
}

let single = makeTemplate(.single)
let multiple = makeTemplate(.multiple)
let large = makeTemplate(.large)

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Fuzz.writeSeedsIfRequested(seeds)
    _ = (single.lastSequence, multiple.lastSequence, large.lastSequence)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(Fuzz.input(data, size, limit: inputLimit))
    let mode = input.byte()
    let shape: Shape = mode & 0x08 == 0 ? .single : input.byte() & 3 != 3 ? .multiple : .large
    let template = shape == .single ? single : shape == .multiple ? multiple : large
    var manifest: [UInt8]? = template.manifest
    var segments = template.segments
    var extra: [(name: String, bytes: [UInt8])] = []
    let target = mode & 0x40 != 0 ? 0 : segments.count - 1
    // Whether the damage only adds bytes after the valid frames of the last segment.
    var onlyAppends = false
    switch mode & 7 {
    case 0:
        segments[target].bytes += input.rest()
        onlyAppends = target == segments.count - 1
    case 1:
        segments[target].bytes += appendFrames(&input, firstSequence: template.lastSequence + 1)
        onlyAppends = target == segments.count - 1
    case 2:
        segments[target].bytes = Array(segments[target].bytes.prefix(Format.segmentHeaderLength)) + input.rest()
    case 3:
        xor(&segments[target].bytes, &input)
    case 4:
        let cut = offset(input.integer(UInt16.self), in: segments[target].bytes.count + 1)
        segments[target].bytes = Array(segments[target].bytes.prefix(cut)) + input.rest()
    case 5:
        let bytes = input.rest()
        manifest = bytes.isEmpty ? nil : bytes
    case 6:
        xor(&manifest!, &input)
        if manifest!.count >= 4 {
            Fuzz.store(CRC32C.mask(CRC32C.checksum(Array(manifest!.dropLast(4)))), in: &manifest!, at: manifest!.count - 4)
        }
    default:
        let last = segments.last!.id
        let kind = input.byte()
        let name: String
        switch kind % 4 {
        case 0: name = SegmentHeader.fileName(for: last + 1)
        case 1: name = SegmentHeader.fileName(for: last + 2)
        case 2: name = Format.manifestTemporaryFileName
        default: name = SegmentHeader.fileName(for: UInt64(max(input.byte(), 1)))
        }
        extra.append((name, input.rest()))
    }
    if mode & 0x80 != 0 {
        for index in segments.indices { resign(&segments[index].bytes) }
        for index in extra.indices { resign(&extra[index].bytes) }
    }
    let fileSystem = InMemoryFileSystem()
    do throws(StoreError) {
        try fileSystem.createDirectory(directory)
        try create(Format.lockFileName, [], in: fileSystem)
        if let manifest { try create(Format.manifestFileName, manifest, in: fileSystem) }
        for segment in segments { try create(SegmentHeader.fileName(for: segment.id), segment.bytes, in: fileSystem) }
        for file in extra {
            if try fileSystem.kind(of: joinPath(directory, file.name)) == .file {
                try fileSystem.setBytes(file.bytes, of: joinPath(directory, file.name))  // replaces a listed segment
            } else {
                try create(file.name, file.bytes, in: fileSystem)
            }
        }
    } catch {
        fatalError("cannot set up the store: \(error)")
    }
    let readOnly = mode & 0x10 != 0
    let configuration = configuration(shape, readOnly: readOnly)
    let engine: StorageEngine
    do throws(StoreError) {
        engine = try StorageEngine.open(at: directory, configuration: configuration, fileSystem: fileSystem, logger: logger)
    } catch {
        if verbose { print("mode \(mode): open failed: \(error)") }
        Fuzz.check(error.code == .corruption || error.code == .unsupportedFormat, "open threw \(error)")
        Fuzz.check(error.path != nil && error.offset != nil, "open failed without naming a file and offset: \(error)")
        Fuzz.check(!onlyAppends || error.code == .corruption, "appending to the log made the open fail with \(error)")
        return 0
    }
    defer { try? engine.close() }
    if verbose { print("mode \(mode): opened: \(engine.recoveryReport)") }
    check(engine, readOnly: readOnly)
    if onlyAppends {
        Fuzz.check(engine.lastSequence >= template.lastSequence,
                   "bytes appended after the log lost commits: \(engine.lastSequence) < \(template.lastSequence)")
    }
    if mode & 0x20 != 0 && !readOnly {
        commitAndReopen(engine, configuration: configuration, fileSystem: fileSystem)
    }
    return 0
}

/// Reads back everything an open store holds and checks it against its own verification.
func check(_ engine: StorageEngine, readOnly: Bool) {
    do throws(StoreError) {
        let primary = try engine.readIndex { $0.primary }
        for (table, entries) in primary {
            for (id, entry) in entries {
                let record = try engine.record(table: table, id: id)
                Fuzz.check((record != nil) == entry.isLive, "record \(table)/\(id) live \(entry.isLive) but read \(String(describing: record))")
                if let record { Fuzz.check(record.version == entry.version, "record \(table)/\(id) read at the wrong version") }
                for key in entry.isLive ? entry.foreignKeys : [] {
                    let ids = try engine.ids(table: table, field: key.field, value: key.value)
                    Fuzz.check(ids.contains(id), "foreign key \(table).\(key.field)=\(key.value) misses \(id)")
                    _ = try engine.records(table: table, field: key.field, value: key.value)
                }
            }
            _ = try engine.records(table: table, ids: Array(entries.keys))
        }
        let statistics = try engine.statistics()
        Fuzz.check(statistics.lastSequence == engine.lastSequence && statistics.frames == engine.recoveryReport.frames,
                   "statistics disagree with recovery: \(statistics) \(engine.recoveryReport)")
        // The event feed: every event of the log, at positions 1...last with no gap.
        let events = try engine.events(after: 0, limit: Int.max)
        Fuzz.check(events.count == statistics.events && engine.lastEventPosition == UInt64(events.count)
                   && events.enumerated().allSatisfy { $0.element.position == UInt64($0.offset + 1) },
                   "the event feed holds \(events.count) events up to \(engine.lastEventPosition), the log \(statistics.events)")
        let tables = try engine.tables()
        Fuzz.check(tables == primary.filter { $0.value.values.contains(where: \.isLive) }.keys.sorted(),
                   "tables() is \(tables)")
        for table in tables {
            let ids = try engine.ids(table: table)
            Fuzz.check(ids == primary[table, default: [:]].filter(\.value.isLive).keys.sorted(), "ids(table: \(table)) is \(ids)")
        }
        let verification = try engine.verify()
        let leftAlone = engine.recoveryReport.tornTail != nil || !engine.recoveryReport.leftoverFiles.isEmpty
        Fuzz.check(verification.isHealthy || (readOnly && leftAlone),
                   "verify() after a successful open found \(verification.problems) (recovery: \(engine.recoveryReport))")
    } catch {
        Fuzz.check(false, "reading a store that opened failed: \(error) (recovery: \(engine.recoveryReport))")
    }
}

/// I7 of the crash suite: a store that recovered takes a commit, and a reopen finds it.
func commitAndReopen(_ engine: StorageEngine, configuration: EngineConfiguration, fileSystem: InMemoryFileSystem) {
    var batch = WriteBatch(unitOfWorkId: "fuzz-after")
    batch.put(table: "FuzzAfter", id: "x", record: Array("after recovery".utf8),
              foreignKeys: [ForeignKey(field: "f", value: "v")])
    batch.append(OutboxEvent(id: "fuzz-ev", type: "After", aggregateTable: "FuzzAfter", aggregateId: "x",
                             occurredAt: Fuzz.sampleTimestamp, payload: []))
    do throws(StoreError) {
        let receipt = try engine.commit(batch)
        try engine.close()
        let reopened = try StorageEngine.open(at: directory, configuration: configuration, fileSystem: fileSystem, logger: logger)
        defer { try? reopened.close() }
        Fuzz.check(reopened.lastSequence == receipt.sequence && reopened.recoveryReport.tornTail == nil,
                   "reopen after a commit found \(reopened.recoveryReport), committed \(receipt.sequence)")
        let record = try reopened.record(table: "FuzzAfter", id: "x")
        Fuzz.check(record?.sequence == receipt.sequence, "the commit after recovery is missing on reopen")
        check(reopened, readOnly: false)
    } catch {
        Fuzz.check(false, "commit and reopen after recovery failed: \(error)")
    }
}

/// Frames built from the input and appended to a segment. Each frame is `control:u8 length:u16`
/// and `length` bytes (at most 4 KiB), then, by the control bits:
///   bit 0  the bytes are a payload framed by `Frame.encode` (compressed when LZ4 shrinks it);
///          else they are stored as is, LZ4-flagged with bit 2 (uncompressed length: a u32),
///          with an unknown flag bit too with bit 3;
///   bit 1  the sequence is a u8 delta from the expected one, else it is the expected one;
///   bit 4  the frame is cut (at a u16 offset): a torn write;
///   bit 5  its frame CRC is damaged.
/// Frames are signed with the template's salt; at most 64 of them.
func appendFrames(_ input: inout FuzzInput, firstSequence: UInt64) -> [UInt8] {
    var bytes: [UInt8] = []
    var expected = firstSequence
    var count = 0
    while !input.isAtEnd && count < 64 {
        count += 1
        let control = input.byte()
        let length = Int(input.integer(UInt16.self) % 4096)
        let body = input.bytes(length)
        let sequence = control & 0x02 != 0 ? expected &+ UInt64(input.byte()) &- 128 : expected
        var frame: [UInt8]
        if control & 0x01 != 0 && !body.isEmpty {
            frame = Frame.encode(sequence: sequence, payload: body, salt: Fuzz.storeSalt)
        } else {
            var flags: UInt16 = control & 0x04 != 0 ? Format.frameFlagCompressed : 0
            if control & 0x08 != 0 { flags |= 0x8000 }
            let uncompressed = flags & Format.frameFlagCompressed != 0 ? input.integer(UInt32.self) : UInt32(body.count)
            frame = Fuzz.frame(flags: flags, sequence: sequence, uncompressedLength: uncompressed, stored: body,
                               salt: Fuzz.storeSalt)
        }
        if control & 0x20 != 0 {
            frame[Format.frameCRCOffset] ^= 0x01
            Fuzz.signHeader(frame: &frame)
        }
        if control & 0x10 != 0 {
            frame = Array(frame.prefix(Int(input.integer(UInt16.self)) % frame.count))
        }
        bytes += frame
        expected &+= 1
    }
    return bytes
}

/// XORs the bytes of `file` named by (offset:u16, value:u8) pairs from the input.
func xor(_ file: inout [UInt8], _ input: inout FuzzInput) {
    guard !file.isEmpty else { return }
    while input.remaining >= 3 {
        file[offset(input.integer(UInt16.self), in: file.count)] ^= input.byte()
    }
}

/// An offset in a file of `count` bytes: the low 15 bits of `value` from the start, or with the
/// top bit set from the end, so that both ends of the large template are in reach.
func offset(_ value: UInt16, in count: Int) -> Int {
    let distance = Int(value & 0x7FFF) % count
    return value & 0x8000 == 0 ? distance : count - 1 - distance
}

/// Re-signs, in order from the segment header on, each frame whose magic is right and whose
/// stored length fits in the file; stops at the first that does not.
func resign(_ segment: inout [UInt8]) {
    var offset = Format.segmentHeaderLength
    while segment.count - offset >= Format.frameHeaderLength,
          Fuzz.load(UInt32.self, from: segment, at: offset) == Format.frameMagic {
        let length = Format.frameHeaderLength + Int(Fuzz.load(UInt32.self, from: segment, at: offset + 16))
        guard length <= segment.count - offset else { return }
        var frame = Array(segment[offset..<offset + length])
        Fuzz.sign(frame: &frame, salt: Fuzz.storeSalt)
        segment.replaceSubrange(offset..<offset + length, with: frame)
        offset += length
    }
}

/// Creates a file holding `bytes` (as durable, which does not matter here: nothing crashes).
func create(_ name: String, _ bytes: [UInt8], in fileSystem: InMemoryFileSystem) throws(StoreError) {
    let path = joinPath(directory, name)
    try fileSystem.open(path, mode: .createNew).close()
    // Shares the array's storage; writing through a handle would copy it a byte at a time.
    try fileSystem.setBytes(bytes, of: path)
}

/// The configuration of every open: a fixed salt and clock, and 4 KiB segments for the
/// multi-segment store.
func configuration(_ shape: Shape, readOnly: Bool = false) -> EngineConfiguration {
    var configuration = EngineConfiguration()
    configuration.determinism = EngineConfiguration.Determinism(salt: Fuzz.storeSalt, time: Fuzz.sampleTimestamp)
    configuration.readOnly = readOnly
    if shape == .multiple { configuration.segmentSize = 4096 }
    return configuration
}

/// Builds a valid store of the given shape with the engine.
func makeTemplate(_ shape: Shape) -> Template {
    let fileSystem = InMemoryFileSystem()
    let configuration = configuration(shape)
    // Incompressible records of these sizes, after the sample batches.
    let records: [Int]
    switch shape {
    case .single: records = []
    case .multiple: records = Array(repeating: 1500, count: 5)
    case .large: records = [2 << 20, (2 << 20) - (40 << 10)] + Array(repeating: 1000, count: 48)
    }
    do throws(StoreError) {
        let engine = try StorageEngine.open(at: directory, configuration: configuration, fileSystem: fileSystem, logger: logger)
        for batch in Fuzz.sampleBatches() { try engine.commit(batch) }
        var random = SplitMix64(seed: 7)
        for (index, size) in records.enumerated() {
            var batch = WriteBatch(unitOfWorkId: "uow-blob-\(index)")
            batch.put(table: "Blob", id: "B-\(index % 3)", record: randomBytes(size, &random))
            try engine.commit(batch)
        }
        try engine.close()
        let manifestBytes = fileSystem.bytes(of: joinPath(directory, Format.manifestFileName))!
        let manifest = try Manifest.decode(manifestBytes, path: "MANIFEST")
        Fuzz.check(manifest.salt == Fuzz.storeSalt, "the template store ignored the fixed salt")
        let segments = manifest.segments.map { entry in
            (id: entry.id, bytes: fileSystem.bytes(of: joinPath(directory, SegmentHeader.fileName(for: entry.id)))!)
        }
        let template = Template(manifest: manifestBytes, segments: segments, lastSequence: engine.lastSequence)
        switch shape {
        case .single: Fuzz.check(segments.count == 1, "the single template has \(segments.count) segments")
        case .multiple: Fuzz.check(segments.count >= 3, "the multi-segment template has \(segments.count) segments")
        case .large: Fuzz.check(segments.count == 1 && segments[0].bytes.count > (4 << 20) + 4096,
                                "the large template has \(segments.count) segments")
        }
        return template
    } catch {
        fatalError("cannot build the template store: \(error)")
    }
}

/// `count` random bytes, eight at a time (`SplitMix64.bytes` takes seconds for megabytes in a
/// debug build with ASan).
func randomBytes(_ count: Int, _ random: inout SplitMix64) -> [UInt8] {
    var bytes = [UInt64](repeating: 0, count: (count + 7) / 8)
    for index in bytes.indices { bytes[index] = random.next() }
    return bytes.withUnsafeBytes { Array($0.prefix(count)) }
}

/// The seed corpus: each damage on each template, with payloads that continue the sample log.
func seeds() -> [(name: String, bytes: [UInt8])] {
    // A payload that continues the template's log: SO-1 at version 3, a new key, an event at
    // position 3 (the sample batches hold two events; the templates' other batches none).
    var batch = WriteBatch(unitOfWorkId: "uow-seed")
    batch.put(table: "SalesOrder", id: "SO-1", record: Array(#"{"status":"delivered"}"#.utf8),
              foreignKeys: [ForeignKey(field: "customerId", value: "C-8")])
    batch.put(table: "SalesOrder", id: "SO-9", record: Array(repeating: UInt8(ascii: "z"), count: 200))
    batch.append(OutboxEvent(id: "ev-9", type: "SalesOrderDelivered", aggregateTable: "SalesOrder",
                             aggregateId: "SO-1", occurredAt: Fuzz.sampleTimestamp, payload: []))
    let payload = CommitPayload.encode(batch, versions: [3, 1], firstEventPosition: 3, commitTimestamp: Fuzz.sampleTimestamp).bytes
    func spec(_ control: UInt8, _ body: [UInt8]) -> [UInt8] {
        var length = [UInt8](repeating: 0, count: 2)
        Fuzz.store(UInt16(body.count), in: &length, at: 0)
        return [control] + length + body
    }
    let frameSpecs = spec(0x01, payload) + spec(0x11, payload) + [0x00, 0x00]
    let validFrame = Frame.encode(sequence: single.lastSequence + 1, payload: payload, salt: Fuzz.storeSalt)
    var seeds: [(name: String, bytes: [UInt8])] = []
    for (label, template) in [("single", [UInt8(0)]), ("multi", [UInt8(0x08), 0]), ("large", [UInt8(0x08), 3])] {
        // The template bit goes into the mode byte; the template byte, if any, follows it.
        func mode(_ bits: UInt8) -> [UInt8] { [template[0] | bits] + template.dropFirst() }
        seeds += [
            ("\(label)-append-garbage", mode(0) + Array("torn tail garbage".utf8)),
            ("\(label)-append-frames", mode(1) + frameSpecs),
            ("\(label)-xor", mode(3) + [0x50, 0x00, 0x01, 0x60, 0x80, 0x80]),
            ("\(label)-xor-resign", mode(0x83) + [0x70, 0x00, 0x02, 0x40, 0x00, 0x10]),
            ("\(label)-truncate", mode(4) + [0x48, 0x80]),
            ("\(label)-read-only-append", mode(0x10) + Array(validFrame.prefix(50))),
        ]
    }
    seeds += [
        ("single-append-frame", [0] + validFrame + Array(validFrame.prefix(40))),
        ("single-append-frames-commit", [0x21] + spec(0x01, payload)),
        ("single-replace-body", [2] + validFrame),
        ("multi-manifest-xor", [0x0E, 0, 0x1C, 0x00, 0x01]),
        ("multi-extra-segment", [0x0F, 0, 0] + SegmentHeader(segmentId: 4, salt: Fuzz.storeSalt, baseSequence: 9).encoded()),
    ]
    seeds.append(("manifest-replaced", [5] + single.manifest))
    seeds.append(("manifest-tmp", [7, 2] + single.manifest))
    return seeds
}
