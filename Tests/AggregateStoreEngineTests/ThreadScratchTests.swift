@testable import AggregateStoreEngine
import Foundation
import Synchronization
import Testing

/// A thread's scratch buffer: at least the bytes asked for, kept and grown per thread, none
/// over its largest size, and never handed to a nested call.
@Suite("Thread scratch buffers")
struct ThreadScratchTests {
    /// The address of the calling thread's buffer of at least `count` bytes, after checking
    /// that all of them can be written and read back.
    private static func bufferAddress(count: Int) -> Int? {
        ThreadScratch.withBuffer(count: count) { (buffer: UnsafeMutableRawBufferPointer) -> Int in
            #expect(buffer.count >= count)
            for index in stride(from: 0, to: count, by: 97) { buffer[index] = UInt8(truncatingIfNeeded: index) }
            let intact = stride(from: 0, to: count, by: 97).allSatisfy { buffer[$0] == UInt8(truncatingIfNeeded: $0) }
            #expect(intact)
            return Int(bitPattern: buffer.baseAddress)
        }
    }

    /// Runs `body` on a new thread, whose buffer is not made yet, and returns its result.
    private static func onNewThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.withLock { $0 = body() }
            done.signal()
        }.start()
        done.wait()
        return result.withLock { $0! }
    }

    @Test func aThreadReusesItsBufferAndGrowsItOnlyWhenAskedForMore() {
        let (first, same, grown, again, largest) = Self.onNewThread {
            (Self.bufferAddress(count: 1000), Self.bufferAddress(count: 4096), Self.bufferAddress(count: 5000),
             Self.bufferAddress(count: 100), Self.bufferAddress(count: ThreadScratch.maximumSize))
        }
        #expect(first != nil && largest != nil)
        #expect(same == first, "the first buffer holds 4 KiB")
        #expect(grown != nil && grown != first)
        #expect(again == grown)
    }

    @Test func aRequestOverTheLargestSizeGetsNoBuffer() {
        var called = false
        let result: Int? = ThreadScratch.withBuffer(count: ThreadScratch.maximumSize + 1) { _ in
            called = true
            return 1
        }
        #expect(result == nil && !called)
    }

    @Test func aNestedCallGetsNoBufferAndTheOuterOneKeepsItsBytes() {
        let (nested, outerIntact, afterwards) = Self.onNewThread { () -> (Bool, Bool, Bool) in
            var nested = true
            let intact = ThreadScratch.withBuffer(count: 100) { outer in
                outer.initializeMemory(as: UInt8.self, repeating: 7)
                // Larger than the outer buffer: a nested call that got one would grow it
                // and free the outer call's bytes.
                nested = ThreadScratch.withBuffer(count: 10_000) { _ in true } ?? false
                return outer.allSatisfy { $0 == 7 }
            }
            return (nested, intact ?? false, Self.bufferAddress(count: 10_000) != nil)
        }
        #expect(!nested)
        #expect(outerIntact)
        #expect(afterwards, "the buffer is free again once the outer call returns")
    }

    @Test func eachThreadHasABufferOfItsOwn() {
        let here = Self.bufferAddress(count: 2000)
        let there = Self.onNewThread { Self.bufferAddress(count: 2000) }
        #expect(here != nil && there != nil && here != there)
    }
}
