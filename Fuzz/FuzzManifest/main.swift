// libFuzzer target for the decoders of a store's fixed layouts: `Manifest.decode`,
// `SegmentHeader.decode` and `SegmentHeader.segmentId(fromFileName:)`. See Docs/FUZZING.md.
//
// Input: a mode byte, then bytes whose meaning depends on `mode % 6`:
//   0  a manifest, decoded as stored; what decodes must re-encode to the same bytes.
//   1  a manifest this target repairs first (magic, version, and unless bit 3 the flags, the
//      segment count for its length, and the CRC), so the entry checks are reached.
//   2  a segment header, decoded as stored; what decodes must re-encode to the same 36 bytes.
//   3  a segment header whose magic (unless bit 3) and CRC this target repairs first.
//   4  a directory entry name: a segment id parsed from it must name the same file again.
//   5  manifest entries (id, base, sealed length, last sequence as varint-ish fields): the
//      manifest this target builds from them must decode exactly when the entries are valid.
import AggregateStoreEngine
import FuzzSupport

/// Inputs are cut here (about 2,000 manifest entries).
let inputLimit = 1 << 16
let manifestPath = "/fuzz/MANIFEST"
let segmentPath = "/fuzz/00000001.seg"

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Fuzz.writeSeedsIfRequested(seeds)
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = FuzzInput(Fuzz.input(data, size, limit: inputLimit))
    let mode = input.byte()
    switch mode % 6 {
    case 0: manifest(input.rest())
    case 1: manifest(repaired(manifest: input.rest(), keepFlags: mode & 0x08 != 0))
    case 2: segmentHeader(input.rest())
    case 3: segmentHeader(repaired(segmentHeader: input.rest(), keepMagic: mode & 0x08 != 0))
    case 4: fileName(input.rest())
    default: entries(&input)
    }
    return 0
}

/// Decodes a manifest; returns it if valid.
@discardableResult
func manifest(_ bytes: [UInt8]) -> Manifest? {
    do throws(StoreError) {
        let manifest = try Manifest.decode(bytes, path: manifestPath)
        Fuzz.check(!manifest.segments.isEmpty && manifest.segments.last!.isActive
                   && manifest.segments.dropLast().allSatisfy { !$0.isActive }, "decoded manifest breaks its invariants")
        Fuzz.check(manifest.encoded() == bytes, "manifest does not re-encode to its bytes")
        return manifest
    } catch {
        Fuzz.check(error.code == .corruption || error.code == .unsupportedFormat, "Manifest.decode threw \(error)")
        Fuzz.check(error.path == manifestPath && (error.offset ?? 0) < UInt64(max(bytes.count, 1)),
                   "manifest error names the wrong place: \(error)")
        return nil
    }
}

func repaired(manifest bytes: [UInt8], keepFlags: Bool) -> [UInt8] {
    var bytes = bytes
    let header = Format.manifestHeaderLength
    guard bytes.count >= header + 4 else { return bytes }
    let count = (bytes.count - header - 4) / Format.manifestEntryLength
    bytes.removeLast(bytes.count - (header + count * Format.manifestEntryLength + 4))
    Fuzz.store(Format.manifestMagic, in: &bytes, at: 0)
    Fuzz.store(Format.version, in: &bytes, at: 4)
    if !keepFlags { Fuzz.store(UInt16(0), in: &bytes, at: 6) }
    Fuzz.store(UInt32(count), in: &bytes, at: 24)
    let crc = CRC32C.checksum(Array(bytes[..<(bytes.count - 4)]))
    Fuzz.store(CRC32C.mask(crc), in: &bytes, at: bytes.count - 4)
    return bytes
}

func segmentHeader(_ bytes: [UInt8]) {
    do throws(StoreError) {
        let header = try SegmentHeader.decode(bytes, path: segmentPath)
        Fuzz.check(Array(header.encoded().prefix(36)) == Array(bytes.prefix(36)), "segment header does not re-encode to its bytes")
    } catch {
        Fuzz.check(error.code == .corruption || error.code == .unsupportedFormat, "SegmentHeader.decode threw \(error)")
        Fuzz.check(error.path == segmentPath && (error.offset ?? 0) < UInt64(Format.segmentHeaderLength),
                   "segment header error names the wrong place: \(error)")
    }
}

func repaired(segmentHeader bytes: [UInt8], keepMagic: Bool) -> [UInt8] {
    var bytes = bytes
    guard bytes.count >= Format.segmentHeaderLength else { return bytes }
    if !keepMagic { Fuzz.store(Format.segmentMagic, in: &bytes, at: 0) }
    let crc = CRC32C.checksum(Array(bytes[..<Format.segmentHeaderCRCOffset]))
    Fuzz.store(CRC32C.mask(crc), in: &bytes, at: Format.segmentHeaderCRCOffset)
    return bytes
}

func fileName(_ bytes: [UInt8]) {
    let name = String(decoding: bytes.prefix(64), as: UTF8.self)
    guard let id = SegmentHeader.segmentId(fromFileName: name) else { return }
    Fuzz.check(id > 0 && SegmentHeader.fileName(for: id) == name, "segment name \(name) parsed as \(id)")
}

