extension Array where Element == UInt8 {
    /// The bytes in an array of their own size, if this one was allocated much larger than it
    /// filled (a buffer sized for the worst case, like an LZ4 block's, or a frame's room for its
    /// payload uncompressed): bytes that are kept around should not pin that slack. Copying is
    /// cheap next to the slack it frees; a slack of at most 4 KiB, or a quarter of the bytes,
    /// is kept.
    func trimmingSlack() -> [UInt8] {
        guard capacity - count > Swift.max(4096, count / 4) else { return self }
        // `Array(self[...])` would keep the same storage.
        return withUnsafeBufferPointer { Array($0) }
    }
}
