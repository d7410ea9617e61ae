@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Foundation
import Synchronization
import Testing

/// Group commit: concurrent commits share a write and an fsync, each keeps its own frame and
/// sequence number, is acknowledged only after the fsync that covers it, and is still checked
/// against the commits before it; readers never wait for the writer.
@Suite("Group commit")
struct GroupCommitTests {
    private func open(_ fileSystem: any FileSystem, segmentSize: Int = 64 << 20) throws(StoreError) -> StorageEngine {
        var configuration = EngineConfiguration()
        configuration.segmentSize = segmentSize
        return try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
    }

    /// Holds the first commit in its fsync, queues `batches` behind it, and releases them all:
    /// the first queued commit leads the next group and waits for the log, the rest queue
    /// behind it (a batch whose expectation fails is refused at once and never queues), and
    /// the leader takes them all as one group when it gets the log. `whileHeld` runs once the
    /// first commit is in its fsync.
    private func commitBehindAHeldFsync(_ engine: StorageEngine, _ fileSystem: FaultInjectingFileSystem,
                                        first: WriteBatch, queued batches: [WriteBatch], whileHeld: () -> Void = {})
        throws -> (first: Result<CommitReceipt, StoreError>, queued: [Result<CommitReceipt, StoreError>]) {
        fileSystem.pauseSyncs()
        let held = Background { () throws(StoreError) in try engine.commit(first) }
        try waitUntil { fileSystem.syncsWaiting == 1 }
        whileHeld()
        let leader = Background { () throws(StoreError) in try engine.commit(batches[0]) }
        // The leader has staged its commit and waits for the log, which the held group has.
        try waitUntil { engine.commitQueue.pendingCount == 1 }
        var rest: [Background<CommitReceipt>] = []
        for batch in batches.dropFirst() {
            rest.append(Background { () throws(StoreError) in try engine.commit(batch) })
        }
        try waitUntil { engine.commitQueue.pendingCount + rest.filter(\.isFinished).count == batches.count }
        fileSystem.resumeSyncs()
        return (try held.outcome(), try [leader.outcome()] + rest.map { try $0.outcome() })
    }

    @Test func commitsQueuedBehindAnFsyncShareTheNextOne() throws {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        let syncsBefore = fileSystem.count(.sync)
        let (first, queued) = try commitBehindAHeldFsync(engine, fileSystem, first: orderBatch(1),
                                                         queued: (2...11).map { orderBatch($0) })
        #expect(try first.get().groupSize == 1)
        let receipts = try queued.map { try $0.get() }
        #expect(receipts.allSatisfy { $0.groupSize == 10 })
        #expect(fileSystem.count(.sync) - syncsBefore == 2, "11 commits, 2 fsyncs")
        // Each commit has its own sequence number, dense.
        #expect(receipts.map(\.sequence).sorted() == Array(2...11))
        #expect(Set(receipts.map(\.eventPositions.lowerBound)).count == 10)
        #expect(try engine.verify().isHealthy)
        try engine.close()
        // Each is its own frame.
        let reopened = try open(fileSystem)
        #expect(reopened.recoveryReport.frames == 11)
        try reopened.close()
    }

