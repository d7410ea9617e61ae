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


/// An `aggstore` running in the background (`events --follow`) while the test goes on. Its
/// standard output goes to a file the test reads as it grows.
final class BackgroundAggstore {
    private let process = Process()
    private let outputPath: String
    private let errors = Pipe()

    /// Starts `aggstore` with `arguments`; `outputPath` receives its standard output.
    init(arguments: [String], outputPath: String) throws {
        self.outputPath = outputPath
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process.executableURL = aggstoreBinary
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = errors
        try process.run()
    }

    /// What it has printed so far.
    var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// Waits until its output satisfies `condition`, or it exits. Gives up after `limit`
    /// seconds so that a broken build fails the test instead of hanging it; never a measure of speed.
    @discardableResult
    func waitForOutput(limit: Double = 60, until condition: (String) -> Bool) -> String {
        let deadline = Date().addingTimeInterval(limit)
        while !condition(output), process.isRunning, Date() < deadline { usleep(20_000) }
        return output
    }

    /// Sends `signal` and waits for it to exit. If it has not exited after `limit` seconds it is
    /// killed (SIGKILL, so its status says so and the test fails) rather than left to hang the suite.
    func stop(with signal: Int32, limit: Double = 60) -> Run {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let deadline = Date().addingTimeInterval(limit)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: output, errors: String(decoding: errorData, as: UTF8.self))
    }
}
