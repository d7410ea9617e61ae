import AggregateStore
import Foundation
import Testing

/// The shortcuts the streaming encoder and decoder take for speed, each checked against the slow
/// way (the tree encoder, `Document`) at its edges: integers of every varint length read near the
/// end of a map (fewer than 8 bytes left) and away from it; keys of every length compared as two
/// words when 16 bytes of the record are left and byte by byte when not; arrays built through
/// their conformance; encoders, decoders and container boxes used again across calls.
@Suite("Record codec fast paths")
struct RecordFastPathTests {
    let encoder = RecordEncoder()
    let decoder = RecordDecoder()

    /// An integer as the last field of its map, and the same integer with a long field after it.
    struct Last: Codable, Equatable {
        var name: String
        var value: Int64
    }

    struct Middle: Codable, Equatable {
        var value: Int64
        var padding: String
    }

    /// Every varint length from 1 to 10 bytes, at both ends of each length, both signs.
    static var integers: [Int64] {
        var values: [Int64] = [0, 1, -1, .max, .min, .max - 1, .min + 1]
        for bits in stride(from: 6, through: 62, by: 7) {
            let edge = Int64(1) << Int64(bits)
            values += [edge - 1, edge, -edge, -edge - 1, edge + 12_345 % edge]
        }
        return values
    }

    @Test(arguments: integers)
    func integersOfEveryLengthRoundTripAnywhereInAMap(_ value: Int64) throws {
        for last in [Last(name: "n", value: value), Last(name: String(repeating: "x", count: 40), value: value)] {
            let bytes = try encoder.encode(last)
            #expect(try bytes == encoder.document(from: last).encoded())
            #expect(try decoder.decode(Last.self, from: bytes) == last)
        }
        let middle = Middle(value: value, padding: String(repeating: "p", count: 20))
        let bytes = try encoder.encode(middle)
        #expect(try bytes == encoder.document(from: middle).encoded())
        #expect(try decoder.decode(Middle.self, from: bytes) == middle)
        // The same integers inside an array (each element read by the array's own path).
        let array = Array(repeating: value, count: 3)
        #expect(try decoder.decode([Int64].self, from: encoder.encode(array)) == array)
    }

    /// Keys of 1 to 20 bytes (2 to 21 with their length): one word, two words, more than the
    /// cache keeps inline.
    struct Keys: Codable, Equatable {
        var a = 1
        var bb = 2
        var ccccccc = 3
        var dddddddd = 4
        var eeeeeeeeeeeeeee = 5
        var ffffffffffffffff = 6
        var ggggggggggggggggg = 7
        var hhhhhhhhhhhhhhhhhhhh = 8
    }

    /// The same keys in another order, and all but one: read through the map's index.
    struct KeysReversed: Codable, Equatable {
        var hhhhhhhhhhhhhhhhhhhh: Int
        var ggggggggggggggggg: Int
        var ffffffffffffffff: Int
        var eeeeeeeeeeeeeee: Int
        var dddddddd: Int
        var ccccccc: Int
        var bb: Int
        var a: Int
    }

    struct KeysMissingOne: Codable, Equatable {
        var a: Int
        var bb: Int
        var ccccccc: Int
        var zzzzzzzz: Int
    }

