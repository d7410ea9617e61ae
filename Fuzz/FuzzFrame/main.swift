// libFuzzer target for the frame decoder: `Frame.parseHeader`, `Frame.verify`,
// `Frame.payload(of:stored:)` (LZ4) and `CommitPayload.decode`. See Docs/FUZZING.md.
//
// Input: a mode byte, then bytes whose meaning depends on `mode & 3`:
//   0  raw: a frame (32-byte header, then stored payload), checked with salt 0 as stored.
//   1  patched: a frame whose header this target repairs before checking, then re-signs
//      (header CRC, and frame CRC unless bit 6): bit 2 sets the magic, bit 3 the stored length
//      to the bytes that follow, bit 4 clears reserved and unknown flag bits, bit 5 brings the
//      uncompressed length within bounds. With bits 2-5 all set the frame must verify, so
//      hostile stored bytes reach LZ4 and the payload decoder.
//   2  encoded: a payload, framed by `Frame.encode` (LZ4 when it shrinks); the frame must
//      verify and give back exactly the payload.
//   3  LZ4: a 4-byte uncompressed length, then an LZ4 block, given to `LZ4.decompress`
//      directly and inside a signed compressed frame.
import AggregateStoreEngine
import FuzzSupport

/// Inputs are cut here, so an uncompressed payload is at most 255 times this (16 MiB).
let inputLimit = 1 << 16
let salt = Fuzz.frameSalt

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
    switch mode & 3 {
    case 0:
        _ = check(frame: input.rest())
    case 1:
        patched(mode: mode, frame: input.rest())
    case 2:
        encoded(payload: input.rest())
    default:
        lz4(claimed: input.integer(UInt32.self), block: input.rest())
    }
    return 0
}

/// How far a frame got through the checks.
enum Outcome: Equatable {
    case short, badHeader, runsPast, badCRC, undecompressable, malformedPayload, decoded
}

/// Runs the reader's checks on `frame` in the order the segment scanner does, and returns how
/// far it got. Every failure must be a thrown error, never a trap.
func check(frame: [UInt8]) -> Outcome {
    guard frame.count >= Format.frameHeaderLength else { return .short }
    return frame.withUnsafeBytes { bytes -> Outcome in
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[..<Format.frameHeaderLength])
        guard case let .success(header) = Frame.parseHeader(headerBytes) else { return .badHeader }
        Fuzz.check(header.storedLength >= 1 && header.uncompressedLength >= 1, "parseHeader accepted empty lengths")
        guard header.storedLength <= bytes.count - Format.frameHeaderLength else { return .runsPast }
        let stored = UnsafeRawBufferPointer(
            rebasing: bytes[Format.frameHeaderLength..<Format.frameHeaderLength + header.storedLength])
        guard Frame.verify(header, headerBytes: headerBytes, stored: stored, salt: salt) else { return .badCRC }
        let payload: [UInt8]
        do throws(StoreError) {
            payload = try Frame.payload(of: header, stored: stored)
        } catch {
            Fuzz.check(error.code == .corruption, "payload(of:) threw \(error)")
            Fuzz.check(header.isCompressed, "an uncompressed payload failed: \(error)")
            return .undecompressable
        }
        Fuzz.check(payload.count == header.uncompressedLength,
                   "payload of \(payload.count) bytes, header says \(header.uncompressedLength)")
        if !header.isCompressed { Fuzz.check(payload.elementsEqual(stored), "uncompressed payload differs from the stored bytes") }
        return decode(payload) ? .decoded : .malformedPayload
    }
}

/// Decodes a payload; whatever decodes must point its records inside the payload.
func decode(_ payload: [UInt8]) -> Bool {
    payload.withUnsafeBytes { bytes in
        do throws(ByteReader.Failure) {
            let decoded = try CommitPayload.decode(bytes)
            _ = Fuzz.normalized(decoded, bytes: bytes)
            return true
        } catch {
            Fuzz.check(error.offset >= 0 && error.offset <= bytes.count,
                       "failure offset \(error.offset) outside a payload of \(bytes.count) bytes")
            return false
        }
    }
}

