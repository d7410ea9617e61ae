/// Decodes `Decodable` values from record bytes or ``Document``s.
///
/// The counterpart of ``RecordEncoder``: it reads records in place, looking at only the fields
/// the type asks for. Unknown keys are ignored, so a type may drop fields that old records still
/// have; an absent key or a null decodes as `nil` for an optional property; a missing
/// non-optional key is an error naming its path.
///
/// ```swift
/// let order = try RecordDecoder().decode(SalesOrder.self, from: record)
///
/// do {
///     _ = try RecordDecoder().decode(SalesOrder.self, from: damaged)
/// } catch {
///     print(error)   // invalidArgument: cannot decode SalesOrder: missing field 'shippingAddress.city'
/// }
/// ```
///
/// Numbers convert where no information is lost: an integer field accepts a double with an
/// integral value, a `Double` field accepts an integer, and a `Decimal` field accepts an
/// integer or a double (by its shortest decimal form). A value out of a field's range, or of
/// another kind, is an error.
public struct RecordDecoder: Sendable {
    /// Values for custom `init(from:)` implementations, read through `Decoder.userInfo`.
    public var userInfo: [CodingUserInfoKey: any Sendable]

    /// Creates a decoder.
    ///
    /// - Parameter userInfo: Values for custom `init(from:)` implementations.
    public init(userInfo: [CodingUserInfoKey: any Sendable] = [:]) {
        self.userInfo = userInfo
    }

    /// Decodes a value from record bytes.
    ///
    /// ```swift
    /// if let stored = try engine.record(table: "SalesOrder", id: "SO-1") {
    ///     let order = try RecordDecoder().decode(SalesOrder.self, from: stored.bytes)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - bytes: A record written by ``RecordEncoder`` or ``Document/encoded()``.
    /// - Returns: The decoded value.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when the record does
    ///   not fit the type (a missing field, a value of another kind or out of range, an error
    ///   thrown by the type's `init(from:)`), naming the field's path;
    ///   ``StoreError/Code/corruption`` when the bytes the type reads are malformed;
    ///   ``StoreError/Code/unsupportedFormat`` for an unknown format version.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws(StoreError) -> T {
        do {
            if let value = try bytes.withContiguousStorageIfAvailable({ buffer throws(StoreError) -> T in
                try decode(T.self, from: UnsafeRawBufferPointer(buffer))
            }) {
                return value
            }
        } catch {
            throw storeError(from: error, encoding: false, type: T.self)
        }
        return try [UInt8](bytes).withUnsafeBytesTyped { buffer throws(StoreError) in try decode(T.self, from: buffer) }
    }

    /// Decodes a value from record bytes in an array, as the engine returns them.
    ///
    /// ```swift
    /// let order = try RecordDecoder().decode(SalesOrder.self, from: stored.bytes)
    /// ```
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - bytes: A record written by ``RecordEncoder`` or ``Document/encoded()``.
    /// - Returns: The decoded value.
    /// - Throws: ``StoreError`` as `decode(_:from:)` with any collection of bytes does.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws(StoreError) -> T {
        // The same as the collection overload, without its `T?` (in code generic over `T`,
        // `Optional<T>` is a runtime metadata lookup, a tenth of decoding a small record), and
        // without a closure: the array passed as a pointer lives for the call.
        let info: [CodingUserInfoKey: Any] = userInfo.isEmpty ? emptyUserInfo : userInfo.mapValues { $0 as Any }
        do {
            return try DecoderWorkspace.decode(T.self, from: bytes, count: bytes.count, userInfo: info)
        } catch {
            throw storeError(from: error, encoding: false, type: T.self)
        }
    }

    /// Decodes a value from record bytes in memory the caller owns for the duration of the call.
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - buffer: The record.
    /// - Returns: The decoded value.
    /// - Throws: ``StoreError`` as `decode(_:from:)` with bytes does.
    public func decode<T: Decodable>(_ type: T.Type, from buffer: UnsafeRawBufferPointer) throws(StoreError) -> T {
        let info: [CodingUserInfoKey: Any] = userInfo.isEmpty ? emptyUserInfo : userInfo.mapValues { $0 as Any }
        do {
            return try DecoderWorkspace.decode(T.self, from: buffer.baseAddress ?? emptyRecordBytes, count: buffer.count, userInfo: info)
        } catch {
            throw storeError(from: error, encoding: false, type: T.self)
        }
    }

    /// Decodes a value from a document.
    ///
    /// ```swift
    /// let address = try RecordDecoder().decode(Address.self, from: order[field: "shippingAddress"]!)
    /// ```
    ///
    /// - Parameters:
    ///   - type: The type to decode.
    ///   - document: The document.
    /// - Returns: The decoded value.
    /// - Throws: ``StoreError`` as `decode(_:from:)` with bytes does.
    public func decode<T: Decodable>(_ type: T.Type, from document: Document) throws(StoreError) -> T {
        try decode(T.self, from: try document.encoded())
    }

}
