import BenchmarkWorkloads

/// What one engine did on one workload, over all rounds.
struct Measurement {
    var workload: String
    var engine: String
    /// Latencies of single operations, in seconds.
    var samples = Samples()
    /// Operations per second of each round, for throughput workloads.
    var roundThroughputs: [Double] = []

    /// The median round's throughput, if the workload measures one.
    var throughput: Double? { roundThroughputs.isEmpty ? nil : Samples(roundThroughputs).median }
}

/// Every measurement of a comparison.
struct Results {
    private(set) var measurements: [Measurement] = []
    /// Notes for the report: sizes, the machine, the run.
    var notes: [String] = []

    /// The workloads, in the order they first ran.
    var workloads: [String] {
        var seen: [String] = []
        for measurement in measurements where !seen.contains(measurement.workload) { seen.append(measurement.workload) }
        return seen
    }

    /// Adds a round's samples (and throughput) to the workload's measurement for the engine.
    mutating func add(workload: String, engine: String, samples: Samples, throughput: Double? = nil) {
        var index = measurements.firstIndex { $0.workload == workload && $0.engine == engine }
        if index == nil {
            measurements.append(Measurement(workload: workload, engine: engine))
            index = measurements.count - 1
        }
        measurements[index!].samples.append(contentsOf: samples)
        if let throughput { measurements[index!].roundThroughputs.append(throughput) }
    }

    func measurement(_ workload: String, _ engine: String) -> Measurement? {
        measurements.first { $0.workload == workload && $0.engine == engine }
    }
}
