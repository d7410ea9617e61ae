/// Encodes `Encodable` values into record bytes or ``Document``s.
///
/// An aggregate is a plain `Codable & Sendable` struct; the encoder writes it as one record in
/// the binary format of `Docs/RECORD-FORMAT.md`, directly into bytes in one pass.
///
/// ```swift
/// struct SalesOrder: Codable, Sendable {
///     var id: String
///     var orderedAt: Date
///     var total: Decimal
///     var note: String?
///     var items: [SalesOrderItem]
/// }
///
/// let bytes = try RecordEncoder().encode(order)
/// let document = try RecordEncoder().document(from: order)
/// document.value(at: "items.0.productId")
/// ```
///
/// How Swift values are stored:
/// - `Int`, `Int8`…`Int64` and the unsigned types up to `Int64.max` are integers (a larger
///   `UInt64`/`UInt` throws); `Float` and `Double` are doubles; `Bool` and `String` as they are.
/// - `Date` is a ``Timestamp`` (rounded to the microsecond); `Decimal` a decimal, exactly;
///   `Data` and `[UInt8]` are bytes; `URL` its absolute string; `Document` and `Timestamp`
///   themselves.
/// - Structs and classes are maps with their keys in the order `encode(to:)` writes them
///   (declaration order for synthesized conformances); arrays are arrays; `[String: V]` and
///   `[Int: V]` dictionaries are maps (in the dictionary's iteration order).
/// - A `nil` optional property is left out of its map (synthesized `encodeIfPresent`);
///   ``RecordDecoder`` reads an absent key as `nil`. A `nil` inside an array is a null.
/// - Enums with raw values are their raw value; enums with associated values use Swift's
///   synthesized keyed form (`{"shipped": {"trackingId": …}}`).
public struct RecordEncoder: Sendable {
    /// Values for custom `encode(to:)` implementations, read through `Encoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable]

    /// Creates an encoder.
    ///
    /// - Parameter userInfo: Values for custom `encode(to:)` implementations.
    public init(userInfo: [CodingUserInfoKey: any Sendable] = [:]) {
        self.userInfo = userInfo
    }

    /// Encodes a value as record bytes: the format version, then the value.
    ///
    /// ```swift
    /// let record = try RecordEncoder().encode(order)
    /// batch.put(table: "SalesOrder", id: order.id, record: record, foreignKeys: [], expecting: .absent)
    /// ```
    ///
    /// - Parameter value: The value, usually an aggregate.
    /// - Returns: The record bytes, readable by ``RecordDecoder`` and `Document(decoding:)`.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when the value cannot
    ///   be stored (a `UInt64` above `Int64.max`, a `Date` outside the timestamp range, nesting
    ///   deeper than ``Document/maximumDepth``, or an error thrown by the value's `encode(to:)`),
    ///   with the coding path in the message.
    public func encode<T: Encodable>(_ value: T) throws(StoreError) -> [UInt8] {
        let info: [CodingUserInfoKey: Any] = userInfo.isEmpty ? emptyUserInfo : userInfo.mapValues { $0 as Any }
        do {
            return try EncoderWorkspace.encode(value, userInfo: info)
        } catch is NeedsTreeEncoding {
            // The value uses `Encoder` in a way one forward pass cannot write: build it as a tree.
            do {
                return try TreeEncoder.document(from: value, userInfo: info).encoded()
            } catch {
                throw storeError(from: error, encoding: true, type: T.self)
            }
        } catch {
            throw storeError(from: error, encoding: true, type: T.self)
        }
    }

    /// Encodes a value as a ``Document``, without going through bytes.
    ///
    /// ```swift
    /// let document = try RecordEncoder().document(from: order)
    /// print(document.jsonString(pretty: true))
    /// ```
    ///
    /// - Parameter value: The value.
    /// - Returns: The document ``encode(_:)`` would write.
    /// - Throws: ``StoreError`` as ``encode(_:)`` does.
    public func document<T: Encodable>(from value: T) throws(StoreError) -> Document {
        do {
            return try TreeEncoder.document(from: value, userInfo: userInfo.isEmpty ? emptyUserInfo : userInfo.mapValues { $0 as Any })
        } catch {
            throw storeError(from: error, encoding: true, type: T.self)
        }
    }
}
