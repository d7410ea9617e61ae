@testable import AggregateStoreEngine
import Foundation
import Synchronization
import Testing

/// A thread's scratch buffer: at least the bytes asked for, kept and grown per thread, none
/// over its largest size.
@Suite("Thread scratch buffers")
struct ThreadScratchTests {
    /// The address of the calling thread's buffer of at least `count` bytes, after checking
    /// that all of them can be written and read back.
    private func bufferAddress(count: Int) -> Int? {
        ThreadScratch.withBuffer(count: count) { (buffer: UnsafeMutableRawBufferPointer) -> Int in
            #expect(buffer.count >= count)
            for index in stride(from: 0, to: count, by: 97) { buffer[index] = UInt8(truncatingIfNeeded: index) }
            let intact = stride(from: 0, to: count, by: 97).allSatisfy { buffer[$0] == UInt8(truncatingIfNeeded: $0) }
            #expect(intact)
            return Int(bitPattern: buffer.baseAddress)
        }
    }

    @Test func aThreadReusesItsBufferAndGrowsItOnlyWhenAskedForMore() {
        let first = bufferAddress(count: 1000)
        #expect(first != nil)
        #expect(bufferAddress(count: 4096) == first, "the first buffer holds 4 KiB")
        let grown = bufferAddress(count: 5000)
        #expect(grown != nil)
        #expect(bufferAddress(count: 100) == grown)
        #expect(bufferAddress(count: ThreadScratch.maximumSize) != nil)
    }

    @Test func aRequestOverTheLargestSizeGetsNoBuffer() {
        var called = false
        let result: Int? = ThreadScratch.withBuffer(count: ThreadScratch.maximumSize + 1) { _ in
            called = true
            return 1
        }
        #expect(result == nil && !called)
    }

    @Test func eachThreadHasABufferOfItsOwn() {
        let here = bufferAddress(count: 2000)
        let there = Mutex<Int?>(nil)
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            let address = bufferAddress(count: 2000)
            there.withLock { $0 = address }
            done.signal()
        }
        thread.start()
        done.wait()
        #expect(there.withLock { $0 } != nil && there.withLock { $0 } != here)
    }
}
