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
    /// Key paths that name no stored field (computed properties): running the query throws.
    public private(set) var problems: [String] = []

    /// All aggregates of `Root`, in id order.
    public init() {
        query = Query(table: Root.table)
    }

    /// Keeps the aggregates `predicate` matches, in addition to earlier filters.
    public func filter(_ predicate: TypedPredicate<Root>) -> Self {
        var copy = self
        copy.query.predicate = copy.query.predicate == .all ? predicate.predicate : copy.query.predicate && predicate.predicate
        copy.problems += predicate.problems
        return copy
    }

    /// Adds a sort key; the first added sorts first, ties end in id order.
    public func order<Value>(by keyPath: KeyPath<Root, Value>, descending: Bool = false) -> Self {
        var copy = self
        let (field, problem) = TypedPredicate<Root>.field(keyPath)
        copy.query.order.append(SortKey(field, descending: descending))
        copy.problems += problem.map { [$0] } ?? []
        return copy
    }

    /// Throws the first problem, if any.
    func checked() throws(StoreError) -> Query {
        if let problem = problems.first { throw StoreError(.invalidArgument, "query on \(Root.table): \(problem)") }
        return query
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
    /// Key paths that name no stored field (computed properties).
    public let problems: [String]

    /// Wraps an untyped predicate.
    public init(_ predicate: Query.Predicate) {
        self.init(predicate, problems: [])
    }

    init(_ predicate: Query.Predicate, problems: [String]) {
        self.predicate = predicate
        self.problems = problems
    }

    /// A predicate on the field a key path names; a key path without a stored field (a computed
    /// property) is kept as a problem that makes the query throw when it runs.
    static func on(_ keyPath: AnyKeyPath, _ make: (FieldPath) -> Query.Predicate) -> Self {
        let (field, problem) = Self.field(keyPath)
        return Self(make(field), problems: problem.map { [$0] } ?? [])
    }

    /// The field path of a key path, or a stand-in and the reason there is none.
    static func field(_ keyPath: AnyKeyPath) -> (FieldPath, String?) {
        do throws(StoreError) {
            return (try FieldPath(keyPath: keyPath), nil)
        } catch {
            return (.id, error.message)
        }
    }

    /// Both hold.
    public static func && (lhs: Self, rhs: Self) -> Self { Self(lhs.predicate && rhs.predicate, problems: lhs.problems + rhs.problems) }
    /// Either holds.
    public static func || (lhs: Self, rhs: Self) -> Self { Self(lhs.predicate || rhs.predicate, problems: lhs.problems + rhs.problems) }
    /// Does not hold.
    public static prefix func ! (operand: Self) -> Self { Self(!operand.predicate, problems: operand.problems) }

    /// The field equals any of `values`.
    public static func isIn<Value: QueryValue>(_ keyPath: KeyPath<Root, Value>, _ values: [Value]) -> Self {
        on(keyPath) { .isIn($0, values.map(\.queryValue)) }
    }

    /// The field equals none of `values` (true for a missing field).
    public static func notIn<Value: QueryValue>(_ keyPath: KeyPath<Root, Value>, _ values: [Value]) -> Self {
        on(keyPath) { .notIn($0, values.map(\.queryValue)) }
    }

    /// The field is missing or null.
    public static func isNull<Value>(_ keyPath: KeyPath<Root, Value?>) -> Self { on(keyPath) { .isNull($0) } }

    /// The field is present and not null.
    public static func isNotNull<Value>(_ keyPath: KeyPath<Root, Value?>) -> Self { on(keyPath) { .isNotNull($0) } }

    /// The string field matches a LIKE pattern (`%` any run, `_` one character, `\` escapes).
    public static func like(_ keyPath: KeyPath<Root, some QueryText>, _ pattern: String, caseInsensitive: Bool = false) -> Self {
        on(keyPath) { .match($0, .like, pattern, caseInsensitive: caseInsensitive) }
    }

    /// The string field starts with `prefix` (no wildcards).
    public static func startsWith(_ keyPath: KeyPath<Root, some QueryText>, _ prefix: String, caseInsensitive: Bool = false) -> Self {
        on(keyPath) { .match($0, .startsWith, prefix, caseInsensitive: caseInsensitive) }
    }

    /// The string field ends with `suffix` (no wildcards).
    public static func endsWith(_ keyPath: KeyPath<Root, some QueryText>, _ suffix: String, caseInsensitive: Bool = false) -> Self {
        on(keyPath) { .match($0, .endsWith, suffix, caseInsensitive: caseInsensitive) }
    }

    /// The string field contains `text` (no wildcards).
    public static func contains(_ keyPath: KeyPath<Root, some QueryText>, _ text: String, caseInsensitive: Bool = false) -> Self {
        on(keyPath) { .match($0, .contains, text, caseInsensitive: caseInsensitive) }
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
    TypedPredicate.on(lhs) { .compare($0, .eq, rhs.queryValue) }
}
/// The field differs from the value (true for a missing field).
public func != <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate.on(lhs) { .compare($0, .ne, rhs.queryValue) }
}
/// The field is less than the value.
public func < <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate.on(lhs) { .compare($0, .lt, rhs.queryValue) }
}
/// The field is at most the value.
public func <= <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate.on(lhs) { .compare($0, .lte, rhs.queryValue) }
}
/// The field is greater than the value.
public func > <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate.on(lhs) { .compare($0, .gt, rhs.queryValue) }
}
/// The field is at least the value.
public func >= <Root, Value: QueryValue>(lhs: KeyPath<Root, Value>, rhs: Value) -> TypedPredicate<Root> {
    TypedPredicate.on(lhs) { .compare($0, .gte, rhs.queryValue) }
}

/// A string field, optional or not, for the string matches of ``TypedPredicate``.
public protocol QueryText: QueryValue {}
extension String: QueryText {}
extension Optional: QueryText where Wrapped == String {}
