import Distributed
import Testing

@Suite struct AgreementValueTests {
    @Test func exitStatusesAreOrderedForAgreement() {
        // Agreement takes the maximum status, so a usage or input error wins over a generic failure,
        // and a stop on request is never hidden by them.
        #expect(ExitStatus.success < .failure)
        #expect(ExitStatus.failure < .usage && ExitStatus.usage < .input && ExitStatus.input < .interrupted)
        #expect([ExitStatus.usage, .input, .interrupted].map(\.rawValue) == [64, 65, 75])
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
