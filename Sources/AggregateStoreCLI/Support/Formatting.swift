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
