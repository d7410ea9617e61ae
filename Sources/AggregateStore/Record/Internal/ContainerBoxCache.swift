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
/// (their box); ``isSupported`` says whether they are (checked once), and without it the cache is
/// not used.
///
/// A box is handed out again through its entry's ``BoxCaster``, not `unsafeBitCast`: the
/// standard library's container structs are resilient, so generic code can produce one only
/// with its type metadata, and looking up `KeyedEncodingContainer<Key>` from `Key` goes through
/// the runtime's generic metadata cache (a hashed lookup, about 400 instructions) on every
/// container. The caster, made with the box, holds that metadata.
struct ContainerBoxCache<Handle: ContainerHandle> {
    /// What the cache keeps with a box: its key type, the handle memory its container points
    /// at (which the cache owns), and its ``BoxCaster``.
    struct Entry {
        var keyType: ObjectIdentifier
        var handle: UnsafeMutablePointer<Handle>
        var caster: AnyObject
    }

    /// A box let go while someone else still held it, and its handle.
    struct Retired {
        var box: AnyObject
        var handle: UnsafeMutablePointer<Handle>
    }

    /// The most boxes kept; more are replaced round-robin.
    static var capacity: Int { 32 }

    /// Whether keyed containers are single class references, so their boxes can be kept as
    /// `AnyObject` and turned back into containers; without it the cache is not used. Kept
    /// here so the hot path reads a field, not a lazily initialized global.
    let isSupported = containerLayoutIsSingleReference

    /// `capacity` boxes and their entries, the first `count` in use; allocated on the first
    /// insert. Raw memory rather than an array, whose every `inout` access to a box (the reuse
    /// check) first checks that the array itself is unique; and the boxes apart from the rest,
    /// because in the Swift 6 language mode `isKnownUniquelyReferenced` on an `AnyObject` field
    /// of a struct reached through a pointer checks a copy (and so always says no).
    private var boxes: UnsafeMutablePointer<AnyObject>?
    private var entries: UnsafeMutablePointer<Entry>?
    private var count = 0
    /// Boxes let go while someone else still held them: their handles are freed once the
    /// cache's reference is the only one left.
    private var retired: [Retired] = []
    private var nextReplacement = 0

    /// The index of a box for `keyType` that nobody else holds, if there is one.
    @inline(__always)
    mutating func reusable(for keyType: ObjectIdentifier) -> Int? {
        guard let entries, let boxes else { return nil }
        var index = 0
        let count = self.count
        while index < count {
            if entries[index].keyType == keyType && isKnownUniquelyReferenced(&boxes[index]) { return index }
            index &+= 1
        }
        return nil
    }

    /// The handle of the entry at `index`.
    @inline(__always)
    func handle(at index: Int) -> UnsafeMutablePointer<Handle> { entries.unsafelyUnwrapped[index].handle }

    /// The container of the entry at `index`, whose type must be `Container` (the keyed
    /// container type the entry's box was made for, which its key type decides).
    @inline(__always)
    func container<Container>(at index: Int, as type: Container.Type) -> Container {
        unsafeDowncast(entries.unsafelyUnwrapped[index].caster, to: BoxCaster<Container>.self)
            .container(from: boxes.unsafelyUnwrapped[index])
    }

    /// Keeps a new box of a `Container` and takes ownership of its handle.
    mutating func insert<Container>(
        keyType: ObjectIdentifier, container: Container, handle: UnsafeMutablePointer<Handle>
    ) {
        let box = unsafeBitCast(container, to: AnyObject.self)
        let entry = Entry(keyType: keyType, handle: handle, caster: BoxCaster<Container>())
        let boxes = self.boxes ?? .allocate(capacity: Self.capacity)
        let entries = self.entries ?? .allocate(capacity: Self.capacity)
        self.boxes = boxes
        self.entries = entries
        if count < Self.capacity {
            (boxes + count).initialize(to: box)
            (entries + count).initialize(to: entry)
            count += 1
        } else {
            retire(box: (boxes + nextReplacement).move(), entry: (entries + nextReplacement).move())
            (boxes + nextReplacement).initialize(to: box)
            (entries + nextReplacement).initialize(to: entry)
            nextReplacement = (nextReplacement + 1) % Self.capacity
        }
    }

    /// Lets go of an entry: frees its handle now if nobody else holds the box, later if someone does.
    private mutating func retire(box: AnyObject, entry: Entry) {
        var retiring = Retired(box: box, handle: entry.handle)
        if isKnownUniquelyReferenced(&retiring.box) {
            Self.free(retiring.handle)
        } else {
            retiring.handle.pointee.holdOwner()
            retired.append(retiring)
        }
    }

    private static func free(_ handle: UnsafeMutablePointer<Handle>) {
        handle.pointee.releaseResources()
        handle.deinitialize(count: 1)
        handle.deallocate()
    }

    /// At the end of an encoding or decoding: retires any box someone else still holds (a
    /// container that escaped, never handed out again), and frees the handles of retired boxes
    /// nobody holds any more. Returns whether a box was retired. The boxes kept are left as they
    /// are: nothing but the cache can reach them.
    mutating func endOfUse() -> Bool {
        guard let entries, let boxes else { return false }
        var escaped = false
        var index = 0
        while index < count {
            if isKnownUniquelyReferenced(&boxes[index]) {
                index += 1
            } else {
                escaped = true
                entries[index].handle.pointee.holdOwner()
                // Moves the last entry into its place: the order of the entries does not matter.
                let last = count - 1
                retired.append(Retired(box: (boxes + index).move(), handle: (entries + index).move().handle))
                if index != last {
                    (boxes + index).moveInitialize(from: boxes + last, count: 1)
                    (entries + index).moveInitialize(from: entries + last, count: 1)
                }
                count = last
                nextReplacement = 0
            }
        }
        if !retired.isEmpty { sweep() }
        return escaped
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

    /// Lets go of every box and frees the cache's memory, for a workspace that is dropped. The
    /// handle of a box someone still holds is left allocated (that container can still be asked
    /// for its path and will refuse everything else): a small leak, and only for code that keeps
    /// containers after its call.
    mutating func removeAll() {
        if let entries, let boxes {
            for index in 0..<count { retire(box: (boxes + index).move(), entry: (entries + index).move()) }
            boxes.deallocate()
            entries.deallocate()
        }
        boxes = nil
        entries = nil
        count = 0
        nextReplacement = 0
        sweep()
        retired.removeAll()
    }
}

/// Turns a cached box back into its keyed container.
///
/// A class generic over the container type: its method finds that type's metadata in the
/// instance's class, so code generic over the key type calls it without a lookup. (A closure
/// would do too, but erasing its type for the cache means bit-casting between function types,
/// which the compiler wraps in reabstraction thunks.)
final class BoxCaster<Container> {
    /// Not inlined: inlined into generic code, the cast would look the type up again.
    @inline(never)
    func container(from box: AnyObject) -> Container {
        unsafeBitCast(box, to: Container.self)
    }
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
