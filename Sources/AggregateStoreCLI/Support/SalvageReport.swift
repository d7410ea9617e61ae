/// What `aggstore salvage` copied and what it lost, written as text or JSON.
struct SalvageReport: Codable {
    /// A run of bytes that holds no verifying frame.
    struct DamagedRange: Codable {
        var file: String
        var offset: UInt64
        var length: UInt64
        var reason: String
    }

    /// Sequence numbers with no valid commit found, `first...last`.
    struct MissingSequences: Codable {
        var first: UInt64
        var last: UInt64
        var count: UInt64 { last - first + 1 }
    }

    /// A commit that was found whole but could not be copied into the new store.
    struct NotCopied: Codable {
        var sequence: UInt64
        var reason: String
    }

    var source: String
    var destination: String
    /// How the segments were found: from the manifest, or from the segment files when the
    /// manifest could not be read (and why).
    var segmentList: String
    var segmentsRead = 0
    var bytesRead: UInt64 = 0
    /// Valid frames found, duplicates included.
    var framesFound = 0
    /// Frames that repeat a sequence already found (a segment a compaction replaced).
    var duplicateFrames = 0
    var commitsCopied = 0
    var putsCopied = 0
    var deletesCopied = 0
    var eventsCopied = 0
    /// The first and last sequence numbers copied, 0 when none.
    var firstSequence: UInt64 = 0
    var lastSequence: UInt64 = 0
    var damaged: [DamagedRange] = []
    var missingSequences: [MissingSequences] = []
    var notCopied: [NotCopied] = []

    /// Whether anything was lost: damaged bytes, missing sequence numbers, or commits that could not be copied.
    var lostSomething: Bool { !damaged.isEmpty || !missingSequences.isEmpty || !notCopied.isEmpty }

    /// The report for people.
    var text: String {
        var lines = [
            "Salvaged \(source) into \(destination)",
            "  segments           \(segmentsRead) read (\(bytesRead) bytes), \(segmentList)",
            "  frames found       \(framesFound)" + (duplicateFrames > 0 ? " (\(duplicateFrames) duplicates skipped)" : ""),
            "  commits copied     \(commitsCopied)" + (commitsCopied > 0 ? ", sequences \(firstSequence)...\(lastSequence)" : ""),
            "  operations copied  \(putsCopied) puts, \(deletesCopied) deletes, \(eventsCopied) events "
                + "(versions and event positions renumbered by the new store)",
        ]
        guard lostSomething else {
            lines.append("OK: nothing was lost.")
            return lines.joined(separator: "\n")
        }
        lines.append("LOST:")
        for range in damaged {
            lines.append("  damaged bytes \(range.file) offset \(range.offset) length \(range.length): \(range.reason)")
        }
        for missing in missingSequences {
            lines.append(missing.first == missing.last ? "  missing sequence \(missing.first)"
                                                       : "  missing sequences \(missing.first)...\(missing.last) (\(missing.count))")
        }
        for commit in notCopied {
            lines.append("  not copied: sequence \(commit.sequence): \(commit.reason)")
        }
        return lines.joined(separator: "\n")
    }
}
