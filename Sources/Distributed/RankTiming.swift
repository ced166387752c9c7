import Engine
import Foundation

/// Per-iteration time breakdown over all ranks (the raw material of the scaling study).
public struct RankTiming: Sendable, Equatable {
    public var eStepMax: Double
    public var eStepMin: Double
    public var reduce: Double
    public var mStep: Double
    public var write: Double
    public var total: Double
    public var ranks: Int
    public var threads: Int
    /// Largest peak resident set size over the ranks (MiB).
    public var peakRSSMiB: Double = 0
    /// That rank's RSS before it loaded any image (the runtime), and its data budget (`MemoryBudget`).
    public var baselineRSSMiB: Double = 0
    public var budgetMiB: Double = 0
    /// One d³ complex-to-real FFT on one thread, measured by rank 0 at start-up (the cost floor unit).
    public var fftSeconds: Double = 0

    public init(eStepMax: Double, eStepMin: Double, reduce: Double, mStep: Double, write: Double, total: Double,
                ranks: Int, threads: Int, peakRSSMiB: Double = 0, baselineRSSMiB: Double = 0, budgetMiB: Double = 0,
                fftSeconds: Double = 0) {
        self.eStepMax = eStepMax
        self.eStepMin = eStepMin
        self.reduce = reduce
        self.mStep = mStep
        self.write = write
        self.total = total
        self.ranks = ranks
        self.threads = threads
        self.peakRSSMiB = peakRSSMiB
        self.baselineRSSMiB = baselineRSSMiB
        self.budgetMiB = budgetMiB
        self.fftSeconds = fftSeconds
    }

    /// One JSON line for the log (`{"event":"iteration",...}`), for scripts.
    public func jsonLine(iteration: Int, statistics s: IterationStatistics) -> String {
        func num(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "null" }
        let fractions = s.fractions.map(num).joined(separator: ",")
        return "{\"event\":\"iteration\",\"iteration\":\(iteration),\"ranks\":\(ranks),\"threads\":\(threads),"
            + "\"seconds\":\(num(total)),\"estep_max\":\(num(eStepMax)),\"estep_min\":\(num(eStepMin)),"
            + "\"reduce\":\(num(reduce)),\"mstep\":\(num(mStep)),\"write\":\(num(write)),"
            + "\"log_likelihood\":\(num(s.logLikelihood)),\"pmax\":\(num(s.averageMaxProbability)),"
            + "\"sigma_noise\":\(num(s.sigmaNoise)),\"sigma_offset\":\(num(s.sigmaOffset)),"
            + "\"fractions\":[\(fractions)],\"triples\":\(s.triples),\"coarse_triples\":\(s.coarseTriples),\"significant_triples\":\(s.significantTriples),"
            + "\"peak_rss_mib\":\(num(peakRSSMiB)),\"baseline_rss_mib\":\(num(baselineRSSMiB)),\"budget_mib\":\(num(budgetMiB)),\"fft_c2r_seconds\":\(num(fftSeconds)),"
            + "\"c2r_in_estep_seconds\":\(num(s.c2rCalls > 0 ? s.c2rSeconds / Double(s.c2rCalls) : 0)),"
            + "\"radius\":\(s.radius),\"box\":\(s.workingDim),\"converged\":\(s.converged)}"
    }
}
