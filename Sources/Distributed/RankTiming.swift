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
}
