/// The list of a store's segments (`Docs/FORMAT.md`, section 3), replaced atomically.
package struct Manifest: Sendable, Equatable {
    /// One segment as the manifest records it.
    package struct Segment: Sendable, Equatable {
        /// The segment's id (its file name).
        package var id: UInt64
        /// The sequence number of its first frame.
        package var baseSequence: UInt64
        /// Its final length once sealed; ``Format/activeSegmentLength`` while active.
        package var sealedLength: UInt64
        /// Its last sequence number once sealed (base − 1 if it holds no frame); 0 while active.
        package var lastSequence: UInt64

        /// Whether the segment is still being appended to.
        package var isActive: Bool { sealedLength == Format.activeSegmentLength }
    }

    /// The store's salt.
    package var salt: UInt64
    /// When the store was created, in microseconds since the epoch.
    package var createdAt: Int64
    /// The segments in log order (each starts one past the sequence the one before ends at);
    /// the last one is active. Ids are unique but not ordered: compaction gives the segment
    /// that replaces a run of old ones a new id.
    package var segments: [Segment]
    /// The id the next new segment (of a roll or a compaction) gets: more than every id ever
    /// used, so a segment file whose id is this or more was created after this manifest.
    package var nextSegmentId: UInt64

    package init(salt: UInt64, createdAt: Int64, segments: [Segment], nextSegmentId: UInt64? = nil) {
        self.salt = salt
        self.createdAt = createdAt
        self.segments = segments
        self.nextSegmentId = nextSegmentId ?? (segments.map(\.id).max() ?? 0) + 1
    }

    /// The manifest's bytes.
    package func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: Format.manifestHeaderLength + segments.count * Format.manifestEntryLength + 4)
        writer.writeUInt32(Format.manifestMagic)
        writer.writeUInt16(Format.version)
        writer.writeUInt16(0)
        writer.writeUInt64(salt)
        writer.writeInt64(createdAt)
        writer.writeUInt32(UInt32(segments.count))
        writer.writeUInt64(nextSegmentId)
        for segment in segments {
            writer.writeUInt64(segment.id)
            writer.writeUInt64(segment.baseSequence)
            writer.writeUInt64(segment.sealedLength)
            writer.writeUInt64(segment.lastSequence)
        }
        writer.writeUInt32(CRC32C.mask(CRC32C.checksum(writer.bytes)))
        return writer.bytes
    }

    /// Parses and checks a manifest: magic, version, exact length, CRC, and segment order.
    package static func decode(_ bytes: [UInt8], path: String) throws(StoreError) -> Manifest {
        let minimum = Format.manifestHeaderLength + 4
        guard bytes.count >= minimum else {
            throw .corruption("manifest is too short (\(bytes.count) bytes)", path: path, offset: 0)
        }
        return try bytes.withUnsafeBytesTyped { buffer throws(StoreError) in
            guard buffer.loadLittleEndian(UInt32.self, at: 0) == Format.manifestMagic else {
                throw .corruption("manifest has a bad magic number", path: path, offset: 0)
            }
            let version = buffer.loadLittleEndian(UInt16.self, at: 4)
            guard version == Format.version else {
                throw StoreError(.unsupportedFormat, "manifest format version \(version) is not supported", path: path, offset: 4)
            }
            let count = Int(buffer.loadLittleEndian(UInt32.self, at: 24))
            guard count >= 1, count <= Format.maximumSegmentCount,
                  bytes.count == Format.manifestHeaderLength + count * Format.manifestEntryLength + 4
            else {
                throw .corruption("manifest length \(bytes.count) does not match its \(count) segments", path: path, offset: 24)
            }
            let crcOffset = bytes.count - 4
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buffer[..<crcOffset]))
            guard CRC32C.unmask(buffer.loadLittleEndian(UInt32.self, at: crcOffset)) == crc else {
                throw .corruption("manifest CRC mismatch", path: path, offset: UInt64(crcOffset))
            }
            guard buffer.loadLittleEndian(UInt16.self, at: 6) == 0 else {
                throw .corruption("manifest has unknown flags", path: path, offset: 6)
            }
            let nextSegmentId = buffer.loadLittleEndian(UInt64.self, at: 28)
            var segments: [Segment] = []
            var ids = Set<UInt64>()
            for index in 0..<count {
                let at = Format.manifestHeaderLength + index * Format.manifestEntryLength
                let segment = Segment(id: buffer.loadLittleEndian(UInt64.self, at: at),
                                      baseSequence: buffer.loadLittleEndian(UInt64.self, at: at + 8),
                                      sealedLength: buffer.loadLittleEndian(UInt64.self, at: at + 16),
                                      lastSequence: buffer.loadLittleEndian(UInt64.self, at: at + 24))
                let isLast = index == count - 1
                guard segment.id > 0, segment.id < nextSegmentId, segment.isActive == isLast, ids.insert(segment.id).inserted else {
                    throw .corruption("manifest entry \(index) is inconsistent (segment \(segment.id))", path: path, offset: UInt64(at))
                }
                segments.append(segment)
            }
            return Manifest(salt: buffer.loadLittleEndian(UInt64.self, at: 8),
                            createdAt: Int64(bitPattern: buffer.loadLittleEndian(UInt64.self, at: 16)),
                            segments: segments, nextSegmentId: nextSegmentId)
        }
    }

    /// Reads and checks the `MANIFEST` of the store in `directory`. Shared by recovery and by
    /// the readers that take no lock (``LogReader``): the manifest is replaced by a rename, so
    /// the handle opened here keeps reading one whole manifest whatever a writer does meanwhile.
    /// - Throws: ``StoreError/Code/notFound`` when there is no manifest,
    ///   ``StoreError/Code/corruption`` when it does not verify.
    package static func read(in directory: String, fileSystem: any FileSystem) throws(StoreError) -> Manifest {
        let handle = try fileSystem.open(joinPath(directory, Format.manifestFileName), mode: .readOnly)
        defer { try? handle.close() }
        let size = try handle.size()
        guard size <= UInt64(Format.manifestHeaderLength + 4 + Format.maximumSegmentCount * Format.manifestEntryLength) else {
            throw .corruption("manifest is implausibly large (\(size) bytes)", path: handle.path, offset: 0)
        }
        return try decode(try handle.read(at: 0, count: Int(size)), path: handle.path)
    }

    /// Installs this manifest atomically: write `MANIFEST.tmp`, fsync it, rename it over
    /// `MANIFEST`, fsync the directory. A crash leaves the old manifest or this one.
    /// - Parameters:
    ///   - fileSite: the sync site of the `MANIFEST.tmp` fsync.
    ///   - directorySite: the sync site of the directory fsync after the rename; nil when the
    ///     caller makes the directory durable itself before anything depends on the rename.
    package func install(in directory: String, fileSystem: any FileSystem, syncSites: SyncSites,
                         fileSite: SyncSite, directorySite: SyncSite?) throws(StoreError) {
        var renamed = false
        try install(in: directory, fileSystem: fileSystem, syncSites: syncSites, fileSite: fileSite,
                    directorySite: directorySite, renamed: &renamed)
    }

    /// ``install(in:fileSystem:syncSites:fileSite:directorySite:)``, telling whether the rename
    /// happened before a failure: until it, the old manifest stands; after it, the new one
    /// may or may not be durable.
    package func install(in directory: String, fileSystem: any FileSystem, syncSites: SyncSites,
                         fileSite: SyncSite, directorySite: SyncSite?, renamed: inout Bool) throws(StoreError) {
        let temporary = joinPath(directory, Format.manifestTemporaryFileName)
        if try fileSystem.kind(of: temporary) != .missing { try fileSystem.removeFile(temporary) }
        let handle = try fileSystem.open(temporary, mode: .createNew)
        do {
            try handle.write(encoded(), at: 0)
            try syncSites.run(fileSite) { () throws(StoreError) in try handle.sync(.full) }
        } catch {
            try? handle.close()
            throw error
        }
        try handle.close()
        try fileSystem.rename(temporary, to: joinPath(directory, Format.manifestFileName))
        renamed = true
        if let directorySite {
            try syncSites.run(directorySite) { () throws(StoreError) in try fileSystem.syncDirectory(directory) }
        }
    }
}
