@testable import AggregateStoreEngine
import AggregateStoreTestKit
import Testing

/// Item 9 of the crash suite: with any one fsync or directory-fsync site of the engine disabled,
/// the crash images must find a broken invariant. A site the suite cannot miss proves the
/// suite can see a missing fsync; one it could miss would be a hole in the suite (or a sync
/// that guards nothing, which then should not exist).
@Suite("Crash suite: mutation gate")
struct CrashSuiteMutationGateTests {
    @Test(arguments: SyncSite.allCases)
    func theSuiteNoticesEveryMissingSync(_ site: SyncSite) {
        let tally = CrashTally("mutation gate (\(site.rawValue) disabled)", unit: "states")
        for workload in CrashSuiteImageTests.workloads where tally.anomalies == 0 {
            CrashSuiteImageTests.explore(workload, configuration: CrashSuite.configuration(disabled: site), tally: tally,
                                    budget: 3000, stopAfter: 1)
        }
        print("\(tally.summary) -- first: \(tally.failures.first ?? "none")")
        #expect(tally.anomalies > 0, "with the \(site.rawValue) fsync disabled, the crash images found nothing")
    }
}
