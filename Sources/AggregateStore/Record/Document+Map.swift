extension Document {
    /// The fields of a ``Document/map(_:)``: string keys with values, in insertion order.
    ///
    /// Keys are unique. Keys and values are kept in two parallel arrays, so iteration follows
    /// insertion order and a lookup compares keys one by one, which is the fastest way for the
    /// few dozen fields of a typical aggregate.
    ///
    /// ```swift
    /// var address = Document.Map()
    /// address["street"] = "1 Harbour Street"
    /// address["city"] = "Lisbon"
    /// address.keys                    // ["street", "city"]
    /// address["city"] = nil           // removes the field
    /// let document = Document.map(address)
    /// ```
    public struct Map: Sendable, Hashable, RandomAccessCollection, ExpressibleByDictionaryLiteral {
        /// The keys, in insertion order.
        public private(set) var keys: [String]
        /// The values, in the order of ``keys``.
        public private(set) var values: [Document]

        /// Creates an empty map.
        public init() {
            keys = []
            values = []
        }

        /// Creates a map from key-value pairs, in their order.
        ///
        /// - Parameter pairs: The entries.
        /// - Precondition: The keys are distinct.
        public init(uniqueKeysWithValues pairs: some Sequence<(String, Document)>) {
            self.init()
            for (key, value) in pairs {
                precondition(index(forKey: key) == nil, "duplicate key '\(key)' in a Document.Map")
                keys.append(key)
                values.append(value)
            }
        }

        /// Creates a map from a dictionary literal, keeping the literal's order.
        ///
        /// - Precondition: The keys are distinct.
        public init(dictionaryLiteral elements: (String, Document)...) {
            self.init(uniqueKeysWithValues: elements)
        }

        /// Creates a map from parallel arrays the caller has checked for duplicate keys.
        init(uncheckedKeys keys: [String], values: [Document]) {
            self.keys = keys
            self.values = values
        }

        /// The position of a key, or `nil` when the map does not have it.
        ///
        /// - Parameter key: The key to find.
        /// - Returns: The index into ``keys`` and ``values``.
        public func index(forKey key: String) -> Int? {
            index(forKey: Substring(key))
        }

        /// The position of a key given as a substring (a component of a dotted path).
        func index(forKey key: Substring) -> Int? {
            var key = key
            return key.withUTF8 { wanted in
                for position in keys.indices {
                    var candidate = keys[position]
                    let same = candidate.withUTF8 { have in
                        have.count == wanted.count
                            && (have.count == 0 || memcmpBytes(have.baseAddress!, wanted.baseAddress!, have.count))
                    }
                    if same { return position }
                }
                return nil
            }
        }

        /// The value of a key given as a substring.
        func value(forKey key: Substring) -> Document? {
            index(forKey: key).map { values[$0] }
        }

        /// The value of a key, or `nil` when the map does not have it. Setting a value replaces
        /// the existing one in place or appends a new entry; setting `nil` removes the entry.
        ///
        /// - Parameter key: The key.
        public subscript(key: String) -> Document? {
            get { index(forKey: key).map { values[$0] } }
            set {
                if let position = index(forKey: key) {
                    if let newValue {
                        values[position] = newValue
                    } else {
                        keys.remove(at: position)
                        values.remove(at: position)
                    }
                } else if let newValue {
                    keys.append(key)
                    values.append(newValue)
                }
            }
        }

        /// Removes a key and returns its value.
        ///
        /// - Parameter key: The key to remove.
        /// - Returns: The removed value, or `nil` when the map did not have the key.
        @discardableResult
        public mutating func removeValue(forKey key: String) -> Document? {
            guard let position = index(forKey: key) else { return nil }
            keys.remove(at: position)
            return values.remove(at: position)
        }

        /// The position of the first entry.
        public var startIndex: Int { 0 }
        /// The position after the last entry.
        public var endIndex: Int { keys.count }

        /// The entry at a position.
        ///
        /// - Parameter position: An index in `startIndex..<endIndex`.
        public subscript(position: Int) -> (key: String, value: Document) {
            (keys[position], values[position])
        }

        /// Whether two maps have the same entries in the same order, keys compared by their
        /// UTF-8 bytes.
        public static func == (lhs: Map, rhs: Map) -> Bool {
            guard lhs.keys.count == rhs.keys.count else { return false }
            for position in lhs.keys.indices {
                guard lhs.keys[position].utf8.elementsEqual(rhs.keys[position].utf8),
                      lhs.values[position] == rhs.values[position] else { return false }
            }
            return true
        }

        /// Hashes the entries in order.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(keys.count)
            for position in keys.indices {
                for byte in keys[position].utf8 { hasher.combine(byte) }
                hasher.combine(0xFF as UInt8)
                hasher.combine(values[position])
            }
        }
    }
}
