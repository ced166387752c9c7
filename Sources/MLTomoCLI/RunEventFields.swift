import Distributed
import Engine
import Formats

/// The JSON events of a run (Formats' `RunEvents`) from the values the Engine and the driver report.
extension IterationEvent {
    init(iteration: Int, timing t: RankTiming, statistics s: IterationStatistics) {
        self.init(iteration: iteration, ranks: t.ranks, threads: t.threads, seconds: t.total, eStepMax: t.eStepMax,
                  eStepMin: t.eStepMin, reduce: t.reduce, mStep: t.mStep, write: t.write, logLikelihood: s.logLikelihood,
                  pMax: s.averageMaxProbability, sigmaNoise: s.sigmaNoise, sigmaOffset: s.sigmaOffset, fractions: s.fractions,
                  triples: s.triples, coarseTriples: s.coarseTriples, significantTriples: s.significantTriples, peakRSSMiB: t.peakRSSMiB,
                  baselineRSSMiB: t.baselineRSSMiB, budgetMiB: t.budgetMiB, fftC2RSeconds: t.fftSeconds,
                  c2rInEStepSeconds: s.c2rCalls > 0 ? s.c2rSeconds / Double(s.c2rCalls) : 0,
                  radius: s.radius, box: s.workingDim, converged: s.converged)
    }
}

extension PredictionEvent {
    init(_ p: CostPrediction) {
        self.init(images: p.images, ranks: p.ranks, threads: p.threads, classes: p.classes, dim: p.dim, fullDim: p.fullDim,
                  orientationsPerImage: p.orientationsPerImage, triples: p.triples, triplesAtLeast: p.triplesAtLeast,
                  coarseTriples: p.coarseTriples, coarseDim: p.coarseDim, c2rSeconds: p.c2rSeconds,
                  rotationSeconds: p.rotationSeconds, eStepSeconds: p.eStepSeconds, reduceSeconds: p.reduceSeconds,
                  mStepSeconds: p.mStepSeconds, secondsPerIteration: p.secondsPerIteration,
                  secondsPerIterationAtLeast: p.secondsPerIterationAtLeast)
        triplesExpected = p.triplesExpected
        secondsPerIterationExpected = p.secondsPerIterationExpected
        localCoarseTriples = p.localCoarseTriples
        secondsPerLocalIteration = p.localCoarseTriples > 0 ? p.secondsPerLocalIteration : 0
    }
}
