import Foundation

/// A workload that went wrong (an engine returned less than it should).
public struct BenchmarkError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The bytes of the regular files in `path`.
func directoryBytes(_ path: String) throws -> Int {
    let names = try FileManager.default.contentsOfDirectory(atPath: path)
    return try names.reduce(0) { total, name in
        let attributes = try FileManager.default.attributesOfItem(atPath: path + "/" + name)
        return total + ((attributes[.size] as? Int) ?? 0)
    }
}
