// These tests drive the debug-only syscall mock; release builds compile them out with it.
#if ENABLE_SYSCALL_MOCKING
@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// The POSIX file system retries `EINTR`, completes short transfers and reports real failures,
/// proven by planting those outcomes under it (swift-system's `testSyscalls` approach).
@Suite("POSIX retries and short transfers")
struct SyscallRetryTests {
    private func openFile(_ directory: TemporaryDirectory) throws -> PosixFileHandle {
        try #require(try PosixFileSystem().open(directory.path("file"), mode: .createNew) as? PosixFileHandle)
    }

    @Test func writesRetryInterruptsAndCompleteShortWrites() throws {
        let directory = TemporaryDirectory()
        let handle = try openFile(directory)
        defer { SyscallMock.reset(handle.fileDescriptor); try? handle.close() }
        let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        SyscallMock.plan(.pwrite, on: handle.fileDescriptor, [.interrupted, .short(1), .interrupted, .short(4095), .short(3)])
        try handle.write(bytes, at: 0)
        #expect(SyscallMock.pending(.pwrite, on: handle.fileDescriptor) == 0)
        #expect(try handle.read(at: 0, count: 20_000) == bytes)
    }

    @Test func readsRetryInterruptsAndCompleteShortReads() throws {
        let directory = TemporaryDirectory()
        let handle = try openFile(directory)
        defer { SyscallMock.reset(handle.fileDescriptor); try? handle.close() }
        let bytes = (0..<5000).map { UInt8(truncatingIfNeeded: $0) }
        try handle.write(bytes, at: 0)
        SyscallMock.plan(.pread, on: handle.fileDescriptor, [.short(10), .interrupted, .short(1), .interrupted])
        #expect(try handle.read(at: 0, count: 5000) == bytes)
        #expect(SyscallMock.pending(.pread, on: handle.fileDescriptor) == 0)
    }

    @Test func syncTruncateAndLockRetryInterrupts() throws {
        let directory = TemporaryDirectory()
        let handle = try openFile(directory)
        defer { SyscallMock.reset(handle.fileDescriptor); try? handle.close() }
        try handle.write([1, 2, 3, 4], at: 0)
        SyscallMock.plan(.fdatasync, on: handle.fileDescriptor, [.interrupted, .interrupted])
        SyscallMock.plan(.fsync, on: handle.fileDescriptor, [.interrupted])
        SyscallMock.plan(.ftruncate, on: handle.fileDescriptor, [.interrupted])
        SyscallMock.plan(.flock, on: handle.fileDescriptor, [.interrupted])
        try handle.sync(.data)
        try handle.sync(.full)
        try handle.truncate(to: 2)
        #expect(try handle.tryLock(exclusive: true))
        #expect(try handle.size() == 2)
        for call in [SyscallMock.Call.fdatasync, .fsync, .ftruncate, .flock] {
            #expect(SyscallMock.pending(call, on: handle.fileDescriptor) == 0, "\(call)")
        }
    }

    @Test func realFailuresAreReportedWithTheirErrnoAndNotRetried() throws {
        let directory = TemporaryDirectory()
        let handle = try openFile(directory)
        defer { SyscallMock.reset(handle.fileDescriptor); try? handle.close() }
        SyscallMock.plan(.fdatasync, on: handle.fileDescriptor, [.failure(5), .failure(5)])
        let syncError = #expect(throws: StoreError.self) { try handle.sync(.data) }
        #expect(syncError?.code == .io && syncError?.errno == 5 && syncError?.path == handle.path)
        #expect(SyscallMock.pending(.fdatasync, on: handle.fileDescriptor) == 1, "a failed fsync is not retried")

        SyscallMock.plan(.pwrite, on: handle.fileDescriptor, [.short(2), .failure(28)])
        let writeError = #expect(throws: StoreError.self) { try handle.write([1, 2, 3, 4, 5], at: 0) }
        #expect(writeError?.code == .noSpace && writeError?.errno == 28)
        #expect(try handle.size() == 2, "the short prefix was written before the failure")

        SyscallMock.plan(.pwrite, on: handle.fileDescriptor, [.short(0)])
        #expect(throws: StoreError.self) { try handle.write([1], at: 0) }
    }
}
#endif