func patched(mode: UInt8, frame: [UInt8]) {
    guard frame.count >= Format.frameHeaderLength else {
        _ = check(frame: frame)
        return
    }
    var frame = frame
    let storedCount = frame.count - Format.frameHeaderLength
    if mode & 0x04 != 0 { Fuzz.store(Format.frameMagic, in: &frame, at: 0) }
    if mode & 0x08 != 0 { Fuzz.store(UInt32(storedCount), in: &frame, at: 16) }
    if mode & 0x10 != 0 {
        Fuzz.store(Fuzz.load(UInt16.self, from: frame, at: 4) & Format.frameKnownFlags, in: &frame, at: 4)
        Fuzz.store(UInt16(0), in: &frame, at: 6)
    }
    let compressed = Fuzz.load(UInt16.self, from: frame, at: 4) & Format.frameFlagCompressed != 0
    let claimedStored = Int(Fuzz.load(UInt32.self, from: frame, at: 16))
    if mode & 0x20 != 0 {
        let length: UInt32
        if compressed {
            let limit = UInt32(min(claimedStored, Format.maximumPayloadLength / Format.maximumCompressionRatio)
                               * Format.maximumCompressionRatio + Format.compressionRatioSlack)
            length = 1 + Fuzz.load(UInt32.self, from: frame, at: 20) % limit
        } else {
            length = UInt32(claimedStored)
        }
        Fuzz.store(length, in: &frame, at: 20)
    }
    if mode & 0x40 != 0 {
        Fuzz.signHeader(frame: &frame)
    } else {
        Fuzz.sign(frame: &frame, salt: salt)
    }
    let outcome = check(frame: frame)
    if mode & 0x7C == 0x3C && storedCount >= 1 {
        Fuzz.check(outcome != .short && outcome != .badHeader && outcome != .runsPast && outcome != .badCRC,
                   "a repaired, signed frame of \(storedCount) stored bytes was rejected: \(outcome)")
    }
}

func encoded(payload: [UInt8]) {
    guard !payload.isEmpty else { return }
    let frame = Frame.encode(sequence: 1, payload: payload, salt: salt)
    frame.withUnsafeBytes { bytes in
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[..<Format.frameHeaderLength])
        guard case let .success(header) = Frame.parseHeader(headerBytes) else {
            Fuzz.check(false, "Frame.encode wrote a header parseHeader rejects")
            return
        }
        Fuzz.check(header.frameLength == frame.count && header.uncompressedLength == payload.count,
                   "encoded header lengths disagree with the frame")
        Fuzz.check(!header.isCompressed || header.storedLength < payload.count, "compressed a payload that did not shrink")
        let stored = UnsafeRawBufferPointer(rebasing: bytes[Format.frameHeaderLength...])
        Fuzz.check(Frame.verify(header, headerBytes: headerBytes, stored: stored, salt: salt), "encoded frame does not verify")
        do throws(StoreError) {
            let decoded = try Frame.payload(of: header, stored: stored)
            Fuzz.check(decoded == payload, "encoded frame does not give back its payload")
        } catch {
            Fuzz.check(false, "encoded frame does not decompress: \(error)")
        }
    }
    _ = decode(payload)
}

func lz4(claimed: UInt32, block: [UInt8]) {
    // Any length liblz4 can be asked for, but bounded by what the block could expand to.
    let limit = block.count * Format.maximumCompressionRatio + Format.compressionRatioSlack
    let length = Int(claimed) % (limit + 1)
    let direct: [UInt8]?
    do throws(StoreError) {
        direct = try block.withUnsafeBytesTyped { bytes throws(StoreError) in try LZ4.decompress(bytes, uncompressedLength: length) }
        Fuzz.check(direct!.count == length, "LZ4.decompress gave \(direct!.count) bytes, asked for \(length)")
    } catch {
        Fuzz.check(error.code == .corruption, "LZ4.decompress threw \(error)")
        direct = nil
    }
    if let direct, direct.count > 1 {
        // What decompresses compresses again, and comes back the same.
        if let again = direct.withUnsafeBytes({ LZ4.compress($0) }) {
            Fuzz.check(again.count < direct.count, "LZ4.compress returned a block that does not shrink")
            let back = try? again.withUnsafeBytesTyped { bytes throws(StoreError) in
                try LZ4.decompress(bytes, uncompressedLength: direct.count)
            }
            Fuzz.check(back == direct, "LZ4 round trip changed the bytes")
        }
    }
    guard !block.isEmpty, length >= 1 else { return }
    let frame = Fuzz.frame(flags: Format.frameFlagCompressed, sequence: 1, uncompressedLength: UInt32(length),
                           stored: block, salt: salt)
    let outcome = check(frame: frame)
    Fuzz.check(outcome != .badHeader && outcome != .badCRC && outcome != .runsPast, "a signed LZ4 frame was rejected: \(outcome)")
    Fuzz.check((outcome == .undecompressable) == (direct == nil), "the frame and LZ4.decompress disagree: \(outcome)")
}

/// The seed corpus: the sample payloads through every mode.
func seeds() -> [(name: String, bytes: [UInt8])] {
    var seeds: [(name: String, bytes: [UInt8])] = []
    for (index, payload) in Fuzz.samplePayloads().enumerated() {
        let frame = Frame.encode(sequence: UInt64(index + 1), payload: payload, salt: salt)
        seeds.append(("raw-\(index + 1)", [0] + frame))
        seeds.append(("patched-\(index + 1)", [0x3D] + frame))
        seeds.append(("encoded-\(index + 1)", [2] + payload))
        if let block = payload.withUnsafeBytes({ LZ4.compress($0) }) {
            var claimed = [UInt8](repeating: 0, count: 4)
            Fuzz.store(UInt32(payload.count), in: &claimed, at: 0)
            seeds.append(("lz4-\(index + 1)", [3] + claimed + block))
        }
    }
    return seeds
}
