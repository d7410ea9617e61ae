import AggregateStoreEngine
import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Reports a failure of a lockless read and picks the exit status: 1 for damage (with the file
/// and offset), 3 for a store that cannot be read at all.
func exitStatus(for error: StoreError, directory: String) -> ExitCode {
    if error.code == .corruption || error.code == .unsupportedFormat {
        printError("DAMAGED: \(damageLocation(path: error.path, offset: error.offset, in: directory)): \(error.message)")
        return ExitStatus.damaged
    }
    printError("cannot read \(directory): \(error)")
    return ExitStatus.cannotOpen
}

/// Where damage is: its file (the store directory when it has none) and byte offset.
func damageLocation(path: String?, offset: UInt64?, in directory: String) -> String {
    (path ?? directory) + (offset.map { " at offset \($0)" } ?? "")
}

/// Writes out what `print` buffered: before an error message, so the two come out in order on
/// a terminal, and while following the log, so a reader on a pipe sees each event as it lands.
func flushStandardOutput() {
    fflush(nil)
}
