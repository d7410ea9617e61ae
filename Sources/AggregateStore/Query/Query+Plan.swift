/// How the candidates of a query are fetched: which index, if any, can supply them.
///
/// A plan only narrows the candidates; ``Query/apply(to:)`` re-evaluates the whole predicate
/// on them, so an access path may over-fetch but never under-fetch.
public enum AccessPath: Hashable, Sendable {
    /// Look the records up by primary key; an empty list means no record can match.
    case primaryKeys([String])
    /// Look the records up in the foreign-key index of `field` for `value`.
    case foreignKey(field: String, value: String)
    /// Read every record of the table.
    case scan
}

extension Query {
    /// Chooses how to fetch the candidates, from the top-level conjuncts of the predicate (the
    /// parts of an `and`, nested `and`s flattened; a predicate that is not an `and` is its own
    /// single conjunct):
    ///
    /// 1. ``Predicate/none`` as a conjunct: ``AccessPath/primaryKeys(_:)`` with no ids.
    /// 2. `id = 'x'` or `id in ('x', 'y')` with string values only: ``AccessPath/primaryKeys(_:)``,
    ///    the intersection when there are several, in the order of the first.
    /// 3. Otherwise the first `field = 'value'` with a string value on a field in
    ///    `foreignKeyFields`: ``AccessPath/foreignKey(field:value:)``.
    /// 4. Otherwise ``AccessPath/scan``.
    ///
    /// Conditions under `or` or `not` are not used. The plan assumes that a record's `id` field
    /// holds its primary key and that the foreign-key index holds each record's string value of
    /// the field, which is how the DataStore writes them.
    ///
    /// ```swift
    /// let query = try Query(parsing: "from SalesOrder where customerId = 'C-7' and total > 10")
    /// query.accessPath(foreignKeyFields: ["customerId"])   // .foreignKey(field: "customerId", value: "C-7")
    /// ```
    ///
    /// - Parameter foreignKeyFields: The fields (dotted paths) with a foreign-key index.
    /// - Returns: The access path.
    public func accessPath(foreignKeyFields: Set<String>) -> AccessPath {
        let conjuncts = Self.conjuncts(of: predicate)
        if conjuncts.contains(Predicate.none) { return .primaryKeys([]) }
        var ids: [String]?
        for conjunct in conjuncts {
            let values: [Document]
            switch conjunct {
            case .compare(let field, .eq, let value) where field == .id: values = [value]
            case .isIn(let field, let list) where field == .id: values = list
            default: continue
            }
            // A value of another kind could match only an id field that is not a string.
            guard values.allSatisfy({ $0.stringValue != nil }) else { continue }
            var seen = Set<[UInt8]>()
            let strings = values.compactMap(\.stringValue).filter { seen.insert(Array($0.utf8)).inserted }
            if let current = ids {
                ids = current.filter { seen.contains(Array($0.utf8)) }
            } else {
                ids = strings
            }
        }
        if let ids { return .primaryKeys(ids) }
        for conjunct in conjuncts {
            guard case .compare(let field, .eq, .string(let value)) = conjunct,
                  !field.components.contains(where: { $0.contains(".") }) else { continue }
            let name = field.components.joined(separator: ".")
            if foreignKeyFields.contains(name) { return .foreignKey(field: name, value: value) }
        }
        return .scan
    }

    /// The top-level conjuncts: `and`s of any size flattened, `all` dropped.
    private static func conjuncts(of predicate: Predicate) -> [Predicate] {
        switch predicate {
        case .and(let parts): return parts.flatMap { conjuncts(of: $0) }
        case .all: return []
        default: return [predicate]
        }
    }
}
