/// One token of the query text, with the UTF-8 offset it starts at.
struct QueryToken: Equatable {
    enum Kind: Equatable {
        /// A bare identifier or keyword, `[A-Za-z_][A-Za-z0-9_]*`, as written.
        case word(String)
        /// A backquoted name, unescaped.
        case quotedName(String)
        /// A single-quoted string, unescaped.
        case string(String)
        /// A hexadecimal bytes literal, `x'00ff'`.
        case bytes([UInt8])
        /// A number as written: optional `-`, digits, fraction, exponent, `d` suffix.
        case number(String)
        /// Punctuation or an operator: `( ) , . [ ] { } : = != <> < <= > >=`.
        case symbol(String)
        /// The end of the text.
        case end
    }

    var kind: Kind
    var offset: Int

    /// Whether this is the bare keyword `word` (lowercase), ignoring ASCII case.
    func isKeyword(_ word: String) -> Bool {
        if case .word(let text) = kind { return QuerySyntax.asciiLowercased(text) == word }
        return false
    }

    /// Whether this is the symbol `symbol`.
    func isSymbol(_ symbol: String) -> Bool {
        if case .symbol(let text) = kind { return text == symbol }
        return false
    }

    /// How an error message names the token: `'and'`, `'='`, `a string`, `the end of the text`.
    var quotedForMessage: String {
        switch kind {
        case .word(let text): return "'\(text)'"
        case .quotedName(let text): return "the name \(QuerySyntax.name(text))"
        case .string: return "a string"
        case .bytes: return "a bytes literal"
        case .number(let text): return "'\(text)'"
        case .symbol(let text): return "'\(text)'"
        case .end: return "the end of the text"
        }
    }
}

/// Splits query text into tokens. Every malformed input is an `invalidArgument` error naming
/// the column; nothing traps.
struct QueryLexer {
    let bytes: [UInt8]
    let subject: String
    private var position = 0

    init(_ text: String, subject: String) {
        bytes = Array(text.utf8)
        self.subject = subject
    }

    /// An error at a byte offset: `query text, column 12: message`.
    func error(_ message: String, at offset: Int) -> StoreError {
        StoreError(.invalidArgument, "\(subject), column \(QuerySyntax.column(of: offset, in: bytes)): \(message)")
    }

    /// All tokens, ending with `.end`.
    mutating func tokenize() throws(StoreError) -> [QueryToken] {
        var tokens: [QueryToken] = []
        while true {
            let token = try next()
            tokens.append(token)
            if token.kind == .end { return tokens }
        }
    }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private func byte(at offset: Int) -> UInt8? { offset < bytes.count ? bytes[offset] : nil }

    private static func isDigit(_ byte: UInt8?) -> Bool {
        guard let byte else { return false }
        return byte >= 0x30 && byte <= 0x39
    }