    @Test func conflictsInsideAndAcrossGroupsAreStillDetected() throws {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1))
        // Five creations of one id, and two updates expecting the version it had before.
        var creations: [WriteBatch] = []
        for attempt in 0..<5 {
            var batch = WriteBatch(unitOfWorkId: "create-\(attempt)")
            batch.put(table: "SalesOrder", id: "SO-new", record: recordBytes("SO-new", round: attempt), expecting: .absent)
            creations.append(batch)
        }
        var updates: [WriteBatch] = []
        for attempt in 0..<2 {
            var batch = WriteBatch(unitOfWorkId: "update-\(attempt)")
            batch.put(table: "SalesOrder", id: "SO-1", record: recordBytes("SO-1", round: attempt + 1), expecting: .version(1))
            updates.append(batch)
        }
        let (_, queued) = try commitBehindAHeldFsync(engine, fileSystem, first: orderBatch(2), queued: creations + updates)
        // The first creation is staged and queued, not yet written: the others are checked
        // against it all the same, and refused before they queue.
        #expect((try? queued[0].get()) != nil)
        for outcome in queued[1..<5] {
            #expect(throws: StoreError.self) { try outcome.get() }
            if case let .failure(error) = outcome { #expect(error.code == .duplicate) }
        }
        // Of the two updates (in the same group, in either order), the first wins.
        let updateOutcomes = queued[5...]
        #expect(updateOutcomes.compactMap { try? $0.get().versions } == [[2]])
        for outcome in updateOutcomes {
            if case let .failure(error) = outcome { #expect(error.code == .conflict) }
        }
        #expect(try engine.version(table: "SalesOrder", id: "SO-1").version == 2)
        #expect(try engine.record(table: "SalesOrder", id: "SO-new")?.bytes == recordBytes("SO-new", round: 0))
        #expect(engine.lastSequence == 4, "refused commits take no sequence number")
        #expect(try engine.verify().isHealthy)
        try engine.close()
    }

    @Test func readersNeitherWaitForTheWriterNorSeeAnUnsyncedCommit() throws {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1))
        fileSystem.pauseSyncs()
        let held = Background { () throws(StoreError) in try engine.commit(orderBatch(2)) }
        try waitUntil { fileSystem.syncsWaiting == 1 }
        // The writer is inside its fsync, holding the log; reads go on and see the last
        // acknowledged state only.
        let reads = Background { () throws(StoreError) -> [String] in
            #expect(try engine.record(table: "SalesOrder", id: "SO-2") == nil)
            #expect(try engine.events(after: 0, limit: 10).count == 1)
            #expect(engine.lastSequence == 1)
            _ = try engine.statistics()
            return try engine.ids(table: "SalesOrder")
        }
        #expect(try reads.result(timeout: 10) == ["SO-1"])
        fileSystem.resumeSyncs()
        #expect(try held.result().sequence == 2)
        #expect(try engine.record(table: "SalesOrder", id: "SO-2") != nil)
        try engine.close()
    }

    @Test(arguments: [Int32(28), Int32(5)])
    func aFailedGroupWriteFailsTheGroupAndTheStoreGoesOn(errno: Int32) throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try open(fileSystem)
        // The held commit is written before the fault is planned; the next group's write fails.
        let (first, queued) = try commitBehindAHeldFsync(engine, fileSystem, first: orderBatch(1),
                                                         queued: (2...6).map { orderBatch($0) },
                                                         whileHeld: { fileSystem.inject(.write, errno: errno, pathContains: ".seg") })
        #expect(try first.get().sequence == 1)
        let expectedCode: StoreError.Code = errno == 5 ? .io : .noSpace
        if case let .failure(error) = queued[0] { #expect(error.code == expectedCode) } else { Issue.record("a failed write was acknowledged") }
        // The commits queued behind it were numbered before the failure, after the failed
        // commit: they fail too (a commit numbered after the failure would be written).
        let acknowledged = queued.compactMap { try? $0.get() }
        for outcome in queued {
            if case let .failure(error) = outcome { #expect(error.code == expectedCode) }
        }
        #expect(acknowledged.map(\.sequence).sorted() == Array(2..<(2 + UInt64(acknowledged.count))))
        // The store goes on without a reopen, right after the last good frame.
        let next = try engine.commit(orderBatch(7))
        #expect(next.sequence == 2 + UInt64(acknowledged.count))
        #expect(try engine.verify().isHealthy)
        try engine.close()
        memory.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == next.sequence)
        #expect(recovered.recoveryReport.tornTail == nil)
        #expect(try recovered.record(table: "SalesOrder", id: "SO-2") == nil)
        try recovered.close()
    }

    @Test func aFailedGroupFsyncStopsTheStoreAndRefusesTheGroupBehindIt() throws {
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        let engine = try open(fileSystem)
        try engine.commit(orderBatch(1))
        fileSystem.inject(.sync, errno: 5, pathContains: ".seg")
        let (first, queued) = try commitBehindAHeldFsync(engine, fileSystem, first: orderBatch(2),
                                                         queued: (3...6).map { orderBatch($0) })
        if case let .failure(error) = first { #expect(error.code == .io) } else { Issue.record("a commit whose fsync failed was acknowledged") }
        for outcome in queued {
            #expect(throws: StoreError.self) { try outcome.get() }
            if case let .failure(error) = outcome { #expect(error.code == .storeFailed) }
        }
        #expect(engine.lastSequence == 1)
        try engine.close()
        memory.crash()
        let recovered = try open(fileSystem)
        #expect(recovered.lastSequence == 1)
        try recovered.close()
    }

    @Test func commitsNumberedBeforeAFailedWriteAreRefusedAndTheNextFollowsTheLog() throws {
        // Review regression: commits numbered after a commit whose write failed must not be
        // written (their numbers follow it), and the writer's numbering must go back to the
        // log's: when it stayed one ahead, the next acknowledged commit left a sequence gap.
        let memory = InMemoryFileSystem()
        let fileSystem = FaultInjectingFileSystem(wrapping: memory)
        var configuration = EngineConfiguration()
        configuration.segmentSize = 4096
        configuration.compaction.isAutomatic = false
        let engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
        // Fill the active segment until exactly one more order frame fits, but not two.
        var number = 100
        var frame = try engine.commit(orderBatch(number)).frameBytes
        while true {
            let room = 4096 - Int(engine.log.withLock { $0.activeEnd })
            if room >= frame + 8 && room < 2 * frame - 8 { break }
            try #require(room >= frame + 8, "overshot: room \(room), frame \(frame)")
            number += 1
            frame = try engine.commit(orderBatch(number)).frameBytes
        }
        fileSystem.pauseSyncs()
        // A: two commits; the first fits and is held in its fsync, the second needs a roll.
        let held = Background { () -> [Result<CommitReceipt, StoreError>] in engine.commit(group: [orderBatch(1), orderBatch(2)]) }
        try waitUntil { fileSystem.syncsWaiting == 1 }
        let staged = engine.writer.withLock { $0.nextSequence }
        // B leads next, staged before the failure, and waits for the log; C queues behind it.
        let b = Background { () throws(StoreError) in try engine.commit(orderBatch(3)) }
        try waitUntil { engine.commitQueue.pendingCount == 1 && engine.writer.withLock { $0.nextSequence } == staged + 1 }
        let c = Background { () throws(StoreError) in try engine.commit(orderBatch(4)) }
        try waitUntil { engine.commitQueue.pendingCount == 2 }
        // The roll after A's first commit fails writing the new segment's header.
        fileSystem.inject(.write, errno: 28, pathContains: SegmentHeader.fileName(for: 2))
        fileSystem.resumeSyncs()
        let outcomes = try held.outcome().get()
        #expect((try? outcomes[0].get()) != nil)
        #expect((try? outcomes[1].get()) == nil)
        #expect((try? b.outcome().get()) == nil, "B was staged before the failure")
        #expect((try? c.outcome().get()) == nil, "so was C")
        fileSystem.clearFaults()
        // The writer's numbering is the log's; the next commits follow it without a gap.
        #expect(engine.writer.withLock { $0.nextSequence } == engine.log.withLock { $0.nextSequence })
        let next = try engine.commit(orderBatch(5))
        #expect(next.sequence == engine.lastSequence)
        #expect(try engine.verify().isHealthy)
        try engine.close()
        memory.crash()
        let reopened = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
        #expect(reopened.lastSequence == next.sequence)
        try reopened.close()
    }

    @Test func aGroupThatCrossesASegmentRollIsWrittenInBothSegments() throws {
        let fileSystem = FaultInjectingFileSystem(wrapping: InMemoryFileSystem())
        let engine = try open(fileSystem, segmentSize: 8192)
        let (_, queued) = try commitBehindAHeldFsync(engine, fileSystem, first: orderBatch(1, size: 400),
                                                     queued: (2...40).map { orderBatch($0, size: 400) })
        let receipts = try queued.map { try $0.get() }
        #expect(receipts.map(\.sequence).sorted() == Array(2...40))
        #expect(try engine.statistics().segments.count > 2)
        let report = try engine.verify()
        let segments = try engine.statistics().segments
        #expect(report.isHealthy, "\(report.problems) \(segments)")
        try engine.close()
        let reopened = try open(fileSystem, segmentSize: 8192)
        #expect(reopened.lastSequence == 40)
        try reopened.close()
    }

    // The test hook exists in debug builds only.
    #if ENABLE_SYSCALL_MOCKING
    @Test func theKeysOfAppliedCommitsAreSweptFromTheWriterInBulk() throws {
        // The writer remembers each staged commit's keys until a sweep finds it applied: the
        // memory stays bounded, and the keys of applied commits are checked against the index.
        let engine = try open(InMemoryFileSystem())
        let commits = 3 * StorageEngine.minimumInFlightSweepSize
        for number in 1...commits { try engine.commit(orderBatch(number, expecting: .absent)) }
        let remembered = engine.writer.withLock { $0.inFlight.count }
        #expect(remembered > 0 && remembered <= StorageEngine.minimumInFlightSweepSize)
        // A swept key and a remembered one are both still checked.
        #expect(throws: StoreError.self) { try engine.commit(orderBatch(1, expecting: .absent)) }
        #expect(throws: StoreError.self) { try engine.commit(orderBatch(commits, expecting: .version(2))) }
        #expect(try engine.commit(orderBatch(commits, expecting: .version(1))).versions == [2])
        #expect(try engine.commit(orderBatch(1, expecting: .version(1))).versions == [2])
        try engine.close()
    }

    @Test func eachCallerCachesItsOwnCommittedPayload() async throws {
        // The payloads are cached by the callers once woken, off the path that applies the
        // groups: by a blocking caller, a task and each batch of a group alike.
        let engine = try open(InMemoryFileSystem())
        let blocking: () throws -> CommitReceipt = { try engine.commit(orderBatch(1)) }
        _ = try blocking()
        try await engine.commit(orderBatch(2))
        for outcome in engine.commit(group: (3...5).map { orderBatch($0) }) { _ = try outcome.get() }
        #expect(engine.cache.usage.entries == 5)
        for number in 1...5 { #expect(try engine.record(table: "SalesOrder", id: "SO-\(number)") != nil) }
        #expect(engine.cache.usage.hits == 5)
        #expect(engine.cache.usage.misses == 0)
        try engine.close()
    }

    @Test func theLogDoesNotWaitForTheIndexesButGroupsAreAppliedInLogOrder() throws {
        // A group held before it is applied: the next groups are still written and fsynced
        // (the log is not held while they wait), but they are applied (visible, acknowledged)
        // only after the held one, in log order.
        let fileSystem = InMemoryFileSystem()
        let engine = try open(fileSystem)
        for number in 1...20 { try engine.commit(orderBatch(number)) }
        // The held group completes while the next one is written.
        engine.testHooks.overlapsGroups.withLock { $0 = true }
        let held = Atomic(false)
        let inWindow = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        engine.testHooks.beforeApplying.withLock { hook in
            hook = {
                guard !held.exchange(true, ordering: .relaxed) else { return }
                inWindow.signal()
                release.wait()
            }
        }
        defer { engine.testHooks.beforeApplying.withLock { $0 = nil } }
        let first = Background { () throws(StoreError) in try engine.commit(orderBatch(21)) }
        inWindow.wait()
        let framesBefore = try frameRanges(fileSystem.durableBytes(of: segmentPath("/store"))!).count
        func durableFrames() -> Int? { try? frameRanges(fileSystem.durableBytes(of: segmentPath("/store"))!).count }
        let second = Background { () throws(StoreError) in try engine.commit(orderBatch(22)) }
        try waitUntil { durableFrames() == framesBefore + 1 }
        let third = Background { () throws(StoreError) in try engine.commit(orderBatch(23)) }
        try waitUntil { durableFrames() == framesBefore + 2 }
        // Durable, yet neither visible nor acknowledged while the group before them waits.
        usleep(20_000)
        for number in 21...23 { #expect(try engine.record(table: "SalesOrder", id: "SO-\(number)") == nil) }
        #expect(engine.lastSequence == 20)
        release.signal()
        #expect(try first.result().sequence == 21)
        #expect(try second.result().sequence == 22)
        #expect(try third.result().sequence == 23)
        for number in 21...23 { #expect(try engine.record(table: "SalesOrder", id: "SO-\(number)") != nil) }
        #expect(engine.lastSequence == 23)
        #expect(try engine.verify().isHealthy)
        try engine.close()
    }

    @Test func aCompactionRacingAGroupAcrossARollKeepsItsCommits() throws {
        // Regression: a group that rolls has written and fsynced its first frames into what is
        // then a sealed segment, and applies them to the index only once it has released the
        // log. A compaction that chose that segment in between took the frames for dead (the
        // index did not show them yet) and dropped them with the segment.
        var configuration = EngineConfiguration()
        configuration.segmentSize = 4096
        configuration.compaction.isAutomatic = false
        let fileSystem = InMemoryFileSystem()
        let engine = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
        for number in 1...4 { try engine.commit(orderBatch(number, size: 400)) }
        // The group stops before it applies; a compaction runs while it waits (or, as it must,
        // waits for the group: then the hook gives up after a while and the group goes on).
        let inWindow = DispatchSemaphore(value: 0)
        let compacted = DispatchSemaphore(value: 0)
        engine.testHooks.beforeApplying.withLock { hook in
            hook = {
                inWindow.signal()
                _ = compacted.wait(timeout: .now() + 0.3)
            }
        }
        let group = Background { () -> [Result<CommitReceipt, StoreError>] in
            engine.commit(group: (5...16).map { orderBatch($0, size: 400) })
        }
        inWindow.wait()
        engine.testHooks.beforeApplying.withLock { $0 = nil }
        let compaction = Background { () throws(StoreError) in
            defer { compacted.signal() }
            return try engine.compact(minimumDeadRatio: 0.01)
        }
        for outcome in try group.result() { _ = try outcome.get() }
        #expect(try compaction.result().segmentsCompacted > 0)
        #expect(try engine.liveRecordCount(table: "SalesOrder") == 16)
        let report = try engine.verify()
        #expect(report.isHealthy, "\(report.problems)")
        try engine.close()
        let reopened = try StorageEngine.open(at: "/store", configuration: configuration, fileSystem: fileSystem, logger: quietLogger)
        #expect(try reopened.liveRecordCount(table: "SalesOrder") == 16)
        for number in 1...16 { #expect(try reopened.record(table: "SalesOrder", id: "SO-\(number)") != nil) }
        try reopened.close()
    }
    #endif

    @Test func concurrentIncrementsLoseNothing() throws {
        // 16 threads increment 8 counters with read, then commit expecting the version read,
        // retrying on conflict: every acknowledged increment is in the final values.
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        let counters = 8, threads = 16, incrementsPerThread = 40
        let workers = (0..<threads).map { thread in
            Background { () throws(StoreError) -> Int in
                var conflicts = 0
                for round in 0..<incrementsPerThread {
                    let id = "counter-\((thread + round) % counters)"
                    while true {
                        let current = try engine.record(table: "Counter", id: id)
                        let value = current.map { Int(String(decoding: $0.bytes, as: UTF8.self))! } ?? 0
                        var batch = WriteBatch(unitOfWorkId: "uow-\(thread)-\(round)")
                        batch.put(table: "Counter", id: id, record: Array(String(value + 1).utf8),
                                  expecting: current.map { .version($0.version) } ?? .absent)
                        do throws(StoreError) {
                            try engine.commit(batch)
                            break
                        } catch where error.code == .conflict || error.code == .duplicate {
                            conflicts += 1
                        }
                    }
                }
                return conflicts
            }
        }
        _ = try workers.map { try $0.result(timeout: 120) }
        var total = 0
        for counter in 0..<counters {
            let record = try #require(try engine.record(table: "Counter", id: "counter-\(counter)"))
            let value = Int(String(decoding: record.bytes, as: UTF8.self))!
            #expect(UInt64(value) == record.version, "each increment is one version")
            total += value
        }
        #expect(total == threads * incrementsPerThread)
        #expect(engine.lastSequence == UInt64(total))
        #expect(try engine.verify().isHealthy)
        try engine.close()
    }

    @Test func asyncCommitsFromManyTasksAllLand() async throws {
        let directory = TemporaryDirectory()
        let engine = try openStore(directory.path)
        let receipts = try await withThrowingTaskGroup(of: CommitReceipt.self) { group in
            for number in 1...200 {
                group.addTask { try await engine.commit(orderBatch(number)) }
            }
            var receipts: [CommitReceipt] = []
            for try await receipt in group { receipts.append(receipt) }
            return receipts
        }
        #expect(receipts.map(\.sequence).sorted() == Array(1...200))
        #expect(try engine.events(after: 0, limit: 500).map(\.position) == Array(1...200))
        #expect(try engine.verify().isHealthy)
        try engine.close()
    }
}

/// Recovery of a group's write: its frames are written together, so a crash may tear it in any
/// pattern of sectors, leaving valid frames after a damaged one. That is a torn tail, cut;
/// damage followed by a frame of a later write is corruption, reported.
@Suite("Group commit: recovery of a torn group write")
struct GroupWriteRecoveryTests {
    /// A store whose log holds commit 1 alone, then commits 2-5 written as one group.
    private func storeWithAGroup(_ directory: TemporaryDirectory) throws -> (path: String, frames: [Range<Int>]) {
        let engine = try openStore(directory.path)
        try engine.commit(orderBatch(1))
        let outcomes = engine.commit(group: (2...5).map { orderBatch($0) })
        #expect(try outcomes.map { try $0.get().groupSize } == [4, 4, 4, 4])
        try engine.close()
        let path = segmentPath(directory.path)
        return (path, try frameRanges(try fileBytes(path)))
    }

    @Test func eachFrameOfAGroupRecordsItsPlaceInTheWrite() throws {
        let directory = TemporaryDirectory()
        let (path, frames) = try storeWithAGroup(directory)
        let bytes = try fileBytes(path)
        let headers = try frames.map { range in
            try bytes.withUnsafeBytes { try Frame.parseHeader(UnsafeRawBufferPointer(rebasing: $0[range])).get() }
        }
        #expect(headers.map(\.writeIndex) == [0, 0, 1, 2, 3])
        #expect(headers.map(\.endsWrite) == [true, false, false, false, true])
    }

    @Test(arguments: [1, 2, 3])
    func aDamagedFrameOfTheLastGroupIsATornTailEvenWithValidFramesAfterIt(damaged: Int) throws {
        let directory = TemporaryDirectory()
        let (path, frames) = try storeWithAGroup(directory)
        try editFile(path) { $0[frames[damaged].lowerBound + 40] ^= 0xFF }
        let engine = try openStore(directory.path)
        // Commits 2...damaged survive; the damaged frame and the group's frames after it are cut.
        #expect(engine.lastSequence == UInt64(damaged))
        #expect(engine.recoveryReport.tornTail?.offset == UInt64(frames[damaged].lowerBound))
        #expect(try engine.record(table: "SalesOrder", id: "SO-\(damaged + 1)") == nil)
        // The cut write's last surviving frame does not end its write; a new write follows it.
        try engine.commit(orderBatch(99))
        try engine.close()
        let reopened = try openStore(directory.path)
        #expect(reopened.lastSequence == UInt64(damaged) + 1)
        #expect(reopened.recoveryReport.tornTail == nil)
        #expect(try reopened.verify().isHealthy)
        try reopened.close()
    }

    @Test func damageInAGroupFollowedByALaterWriteIsCorruption() throws {
        let directory = TemporaryDirectory()
        let (path, frames) = try storeWithAGroup(directory)
        let engine = try openStore(directory.path)
        try engine.commit(orderBatch(6))
        try engine.close()
        try editFile(path) { $0[frames[2].lowerBound + 40] ^= 0xFF }
        let error = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(error?.code == .corruption)
        #expect(error?.offset == UInt64(frames[2].lowerBound))
        #expect(error?.message.contains("of a later write") == true)
    }

    @Test func aVerifiedFrameOutOfItsWriteIsCorruption() throws {
        let directory = TemporaryDirectory()
        let (path, frames) = try storeWithAGroup(directory)
        // Re-mark commit 1's frame (a write of its own) as the first of two: the next frame,
        // which starts a write, then breaks the rule. Both CRCs are recomputed, so only the
        // rule can tell.
        let salt = try openStore(directory.path, readOnly: true).salt
        try editFile(path) { bytes in
            var frame = Array(bytes[frames[0]])
            Frame.place(&frame, at: 0, of: 2, salt: salt)
            bytes.replaceSubrange(frames[0], with: frame)
            var second = Array(bytes[frames[1]])
            Frame.place(&second, at: 0, of: 1, salt: salt)
            // Frame 2 is number 0 of its write while the write before it is open: allowed
            // (a cut write). Number 2 is not.
            Frame.place(&second, at: 2, of: 3, salt: salt)
            bytes.replaceSubrange(frames[1], with: second)
        }
        let error = #expect(throws: StoreError.self) { try openStore(directory.path) }
        #expect(error?.code == .corruption)
        #expect(error?.offset == UInt64(frames[1].lowerBound))
    }
}
