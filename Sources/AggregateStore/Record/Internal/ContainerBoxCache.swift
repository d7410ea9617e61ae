/// Reuses the boxes of `KeyedEncodingContainer` and `KeyedDecodingContainer`.
///
/// Making a keyed container costs two generic-metadata lookups and a heap allocation (the
/// standard library's box around our container), more than all the fields it then reads or
/// writes. A keyed container of ours keeps its state in a ``ContainerToken``'s memory, so its
/// box can serve again once nobody else holds it: the cache keeps one box per coding-key type
/// (a few for recursive types) and hands a box out again only when
/// `isKnownUniquelyReferenced` says the cache's reference is the only one, so a container a
/// `Codable` implementation kept is never reused under it.
///
/// The `KeyedEncodingContainer`/`KeyedDecodingContainer` structs are a single class reference
/// (their box); ``supported`` checks that once, and without it the cache is not used.
struct ContainerBoxCache<Handle: ContainerHandle> {
    /// A kept box and the handle memory its container points at, which the cache owns.
    struct Entry {
        var keyType: ObjectIdentifier
        var box: AnyObject
        var handle: UnsafeMutablePointer<Handle>
    }

    /// The most boxes kept; more are replaced round-robin.
    static var capacity: Int { 32 }

    private var entries: [Entry] = []
    /// Boxes let go while someone else still held them: their handles are freed once the
    /// cache's reference is the only one left.
    private var retired: [Entry] = []
    private var nextReplacement = 0

    /// The index of a box for `keyType` that nobody else holds, if there is one.
    @inline(__always)
    mutating func reusable(for keyType: ObjectIdentifier) -> Int? {
        var index = 0
        let count = entries.count
        while index < count {
            if entries[index].keyType == keyType && isKnownUniquelyReferenced(&entries[index].box) { return index }
            index &+= 1
        }
        return nil
    }

    /// The handle of the entry at `index`.
    @inline(__always)
    func handle(at index: Int) -> UnsafeMutablePointer<Handle> { entries[index].handle }

    /// The box of the entry at `index`.
    @inline(__always)
    func box(at index: Int) -> AnyObject { entries[index].box }

    /// Keeps a new box and takes ownership of its handle.
    mutating func insert(keyType: ObjectIdentifier, box: AnyObject, handle: UnsafeMutablePointer<Handle>) {
        let entry = Entry(keyType: keyType, box: box, handle: handle)
        if entries.count < Self.capacity {
            entries.append(entry)
        } else {
            retire(entries[nextReplacement])
            entries[nextReplacement] = entry
            nextReplacement = (nextReplacement + 1) % Self.capacity
        }
    }

    /// Lets go of an entry: frees its handle now if nobody else holds the box, later if someone does.
    private mutating func retire(_ entry: Entry) {
        var entry = entry
        if isKnownUniquelyReferenced(&entry.box) {
            Self.free(entry.handle)
        } else {
            retired.append(entry)
        }
    }

    private static func free(_ handle: UnsafeMutablePointer<Handle>) {
        handle.pointee.releaseResources()
        handle.deinitialize(count: 1)
        handle.deallocate()
    }

    /// At the end of an encoding or decoding: lets every kept box release what its handle holds
    /// (`clear`), retires any box someone else still holds (a container that escaped keeps its
    /// handle as it is, and is never handed out again), and frees the handles of retired boxes
    /// nobody holds any more.
    mutating func endOfUse(_ clear: (UnsafeMutablePointer<Handle>) -> Void) {
        var index = 0
        while index < entries.count {
            if isKnownUniquelyReferenced(&entries[index].box) {
                clear(entries[index].handle)
                index += 1
            } else {
                retired.append(entries.remove(at: index))
                nextReplacement = 0
            }
        }
        if !retired.isEmpty { sweep() }
    }

    private mutating func sweep() {
        var index = 0
        while index < retired.count {
            if isKnownUniquelyReferenced(&retired[index].box) {
                Self.free(retired.remove(at: index).handle)
            } else {
                index += 1
            }
        }
    }

    /// Lets go of every box, for a workspace that is dropped. The handle of a box someone still
    /// holds is left allocated (that container can still be asked for its path and will refuse
    /// everything else): a small leak, and only for code that keeps containers after its call.
    mutating func removeAll() {
        for entry in entries { retire(entry) }
        entries.removeAll()
        nextReplacement = 0
        sweep()
        retired.removeAll()
    }

    /// Whether keyed containers are single class references, so their boxes can be kept as
    /// `AnyObject` and turned back into containers.
    static var supported: Bool { containerLayoutIsSingleReference }
}

/// The memory a keyed container keeps its state in when its box is not in a cache (the cache
/// is unsupported, or the container belongs to a `superDecoder()`): it lives as long as the
/// container.
final class ContainerToken<Handle: ContainerHandle> {
    let handle: UnsafeMutablePointer<Handle>

    init(_ initial: Handle) {
        handle = .allocate(capacity: 1)
        handle.initialize(to: initial)
    }

    deinit {
        handle.pointee.releaseResources()
        handle.deinitialize(count: 1)
        handle.deallocate()
    }
}

private enum ProbeKey: CodingKey {
    case probe
}

/// Checked once: a keyed container is one class reference whose uniqueness the cache can see.
let containerLayoutIsSingleReference: Bool = {
    guard MemoryLayout<KeyedEncodingContainer<ProbeKey>>.size == MemoryLayout<AnyObject>.size,
          MemoryLayout<KeyedDecodingContainer<ProbeKey>>.size == MemoryLayout<AnyObject>.size,
          MemoryLayout<KeyedEncodingContainer<ProbeKey>>.alignment == MemoryLayout<AnyObject>.alignment,
          MemoryLayout<KeyedDecodingContainer<ProbeKey>>.alignment == MemoryLayout<AnyObject>.alignment
    else { return false }
    var box = unsafeBitCast(KeyedEncodingContainer(ProbeContainer()), to: AnyObject.self)
    guard isKnownUniquelyReferenced(&box) else { return false }
    let copy = unsafeBitCast(box, to: KeyedEncodingContainer<ProbeKey>.self)
    let sharedWhileCopied = !isKnownUniquelyReferenced(&box)
    let works = copy.codingPath.isEmpty
    _ = consume copy
    return sharedWhileCopied && works && isKnownUniquelyReferenced(&box)
}()

/// A container that only answers `codingPath`, for the layout check.
private struct ProbeContainer: KeyedEncodingContainerProtocol {
    var codingPath: [any CodingKey] { [] }
    mutating func encodeNil(forKey key: ProbeKey) throws {}
    mutating func encode<T: Encodable>(_ value: T, forKey key: ProbeKey) throws {}
    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: ProbeKey
    ) -> KeyedEncodingContainer<NestedKey> {
        preconditionFailure("not used")
    }
    mutating func nestedUnkeyedContainer(forKey key: ProbeKey) -> any UnkeyedEncodingContainer { preconditionFailure("not used") }
    mutating func superEncoder() -> any Encoder { preconditionFailure("not used") }
    mutating func superEncoder(forKey key: ProbeKey) -> any Encoder { preconditionFailure("not used") }
}
