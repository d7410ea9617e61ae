import Foundation

/// Reads a file or standard input a line at a time, in blocks, so that an input of gigabytes
/// takes no more memory than its longest line. A final line without a newline counts; a
/// carriage return before the newline is dropped.
struct LineReader {
    private let handle: FileHandle
    private var buffer: [UInt8] = []
    private var start = 0
    private var atEnd = false

    /// Reads from `handle`.
    init(_ handle: FileHandle) {
        self.handle = handle
    }

    /// The next line's bytes without its newline, or nil at the end of the input. The bytes,
    /// not a string: the caller says which line is not UTF-8, rather than it being repaired.
    mutating func next() throws -> [UInt8]? {
        while true {
            if let newline = buffer[start...].firstIndex(of: 0x0A) {
                var end = newline
                if end > start, buffer[end - 1] == 0x0D { end -= 1 }
                let line = Array(buffer[start..<end])
                start = newline + 1
                return line
            }
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = Array(buffer[start...])
                start = buffer.count
                return line
            }
            // Drop the lines already returned before reading more.
            buffer.removeSubrange(..<start)
            start = 0
            let block = try handle.read(upToCount: 1 << 16) ?? Data()
            if block.isEmpty { atEnd = true } else { buffer.append(contentsOf: block) }
        }
    }
}
