// The child process of the SIGKILL crash tests (Tests/AggregateStoreEngineTests/CrashSuiteSIGKILLTests.swift).
//
//     AggregateStoreCrashChild STORE_DIR SEED START_SEQUENCE [SEGMENT_SIZE]
//
// Opens the store (synchronous durability; segment size 8192 by default, so rolls are frequent)
// and commits `CrashWorkload(seed: SEED).batch(k)` for k = START_SEQUENCE, START_SEQUENCE + 1, ...
// until it is killed. Around each commit it reports to the parent on stdout, with one unbuffered
// `write(2)` per line (atomic on a pipe), so nothing is lost in a buffer when the process dies:
//
//     I k            commit k is about to be issued
//     A k            commit k was acknowledged
//     E k message    commit k (or the open, k = START_SEQUENCE) failed; the child exits 1
//
// With AGGSTORE_CRASH_POINT=name[@N] in its environment, a debug build kills itself at that
// crash point (Sources/AggregateStoreEngine/Engine/CrashPoints.swift).
import AggregateStoreEngine
import AggregateStoreTestKit
import Logging
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a whole line to stdout with raw `write` calls: no buffering, retried on EINTR.
func report(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(UInt8(ascii: "\n"))
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
        if written < 0 {
            if errno == EINTR { continue }
            exit(2)  // The parent is gone; nothing left to report to.
        }
        offset += written
    }
}

func fail(_ sequence: UInt64, _ message: String) -> Never {
    // One line: the parent parses it.
    report("E \(sequence) \(message.split(whereSeparator: \.isNewline).joined(separator: " "))")
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count == 4 || arguments.count == 5,
      let seed = UInt64(arguments[2]), let start = UInt64(arguments[3]), start >= 1,
      let segmentSize = arguments.count == 5 ? Int(arguments[4]) : 8192 else {
    let usage = "usage: AggregateStoreCrashChild STORE_DIR SEED START_SEQUENCE [SEGMENT_SIZE]\n"
    _ = usage.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
    exit(64)
}

var configuration = EngineConfiguration()
configuration.durability = .synchronous
configuration.segmentSize = segmentSize
// Compaction renames nothing but replaces segments; the kill tests count segment files.
configuration.compaction.isAutomatic = false
var logger = Logger(label: "crash-child", factory: { StreamLogHandler.standardError(label: $0) })
logger.logLevel = .warning

let engine: StorageEngine
do {
    engine = try StorageEngine.open(at: arguments[1], configuration: configuration, logger: logger)
} catch {
    fail(start, "open: \(error)")
}
guard engine.lastSequence == start - 1 else {
    fail(start, "the store holds commits up to \(engine.lastSequence), expected START_SEQUENCE - 1 = \(start - 1)")
}

let workload = CrashWorkload(seed: seed)
var sequence = start
while true {
    report("I \(sequence)")
    do {
        let receipt = try engine.commit(workload.batch(sequence))
        guard receipt.sequence == sequence else {
            fail(sequence, "commit was given sequence \(receipt.sequence)")
        }
    } catch {
        fail(sequence, "commit: \(error)")
    }
    report("A \(sequence)")
    sequence += 1
}
