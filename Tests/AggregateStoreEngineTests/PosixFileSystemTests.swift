import AggregateStoreEngine
import Foundation
import Testing

/// The real file system, exercised in a fresh temporary directory per test.
@Suite struct PosixFileSystemTests {
    let fs = PosixFileSystem()

    /// Runs `body` with a new empty directory that is removed afterwards.
    private func withScratchDirectory(_ body: (String) throws -> Void) throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("aggstore-fs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try body(path)
    }

    @Test func writeReadSizeTruncateSync() throws {
        try withScratchDirectory { dir in
            let path = joinPath(dir, "data.log")
            let handle = try fs.open(path, mode: .createNew)
            #expect(handle.path == path)
            #expect(try handle.size() == 0)
            try handle.write(Array("hello, world".utf8), at: 0)
            try handle.write(Array("WORLD".utf8), at: 7)
            #expect(try handle.size() == 12)
            #expect(try handle.read(at: 0, count: 12) == Array("hello, WORLD".utf8))
            try handle.sync(.data)
            try handle.sync(.full)
            try handle.truncate(to: 5)
            #expect(try handle.size() == 5)
            #expect(try handle.read(at: 0, count: 100) == Array("hello".utf8))
            try handle.truncate(to: 8)
            #expect(try handle.read(at: 0, count: 8) == Array("hello".utf8) + [0, 0, 0])
            try handle.close()

            let reader = try fs.open(path, mode: .readOnly)
            #expect(try reader.read(at: 1, count: 4) == Array("ello".utf8))
            #expect(throws: StoreError.self) { try reader.write([1], at: 0) }
            try reader.close()
            try fs.syncDirectory(dir)
        }
    }

    @Test func openModes() throws {
        try withScratchDirectory { dir in
            let path = joinPath(dir, "file")
            let missing = #expect(throws: StoreError.self) { try fs.open(path, mode: .readOnly) }
            #expect(missing?.code == .notFound)
            #expect(missing?.path == path)
            #expect(missing?.errno != nil)
            #expect(throws: StoreError.self) { try fs.open(path, mode: .readWrite) }

            let created = try fs.open(path, mode: .createIfMissing)
            try created.write([1, 2, 3], at: 0)
            try created.close()

            let duplicate = #expect(throws: StoreError.self) { try fs.open(path, mode: .createNew) }
            #expect(duplicate?.code == .duplicate)
            #expect(duplicate?.path == path)

            let reopened = try fs.open(path, mode: .createIfMissing)
            #expect(try reopened.read(at: 0, count: 3) == [1, 2, 3])
            try reopened.close()
            let readWrite = try fs.open(path, mode: .readWrite)
            #expect(try readWrite.size() == 3)
            try readWrite.close()
        }
    }

    @Test func readPastEndReturnsFewerBytes() throws {
        try withScratchDirectory { dir in
            let handle = try fs.open(joinPath(dir, "f"), mode: .createNew)
            try handle.write([1, 2, 3, 4], at: 0)
            #expect(try handle.read(at: 2, count: 10) == [3, 4])
            #expect(try handle.read(at: 4, count: 10) == [])
            #expect(try handle.read(at: 1_000, count: 10) == [])
            #expect(try handle.read(at: 0, count: 0) == [])
            try handle.close()
        }
    }

