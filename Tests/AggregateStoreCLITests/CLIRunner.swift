import Foundation

/// What a run of `aggstore` returned.
struct Run {
    var status: Int32
    var output: String
    var errors: String
}

/// The `aggstore` executable next to the test bundle in the build products folder.
let aggstoreBinary: URL = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("aggstore")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory.deleteLastPathComponent()
    }
    return URL(fileURLWithPath: ".build/debug/aggstore")
}()

/// Runs `aggstore` with `arguments` and waits for it to exit.
func aggstore(_ arguments: String...) throws -> Run {
    try aggstore(arguments: arguments)
}

/// Runs `aggstore` with `arguments` and waits for it to exit.
func aggstore(arguments: [String]) throws -> Run {
    let process = Process()
    process.executableURL = aggstoreBinary
    process.arguments = arguments
    let output = Pipe(), errors = Pipe()
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    let outputData = output.fileHandleForReading.readDataToEndOfFile()
    let errorData = errors.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(status: process.terminationStatus, output: String(decoding: outputData, as: UTF8.self),
               errors: String(decoding: errorData, as: UTF8.self))
}

