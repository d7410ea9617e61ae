import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `aggstore: message` to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data("aggstore: \(message)\n".utf8))
}

/// Whether standard error is a terminal, where progress bars are drawn.
var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

/// A one-line progress bar on standard error, redrawn in place; silent when not on a terminal.
final class ProgressBar: @unchecked Sendable {
    private let enabled: Bool
    private var lastPercent = -1

    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// Redraws the bar when the percentage changed. Called from one thread at a time.
    func show(done: UInt64, of total: UInt64) {
        guard enabled, total > 0 else { return }
        let percent = Int(min(100, done * 100 / total))
        guard percent != lastPercent else { return }
        lastPercent = percent
        let width = 40
        let filled = width * percent / 100
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] \(percent) %"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Ends the bar's line.
    func finish() {
        guard enabled, lastPercent >= 0 else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