    @Test func keysOfEveryLengthAreFoundInAnyOrder() throws {
        let keys = Keys()
        let bytes = try encoder.encode(keys)
        #expect(try bytes == encoder.document(from: keys).encoded())
        #expect(try decoder.decode(Keys.self, from: bytes) == keys)
        let reversed = try decoder.decode(KeysReversed.self, from: bytes)
        #expect([reversed.a, reversed.bb, reversed.ccccccc, reversed.dddddddd, reversed.eeeeeeeeeeeeeee,
                 reversed.ffffffffffffffff, reversed.ggggggggggggggggg, reversed.hhhhhhhhhhhhhhhhhhhh] == Array(1...8))
        let error = #expect(throws: StoreError.self) { try decoder.decode(KeysMissingOne.self, from: bytes) }
        #expect(error?.code == .invalidArgument)
        #expect(error.map { "\($0)" }?.contains("zzzzzzzz") == true)
        // Inside a larger record, where 16 bytes are always left after a key.
        let wrapped = [keys, keys, keys]
        #expect(try decoder.decode([Keys].self, from: encoder.encode(wrapped)) == wrapped)
    }

    /// A key that matches the wanted one in its first bytes but not its length, or the other way
    /// round, must not be taken for it.
    struct Prefix: Codable, Equatable {
        var status: String
        var statusCode: Int
    }

    struct PrefixOnly: Codable, Equatable {
        var statusCode: Int
    }

    @Test func aKeyIsNotTakenForItsPrefix() throws {
        let bytes = try encoder.encode(Prefix(status: "placed", statusCode: 7))
        #expect(try decoder.decode(PrefixOnly.self, from: bytes) == PrefixOnly(statusCode: 7))
        let document = try Document(decoding: encoder.encode(PrefixOnly(statusCode: 7)))
        #expect(throws: StoreError.self) { try decoder.decode(Prefix.self, from: document) }
    }

    @Test func arraysOfEveryKindRoundTrip() throws {
        let strings = ["", "a", String(repeating: "b", count: 15), String(repeating: "c", count: 16), "日本"]
        #expect(try decoder.decode([String].self, from: encoder.encode(strings)) == strings)
        let nested = [[1, 2], [], [3]]
        #expect(try decoder.decode([[Int]].self, from: encoder.encode(nested)) == nested)
        let empty: [Keys] = []
        #expect(try decoder.decode([Keys].self, from: encoder.encode(empty)) == empty)
        let many = (0..<300).map { Last(name: "n\($0)", value: Int64($0) * 1_000_003) }
        #expect(try decoder.decode([Last].self, from: encoder.encode(many)) == many)
        // An array where a map is expected, and the other way round, names the field.
        #expect(throws: StoreError.self) { try decoder.decode(Keys.self, from: encoder.encode(strings)) }
        #expect(throws: StoreError.self) { try decoder.decode([String].self, from: encoder.encode(Keys())) }
    }

    @Test func stringsOfEveryLengthRoundTrip() throws {
        for count in 0...40 {
            for text in [String(repeating: "a", count: count), String(repeating: "é", count: count / 2)] {
                let value = Last(name: text, value: Int64(count))
                #expect(try decoder.decode(Last.self, from: encoder.encode(value)) == value)
            }
        }
    }

    /// A string as the last field (fewer than 16 bytes of the record after it) and ahead of a
    /// long one.
    struct Tail: Codable, Equatable {
        var value: Int64
        var text: String
    }

    struct Ahead: Codable, Equatable {
        var text: String
        var padding = String(repeating: "p", count: 20)
    }

    /// Short ASCII strings are written and built from their bits: every length to 16, all ASCII
    /// or with one non-ASCII character at each place, anywhere in a record; each must be the
    /// ordinary string.
    @Test func shortStringsAreOrdinaryStrings() throws {
        for count in 0...16 {
            let ascii = String((0..<count).map { Character(Unicode.Scalar(UInt8(0x21 + $0 * 5))) })
            var texts = [ascii]
            for place in 0..<count {
                var characters = Array(ascii)
                characters[place] = "é"
                texts.append(String(characters))
            }
            for text in texts {
                // Written from their bits too: the bytes are the tree encoder's.
                #expect(try encoder.encode(Tail(value: 7, text: text)) == encoder.document(from: Tail(value: 7, text: text)).encoded())
                let tail = try decoder.decode(Tail.self, from: encoder.encode(Tail(value: 7, text: text))).text
                let ahead = try decoder.decode(Ahead.self, from: encoder.encode(Ahead(text: text))).text
                for decoded in [tail, ahead] {
                    #expect(decoded == text)
                    #expect(decoded.utf8.count == text.utf8.count)
                    #expect(decoded.hashValue == text.hashValue)
                    #expect(decoded + "!" == text + "!")
                    #expect(Array(decoded.utf8) == Array(text.utf8))
                }
            }
        }
    }

    /// Containers of every header size, one after another at the same depth (the encoder sets
    /// aside the header size the last one needed, so each guess is too small or too large in
    /// turn): the bytes are the tree encoder's, and decode back.
    @Test func containersOfEveryHeaderSizeFollowOneAnother() throws {
        let sizes = [0, 1, 60, 126, 127, 128, 200, 8_000, 16_383, 16_384, 20_000, 3, 130, 0, 17_000, 5]
        for size in sizes + sizes.reversed() {
            let value = [Last(name: String(repeating: "s", count: size), value: Int64(size))]
            let bytes = try encoder.encode(value)
            #expect(try bytes == encoder.document(from: value).encoded())
            #expect(try decoder.decode([Last].self, from: bytes) == value)
            let many = Array(repeating: Last(name: "m", value: 1), count: size / 40)
            let manyBytes = try encoder.encode(many)
            #expect(try manyBytes == encoder.document(from: many).encoded())
            #expect(try decoder.decode([Last].self, from: manyBytes) == many)
        }
    }

    /// Calls with and without `userInfo` (the encoder and decoder objects are reused only for
    /// calls without it) and with different types, one after another on the same workspaces.
    @Test func callsOfEveryKindFollowOneAnother() throws {
        let key = CodingUserInfoKey(rawValue: "unused")!
        let withInfo = (RecordEncoder(userInfo: [key: 1]), RecordDecoder(userInfo: [key: 1]))
        for round in 0..<50 {
            let keys = Keys()
            let last = Last(name: "r\(round)", value: Int64(round))
            if round.isMultiple(of: 3) {
                #expect(try withInfo.1.decode(Keys.self, from: withInfo.0.encode(keys)) == keys)
            }
            #expect(try decoder.decode(Last.self, from: encoder.encode(last)) == last)
            #expect(try decoder.decode(Keys.self, from: encoder.encode(keys)) == keys)
        }
    }
}