/// One manifest entry as this target writes it.
struct Entry: Equatable {
    var id: UInt64, baseSequence: UInt64, sealedLength: UInt64, lastSequence: UInt64
}

/// The manifest layout of Docs/FORMAT.md section 3, written independently of `Manifest.encoded()`.
func manifestBytes(salt: UInt64, createdAt: UInt64, _ entries: [Entry]) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: Format.manifestHeaderLength + entries.count * Format.manifestEntryLength + 4)
    Fuzz.store(Format.manifestMagic, in: &bytes, at: 0)
    Fuzz.store(Format.version, in: &bytes, at: 4)
    Fuzz.store(salt, in: &bytes, at: 8)
    Fuzz.store(createdAt, in: &bytes, at: 16)
    Fuzz.store(UInt32(entries.count), in: &bytes, at: 24)
    for (index, entry) in entries.enumerated() {
        let at = Format.manifestHeaderLength + index * Format.manifestEntryLength
        Fuzz.store(entry.id, in: &bytes, at: at)
        Fuzz.store(entry.baseSequence, in: &bytes, at: at + 8)
        Fuzz.store(entry.sealedLength, in: &bytes, at: at + 16)
        Fuzz.store(entry.lastSequence, in: &bytes, at: at + 24)
    }
    Fuzz.store(CRC32C.mask(CRC32C.checksum(Array(bytes.dropLast(4)))), in: &bytes, at: bytes.count - 4)
    return bytes
}

/// Builds a manifest from fuzzer-chosen entries; `Manifest.decode` must accept it exactly when
/// the entries are consistent (ids positive and increasing, only the last one active).
func entries(_ input: inout FuzzInput) {
    let salt = input.integer(UInt64.self)
    let createdAt = input.integer(UInt64.self)
    let count = Int(input.byte() % 8)
    var entries: [Entry] = []
    for _ in 0..<count {
        let control = input.byte()
        let id = control & 1 != 0 ? input.integer(UInt64.self) : UInt64(input.byte())
        let base = control & 2 != 0 ? input.integer(UInt64.self) : UInt64(input.byte())
        let sealed = control & 4 != 0 ? Format.activeSegmentLength : UInt64(input.integer(UInt16.self))
        let last = control & 8 != 0 ? input.integer(UInt64.self) : UInt64(input.byte())
        entries.append(Entry(id: id, baseSequence: base, sealedLength: sealed, lastSequence: last))
    }
    let valid = !entries.isEmpty
        && entries.enumerated().allSatisfy { index, entry in
            entry.id > 0 && (entry.sealedLength == Format.activeSegmentLength) == (index == entries.count - 1)
                && (index == 0 || entries[index - 1].id < entry.id)
        }
    let decoded = manifest(manifestBytes(salt: salt, createdAt: createdAt, entries))
    Fuzz.check((decoded != nil) == valid, "Manifest.decode \(decoded == nil ? "rejected" : "accepted") \(entries)")
    if let decoded {
        Fuzz.check(decoded.salt == salt && decoded.createdAt == Int64(bitPattern: createdAt)
                   && decoded.segments.map { Entry(id: $0.id, baseSequence: $0.baseSequence, sealedLength: $0.sealedLength,
                                                   lastSequence: $0.lastSequence) } == entries,
                   "Manifest.decode changed the entries")
    }
}

func seeds() -> [(name: String, bytes: [UInt8])] {
    let active = Format.activeSegmentLength
    let one = manifestBytes(salt: Fuzz.storeSalt, createdAt: UInt64(Fuzz.sampleTimestamp), [
        Entry(id: 1, baseSequence: 1, sealedLength: active, lastSequence: 0),
    ])
    let three = manifestBytes(salt: Fuzz.storeSalt, createdAt: UInt64(Fuzz.sampleTimestamp), [
        Entry(id: 1, baseSequence: 1, sealedLength: 4000, lastSequence: 2),
        Entry(id: 2, baseSequence: 3, sealedLength: 40, lastSequence: 2),
        Entry(id: 3, baseSequence: 3, sealedLength: active, lastSequence: 0),
    ])
    let header = SegmentHeader(segmentId: 1, salt: Fuzz.storeSalt, baseSequence: 1).encoded()
    let later = SegmentHeader(segmentId: 12_345_678_901, salt: Fuzz.storeSalt, baseSequence: 1_000).encoded()
    return [
        ("manifest-1", [0] + one),
        ("manifest-3", [0] + three),
        ("manifest-repaired-3", [1] + three),
        ("segment-header-1", [2] + header),
        ("segment-header-later", [2] + later),
        ("segment-header-repaired", [3] + later),
        ("file-name", [4] + Array(SegmentHeader.fileName(for: 1).utf8)),
        ("file-name-long", [4] + Array(SegmentHeader.fileName(for: 12_345_678_901).utf8)),
        // salt, createdAt, 3 entries: (id 1, base 1, sealed 0x100, last 2), (id 2, ...), (id 3, active).
        ("entries", [5] + [UInt8](repeating: 0x11, count: 16) + [3, 0, 1, 1, 0, 1, 2, 0, 2, 3, 0, 1, 2, 4, 3, 3, 0]),
    ]
}
