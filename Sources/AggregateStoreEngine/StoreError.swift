/// The one error type thrown by AggregateStore.
///
/// A `StoreError` carries a ``Code`` that callers match on, a human-readable message and,
/// where it applies, the file and byte offset it concerns and the `errno` of a failed system call.
///
/// ```swift
/// do {
///     try engine.commit(batch)
/// } catch let error where error.code == .locked {
///     print("another process has the store open")
/// }
/// ```
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added in later versions.
    public var code: Code
    /// What happened, for people.
    public var message: String
    /// The file the error concerns, if any.
    public var path: String?
    /// The byte offset in ``path`` the error concerns, if any.
    public var offset: UInt64?
    /// The `errno` of the failed system call, if any.
    public var errno: Int32?

    /// Creates an error.
    public init(_ code: Code, _ message: String, path: String? = nil, offset: UInt64? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.offset = offset
        self.errno = errno
    }

    /// The code, message, file and offset, and errno, on one line.
    public var description: String {
        var text = "\(code): \(message)"
        if let path { text += " [file: \(path)" + (offset.map { ", offset: \($0)" } ?? "") + "]" }
        if let errno { text += " (errno \(errno))" }
        return text
    }

    /// The kind of a ``StoreError``: a struct over a private enum, so codes can be added
    /// without breaking exhaustive switches in callers (the swift-nio `FileSystemError` shape).
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case invalidArgument, recordTooLarge, closed, locked, corruption, io, noSpace
            case storeFailed, readOnly, notFound, duplicate, conflict, unsupportedFormat
        }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// An argument is malformed: an empty or invalid name or id, an unknown option.
        public static let invalidArgument = Code(.invalidArgument)
        /// A record or batch exceeds the configured maximum size.
        public static let recordTooLarge = Code(.recordTooLarge)
        /// The store was closed.
        public static let closed = Code(.closed)
        /// Another process or handle has the store open.
        public static let locked = Code(.locked)
        /// Stored bytes are damaged; ``StoreError/path`` and ``StoreError/offset`` say where.
        public static let corruption = Code(.corruption)
        /// A system call failed; ``StoreError/errno`` says how.
        public static let io = Code(.io)
        /// The disk or quota is full (`ENOSPC`, `EDQUOT`).
        public static let noSpace = Code(.noSpace)
        /// A durable write failed earlier (a failed fsync is final); reopen the store.
        public static let storeFailed = Code(.storeFailed)
        /// The store was opened read-only.
        public static let readOnly = Code(.readOnly)
        /// Something that must exist does not.
        public static let notFound = Code(.notFound)
        /// Creating something that already exists.
        public static let duplicate = Code(.duplicate)
        /// An optimistic-concurrency check failed: another commit changed the record.
        public static let conflict = Code(.conflict)
        /// The files were written by an unknown format version.
        public static let unsupportedFormat = Code(.unsupportedFormat)

        /// The code's name, such as `corruption`.
        public var description: String { "\(value)" }
    }
}

extension StoreError {
    /// Builds the error for a failed system call, classifying `ENOSPC`/`EDQUOT` as ``Code/noSpace``.
    package static func syscall(_ name: String, path: String?, errno: Int32) -> StoreError {
        let code: Code = (errno == 28 /* ENOSPC */ || errno == 122 /* EDQUOT */) ? .noSpace : .io
        return StoreError(code, "\(name) failed: \(systemErrorMessage(errno))", path: path, errno: errno)
    }

    /// Builds a corruption error naming the file and byte offset.
    package static func corruption(_ message: String, path: String, offset: UInt64) -> StoreError {
        StoreError(.corruption, message, path: path, offset: offset)
    }
}
