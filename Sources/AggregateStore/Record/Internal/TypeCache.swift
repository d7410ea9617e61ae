/// Answers about types, computed once per type and kept: the runtime's conformance lookup
/// (`T.self as? any ArrayDecoding.Type`) costs more than decoding a small array, and the decoder
/// asks it for every array it meets.
///
/// A linear table in raw memory: a value's types are few, and the table is read without the
/// retain and uniqueness checks an array in a struct behind a pointer would cost.
struct TypeCache<Answer> {
    /// The most types kept; the answers for more are computed every time.
    static var capacity: Int { 64 }

    private var types: UnsafeMutablePointer<ObjectIdentifier>?
    private var answers: UnsafeMutablePointer<Answer>?
    private var count = 0

    /// The answer for `type`, from `compute` the first time.
    @inline(__always)
    mutating func answer(for type: ObjectIdentifier, _ compute: () -> Answer) -> Answer {
        if let types {
            var index = 0
            while index < count {
                if types[index] == type { return answers.unsafelyUnwrapped[index] }
                index &+= 1
            }
        }
        return add(type, compute())
    }

    @inline(never)
    private mutating func add(_ type: ObjectIdentifier, _ answer: Answer) -> Answer {
        let types = self.types ?? .allocate(capacity: Self.capacity)
        let answers = self.answers ?? .allocate(capacity: Self.capacity)
        self.types = types
        self.answers = answers
        if count < Self.capacity {
            (types + count).initialize(to: type)
            (answers + count).initialize(to: answer)
            count += 1
        }
        return answer
    }

    /// Frees the memory.
    mutating func deallocate() {
        if let answers { answers.deinitialize(count: count).deallocate() }
        types?.deallocate()
        types = nil
        answers = nil
        count = 0
    }
}
