/// A unit of consistency stored as one record: a root with everything it composes, such as a
/// sales order with its items.
///
/// An aggregate is a plain `Codable` value type. The store keeps each one as a single record in
/// the binary format of `Docs/RECORD-FORMAT.md`, under its ``table`` and ``id``; the fields named
/// by ``foreignKeys`` are indexed, so lookups by them never scan.
///
/// ```swift
/// struct SalesOrder: Aggregate {
///     static let table = "SalesOrder"
///     static let foreignKeys: [ForeignKeyField<SalesOrder>] = [.field(\.customerId)]
///
///     var id: String
///     var customerId: String
///     var status: String
///     var items: [SalesOrderItem]
/// }
/// ```
///
/// The id is opaque: the store compares it as a string and never parses it. It is stored in the
/// record's `id` field, which is the field a query's `id` refers to.
public protocol Aggregate: Codable, Sendable {
    /// The table the aggregate's records live in: 1 to 1,024 bytes of UTF-8 without NUL, not
    /// starting with `_` (reserved for the store's own tables).
    static var table: String { get }
    /// The fields that reference other aggregates, indexed by the store. None by default.
    static var foreignKeys: [ForeignKeyField<Self>] { get }
    /// The aggregate's identity, its primary key.
    var id: String { get }
}

extension Aggregate {
    /// No foreign keys.
    public static var foreignKeys: [ForeignKeyField<Self>] { [] }
}

/// A field of an aggregate that references other aggregates by id, indexed by the store.
///
/// ```swift
/// static let foreignKeys: [ForeignKeyField<SalesOrder>] = [.field(\.customerId), .field(\.tagIds)]
/// ```
///
/// The field's name is read from the key path (`\SalesOrder.customerId` is `customerId`); it
/// must be the name the aggregate encodes the property under, so a property renamed by custom
/// `CodingKeys` needs ``named(_:_:)``.
public struct ForeignKeyField<Root: Aggregate>: Sendable {
    /// The field's name in the record.
    public let name: String
    private let values: @Sendable (Root) -> [String]
    /// Why the key path names no stored field (a computed property), if it does not; writes
    /// of `Root` then fail with this message.
    let problem: String?

    private init(name: String, values: @escaping @Sendable (Root) -> [String], problem: String? = nil) {
        self.name = name
        self.values = values
        self.problem = problem
    }

    private init(_ keyPath: AnyKeyPath, values: @escaping @Sendable (Root) -> [String]) {
        do throws(StoreError) {
            self.init(name: try FieldPath(keyPath: keyPath).components.joined(separator: "."), values: values)
        } catch {
            self.init(name: "\(keyPath)", values: values, problem: error.message)
        }
    }

    /// A field holding one id.
    public static func field(_ keyPath: any KeyPath<Root, String> & Sendable) -> Self {
        Self(keyPath, values: { [$0[keyPath: keyPath]] })
    }

    /// A field holding an id or nothing.
    public static func field(_ keyPath: any KeyPath<Root, String?> & Sendable) -> Self {
        Self(keyPath, values: { $0[keyPath: keyPath].map { [$0] } ?? [] })
    }

    /// A field holding several ids; the aggregate is found by each of them.
    public static func field(_ keyPath: any KeyPath<Root, [String]> & Sendable) -> Self {
        Self(keyPath, values: { $0[keyPath: keyPath] })
    }

    /// A field whose encoded name differs from its property name, with the ids it holds.
    public static func named(_ name: String, _ values: @escaping @Sendable (Root) -> [String]) -> Self {
        Self(name: name, values: values)
    }

    /// The foreign-key pairs of one aggregate, as the engine indexes them.
    package func foreignKeys(of aggregate: Root) -> [ForeignKey] {
        var seen = Set<String>()
        return values(aggregate).compactMap { value in
            seen.insert(value).inserted ? ForeignKey(field: name, value: value) : nil
        }
    }
}