    private mutating func next() throws(StoreError) -> QueryToken {
        while let byte = current, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { position += 1 }
        let start = position
        guard let byte = current else { return QueryToken(kind: .end, offset: start) }
        if QuerySyntax.isIdentifierStart(byte) {
            if (byte == UInt8(ascii: "x") || byte == UInt8(ascii: "X")) && self.byte(at: start + 1) == UInt8(ascii: "'") {
                position += 1
                return QueryToken(kind: .bytes(try readHex()), offset: start)
            }
            while let next = current, QuerySyntax.isIdentifierByte(next) { position += 1 }
            return QueryToken(kind: .word(String(decoding: bytes[start..<position], as: UTF8.self)), offset: start)
        }
        if Self.isDigit(byte) || (byte == UInt8(ascii: "-") && Self.isDigit(self.byte(at: start + 1))) {
            return QueryToken(kind: .number(try readNumber()), offset: start)
        }
        switch byte {
        case UInt8(ascii: "'"):
            return QueryToken(kind: .string(try readQuoted(UInt8(ascii: "'"), what: "string")), offset: start)
        case UInt8(ascii: "`"):
            let name = try readQuoted(UInt8(ascii: "`"), what: "name")
            guard !name.isEmpty else { throw error("a name in backquotes must not be empty", at: start) }
            return QueryToken(kind: .quotedName(name), offset: start)
        case UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: ","), UInt8(ascii: "."), UInt8(ascii: "["),
             UInt8(ascii: "]"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ":"), UInt8(ascii: "="):
            position += 1
            return QueryToken(kind: .symbol(String(UnicodeScalar(byte))), offset: start)
        case UInt8(ascii: "!"):
            guard self.byte(at: start + 1) == UInt8(ascii: "=") else {
                throw error("expected '!=', found '!'", at: start)
            }
            position += 2
            return QueryToken(kind: .symbol("!="), offset: start)
        case UInt8(ascii: "<"), UInt8(ascii: ">"):
            position += 1
            if current == UInt8(ascii: "=") {
                position += 1
            } else if byte == UInt8(ascii: "<") && current == UInt8(ascii: ">") {
                position += 1
            }
            return QueryToken(kind: .symbol(String(decoding: bytes[start..<position], as: UTF8.self)), offset: start)
        default:
            throw error("unexpected character \(describeCharacter(at: start))", at: start)
        }
    }

    private func describeCharacter(at offset: Int) -> String {
        var end = offset + 1
        while end < bytes.count && bytes[end] & 0xC0 == 0x80 { end += 1 }
        let character = String(decoding: bytes[offset..<end], as: UTF8.self)
        guard let scalar = character.unicodeScalars.first, scalar.value >= 0x20, scalar.value != 0x7F else {
            return "U+" + String(character.unicodeScalars.first?.value ?? 0, radix: 16, uppercase: true)
        }
        return "'\(character)'"
    }

    /// A quoted run ending at an undoubled `quote`; a doubled quote stands for one.
    private mutating func readQuoted(_ quote: UInt8, what: String) throws(StoreError) -> String {
        let start = position
        position += 1
        var content: [UInt8] = []
        while true {
            guard let byte = current else { throw error("unterminated \(what)", at: start) }
            position += 1
            if byte == quote {
                guard current == quote else { break }
                position += 1
            }
            content.append(byte)
        }
        return String(decoding: content, as: UTF8.self)
    }

    /// The bytes of `x'...'`, an even number of hexadecimal digits; the `x` is already read.
    private mutating func readHex() throws(StoreError) -> [UInt8] {
        let start = position - 1
        position += 1
        var result: [UInt8] = []
        var high: UInt8?
        while true {
            guard let byte = current else { throw error("unterminated bytes literal", at: start) }
            if byte == UInt8(ascii: "'") { break }
            guard let nibble = Self.hexValue(byte) else {
                throw error("expected a hexadecimal digit in the bytes literal, found \(describeCharacter(at: position))",
                            at: position)
            }
            position += 1
            if let first = high {
                result.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil else { throw error("a bytes literal needs an even number of hexadecimal digits", at: start) }
        position += 1
        return result
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `-? digits (. digits)? ([eE] [+-]? digits)? [dD]?`, not followed by a name character.
    private mutating func readNumber() throws(StoreError) -> String {
        let start = position
        if current == UInt8(ascii: "-") { position += 1 }
        while Self.isDigit(current) { position += 1 }
        if current == UInt8(ascii: "."), Self.isDigit(byte(at: position + 1)) {
            position += 1
            while Self.isDigit(current) { position += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            var end = position + 1
            if byte(at: end) == UInt8(ascii: "+") || byte(at: end) == UInt8(ascii: "-") { end += 1 }
            if Self.isDigit(byte(at: end)) {
                position = end
                while Self.isDigit(current) { position += 1 }
            }
        }
        if current == UInt8(ascii: "d") || current == UInt8(ascii: "D") { position += 1 }
        if let next = current, QuerySyntax.isIdentifierByte(next) || next == UInt8(ascii: ".") {
            throw error("unexpected \(describeCharacter(at: position)) after the number", at: position)
        }
        return String(decoding: bytes[start..<position], as: UTF8.self)
    }
}
