/// A keyset pagination position: the sort-key values and the id of the last row of a page.
///
/// ``QueryPage/next`` hands it out; set it as ``Query/after`` to fetch the rows that follow,
/// in (order keys..., id). Because it names a position rather than a count, pages stay stable
/// while records are inserted: rows inserted before the position are not returned, and no row
/// is returned twice or skipped.
///
/// A cursor prints as a compact URL-safe token (base64url, no padding) and parses back with
/// ``init(token:)``. It remembers a fingerprint of the query's order, so a cursor used with
/// another order is rejected rather than giving wrong pages.
///
/// ```swift
/// var query = try Query(parsing: "from SalesOrder order by placedAt desc limit 50")
/// var page = try query.apply(to: candidates)
/// while let next = page.next {
///     let token = next.token                       // hand to a client, get it back later
///     query.after = try QueryCursor(token: token)
///     page = try query.apply(to: candidates)
/// }
/// ```
public struct QueryCursor: Hashable, Sendable, CustomStringConvertible {
    /// The last row's values of the sort keys, in order (missing fields as null).
    let sortValues: [Document]
    /// The last row's id.
    let id: String
    /// ``QueryCursor/fingerprint(of:)`` of the order the cursor was made for.
    let orderFingerprint: UInt32
    /// The token: base64url of the encoded position.
    public let token: String

    /// The longest token accepted, in characters.
    static let maximumTokenLength = 1 << 20
    /// The most sort keys a token may hold.
    static let maximumKeys = 1024
    private static let version: UInt8 = 1

    /// A cursor at a row.
    ///
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when a sort value
    ///   nests deeper than ``Document/maximumDepth`` and so cannot be encoded.
    init(sortValues: [Document], id: String, orderFingerprint: UInt32) throws(StoreError) {
        self.sortValues = sortValues
        self.id = id
        self.orderFingerprint = orderFingerprint
        var bytes: [UInt8] = [Self.version]
        withUnsafeBytes(of: orderFingerprint.bigEndian) { bytes.append(contentsOf: $0) }
        Self.appendVarint(UInt64(sortValues.count), to: &bytes)
        for value in [Document.string(id)] + sortValues {
            let record: [UInt8]
            do {
                record = try value.encoded()
            } catch {
                throw StoreError(.invalidArgument, "a sort value cannot be stored in a cursor: \(error.message)")
            }
            Self.appendVarint(UInt64(record.count), to: &bytes)
            bytes.append(contentsOf: record)
        }
        token = Base64URL.encode(bytes)
    }

    /// Parses a token printed by ``token``.
    ///
    /// Any other text, including a truncated or altered token, is rejected; it never traps.
    ///
    /// - Parameter token: The token.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when the token is
    ///   malformed.
    public init(token: String) throws(StoreError) {
        guard token.utf8.count <= Self.maximumTokenLength else { throw Self.malformed("it is too long") }
        guard let bytes = Base64URL.decode(token) else { throw Self.malformed("it is not base64url text") }
        var reader = bytes[...]
        guard reader.popFirst() == Self.version else { throw Self.malformed("unknown version") }
        guard reader.count >= 4 else { throw Self.malformed("it is truncated") }
        let fingerprint = reader.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        reader = reader.dropFirst(4)
        guard let count = Self.readVarint(&reader), count <= UInt64(Self.maximumKeys) else {
            throw Self.malformed("bad key count")
        }
        var values: [Document] = []
        for _ in 0...Int(count) {
            guard let length = Self.readVarint(&reader), length <= UInt64(reader.count) else {
                throw Self.malformed("it is truncated")
            }
            let record = reader.prefix(Int(length))
            reader = reader.dropFirst(Int(length))
            do {
                values.append(try Document(decoding: record))
            } catch {
                throw Self.malformed("a value is damaged (\(error.message))")
            }
        }
        guard reader.isEmpty else { throw Self.malformed("bytes follow the position") }
        guard case .string(let id) = values.removeFirst() else { throw Self.malformed("the id is not a string") }
        try self.init(sortValues: values, id: id, orderFingerprint: fingerprint)
    }

    /// The ``token``.
    public var description: String { token }

    /// A stable fingerprint of an order: FNV-1a of its text form.
    static func fingerprint(of order: [SortKey]) -> UInt32 {
        fnv1a32(order.map(\.description).joined(separator: ", ").utf8)
    }

    private static func malformed(_ reason: String) -> StoreError {
        StoreError(.invalidArgument, "malformed query cursor: \(reason)")
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    /// An unsigned LEB128 of at most 9 bytes (63 bits), or `nil`.
    private static func readVarint(_ bytes: inout ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.popFirst() {
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift > 56 { return nil }
        }
        return nil
    }
}

/// Base64url (RFC 4648 §5) without padding; decoding accepts only the canonical form.
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let chunk = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { output.append(alphabet[Int(chunk >> UInt32(shift) & 63)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            let chunk = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
            output.append(alphabet[Int(chunk >> 18 & 63)])
            output.append(alphabet[Int(chunk >> 12 & 63)])
            if rest == 2 { output.append(alphabet[Int(chunk >> 6 & 63)]) }
        }
        return String(decoding: output, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): values.append(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): values.append(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): values.append(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "-"): values.append(62)
            case UInt8(ascii: "_"): values.append(63)
            default: return nil
            }
        }
        guard values.count % 4 != 1 else { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(values.count * 3 / 4)
        var index = 0
        while index + 4 <= values.count {
            let chunk = UInt32(values[index]) << 18 | UInt32(values[index + 1]) << 12
                | UInt32(values[index + 2]) << 6 | UInt32(values[index + 3])
            output.append(UInt8(truncatingIfNeeded: chunk >> 16))
            output.append(UInt8(truncatingIfNeeded: chunk >> 8))
            output.append(UInt8(truncatingIfNeeded: chunk))
            index += 4
        }
        switch values.count - index {
        case 2:
            guard values[index + 1] & 0x0F == 0 else { return nil }
            output.append(values[index] << 2 | values[index + 1] >> 4)
        case 3:
            guard values[index + 2] & 0x03 == 0 else { return nil }
            output.append(values[index] << 2 | values[index + 1] >> 4)
            output.append(values[index + 1] << 4 | values[index + 2] >> 2)
        default:
            break
        }
        return output
    }
}
