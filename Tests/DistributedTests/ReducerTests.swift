import Distributed
import Engine
import Testing

@Suite struct SingleProcessReducerTests {
    @Test func isRankZeroOfOne() {
        let reducer = SingleProcessReducer()
        #expect(reducer.rank == 0)
        #expect(reducer.size == 1)
    }

    @Test func reductionsLeaveValuesUnchanged() throws {
        let reducer: any Reducer = SingleProcessReducer()
        let original: [Double] = [-3.5, 0, 1e300, .leastNonzeroMagnitude, 42]
        var values = original
        try reducer.sumInPlace(&values)
        #expect(values == original)
        try reducer.maxInPlace(&values)
        #expect(values == original)
        try reducer.minInPlace(&values)
        #expect(values == original)
        var empty: [Double] = []
        try reducer.sumInPlace(&empty)
        #expect(empty.isEmpty)
    }
}

@Suite struct AgreementValueTests {
    @Test func exitStatusesAreOrderedForAgreement() {
        // Agreement takes the maximum status, so a usage error wins over a generic failure.
        #expect(ExitStatus.success < .failure)
        #expect(ExitStatus.failure < .usage)
    }

    @Test func collectiveFailureReportNamesFirstRankAndListsOthers() {
        let failure = CollectiveFailure(status: .failure, failingRanks: [1, 2, 5], message: "cannot read a.mrc")
        let report = failure.report(programName: "ml_tomo")
        #expect(report.hasPrefix("ml_tomo: error (rank 1): cannot read a.mrc"))
        #expect(report.contains("ranks 2, 5 also failed"))
        let single = CollectiveFailure(status: .usage, failingRanks: [0], message: "bad --nref")
        #expect(single.report(programName: "ml_tomo") == "ml_tomo: error (rank 0): bad --nref")
    }
}
