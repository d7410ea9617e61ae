public import Foundation

/// A query over the aggregates of one type, built from key paths so that a misspelt field does
/// not compile.
///
/// ```swift
/// let page = try store.fetch(
///     SalesOrder.query
///         .filter(\.status == "open" && .isNotNull(\.note))
///         .order(by: \.placedAt, descending: true)
///         .limit(20),
///     in: tx)
/// ```
///
/// Field names come from the key paths (`\SalesOrder.address.city` is `address.city`), which
/// must match the names the aggregate encodes them under. ``query`` is the untyped value; its
/// ``Query/description`` is the text form the `aggstore` CLI takes.
public struct TypedQuery<Root: Aggregate>: Sendable, Hashable, CustomStringConvertible {
    /// The untyped query.
    public var query: Query

    /// All aggregates of `Root`, in id order.
    public init() {
        query = Query(table: Root.table)
    }

    /// Keeps the aggregates `predicate` matches, in addition to earlier filters.
    public func filter(_ predicate: TypedPredicate<Root>) -> Self {
        var copy = self
        copy.query.predicate = copy.query.predicate == .all ? predicate.predicate : copy.query.predicate && predicate.predicate
        return copy
    }

    /// Adds a sort key; the first added sorts first, ties end in id order.
    public func order<Value>(by keyPath: KeyPath<Root, Value>, descending: Bool = false) -> Self {
        var copy = self
        copy.query.order.append(SortKey(TypedPredicate<Root>.path(keyPath), descending: descending))
        return copy
    }

    /// Returns at most `count` aggregates.
    public func limit(_ count: Int) -> Self {
        var copy = self
        copy.query.limit = count
        return copy
    }

    /// Skips the first `count` matches.
    public func offset(_ count: Int) -> Self {
        var copy = self
        copy.query.offset = count
        return copy
    }

    /// Continues after the last row of an earlier page (keyset pagination), stable under
    /// concurrent inserts.
    public func after(_ cursor: QueryCursor?) -> Self {
        var copy = self
        copy.query.after = cursor
        return copy
    }

    /// The text form.
    public var description: String { query.description }
}

extension Aggregate {
    /// A query over every aggregate of this type.
    public static var query: TypedQuery<Self> { TypedQuery() }
}

/// A condition on the fields of an aggregate, made with operators on key paths.
///
/// ```swift
/// let open: TypedPredicate<SalesOrder> = \.status == "open"
/// let big = \SalesOrder.total >= Decimal(100) && !(.isIn(\.customerId, ["c-1", "c-2"]))
/// let named: TypedPredicate<Customer> = .like(\.name, "A%", caseInsensitive: true)
/// ```
public struct TypedPredicate<Root: Aggregate>: Sendable, Hashable {
    /// The untyped predicate.
    public let predicate: Query.Predicate

    /// Wraps an untyped predicate.
    public init(_ predicate: Query.Predicate) {
        self.predicate = predicate
    }

    /// The field path of a key path; a key path that names no stored field (a computed
    /// property with a dotless description) cannot occur for Codable properties.
    static func path(_ keyPath: AnyKeyPath) -> FieldPath {
        (try? FieldPath(keyPath: keyPath)) ?? FieldPath(stringLiteral: "\(keyPath)")
    }

    /// Both hold.
    public static func && (lhs: Self, rhs: Self) -> Self { Self(lhs.predicate && rhs.predicate) }
    /// Either holds.
    public static func || (lhs: Self, rhs: Self) -> Self { Self(lhs.predicate || rhs.predicate) }
    /// Does not hold.
    public static prefix func ! (operand: Self) -> Self { Self(!operand.predicate) }

    /// The field equals any of `values`.
    public static func isIn<Value: QueryValue>(_ keyPath: KeyPath<Root, Value>, _ values: [Value]) -> Self {
        Self(.isIn(path(keyPath), values.map(\.queryValue)))
    }

