// libFuzzer target for `CommitPayload.decode`, the decoder of a frame's uncompressed payload.
// See Docs/FUZZING.md.
//
// Input: the payload bytes. Whatever decodes must point its records inside the payload, and
// survive a round trip: encoding it again with `CommitPayload.encode` (its first event position
// taken from the decoded events, whose positions the decoder requires to be consecutive) and
// decoding that gives the same operations, event positions included, and encoding is then stable.
import AggregateStoreEngine
import FuzzSupport

/// Inputs are cut here (at most 16,384 operations of at least 4 bytes).
let inputLimit = 1 << 16

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    Fuzz.writeSeedsIfRequested {
        Fuzz.samplePayloads().enumerated().map { index, payload in ("payload-\(index + 1)", payload) }
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Fuzz.input(data, size, limit: inputLimit)
    guard let (payload, operations) = decode(input) else { return 0 }
    let (batch, versions, firstEventPosition) = Fuzz.batch(unitOfWorkId: payload.unitOfWorkId, operations)
    let encoded = CommitPayload.encode(batch, versions: versions, firstEventPosition: firstEventPosition,
                                       commitTimestamp: payload.commitTimestamp)
    Fuzz.check(encoded.bytes.count <= input.count, "re-encoding \(input.count) bytes gave \(encoded.bytes.count)")
    let written = encoded.bytes.withUnsafeBytes { Fuzz.normalized(encoded.payload, bytes: $0) }
    Fuzz.check(written == operations, "encode(decode(x)) returned operations that differ from decode(x)")
    guard let (again, reread) = decode(encoded.bytes) else {
        Fuzz.check(false, "encode(decode(x)) does not decode")
        return 0
    }
    Fuzz.check(again.unitOfWorkId == payload.unitOfWorkId && again.commitTimestamp == payload.commitTimestamp
               && reread == operations, "decode(encode(decode(x))) differs from decode(x)")
    let (batch2, versions2, firstEventPosition2) = Fuzz.batch(unitOfWorkId: again.unitOfWorkId, reread)
    Fuzz.check(CommitPayload.encode(batch2, versions: versions2, firstEventPosition: firstEventPosition2,
                                    commitTimestamp: again.commitTimestamp).bytes == encoded.bytes,
               "encoding is not stable")
    return 0
}

/// The decoded payload and its operations with records copied out, or nil if it is malformed.
func decode(_ bytes: [UInt8]) -> (CommitPayload, [Fuzz.Operation])? {
    bytes.withUnsafeBytes { buffer in
        do throws(ByteReader.Failure) {
            let payload = try CommitPayload.decode(buffer)
            return (payload, Fuzz.normalized(payload, bytes: buffer))
        } catch {
            Fuzz.check(error.offset >= 0 && error.offset <= buffer.count,
                       "failure offset \(error.offset) outside a payload of \(buffer.count) bytes")
            return nil
        }
    }
}
