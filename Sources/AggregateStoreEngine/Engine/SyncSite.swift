/// Every place the engine makes something durable, named, so the crash suite's mutation gate
/// can disable one site at a time and prove that the suite notices (`Docs/CRASH-TESTING.md`).
/// A site whose absence no test can see is either unnecessary or a hole in the suite.
package enum SyncSite: String, CaseIterable, Sendable, Hashable {
    /// fsync of segment 1 after its header is written, at store creation.
    case createSegmentFile
    /// fsync of the store directory after segment 1 is created.
    case createSegmentDirectory
    /// fsync of the first `MANIFEST.tmp` before it is renamed into place, at store creation.
    /// (No directory fsync follows: the open's own `recoveryStoreDirectory` makes the rename
    /// durable before any commit.)
    case createManifestFile
    /// fsync of `MANIFEST.tmp` before it is renamed over `MANIFEST`, during a roll.
    case rollManifestFile
    /// fsync of the store directory after the manifest rename, during a roll.
    case rollManifestDirectory
    /// fdatasync of the active segment after a commit's frame is written.
    case commitData
    /// fsync of a new segment after its header is written, during a roll.
    case rollSegmentFile
    /// fsync of the store directory after a new segment is created, during a roll.
    case rollSegmentDirectory
    /// fsync of the active segment at a writable open, before anything recovered is served.
    case recoveryActiveSegment
    /// fsync of the store directory at a writable open: the manifest rename and segment
    /// creations it found may exist only in the page cache (a process killed before its fsync).
    case recoveryStoreDirectory
    /// fsync of the store directory's parent at a writable open: the directory itself may be
    /// new, or created by hand, or left by a creation killed before its fsync.
    case recoveryParentDirectory
    /// fsync of each segment a compaction wrote, before the manifest names it.
    case compactionSegmentFile
    /// fsync of the store directory after a compaction created its segments.
    case compactionSegmentDirectory
    /// fsync of `MANIFEST.tmp` before a compaction renames it over `MANIFEST`.
    case compactionManifestFile
    /// fsync of the store directory after that rename, before the replaced segments are removed.
    case compactionManifestDirectory
}

/// Which sync sites run: all of them, except in the crash suite's mutation gate.
package struct SyncSites: Sendable, Hashable {
    /// The one site to skip, or nil.
    package var disabled: SyncSite?

    /// Every site runs.
    package static let all = SyncSites(disabled: nil)

    package init(disabled: SyncSite?) {
        self.disabled = disabled
    }

    /// Runs `sync` unless `site` is the disabled one.
    package func run(_ site: SyncSite, _ sync: () throws(StoreError) -> Void) throws(StoreError) {
        guard site != disabled else { return }
        try sync()
    }
}