    /// The field equals none of `values` (true for a missing field).
    public static func notIn<Value: QueryValue>(_ keyPath: KeyPath<Root, Value>, _ values: [Value]) -> Self {
        Self(.notIn(path(keyPath), values.map(\.queryValue)))
    }

    /// The field is missing or null.
    public static func isNull<Value>(_ keyPath: KeyPath<Root, Value?>) -> Self { Self(.isNull(path(keyPath))) }

    /// The field is present and not null.
    public static func isNotNull<Value>(_ keyPath: KeyPath<Root, Value?>) -> Self { Self(.isNotNull(path(keyPath))) }

    /// The string field matches a LIKE pattern (`%` any run, `_` one character, `\` escapes).
    public static func like(_ keyPath: KeyPath<Root, some QueryText>, _ pattern: String, caseInsensitive: Bool = false) -> Self {
        Self(.match(path(keyPath), .like, pattern, caseInsensitive: caseInsensitive))
    }

    /// The string field starts with `prefix` (no wildcards).
    public static func startsWith(_ keyPath: KeyPath<Root, some QueryText>, _ prefix: String, caseInsensitive: Bool = false) -> Self {
        Self(.match(path(keyPath), .startsWith, prefix, caseInsensitive: caseInsensitive))
    }

    /// The string field ends with `suffix` (no wildcards).
    public static func endsWith(_ keyPath: KeyPath<Root, some QueryText>, _ suffix: String, caseInsensitive: Bool = false) -> Self {
        Self(.match(path(keyPath), .endsWith, suffix, caseInsensitive: caseInsensitive))
    }

    /// The string field contains `text` (no wildcards).
    public static func contains(_ keyPath: KeyPath<Root, some QueryText>, _ text: String, caseInsensitive: Bool = false) -> Self {
        Self(.match(path(keyPath), .contains, text, caseInsensitive: caseInsensitive))
    }
}

/// A Swift value a typed query can compare a field with.
public protocol QueryValue: Sendable {
    /// The value as stored in a record.
    var queryValue: Document { get }
}

extension String: QueryValue { public var queryValue: Document { .string(self) } }
extension Bool: QueryValue { public var queryValue: Document { .bool(self) } }
extension Int: QueryValue { public var queryValue: Document { .integer(Int64(self)) } }
extension Int64: QueryValue { public var queryValue: Document { .integer(self) } }
extension Double: QueryValue { public var queryValue: Document { .double(self) } }
extension Decimal: QueryValue { public var queryValue: Document { .decimal(self) } }
extension Timestamp: QueryValue { public var queryValue: Document { .timestamp(self) } }
extension Date: QueryValue { public var queryValue: Document { .timestamp(Timestamp(self)) } }
extension Optional: QueryValue where Wrapped: QueryValue {
    /// The wrapped value, or null.
    public var queryValue: Document { self?.queryValue ?? .null }
}

/// The field equals the value.
public func == <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate(.compare(TypedPredicate<Root>.path(lhs), .eq, rhs.queryValue))
}
/// The field differs from the value (true for a missing field).
public func != <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate(.compare(TypedPredicate<Root>.path(lhs), .ne, rhs.queryValue))
}
/// The field is less than the value.
public func < <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate(.compare(TypedPredicate<Root>.path(lhs), .lt, rhs.queryValue))
}
/// The field is at most the value.
public func <= <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate(.compare(TypedPredicate<Root>.path(lhs), .lte, rhs.queryValue))
}
/// The field is greater than the value.
public func > <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate(.compare(TypedPredicate<Root>.path(lhs), .gt, rhs.queryValue))
}
/// The field is at least the value.
public func >= <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate(.compare(TypedPredicate<Root>.path(lhs), .gte, rhs.queryValue))
}

/// A string field, optional or not, for the string matches of ``TypedPredicate``.
public protocol QueryText: QueryValue {}
extension String: QueryText {}
extension Optional: QueryText where Wrapped == String {}
