import Dispatch

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}

/// Runs `body` and returns how long it took, in seconds.
public func timed(_ body: () throws -> Void) rethrows -> Double {
    let started = monotonicSeconds()
    try body()
    return monotonicSeconds() - started
}

/// Latency samples, in seconds, and their percentiles.
public struct Samples: Sendable {
    public private(set) var values: [Double] = []

    public init(_ values: [Double] = []) {
        self.values = values
    }

    /// Adds a sample.
    public mutating func append(_ seconds: Double) { values.append(seconds) }

    /// Adds samples.
    public mutating func append(contentsOf other: Samples) { values += other.values }

    /// The number of samples.
    public var count: Int { values.count }

    /// The `fraction` percentile (0.5 is the median), nearest rank; 0 without samples.
    public func percentile(_ fraction: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }

    /// The median.
    public var median: Double { percentile(0.5) }
}
