import CCRC32C

/// CRC32C (Castagnoli), the checksum of every stored record and block, with LevelDB's
/// conventions so the values match other implementations of the same scheme.
///
/// The work happens in the `CCRC32C` C target, which uses the CPU's CRC32C instruction
/// when it has one; the C types stay behind this enum.
package enum CRC32C {
    /// CRC32C of `bytes`, extending `seed` (LevelDB's crc32c::Extend; seed 0 = fresh).
    ///
    /// `checksum(b, seed: checksum(a))` equals the checksum of `a` followed by `b`, so
    /// data that arrives in pieces can be checksummed without copying it together.
    package static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        aggstore_crc32c_extend(seed, bytes.baseAddress, bytes.count)
    }

    /// The same checksum for bytes already held in an array, so callers need no pointer code.
    package static func checksum(_ bytes: [UInt8], seed: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, seed: seed) }
    }

    /// The portable table-driven path, for tests that compare it with the hardware path.
    package static func portableChecksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        aggstore_crc32c_extend_portable(seed, bytes.baseAddress, bytes.count)
    }

    /// Whether `checksum` uses a CPU instruction; diagnostics report it because the table
    /// fallback is several times slower.
    package static var isHardwareAccelerated: Bool {
        aggstore_crc32c_is_hardware_accelerated() != 0
    }

    /// The constant LevelDB adds when masking, kept so stored masked values stay compatible.
    private static let maskDelta: UInt32 = 0xa282_ead8

    /// LevelDB's masking of a stored CRC: ((crc >> 15) | (crc << 17)) &+ 0xa282ead8,
    /// so that a CRC stored inside checksummed data does not checksum to a fixed point.
    package static func mask(_ crc: UInt32) -> UInt32 {
        ((crc >> 15) | (crc << 17)) &+ maskDelta
    }

    /// Recovers the CRC that ``mask(_:)`` stored.
    package static func unmask(_ masked: UInt32) -> UInt32 {
        let rotated = masked &- maskDelta
        return (rotated >> 17) | (rotated << 15)
    }
}
