import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The value at quantile `q` of sorted values (nearest rank).
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(max(rank, 0), sorted.count - 1)]
}

func micros(_ seconds: Double) -> String { String(format: "%.1f us", seconds * 1e6) }

func seconds(_ value: Double) -> String { value < 1 ? String(format: "%.1f ms", value * 1e3) : String(format: "%.2f s", value) }

/// The process's resident memory in bytes (Linux `/proc/self/statm`), 0 elsewhere.
func residentMemory() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// `value` as indented JSON with sorted keys, what the `--json` reports print.
func prettyJSON(_ value: some Encodable) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// A byte count for people: `512 B`, `3.4 KiB`, `1.2 MiB`, `2.0 GiB`.
func byteCount(_ bytes: UInt64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB"]
    guard bytes >= 1024 else { return "\(bytes) B" }
    var value = Double(bytes) / 1024
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return String(format: "%.1f %@", value, units[unit])
}

/// A fraction from 0 to 1 as a whole percentage.
func percent(_ fraction: Double) -> String { "\(Int((fraction * 100).rounded())) %" }

/// A bar of `width` characters: `#` for the live share, `.` for the rest.
func liveDeadBar(liveShare: Double, width: Int = 30) -> String {
    let live = Int((min(max(liveShare, 0), 1) * Double(width)).rounded())
    return "[" + String(repeating: "#", count: live) + String(repeating: ".", count: width - live) + "]"
}

/// Prints rows as left-aligned columns, two spaces apart, each line indented by two.
func printColumns(_ rows: [[String]]) {
    guard let columns = rows.map(\.count).max() else { return }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows {
        for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
    }
    for row in rows {
        let cells = row.enumerated().map { column, cell in
            column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
        }
        print("  " + cells.joined(separator: "  "))
    }
}

/// `1 segment`, `3 segments`.
func count(_ number: Int, _ noun: String) -> String { "\(number) \(noun)\(number == 1 ? "" : "s")" }
