/// The path of a field inside a record: the map keys to follow from the top, such as
/// `shippingAddress.city`.
///
/// A path only walks maps. When a component is missing, or the value on the way is not a map
/// (an array, a string, null), the field is *missing*, which every ``Query/Predicate`` treats
/// exactly as null.
///
/// ```swift
/// let city: FieldPath = "shippingAddress.city"          // a literal; traps if malformed
/// let same = try FieldPath("shippingAddress.city")      // throws if malformed
/// let odd = try FieldPath("`customer-id`.x")            // backquotes for other names
/// let typed = try FieldPath(keyPath: \SalesOrder.shippingAddress.city)
/// city.components                                       // ["shippingAddress", "city"]
/// city.value(in: order)                                 // .string("Lisbon"), or nil
/// ```
public struct FieldPath: Hashable, Sendable, Comparable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The map keys from the outside in; never empty, no key empty.
    public let components: [String]

    /// The path `id`, the record's identifier field.
    public static let id = FieldPath(validated: ["id"])

    /// Parses a dotted path: names separated by `.`, each either `[A-Za-z_][A-Za-z0-9_]*` or
    /// any non-empty text in backquotes (a backquote doubled), such as `` a.`b-c`.d ``.
    ///
    /// Keywords of the query text (`order`, `limit`, ...) are accepted bare here.
    ///
    /// - Parameter dotted: The path.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` naming the column of
    ///   the first problem.
    public init(_ dotted: String) throws(StoreError) {
        components = try QueryParser.parseFieldPath(dotted)
    }

    /// Creates a path from its keys, which may be any non-empty strings.
    ///
    /// - Parameter components: The map keys from the outside in.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when the list or a
    ///   key is empty.
    public init(components: [String]) throws(StoreError) {
        guard !components.isEmpty else { throw StoreError(.invalidArgument, "a field path needs at least one name") }
        guard !components.contains(where: \.isEmpty) else {
            throw StoreError(.invalidArgument, "a field path may not contain an empty name")
        }
        self.components = components
    }

    /// Creates a path from a string literal, as ``init(_:)`` parses it.
    ///
    /// - Precondition: The literal is a valid path.
    public init(stringLiteral value: String) {
        switch Result(catching: { () throws(StoreError) -> [String] in try QueryParser.parseFieldPath(value) }) {
        case .success(let components): self.components = components
        case .failure(let error): preconditionFailure("invalid field path literal: \(error.message)")
        }
    }

    /// Creates the path a key path names, such as `\SalesOrder.shippingAddress.city` or
    /// `\SalesOrder.note?.text`: the root type is dropped and optional chaining (`?`) and
    /// force-unwrapping (`!`) are ignored.
    ///
    /// Only chains of stored properties qualify: a computed property, subscript or `\.self`
    /// has no field name. The names come from the key path's description, which needs the
    /// runtime's reflection metadata (present unless the module is built with
    /// `-disable-reflection-metadata`).
    ///
    /// - Parameter keyPath: A key path over the record's Swift type.
    /// - Throws: ``StoreError`` with code ``StoreError/Code/invalidArgument`` when the key path
    ///   does not name a chain of stored properties.
    public init(keyPath: AnyKeyPath) throws(StoreError) {
        let text = String(describing: keyPath)
        let prefix = "\\" + String(describing: type(of: keyPath).rootType) + "."
        guard text.hasPrefix(prefix) else {
            throw StoreError(.invalidArgument, "the key path \(text) does not name a stored property")
        }
        var components: [String] = []
        for part in text.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false) {
            var name = part
            while let last = name.last, last == "?" || last == "!" { name.removeLast() }
            guard let first = name.first, first.isLetter || first == "_",
                  name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), name != "self" else {
                throw StoreError(.invalidArgument,
                                 "the key path \(text) does not name stored properties only ('\(part)' is not one)")
            }
            components.append(String(name))
        }
        try self.init(components: components)
    }

    /// A path the caller knows to be valid.
    init(validated components: [String]) {
        self.components = components
    }

    /// The path in the query text form: names joined by `.`, a name backquoted when it is not an
    /// identifier or is a keyword, so `FieldPath(path.description) == path`.
    public var description: String {
        components.map(QuerySyntax.name).joined(separator: ".")
    }

    /// Orders paths component by component, each by its UTF-8 bytes, a prefix first.
    public static func < (lhs: FieldPath, rhs: FieldPath) -> Bool {
        lhs.components.lexicographicallyPrecedes(rhs.components) { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    /// Two paths are equal when their components have the same UTF-8 bytes.
    public static func == (lhs: FieldPath, rhs: FieldPath) -> Bool {
        lhs.components.elementsEqual(rhs.components) { $0.utf8.elementsEqual($1.utf8) }
    }

    /// Hashes the components' UTF-8 bytes, consistently with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(components.count)
        for component in components {
            hasher.combine(component.utf8.count)
            for byte in component.utf8 { hasher.combine(byte) }
        }
    }

    /// The value at this path in a document, or `nil` when the field is missing: a component
    /// is absent or a value on the way is not a map. A present null is returned as `.null`.
    ///
    /// - Parameter document: The record.
    public func value(in document: Document) -> Document? {
        var current = document
        for component in components {
            guard case .map(let map) = current, let next = map[component] else { return nil }
            current = next
        }
        return current
    }
}
