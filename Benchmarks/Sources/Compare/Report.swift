import BenchmarkWorkloads
import Foundation

/// The comparison's reports: a table of medians and 99th percentiles with the ratios of
/// AggregateStore to SQLite and to the floor, as text, Markdown and CSV, and the goals.
struct Report {
    let results: Results
    /// Whether the sizes mean anything (false for a smoke run): the goals are judged only then.
    var judgesGoals = true
    private let engines = [Comparison.ours, Comparison.sqlite, Comparison.floor]

    /// Microseconds, or milliseconds from 10 ms up.
    static func duration(_ seconds: Double) -> String {
        seconds >= 0.01 ? String(format: "%.1f ms", seconds * 1e3) : String(format: "%.1f µs", seconds * 1e6)
    }

    static func ratio(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        return String(format: "%.2fx", value)
    }

    /// One row per workload: each engine's p50 and p99 (and throughput), then ours/SQLite and
    /// ours/floor for the p50 latency (lower is better) and ours/SQLite for throughput (higher
    /// is better).
    var rows: [[String]] {
        results.workloads.map { workload in
            var row = [workload]
            for engine in engines {
                guard let measurement = results.measurement(workload, engine) else {
                    row += ["-", "-", "-"]
                    continue
                }
                row.append(Self.duration(measurement.samples.median))
                row.append(Self.duration(measurement.samples.percentile(0.99)))
                row.append(measurement.throughput.map { String(format: "%.0f/s", $0) } ?? "-")
            }
            let ours = results.measurement(workload, Comparison.ours)
            let sqlite = results.measurement(workload, Comparison.sqlite)
            let floor = results.measurement(workload, Comparison.floor)
            row.append(Self.ratio(ours.flatMap { o in sqlite.map { o.samples.median / $0.samples.median } }))
            row.append(Self.ratio(ours.flatMap { o in floor.map { o.samples.median / $0.samples.median } }))
            row.append(Self.ratio(ours?.throughput.flatMap { o in sqlite?.throughput.map { o / $0 } }))
            return row
        }
    }

    var header: [String] {
        ["workload"] + engines.flatMap { ["\($0) p50", "\($0) p99", "\($0) throughput"] }
            + ["ours/SQLite p50", "ours/floor p50", "ours/SQLite throughput"]
    }

    /// The goals of the benchmark issue, with where the run stands.
    var goals: [String] {
        func median(_ workload: String, _ engine: String) -> Double? { results.measurement(workload, engine)?.samples.median }
        func throughput(_ workload: String, _ engine: String) -> Double? { results.measurement(workload, engine)?.throughput }
        func line(_ goal: String, _ value: Double?, _ met: (Double) -> Bool) -> String {
            guard let value else { return "- \(goal): not measured in this run" }
            let verdict = judgesGoals ? (met(value) ? "met" : "NOT met") : "not judged (smoke run)"
            return "- \(goal): \(String(format: "%.2f", value)), \(verdict)"
        }
        let single = "durable commit, 1 writer"
        let highest = results.workloads.last { $0.hasPrefix("durable commits, ") }
        var lines = [
            line("durable commit p50, ours/floor (goal at most 1.1)",
                 median(single, Comparison.ours).flatMap { o in median(single, Comparison.floor).map { o / $0 } }) { $0 <= 1.1 },
            line("single-writer durable commits/s, ours/SQLite (goal at least 1.5)",
                 throughput(single, Comparison.ours).flatMap { o in throughput(single, Comparison.sqlite).map { o / $0 } }) { $0 >= 1.5 },
        ]
        if let highest {
            lines.append(line("\(highest): commits/s, ours/SQLite (goal at least 10 at 64 committers)",
                              throughput(highest, Comparison.ours).flatMap { o in throughput(highest, Comparison.sqlite).map { o / $0 } }) { $0 >= 10 })
        }
        lines.append(line("typed PK load, SQLite fetchOne / ours, p50 (goal at least 5)",
                          median("typed PK load", Comparison.sqlite).flatMap { s in median("typed PK load", Comparison.ours).map { s / $0 } }) { $0 >= 5 })
        return lines
    }

    /// A plain-text table for the terminal.
    var text: String {
        let table = [header] + rows
        let widths = header.indices.map { column in table.map { $0[column].count }.max() ?? 0 }
        let lines = table.map { row in
            row.indices.map { column in
                column == 0 ? row[column].padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - row[column].count) + row[column]
            }.joined(separator: "  ")
        }
        return (lines + [""] + goals).joined(separator: "\n")
    }

    /// The table and goals as Markdown, with the notes and the chart.
    func markdown(chartFile: String) -> String {
        var lines = ["# AggregateStore against SQLite (GRDB) and the fsync floor", ""]
        lines += results.notes.map { "- \($0)" }
        lines += ["", "| " + header.joined(separator: " | ") + " |",
                  "|" + header.map { _ in "---" }.joined(separator: "|") + "|"]
        lines += rows.map { "| " + $0.joined(separator: " | ") + " |" }
        lines += ["", "Ratios of latency: lower is better for AggregateStore; of throughput: higher is better.", "",
                  "## Goals", ""] + goals + ["", "![latency and throughput](\(chartFile))", ""]
        return lines.joined(separator: "\n")
    }

    /// One line per workload, engine and statistic, for spreadsheets and scripts.
    var csv: String {
        var lines = ["workload,engine,samples,p50_us,p90_us,p99_us,throughput_per_s"]
        for measurement in results.measurements {
            let samples = measurement.samples
            lines.append([
                "\"\(measurement.workload)\"", "\"\(measurement.engine)\"", "\(samples.count)",
                String(format: "%.2f", samples.median * 1e6), String(format: "%.2f", samples.percentile(0.9) * 1e6),
                String(format: "%.2f", samples.percentile(0.99) * 1e6),
                measurement.throughput.map { String(format: "%.1f", $0) } ?? "",
            ].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
