import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import InMemoryLogging
import Logging
import Synchronization

/// A logger that drops everything, so expected warnings do not clutter the test output.
let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// A logger that keeps its entries for assertions.
func recordingLogger() -> (Logger, InMemoryLogHandler) {
    let handler = InMemoryLogHandler()
    return (Logger(label: "test", factory: { _ in handler }), handler)
}

/// Deterministic record bytes for (table, id, round): some compressible, some not.
func recordBytes(_ id: String, round: Int = 0, size: Int = 200) -> [UInt8] {
    var generator = SplitMix64(seed: id.utf8.reduce(0xCBF2_9CE4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01B3 } &+ UInt64(round))
    let text = Array("order \(id) round \(round) ".utf8)
    return (0..<size).map { index in index % 3 == 0 ? UInt8(truncatingIfNeeded: generator.next()) : text[index % text.count] }
}

/// A batch that puts one order with a customer foreign key and emits one event.
func orderBatch(_ number: Int, customer: Int = 1, expecting: VersionExpectation = .any, size: Int = 200) -> WriteBatch {
    var batch = WriteBatch(unitOfWorkId: "uow-\(number)")
    let id = "SO-\(number)"
    batch.put(table: "SalesOrder", id: id, record: recordBytes(id, size: size),
              foreignKeys: [ForeignKey(field: "customerId", value: "C-\(customer)")], expecting: expecting)
    batch.append(OutboxEvent(id: "ev-\(number)", type: "SalesOrderPlaced", aggregateTable: "SalesOrder",
                             aggregateId: id, occurredAt: 1_700_000_000_000_000 + Int64(number), payload: Array("{}".utf8)))
    return batch
}


/// Opens a store on the real file system with test-friendly defaults: no automatic
/// compaction, so segment files stay where a test put them, and no index snapshot at close,
/// so the next open reads (and checks) the whole log the test may have damaged.
///
/// Other tests spawn child processes, and between fork and exec a child holds copies of every
/// descriptor, including a just-closed store's lock: the engine's open tries a held lock again
/// for about half a second, so a close followed at once by a reopen finds it free.
func openStore(_ path: String, segmentSize: Int = 64 << 20, readOnly: Bool = false,
               durability: Durability = .synchronous, logger: Logger = quietLogger,
               automaticCompaction: Bool = false,
               snapshot: Bool = false) throws(StoreError) -> StorageEngine {
    var configuration = EngineConfiguration()
    configuration.compaction.isAutomatic = automaticCompaction
    configuration.writesIndexSnapshot = snapshot
    configuration.segmentSize = segmentSize
    configuration.readOnly = readOnly
    configuration.durability = durability
    return try StorageEngine.open(at: path, configuration: configuration, logger: logger)
}

/// Reads, edits and writes back a file's bytes (damage at rest).
func editFile(_ path: String, _ edit: (inout [UInt8]) -> Void) throws {
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    edit(&bytes)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func fileBytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1
}

/// The first segment's path in a store.
func segmentPath(_ store: String, _ id: UInt64 = 1) -> String {
    (store as NSString).appendingPathComponent(String(format: "%08llu.seg", id))
}

/// The byte ranges of the frames of a segment file's bytes, in order (every header must
/// verify), up to the zeros a running store writes ahead of its frames.
func frameRanges(_ bytes: [UInt8]) throws -> [Range<Int>] {
    var frames: [Range<Int>] = []
    var offset = Format.segmentHeaderLength
    while offset < bytes.count, !bytes[offset...].allSatisfy({ $0 == 0 }) {
        let length = try bytes.withUnsafeBytes { try Frame.parseHeader(UnsafeRawBufferPointer(rebasing: $0[offset...])).get().frameLength }
        frames.append(offset..<offset + length)
        offset += length
    }
    return frames
}

/// A copy of a store's files, taken while it is open: what a killed process leaves behind.
func copyOfStore(_ directory: TemporaryDirectory) throws -> TemporaryDirectory {
    let copy = TemporaryDirectory()
    for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
        try FileManager.default.copyItem(atPath: directory.path(name), toPath: copy.path(name))
    }
    return copy
}

/// A closure running on a thread of its own, whose result the test waits for.
final class Background<Value: Sendable>: Sendable {
    private let outcomeSlot = Mutex<Result<Value, StoreError>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws(StoreError) -> Value) {
        let thread = Thread { [self] in
            let result = Result { () throws(StoreError) in try body() }
            outcomeSlot.withLock { $0 = result }
            done.signal()
        }
        thread.start()
    }

    /// Whether the closure has returned or thrown.
    var isFinished: Bool { outcomeSlot.withLock { $0 != nil } }

    /// Waits for the closure's outcome; throws ``BackgroundTimeout`` after `timeout` seconds.
    func outcome(timeout: Double = 30) throws -> Result<Value, StoreError> {
        guard done.wait(timeout: .now() + timeout) == .success else { throw BackgroundTimeout() }
        done.signal()
        return outcomeSlot.withLock { $0! }
    }

    /// Waits for the closure and returns its value or throws its error.
    func result(timeout: Double = 30) throws -> Value {
        try outcome(timeout: timeout).get()
    }
}

struct BackgroundTimeout: Error {}

/// Polls `condition` until it holds (failing after 10 seconds).
func waitUntil(_ condition: () -> Bool) throws {
    let deadline = Date().addingTimeInterval(10)
    while !condition() {
        guard Date() < deadline else { throw BackgroundTimeout() }
        usleep(500)
    }
}

/// The end of the last frame in a segment file's bytes: where the next frame goes (the file
/// of a running store may hold zeros after it).
func endOfFrames(_ bytes: [UInt8]) throws -> Int {
    try frameRanges(bytes).last?.upperBound ?? Format.segmentHeaderLength
}
