import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// The in-memory file system: the POSIX behaviours it shares, and its crash model.
@Suite struct InMemoryFileSystemTests {
    /// A file system with a durable `/db` directory.
    private func makeFileSystem(capacity: UInt64? = nil) throws -> InMemoryFileSystem {
        let fs = InMemoryFileSystem(capacity: capacity)
        try fs.createDirectory("/db")
        try fs.syncDirectory("/")
        return fs
    }

    /// Creates `path` holding `bytes`, optionally syncing the file and its directory.
    private func makeFile(
        _ fs: InMemoryFileSystem, _ path: String, _ bytes: [UInt8], syncFile: Bool = true, syncDirectory: Bool = true
    ) throws {
        let handle = try fs.open(path, mode: .createNew)
        try handle.write(bytes, at: 0)
        if syncFile { try handle.sync(.data) }
        try handle.close()
        if syncDirectory { try fs.syncDirectory("/db") }
    }

    // MARK: POSIX behaviours

    @Test func writeReadSizeTruncate() throws {
        let fs = try makeFileSystem()
        let handle = try fs.open("/db/data.log", mode: .createNew)
        #expect(handle.path == "/db/data.log")
        try handle.write(Array("hello, world".utf8), at: 0)
        try handle.write(Array("WORLD".utf8), at: 7)
        #expect(try handle.size() == 12)
        #expect(try handle.read(at: 0, count: 12) == Array("hello, WORLD".utf8))
        #expect(try handle.read(at: 10, count: 10) == Array("LD".utf8))
        #expect(try handle.read(at: 12, count: 10) == [])
        #expect(try handle.read(at: 99, count: 10) == [])
        try handle.write([9], at: 14)
        #expect(try handle.read(at: 11, count: 10) == [UInt8(ascii: "D"), 0, 0, 9])
        try handle.truncate(to: 5)
        #expect(try handle.read(at: 0, count: 100) == Array("hello".utf8))
        try handle.truncate(to: 7)
        #expect(try handle.read(at: 0, count: 100) == Array("hello".utf8) + [0, 0])
        try handle.sync(.full)
        try handle.close()
        #expect(fs.openHandleCount == 0)

        let reader = try fs.open("db/data.log/", mode: .readOnly)
        #expect(try reader.size() == 7)
        #expect(throws: StoreError.self) { try reader.write([1], at: 0) }
        #expect(throws: StoreError.self) { try reader.truncate(to: 0) }
        try reader.close()
    }

