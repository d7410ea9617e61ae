import AggregateStore
import AggregateStoreDemo
import Foundation

/// The codec figure of issue 4, item 1: encode plus decode of a demo order (four items) with the
/// record codec, against Foundation's `JSONEncoder` and `JSONDecoder` (dates as milliseconds
/// since 1970) on the same value. Release builds only give meaningful figures.
///
/// The two run in interleaved rounds (record codec, JSON, record codec, JSON, …), so a change in
/// the machine's load falls on both; each round times `iterations` encode+decode pairs of the
/// record codec and a tenth as many of JSON (about ten times slower), and the figures are the
/// medians of the rounds.
///
/// - Parameter iterations: Encode+decode pairs per round of the record codec (at least 10).
/// - Returns: The medians in microseconds per encode+decode: `ours` for the record codec,
///   `json` for Foundation's.
func codecBenchmark(iterations: Int) throws -> (ours: Double, json: Double) {
    let order = codecBenchmarkOrder()
    let recordEncoder = RecordEncoder()
    let recordDecoder = RecordDecoder()
    let jsonEncoder = JSONEncoder()
    jsonEncoder.dateEncodingStrategy = .millisecondsSince1970
    let jsonDecoder = JSONDecoder()
    jsonDecoder.dateDecodingStrategy = .millisecondsSince1970

    func ours() throws -> SalesOrder {
        try recordDecoder.decode(SalesOrder.self, from: try recordEncoder.encode(order))
    }
    func json() throws -> SalesOrder {
        try jsonDecoder.decode(SalesOrder.self, from: try jsonEncoder.encode(order))
    }
    // Both must round-trip the value, or the race means nothing.
    guard try ours() == order, try json() == order else { throw CodecBenchmarkError() }

    let oursIterations = max(10, iterations)
    let jsonIterations = max(1, oursIterations / 10)
    var checksum = 0
    // Microseconds per call of `body`, over `count` calls.
    func time(_ count: Int, _ body: () throws -> SalesOrder) rethrows -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<count { checksum &+= try body().items.count }
        let (seconds, attoseconds) = (clock.now - start).components
        return (Double(seconds) * 1e6 + Double(attoseconds) / 1e12) / Double(count)
    }

    // One unmeasured round of each warms caches, the workspace pools and the runtime's metadata.
    _ = try time(oursIterations, ours)
    _ = try time(jsonIterations, json)
    var oursRounds: [Double] = []
    var jsonRounds: [Double] = []
    for _ in 0..<9 {
        oursRounds.append(try time(oursIterations, ours))
        jsonRounds.append(try time(jsonIterations, json))
    }
    // Every call decoded the order's four items: the checksum keeps the calls from being dropped.
    guard checksum == 4 * 10 * (oursIterations + jsonIterations) else { throw CodecBenchmarkError() }
    return (median(oursRounds), median(jsonRounds))
}

/// The benchmark's order: the first of the demo's orders (seed 42, 200 customers) with four items.
private func codecBenchmarkOrder() -> SalesOrder {
    var orders = DemoOrders(seed: 42, customers: 200)
    var number = 1
    while true {
        let order = orders.order(number: number)
        if order.items.count == 4 { return order }
        number += 1
    }
}

private func median(_ values: [Double]) -> Double {
    values.sorted()[values.count / 2]
}

/// A codec that did not return the order it was given.
private struct CodecBenchmarkError: Error, CustomStringConvertible {
    var description: String { "the codec benchmark's order did not survive an encode and decode" }
}
