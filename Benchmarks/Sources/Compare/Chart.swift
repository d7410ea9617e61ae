import BenchmarkWorkloads
import Foundation

/// The comparison's chart, as a self-contained SVG: durable-commit latency percentiles per
/// engine, and durable commits per second by the number of committers.
struct Chart {
    let results: Results

    private static let colors = [Comparison.ours: "#2b6cb0", Comparison.sqlite: "#c05621", Comparison.floor: "#718096"]
    private static let width = 1000.0, height = 420.0

    var svg: String {
        var parts = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(Self.width))\" height=\"\(Int(Self.height))\" "
                + "viewBox=\"0 0 \(Int(Self.width)) \(Int(Self.height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
        ]
        parts += latencyPanel(x: 40, width: 420)
        parts += throughputPanel(x: 540, width: 420)
        parts.append("</svg>")
        return parts.joined(separator: "\n") + "\n"
    }

    /// Grouped bars: p50, p90, p99 of the single-writer durable commit, per engine.
    private func latencyPanel(x: Double, width: Double) -> [String] {
        let engines = [Comparison.ours, Comparison.sqlite, Comparison.floor].filter {
            results.measurement("durable commit, 1 writer", $0) != nil
        }
        let percentiles = [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")]
        var bars: [(group: String, series: String, value: Double)] = []
        for (fraction, label) in percentiles {
            for engine in engines {
                let value = results.measurement("durable commit, 1 writer", engine)!.samples.percentile(fraction) * 1e6
                bars.append((label, engine, value))
            }
        }
        return barPanel(title: "Durable commit latency, 1 writer (µs)", x: x, width: width,
                        groups: percentiles.map(\.1), series: engines, bars: bars, format: "%.0f")
    }

    /// Grouped bars: commits per second of each engine at each number of committers.
    private func throughputPanel(x: Double, width: Double) -> [String] {
        let workloads = results.workloads.filter { $0.hasPrefix("durable commits, ") }
        let engines = [Comparison.ours, Comparison.sqlite]
        var bars: [(group: String, series: String, value: Double)] = []
        var groups: [String] = []
        for workload in workloads {
            let group = workload.replacingOccurrences(of: "durable commits, ", with: "").replacingOccurrences(of: " committers", with: "")
            groups.append(group)
            for engine in engines {
                if let throughput = results.measurement(workload, engine)?.throughput { bars.append((group, engine, throughput)) }
            }
        }
        return barPanel(title: "Durable commits/s by committers", x: x, width: width,
                        groups: groups, series: engines, bars: bars, format: "%.0f")
    }

    private func barPanel(title: String, x: Double, width: Double, groups: [String], series: [String],
                          bars: [(group: String, series: String, value: Double)], format: String) -> [String] {
        let top = 50.0, bottom = Self.height - 70
        let maximum = max(bars.map(\.value).max() ?? 1, 1)
        var parts = ["<text x=\"\(x)\" y=\"24\" font-size=\"15\" font-weight=\"bold\">\(title)</text>",
                     "<line x1=\"\(x)\" y1=\"\(bottom)\" x2=\"\(x + width)\" y2=\"\(bottom)\" stroke=\"#333\"/>"]
        guard !groups.isEmpty, !series.isEmpty else { return parts }
        let groupWidth = width / Double(groups.count)
        let barWidth = groupWidth * 0.8 / Double(series.count)
        for (groupIndex, group) in groups.enumerated() {
            let groupX = x + Double(groupIndex) * groupWidth + groupWidth * 0.1
            for (seriesIndex, name) in series.enumerated() {
                guard let bar = bars.first(where: { $0.group == group && $0.series == name }) else { continue }
                let barHeight = (bottom - top) * bar.value / maximum
                let barX = groupX + Double(seriesIndex) * barWidth
                parts.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"/>",
                                    barX, bottom - barHeight, barWidth - 2, barHeight, Self.colors[name] ?? "#999"))
                parts.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"10\">\(format)</text>",
                                    barX + barWidth / 2 - 1, bottom - barHeight - 4, bar.value))
            }
            parts.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>",
                                groupX + groupWidth * 0.4, bottom + 16, group))
        }
        for (index, name) in series.enumerated() {
            let legendX = x + Double(index) * 150
            parts.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%@\"/>",
                                legendX, Self.height - 34, Self.colors[name] ?? "#999"))
            parts.append(String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>", legendX + 16, Self.height - 24, name))
        }
        return parts
    }
}