    @Test func largeWriteReadsBackExactly() throws {
        let fs = try makeFileSystem()
        let bytes = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 ^ ($0 >> 8) ^ ($0 >> 16)) }
        let handle = try fs.open("/db/big", mode: .createNew)
        try handle.write(bytes, at: 0)
        #expect(try handle.read(at: 0, count: bytes.count) == bytes)
        #expect(fs.usedBytes == UInt64(bytes.count))
        try handle.close()
    }

    @Test func openModes() throws {
        let fs = try makeFileSystem()
        let missing = #expect(throws: StoreError.self) { try fs.open("/db/f", mode: .readOnly) }
        #expect(missing?.code == .notFound)
        #expect(missing?.path == "/db/f")
        #expect(throws: StoreError.self) { try fs.open("/db/f", mode: .readWrite) }
        let noParent = #expect(throws: StoreError.self) { try fs.open("/nope/f", mode: .createIfMissing) }
        #expect(noParent?.code == .notFound)

        try makeFile(fs, "/db/f", [1, 2, 3])
        let duplicate = #expect(throws: StoreError.self) { try fs.open("/db/f", mode: .createNew) }
        #expect(duplicate?.code == .duplicate)
        #expect(duplicate?.path == "/db/f")
        let handle = try fs.open("/db/f", mode: .createIfMissing)
        #expect(try handle.read(at: 0, count: 3) == [1, 2, 3])
        try handle.close()
        #expect(throws: StoreError.self) { try fs.open("/db", mode: .readOnly) }
    }

    @Test func directoriesRenameRemoveListAndKind() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/c", [3])
        try makeFile(fs, "/db/a", [1])
        try makeFile(fs, "/db/b", [2])
        try fs.createDirectory("/db/sub")
        #expect(try fs.listDirectory("/db") == ["a", "b", "c", "sub"])
        #expect(try fs.listDirectory("/") == ["db"])
        #expect(try fs.kind(of: "/") == .directory)
        #expect(try fs.kind(of: "/db/sub/") == .directory)
        #expect(try fs.kind(of: "/db/./a") == .file)
        #expect(try fs.kind(of: "/db/zzz") == .missing)
        #expect(try fs.kind(of: "/db/a/b") == .missing)

        #expect((#expect(throws: StoreError.self) { try fs.createDirectory("/db/sub") })?.code == .duplicate)
        #expect((#expect(throws: StoreError.self) { try fs.createDirectory("/x/y") })?.code == .notFound)
        #expect((#expect(throws: StoreError.self) { try fs.listDirectory("/x") })?.code == .notFound)
        #expect((#expect(throws: StoreError.self) { try fs.syncDirectory("/x") })?.code == .notFound)
        #expect(throws: StoreError.self) { try fs.listDirectory("/db/a") }

        try fs.rename("/db/a", to: "/db/b")
        #expect(try fs.listDirectory("/db") == ["b", "c", "sub"])
        #expect(fs.bytes(of: "/db/b") == [1])
        #expect((#expect(throws: StoreError.self) { try fs.rename("/db/a", to: "/db/b") })?.code == .notFound)
        #expect(throws: StoreError.self) { try fs.rename("/db/b", to: "/db/sub") }
        try fs.rename("/db/b", to: "/db/sub/b")
        #expect(fs.fileNames(in: "/db/sub") == ["b"])

        try fs.removeFile("/db/c")
        #expect(try fs.kind(of: "/db/c") == .missing)
        #expect((#expect(throws: StoreError.self) { try fs.removeFile("/db/c") })?.code == .notFound)
        #expect(throws: StoreError.self) { try fs.removeFile("/db/sub") }
    }

    @Test func removedFileStaysReadableThroughOpenHandle() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/f", [1, 2])
        let handle = try fs.open("/db/f", mode: .readOnly)
        try fs.removeFile("/db/f")
        #expect(try handle.read(at: 0, count: 2) == [1, 2])
        #expect(fs.usedBytes == 2)
        try handle.close()
        #expect(fs.usedBytes == 0)
    }

    @Test func freeSpace() throws {
        #expect(try InMemoryFileSystem().freeSpace(at: "/") == InMemoryFileSystem.defaultFreeSpace)
        let limited = try makeFileSystem(capacity: 100)
        try makeFile(limited, "/db/f", [UInt8](repeating: 7, count: 30))
        #expect(try limited.freeSpace(at: "/db") == 70)
        limited.reportedFreeSpace = 5
        #expect(try limited.freeSpace(at: "/db") == 5)
        #expect((#expect(throws: StoreError.self) { try limited.freeSpace(at: "/x") })?.code == .notFound)
    }

    // MARK: Crash model

    @Test func crashKeepsOnlySyncedBytes() throws {
        let fs = try makeFileSystem()
        let handle = try fs.open("/db/log", mode: .createNew)
        try fs.syncDirectory("/db")
        try handle.write([1, 2, 3], at: 0)
        try handle.sync(.data)
        try handle.write([4, 5], at: 3)
        #expect(fs.bytes(of: "/db/log") == [1, 2, 3, 4, 5])
        #expect(fs.durableBytes(of: "/db/log") == [1, 2, 3])
        #expect(fs.snapshotDurable() == ["/db/log": [1, 2, 3]])
        fs.crash()
        #expect(fs.bytes(of: "/db/log") == [1, 2, 3])
        #expect(fs.usedBytes == 3)
    }

    @Test func crashForgetsTruncateAfterSync() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/log", [1, 2, 3, 4])
        let handle = try fs.open("/db/log", mode: .readWrite)
        try handle.truncate(to: 1)
        fs.crash()
        #expect(fs.bytes(of: "/db/log") == [1, 2, 3, 4])
    }

    /// Random writes, truncates and syncs against a model that copies the whole file on sync,
    /// since the file system copies only what changed since the last sync.
    @Test func incrementalSyncMatchesWholeFileModel() throws {
        let fs = try makeFileSystem()
        let handle = try fs.open("/db/f", mode: .createNew)
        var generator = SplitMix64(seed: 42)
        var volatile: [UInt8] = [], durable: [UInt8] = []
        for step in 0..<2_000 {
            switch generator.next() % 4 {
            case 0, 1:
                let offset = Int(generator.next() % UInt64(volatile.count + 8))
                let bytes = (0..<Int(generator.next() % 16)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                try handle.write(bytes, at: UInt64(offset))
                if volatile.count < offset + bytes.count {
                    volatile += [UInt8](repeating: 0, count: offset + bytes.count - volatile.count)
                }
                volatile.replaceSubrange(offset..<offset + bytes.count, with: bytes)
            case 2:
                let size = Int(generator.next() % UInt64(volatile.count + 8))
                try handle.truncate(to: UInt64(size))
                volatile = size <= volatile.count
                    ? Array(volatile[..<size]) : volatile + [UInt8](repeating: 0, count: size - volatile.count)
            default:
                try handle.sync(.data)
                durable = volatile
            }
            #expect(fs.bytes(of: "/db/f") == volatile, "step \(step)")
            #expect(fs.durableBytes(of: "/db/f") == durable, "step \(step)")
        }
        try handle.close()
    }

    @Test func createdFileWithoutDirectorySyncDisappears() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/new", [1, 2, 3], syncFile: true, syncDirectory: false)
        #expect(fs.fileNames(in: "/db") == ["new"])
        #expect(fs.fileNames(in: "/db", durable: true) == [])
        fs.crash()
        #expect(try fs.kind(of: "/db/new") == .missing)
        #expect(try fs.listDirectory("/db") == [])
        #expect(fs.usedBytes == 0)
    }

    @Test func directorySyncWithoutFileSyncLeavesEmptyFile() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/new", [1, 2, 3], syncFile: false, syncDirectory: true)
        fs.crash()
        #expect(fs.bytes(of: "/db/new") == [])
    }

    @Test func directoryCreatedWithoutParentSyncDisappears() throws {
        let fs = InMemoryFileSystem()
        try fs.createDirectory("/db")
        try makeFile(fs, "/db/f", [1])
        fs.crash()
        #expect(try fs.kind(of: "/db") == .missing)
    }

    @Test func renameWithoutDirectorySyncIsUndone() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/CURRENT", [1])
        try makeFile(fs, "/db/CURRENT.tmp", [2])
        try fs.rename("/db/CURRENT.tmp", to: "/db/CURRENT")
        #expect(fs.bytes(of: "/db/CURRENT") == [2])
        fs.crash()
        #expect(fs.bytes(of: "/db/CURRENT") == [1])
        #expect(fs.bytes(of: "/db/CURRENT.tmp") == [2])

        try fs.rename("/db/CURRENT.tmp", to: "/db/CURRENT")
        try fs.syncDirectory("/db")
        fs.crash()
        #expect(fs.bytes(of: "/db/CURRENT") == [2])
        #expect(try fs.listDirectory("/db") == ["CURRENT"])
    }

    @Test func renameMadeDurableOnlyAtDestinationLeavesTwoNames() throws {
        let fs = try makeFileSystem()
        try fs.createDirectory("/db/archive")
        try fs.syncDirectory("/db")
        try makeFile(fs, "/db/segment", [7])
        try fs.rename("/db/segment", to: "/db/archive/segment")
        try fs.syncDirectory("/db/archive")
        #expect(fs.snapshotDurable() == ["/db/segment": [7], "/db/archive/segment": [7]])
        fs.crash()
        #expect(fs.bytes(of: "/db/segment") == [7])
        #expect(fs.bytes(of: "/db/archive/segment") == [7])
    }

    @Test func removalWithoutDirectorySyncIsUndone() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/old", [1, 2])
        try fs.removeFile("/db/old")
        #expect(fs.usedBytes == 0)
        fs.crash()
        #expect(fs.bytes(of: "/db/old") == [1, 2])
        try fs.removeFile("/db/old")
        try fs.syncDirectory("/db")
        fs.crash()
        #expect(try fs.kind(of: "/db/old") == .missing)
    }

    @Test func handlesOpenedBeforeCrashThrow() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/f", [1])
        let handle = try fs.open("/db/f", mode: .readWrite)
        fs.crash()
        #expect(fs.openHandleCount == 0)
        let error = #expect(throws: StoreError.self) { try handle.read(at: 0, count: 1) }
        #expect(error?.code == .io)
        #expect(error?.message == "handle invalidated by crash")
        #expect(throws: StoreError.self) { try handle.write([2], at: 0) }
        #expect(throws: StoreError.self) { try handle.sync(.full) }
        #expect(throws: StoreError.self) { try handle.size() }
        #expect(throws: StoreError.self) { try handle.truncate(to: 0) }
        #expect(throws: StoreError.self) { try handle.tryLock(exclusive: true) }
        #expect(throws: StoreError.self) { try handle.close() }
        #expect(fs.bytes(of: "/db/f") == [1])

        let fresh = try fs.open("/db/f", mode: .readWrite)
        #expect(try fresh.read(at: 0, count: 1) == [1])
        try fresh.close()
    }

    @Test func capacityFailsWritesWithNoSpaceAndWritesNothing() throws {
        let fs = try makeFileSystem(capacity: 10)
        let handle = try fs.open("/db/f", mode: .createNew)
        try handle.write([UInt8](repeating: 1, count: 8), at: 0)
        let error = #expect(throws: StoreError.self) { try handle.write([2, 2, 2], at: 8) }
        #expect(error?.code == .noSpace)
        #expect(error?.path == "/db/f")
        #expect(try handle.size() == 8)
        #expect(fs.bytes(of: "/db/f") == [UInt8](repeating: 1, count: 8))
        #expect((#expect(throws: StoreError.self) { try handle.truncate(to: 11) })?.code == .noSpace)
        try handle.write([3, 3], at: 6)  // overwriting needs no space
        try handle.write([4, 4], at: 8)
        #expect(try handle.size() == 10)
        try handle.truncate(to: 4)
        try handle.write([5, 5], at: 4)
        fs.capacity = nil
        try handle.write([UInt8](repeating: 6, count: 100), at: 6)
        try handle.close()
    }

    @Test func corruptionAtRestSurvivesCrash() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/f", [1, 2, 3, 4])
        try fs.corrupt(path: "/db/f", at: 1, with: [0xFF])
        #expect(fs.bytes(of: "/db/f") == [1, 0xFF, 3, 4])
        fs.crash()
        #expect(fs.bytes(of: "/db/f") == [1, 0xFF, 3, 4])
        try fs.setBytes([1, 0xFF], of: "/db/f")
        fs.crash()
        #expect(fs.bytes(of: "/db/f") == [1, 0xFF])
        #expect((#expect(throws: StoreError.self) { try fs.corrupt(path: "/db/x", at: 0, with: [1]) })?.code == .notFound)
    }

    // MARK: Locks

    @Test func locksConflictAcrossHandlesAndAreReleased() throws {
        let fs = try makeFileSystem()
        let first = try fs.open("/db/LOCK", mode: .createIfMissing)
        let second = try fs.open("/db/LOCK", mode: .createIfMissing)
        #expect(try first.tryLock(exclusive: true))
        #expect(try first.tryLock(exclusive: true))  // converting one's own lock is fine
        #expect(try !second.tryLock(exclusive: true))
        #expect(try !second.tryLock(exclusive: false))
        try first.close()
        #expect(try second.tryLock(exclusive: false))
        let third = try fs.open("/db/LOCK", mode: .readOnly)
        #expect(try third.tryLock(exclusive: false))
        #expect(try !third.tryLock(exclusive: true))
        try second.close()
        #expect(try third.tryLock(exclusive: true))
        try third.close()
    }

    @Test func crashReleasesLocks() throws {
        let fs = try makeFileSystem()
        try makeFile(fs, "/db/LOCK", [])
        let holder = try fs.open("/db/LOCK", mode: .readWrite)
        #expect(try holder.tryLock(exclusive: true))
        fs.crash()
        let next = try fs.open("/db/LOCK", mode: .readWrite)
        #expect(try next.tryLock(exclusive: true))
        try next.close()
    }

    @Test func droppedHandleReleasesItsLock() throws {
        let fs = try makeFileSystem()
        do {
            let dropped = try fs.open("/db/LOCK", mode: .createIfMissing)
            #expect(try dropped.tryLock(exclusive: true))
        }
        #expect(fs.openHandleCount == 0)
        let handle = try fs.open("/db/LOCK", mode: .readWrite)
        #expect(try handle.tryLock(exclusive: true))
        try handle.close()
    }

    @Test func concurrentWritersToDistinctFiles() async throws {
        let fs = try makeFileSystem()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    let handle = try fs.open("/db/file-\(task)", mode: .createNew)
                    for chunk in 0..<100 { try handle.write([UInt8(task)], at: UInt64(chunk)) }
                    try handle.sync(.data)
                    try handle.close()
                }
            }
            try await group.waitForAll()
        }
        try fs.syncDirectory("/db")
        fs.crash()
        #expect(try fs.listDirectory("/db").count == 8)
        #expect(fs.bytes(of: "/db/file-3") == [UInt8](repeating: 3, count: 100))
    }
}

