@testable import AggregateStore
import Testing

@Suite("Scans test predicates on record bytes exactly as on decoded records")
struct RecordFieldPeekTests {
    @Test func predicatesOnBytesAgreeWithTheReferenceEvaluation() throws {
        var random = QueryFixtures.Random(seed: 0x5CA_11ED)
        for round in 0..<3000 {
            var record = QueryFixtures.record(&random)
            if case var .map(map) = record, round.isMultiple(of: 3) {
                map["nested"] = ["inner": QueryFixtures.scalar(&random), "deeper": ["x": QueryFixtures.scalar(&random)]]
                record = .map(map)
            }
            let bytes = try record.encoded()
            for _ in 0..<4 {
                let predicate = QueryFixtures.predicate(&random, depth: 0)
                let onBytes = bytes.withUnsafeBytes { buffer in
                    predicate.matches { path in try? RecordFieldPeek.value(at: path.components, in: buffer) }
                }
                #expect(onBytes == predicate.matches(record), "\(predicate) on \(record)")
            }
            for path in ["nested.inner", "nested.deeper.x", "nested.missing", "id", "missing.deep"] {
                let field = try FieldPath(path)
                let peeked = try bytes.withUnsafeBytes { try RecordFieldPeek.value(at: field.components, in: $0) }
                #expect(peeked == field.value(in: record), "\(path) in \(record)")
            }
        }
    }

    @Test func aDamagedRecordIsReportedNotMisread() throws {
        let bytes = try Document.map(["status": "paid", "total": 12]).encoded()
        #expect(try bytes.withUnsafeBytes { try RecordFieldPeek.value(at: ["total"], in: $0) } == 12)
        // "total" is the last field: every shorter prefix must fail, never read a wrong value.
        for cut in 0..<bytes.count {
            let prefix = Array(bytes[..<cut])
            #expect(throws: StoreError.self, "cut at \(cut)") {
                try prefix.withUnsafeBytes { try RecordFieldPeek.value(at: ["total"], in: $0) }
            }
        }
    }
}
