import AggregateStoreEngine
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// Random bytes drawn from the system's generator a page at a time, so that an id costs no
    /// system call.
    private let entropy = Mutex(EntropyPool())

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
        guard let kind = try? Self.label(kind, "kind") else { preconditionFailure("invalid CanonicalId kind \(kind)") }
        let normalizedSubkind: String?
        if let subkind {
            guard let label = try? Self.label(subkind, "subkind") else { preconditionFailure("invalid CanonicalId subkind \(subkind)") }
            normalizedSubkind = label
        } else {
            normalizedSubkind = nil
        }
        switch source {
        case .random:
            let millis = currentMicroseconds() / 1000
            return Self.id(namespace, kind, normalizedSubkind, millis: millis, entropy: entropy.withLock { $0.next() })
        case let .deterministic(start):
            let n = counter.add(1, ordering: .relaxed).newValue
            let entropy = "seed_" + String(repeating: "0", count: max(0, 6 - String(n).count)) + String(n)
            return [namespace.major, namespace.minor, kind, normalizedSubkind, String(start + n), entropy]
                .compactMap { $0 }.joined(separator: "-")
        }
    }

    /// `major-minor-kind[-subkind]-millis-entropy`, written byte by byte into one string: a unit
    /// of work takes two ids, and building each by concatenation cost three times the encoding
    /// of its event (callgrind: 6,200 instructions an id, against 4,000 now). A clock before
    /// 1970 writes 0 milliseconds: a negative number would put an extra `-` in the id.
    private static func id(_ namespace: Namespace, _ kind: String, _ subkind: String?, millis: Int64,
                           entropy: (high: UInt64, low: UInt64)) -> String {
        var labels = [namespace.major, namespace.minor, kind]
        if let subkind { labels.append(subkind) }
        var digits: [UInt8] = []
        var rest = UInt64(max(0, millis))
        repeat {
            digits.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        let length = labels.reduce(0) { $0 + $1.utf8.count + 1 } + digits.count + 1 + base62Length
        return String(unsafeUninitializedCapacity: length) { bytes in
            var at = 0
            for label in labels {
                for byte in label.utf8 {
                    bytes[at] = byte
                    at += 1
                }
                bytes[at] = UInt8(ascii: "-")
                at += 1
            }
            for digit in digits.reversed() {
                bytes[at] = digit
                at += 1
            }
            bytes[at] = UInt8(ascii: "-")
            at += 1
            writeBase62(entropy, into: UnsafeMutableBufferPointer(rebasing: bytes[at..<at + base62Length]))
            return length
        }
    }

    /// Normalises a label: lowercase, `-` and `.` to `_`, at most 64 characters, then checks it.
    static func label(_ text: String, _ what: String) throws(StoreError) -> String {
        // Kinds are names in code, already in normal form: checked byte by byte, not rebuilt.
        if isNormalized(text) { return text }
        let normalized = String(text.lowercased().map { $0 == "-" || $0 == "." ? "_" : $0 }.prefix(64))
        guard isNormalized(normalized) else {
            throw StoreError(.invalidArgument, "the \(what) '\(text)' is not a CanonicalId label (a letter, then letters, digits or _)")
        }
        return normalized
    }

    /// Whether `label` is 1-64 bytes: a lowercase ASCII letter, then lowercase ASCII letters,
    /// digits or `_`.
    private static func isNormalized(_ label: String) -> Bool {
        let utf8 = label.utf8
        guard let first = utf8.first, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), utf8.count <= 64 else { return false }
        return utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "_")
        }
    }

    /// The characters of 128 bits in base 62.
    private static var base62Length: Int { 22 }

    /// 128 bits in base 62: 22 characters, padded so every id has the same length.
    static func base62(_ bits: (high: UInt64, low: UInt64)) -> String {
        String(unsafeUninitializedCapacity: base62Length) { digits in
            writeBase62(bits, into: digits)
            return base62Length
        }
    }

    /// Writes 128 bits in base 62 (`0-9A-Za-z`) into the 22 bytes of `digits`.
    private static func writeBase62(_ bits: (high: UInt64, low: UInt64), into digits: UnsafeMutableBufferPointer<UInt8>) {
        var (high, low) = bits
        for index in (0..<base62Length).reversed() {
            // Divide the 128-bit value (high, low) by 62, keeping the remainder.
            let highQuotient = high / 62
            let highRemainder = high % 62
            let (lowQuotient, remainder) = UInt64(62).dividingFullWidth((high: highRemainder, low: low))
            high = highQuotient
            low = lowQuotient
            let digit = UInt8(remainder)
            digits[index] = digit < 10 ? UInt8(ascii: "0") + digit
                : digit < 36 ? UInt8(ascii: "A") + digit - 10
                : UInt8(ascii: "a") + digit - 36
        }
    }
}

/// Random bytes from the system's cryptographic generator (`arc4random_buf`), drawn a page at
/// a time.
private struct EntropyPool {
    private var bytes = [UInt8](repeating: 0, count: 4096)
    private var used = 4096

    /// The next 128 random bits.
    mutating func next() -> (high: UInt64, low: UInt64) {
        if used + 16 > bytes.count {
            bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
            used = 0
        }
        defer { used += 16 }
        return bytes.withUnsafeBytes { buffer in
            (buffer.loadUnaligned(fromByteOffset: used, as: UInt64.self), buffer.loadUnaligned(fromByteOffset: used + 8, as: UInt64.self))
        }
    }
}
