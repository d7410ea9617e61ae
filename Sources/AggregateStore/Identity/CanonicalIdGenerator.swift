import Foundation
import Synchronization

/// Generates aggregate and event ids in the CanonicalId grammar of the specification's
/// framework: `major-minor-kind[-subkind]-epochMillis-entropy`.
///
/// Ids are opaque to the store: it compares them as strings and never parses them. The grammar
/// only makes them readable to people and sortable by creation time within a kind.
///
/// ```swift
/// let ids = CanonicalIdGenerator()                       // namespace single/global
/// let id = ids.next(kind: "entity", subkind: "salesorder")
/// // "single-global-entity-salesorder-1795171200000-3kTMd2pW0aGq1mXb7YcZ9e"
///
/// let testIds = CanonicalIdGenerator.deterministic(startingAt: 1_700_000_000_000)
/// testIds.next(kind: "entity")                           // "single-global-entity-1700000000001-seed_000001"
/// ```
///
/// Labels (namespace, kind and subkind) are normalised as the framework does: lowercased, `-`
/// and `.` turned into `_`, at most 64 characters; a label must then start with a letter and
/// hold only letters, digits and `_`, so the hyphen stays the separator.
public final class CanonicalIdGenerator: Sendable {
    /// The operational partition, such as a tenant (`major`) and a region (`minor`).
    public struct Namespace: Sendable, Hashable {
        /// The first label of every id.
        public var major: String
        /// The second label of every id.
        public var minor: String

        /// A namespace; the labels are normalised.
        /// - Throws: ``StoreError/Code/invalidArgument`` if a label is empty or invalid after normalisation.
        public init(major: String, minor: String) throws(StoreError) {
            self.major = try CanonicalIdGenerator.label(major, "namespace major")
            self.minor = try CanonicalIdGenerator.label(minor, "namespace minor")
        }

        /// `single/global`, the default.
        public static let singleGlobal = Namespace(unchecked: "single", "global")

        private init(unchecked major: String, _ minor: String) {
            self.major = major
            self.minor = minor
        }
    }

    private enum Source: Sendable {
        case random
        case deterministic(start: Int64)
    }

    /// The namespace every id starts with.
    public let namespace: Namespace
    private let source: Source
    private let counter = Atomic<Int64>(0)

    /// A generator of unique ids: the wall clock in milliseconds and 128 random bits in base 62.
    public init(namespace: Namespace = .singleGlobal) {
        self.namespace = namespace
        self.source = .random
    }

    private init(namespace: Namespace, source: Source) {
        self.namespace = namespace
        self.source = source
    }

    /// A generator for tests: the n-th id has timestamp `start + n` and entropy `seed_00000n`,
    /// so the same calls give the same ids on every run.
    public static func deterministic(startingAt start: Int64 = 0, namespace: Namespace = .singleGlobal) -> CanonicalIdGenerator {
        CanonicalIdGenerator(namespace: namespace, source: .deterministic(start: start))
    }

    /// The next id of a kind, such as `entity`, with an optional subkind, such as `salesorder`.
    ///
    /// - Precondition: `kind` and `subkind` are valid labels; they are names in code, so a bad
    ///   one is a programming error, as misuse is in GRDB.
    public func next(kind: String, subkind: String? = nil) -> String {
        guard let kind = try? Self.label(kind, "kind"), subkind.map({ (try? Self.label($0, "subkind")) != nil }) ?? true else {
            preconditionFailure("invalid CanonicalId kind \(kind) or subkind \(subkind ?? "")")
        }
        let normalizedSubkind = subkind.flatMap { try? Self.label($0, "subkind") }
        let (millis, entropy): (Int64, String)
        switch source {
        case .random:
            millis = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            entropy = Self.base62(UUID())
        case let .deterministic(start):
            let n = counter.add(1, ordering: .relaxed).newValue
            millis = start + n
            entropy = "seed_" + String(repeating: "0", count: max(0, 6 - String(n).count)) + String(n)
        }
        var parts = [namespace.major, namespace.minor, kind]
        if let normalizedSubkind { parts.append(normalizedSubkind) }
        parts += [String(millis), entropy]
        return parts.joined(separator: "-")
    }

    /// Normalises a label: lowercase, `-` and `.` to `_`, at most 64 characters, then checks it.
    static func label(_ text: String, _ what: String) throws(StoreError) -> String {
        let normalized = String(text.lowercased().map { $0 == "-" || $0 == "." ? "_" : $0 }.prefix(64))
        guard let first = normalized.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic,
              normalized.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") })
        else {
            throw StoreError(.invalidArgument, "the \(what) '\(text)' is not a CanonicalId label (a letter, then letters, digits or _)")
        }
        return normalized
    }

    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    /// A UUID's 128 bits in base 62: 22 characters, padded so every id has the same length.
    static func base62(_ uuid: UUID) -> String {
        var (high, low) = withUnsafeBytes(of: uuid.uuid) { bytes in
            (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self).bigEndian, bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).bigEndian)
        }
        var digits: [Character] = []
        for _ in 0..<22 {
            // Divide the 128-bit value (high, low) by 62, keeping the remainder.
            let highQuotient = high / 62
            let highRemainder = high % 62
            let (lowQuotient, remainder) = UInt64(62).dividingFullWidth((high: highRemainder, low: low))
            high = highQuotient
            low = lowQuotient
            digits.append(alphabet[Int(remainder)])
        }
        return String(digits.reversed())
    }
}
