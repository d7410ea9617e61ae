/// The lexical rules the query text shares between its printer and its parser: which names
/// print bare, how names and strings are quoted, and how a position becomes a column.
enum QuerySyntax {
    /// The nesting limit of the text form: parentheses, `not`, `and(...)`/`or(...)` and array or
    /// map literals together. Hostile text deeper than this is rejected before it can exhaust the
    /// stack.
    static let maximumDepth = 64

    /// The keywords a bare name may not be, compared case-insensitively. A field or table with
    /// such a name is written in backquotes (`` `order` ``). Words that only have a meaning in a
    /// value (`timestamp`, `decimal`, `double`) are not reserved.
    static let reservedWords: Set<String> = [
        "after", "and", "asc", "by", "ci", "contains", "desc", "ends", "false", "from", "in", "is",
        "like", "limit", "not", "null", "offset", "or", "order", "select", "starts", "true", "where",
        "with",
    ]

    /// Whether a byte may start a bare identifier: `[A-Za-z_]`.
    static func isIdentifierStart(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F
    }

    /// Whether a byte may continue a bare identifier: `[A-Za-z0-9_]`.
    static func isIdentifierByte(_ byte: UInt8) -> Bool {
        isIdentifierStart(byte) || (byte >= 0x30 && byte <= 0x39)
    }

    /// Whether a name matches `[A-Za-z_][A-Za-z0-9_]*`.
    static func isIdentifier(_ name: String) -> Bool {
        var bytes = name.utf8.makeIterator()
        guard let first = bytes.next(), isIdentifierStart(first) else { return false }
        while let byte = bytes.next() {
            guard isIdentifierByte(byte) else { return false }
        }
        return true
    }

    /// Whether a word is a reserved keyword, ignoring ASCII case.
    static func isReserved(_ word: String) -> Bool {
        reservedWords.contains(asciiLowercased(word))
    }

    /// The word with `A`-`Z` lowered; other characters kept.
    static func asciiLowercased(_ word: String) -> String {
        guard word.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return word }
        return String(decoding: word.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0 }, as: UTF8.self)
    }

    /// A table or field-path component as the text form writes it: bare when it is an identifier
    /// and not a keyword, otherwise in backquotes with a backquote doubled.
    static func name(_ name: String) -> String {
        if isIdentifier(name) && !isReserved(name) { return name }
        var text = "`"
        for character in name.unicodeScalars {
            if character == "`" { text += "``" } else { text.unicodeScalars.append(character) }
        }
        return text + "`"
    }

    /// A string literal: in single quotes, a quote doubled; every other character as it is.
    static func quoted(_ string: String) -> String {
        var text = "'"
        for scalar in string.unicodeScalars {
            if scalar == "'" { text += "''" } else { text.unicodeScalars.append(scalar) }
        }
        return text + "'"
    }

    /// The 1-based column of a UTF-8 offset, counted in characters (grapheme clusters).
    static func column(of offset: Int, in text: [UInt8]) -> Int {
        let end = min(max(offset, 0), text.count)
        // Step back to a scalar boundary so the prefix decodes cleanly.
        var boundary = end
        while boundary > 0 && boundary < text.count && text[boundary] & 0xC0 == 0x80 { boundary -= 1 }
        return String(decoding: text[0..<boundary], as: UTF8.self).count + 1
    }
}

/// FNV-1a, 32 bits: a stable (unseeded) fingerprint for cursor tokens.
func fnv1a32(_ bytes: some Sequence<UInt8>) -> UInt32 {
    var hash: UInt32 = 0x811C_9DC5
    for byte in bytes {
        hash ^= UInt32(byte)
        hash = hash &* 0x0100_0193
    }
    return hash
}