    @Test func largeWriteReadsBackExactly() throws {
        try withScratchDirectory { dir in
            let handle = try fs.open(joinPath(dir, "big"), mode: .createNew)
            // A pattern that differs at every power-of-two stride, so misplaced chunks show.
            let bytes = (0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 ^ ($0 >> 8) ^ ($0 >> 16) ^ ($0 >> 21)) }
            try handle.write(bytes, at: 4096)
            try handle.sync(.full)
            #expect(try handle.size() == UInt64(bytes.count + 4096))
            #expect(try handle.read(at: 4096, count: bytes.count) == bytes)
            #expect(try handle.read(at: 0, count: 4096) == [UInt8](repeating: 0, count: 4096))
            try handle.close()
        }
    }

    @Test func renameReplacesAndRemove() throws {
        try withScratchDirectory { dir in
            let a = joinPath(dir, "a"), b = joinPath(dir, "b")
            for (path, byte) in [(a, UInt8(1)), (b, UInt8(2))] {
                let handle = try fs.open(path, mode: .createNew)
                try handle.write([byte], at: 0)
                try handle.close()
            }
            try fs.rename(a, to: b)
            try fs.syncDirectory(dir)
            #expect(try fs.kind(of: a) == .missing)
            let handle = try fs.open(b, mode: .readOnly)
            #expect(try handle.read(at: 0, count: 1) == [1])
            try handle.close()

            let missingSource = #expect(throws: StoreError.self) { try fs.rename(a, to: b) }
            #expect(missingSource?.code == .notFound)

            try fs.removeFile(b)
            #expect(try fs.kind(of: b) == .missing)
            let missing = #expect(throws: StoreError.self) { try fs.removeFile(b) }
            #expect(missing?.code == .notFound)
            #expect(missing?.path == b)
        }
    }

    @Test func directoriesListingAndKind() throws {
        try withScratchDirectory { dir in
            for name in ["c", "a", "b"] { try fs.open(joinPath(dir, name), mode: .createNew).close() }
            try fs.createDirectory(joinPath(dir, "sub"))
            #expect(try fs.listDirectory(dir) == ["a", "b", "c", "sub"])
            #expect(try fs.listDirectory(joinPath(dir, "sub")) == [])
            #expect(try fs.kind(of: joinPath(dir, "a")) == .file)
            #expect(try fs.kind(of: joinPath(dir, "sub")) == .directory)
            #expect(try fs.kind(of: dir + "/sub/") == .directory)
            #expect(try fs.kind(of: joinPath(dir, "nope")) == .missing)
            #expect(try fs.kind(of: joinPath(dir, "a/under-a-file")) == .missing)

            let duplicate = #expect(throws: StoreError.self) { try fs.createDirectory(joinPath(dir, "sub")) }
            #expect(duplicate?.code == .duplicate)
            let orphan = #expect(throws: StoreError.self) { try fs.createDirectory(joinPath(dir, "x/y")) }
            #expect(orphan?.code == .notFound)
            let listMissing = #expect(throws: StoreError.self) { try fs.listDirectory(joinPath(dir, "nope")) }
            #expect(listMissing?.code == .notFound)

            try fs.syncDirectory(joinPath(dir, "sub"))
            let syncMissing = #expect(throws: StoreError.self) { try fs.syncDirectory(joinPath(dir, "nope")) }
            #expect(syncMissing?.code == .notFound)
            #expect(throws: StoreError.self) { try fs.syncDirectory(joinPath(dir, "a")) }
        }
    }

    @Test func freeSpaceIsPositive() throws {
        try withScratchDirectory { dir in
            let free = try fs.freeSpace(at: dir)
            #expect(free > 0)
            let missing = #expect(throws: StoreError.self) { try fs.freeSpace(at: joinPath(dir, "nope")) }
            #expect(missing?.code == .notFound)
        }
    }

    @Test func locksConflictAcrossHandles() throws {
        try withScratchDirectory { dir in
            let path = joinPath(dir, "LOCK")
            let first = try fs.open(path, mode: .createIfMissing)
            let second = try fs.open(path, mode: .createIfMissing)
            #expect(try first.tryLock(exclusive: true))
            #expect(try !second.tryLock(exclusive: true))
            #expect(try !second.tryLock(exclusive: false))
            try first.close()
            #expect(try second.tryLock(exclusive: true))
            try second.close()

            let readers = try (0..<2).map { _ in try fs.open(path, mode: .readOnly) }
            #expect(try readers[0].tryLock(exclusive: false))
            #expect(try readers[1].tryLock(exclusive: false))
            let writer = try fs.open(path, mode: .readWrite)
            #expect(try !writer.tryLock(exclusive: true))
            for reader in readers { try reader.close() }
            #expect(try writer.tryLock(exclusive: true))
            try writer.close()
        }
    }

    @Test func droppedHandleReleasesItsLock() throws {
        try withScratchDirectory { dir in
            let path = joinPath(dir, "LOCK")
            do {
                let dropped = try fs.open(path, mode: .createIfMissing)
                #expect(try dropped.tryLock(exclusive: true))
            }
            let handle = try fs.open(path, mode: .readWrite)
            #expect(try handle.tryLock(exclusive: true))
            try handle.close()
        }
    }

    @Test func concurrentReadersShareOneHandle() async throws {
        try await withScratchDirectoryAsync { dir in
            let handle = try fs.open(joinPath(dir, "shared"), mode: .createNew)
            let bytes = (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            try handle.write(bytes, at: 0)
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for task in 0..<8 {
                    group.addTask {
                        let offset = task * 4096
                        return try handle.read(at: UInt64(offset), count: 4096) == Array(bytes[offset..<offset + 4096])
                    }
                }
                for try await matched in group { #expect(matched) }
            }
            try handle.close()
        }
    }

    private func withScratchDirectoryAsync(_ body: (String) async throws -> Void) async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("aggstore-fs-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: path) }
        try await body(path)
    }
}
