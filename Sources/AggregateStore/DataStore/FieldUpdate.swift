/// A change to one field in a partial update (``DataStore/update(_:id:set:in:)``): a new value,
/// or the explicit removal of the value.
///
/// ```swift
/// try store.update(SalesOrder.self, id: "so-1", set: ["status": "paid", "note": .setNull], in: tx)
/// ```
public enum FieldUpdate: Sendable, Hashable, ExpressibleByStringInterpolation, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral {
    /// Replace the field's value (or add the field).
    case set(Document)
    /// Remove the field's value: the record no longer has the field, which reads as null, as an
    /// optional property set to nil does.
    case setNull

    /// Sets a string.
    public init(stringLiteral value: String) { self = .set(.string(value)) }
    /// Sets an integer.
    public init(integerLiteral value: Int64) { self = .set(.integer(value)) }
    /// Sets a double.
    public init(floatLiteral value: Double) { self = .set(.double(value)) }
    /// Sets a boolean.
    public init(booleanLiteral value: Bool) { self = .set(.bool(value)) }

    /// Sets any encodable value, such as a nested struct or a `Decimal`.
    public static func value(_ value: some Encodable) throws(StoreError) -> FieldUpdate {
        .set(try RecordEncoder().document(from: value))
    }
}

extension Document {
    /// This document, a map, with `changes` merged in: each key is a dotted field path whose
    /// parents must be maps (missing parents are created).
    func merging(_ changes: [String: FieldUpdate], table: String, id: String) throws(StoreError) -> Document {
        guard case var .map(root) = self else {
            throw StoreError(.invalidArgument, "\(table)/\(id) is not a map and cannot be updated field by field")
        }
        for (path, change) in changes.sorted(by: { $0.key < $1.key }) {
            let components = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !components.contains(where: \.isEmpty) else {
                throw StoreError(.invalidArgument, "update of \(table)/\(id): invalid field path '\(path)'")
            }
            guard components != ["id"] else {
                throw StoreError(.invalidArgument, "update of \(table)/\(id): the id cannot be changed")
            }
            try Self.apply(change, at: components[...], in: &root, path: path, table: table, id: id)
        }
        return .map(root)
    }

    private static func apply(_ change: FieldUpdate, at components: ArraySlice<String>, in map: inout Map,
                              path: String, table: String, id: String) throws(StoreError) {
        let key = components.first!
        if components.count == 1 {
            switch change {
            case let .set(value): map[key] = value
            case .setNull: map.removeValue(forKey: key)
            }
            return
        }
        var child: Map
        switch map[key] {
        case nil, .null?: child = Map()
        case let .map(existing)?: child = existing
        case _?:
            throw StoreError(.invalidArgument, "update of \(table)/\(id): '\(key)' in '\(path)' is not a map")
        }
        try apply(change, at: components.dropFirst(), in: &child, path: path, table: table, id: id)
        map[key] = .map(child)
    }
}
