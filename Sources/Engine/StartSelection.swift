import Foundation

/// Several starts of a run from generated references, the one the data like best kept (`--starts S`).
///
/// A run from the unaligned average breaks the average's near-spherical symmetry at random in its first
/// iterations, and a pseudo-symmetric particle (the 80S ribosome at 32³ correlates 0.82 with itself
/// turned 178°) then ends in either of two frames, or with its particles split between them. Which one is a
/// lottery of the seed: on 200 ribosome particles with the subtle class difference at SNR 0.3, seed 1
/// ended at 0.570 (fitted median 122°), seeds 2–5 at 0.995–1.000 (1.8–2.1°). The log-likelihood tells
/// them apart early: the failed start's E-step at its 4th iteration scored 1 156 580 nats below zero
/// against 1 103 343–1 112 504 for the others. So after `iterations` iterations of the run itself, S − 1
/// more starts (other seeds, each from its own unaligned average) run as many iterations, every start's
/// model is scored by one E-step of all particles at one common resolution with one σ, and the run goes
/// on from the best other start only if it beats the run's own by `requiredGainPerComponent`
/// (DEVIATIONS.md).
public struct StartSelection {
    public let refinement: Refinement
    /// Starts in all, the run's own included.
    public let starts: Int
    /// Iterations of every start before the scoring.
    public let iterations: Int
    /// Applied to every model of the other starts, as the driver applies it to the run's (the focus mask).
    public var adjustModel: (Model) -> Model = { $0 }
    /// Called on every rank when another start has run its iterations (the log's progress).
    public var startFinished: ((_ seed: UInt64, _ model: Model) -> Void)?
    /// Polled between starts: true stops the selection (the run continues from its own start).
    public var shouldStop: () -> Bool = { false }

    public init(refinement: Refinement, starts: Int, iterations: Int) {
        self.refinement = refinement
        self.starts = starts
        self.iterations = iterations
    }

    /// How much higher another start must score to replace the run's own, in nats per particle and per
    /// Fourier component within the scoring radius (half of the sphere, (2π/3)·r³: a log-likelihood
    /// difference grows with both, and with the grey scale it does not change). On 200 ribosome particles
    /// (r 4.5 px case) the start that lost the frame (SNR 0.3) trailed by 0.12, one that was losing a class
    /// (SNR 1: fractions 0.14 / 0.86 at iteration 3) by 0.046. On the matrix's other rows the starts
    /// differed by 0.000–0.011, and there the higher score did not predict the better end: always
    /// switching took SNR 0.03 from 0.995 to 0.860.
    public static let requiredGainPerComponent = 0.02

    /// The gain a start needs over the run's own at `radius` shells on `images` particles.
    public static func requiredGain(radius: Int, images: Int) -> Double {
        requiredGainPerComponent * Double(images) * 2 * Double.pi / 3 * pow(Double(radius), 3)
    }

    public struct Candidate: Sendable {
        public let seed: UInt64
        /// The radius the start's own iterations reached (the scoring uses the smallest of all starts').
        public let radius: Int
        public let logLikelihood: Double
    }

    public struct Outcome: Sendable {
        /// The model and this rank's results to continue from: another start after its scoring E-step,
        /// or the run's own model as it came in, with nil results (go on unchanged).
        public let model: Model
        public let results: [ParticleResult]?
        public let candidates: [Candidate]
        /// Index into `candidates` of the one kept (0: the run's own start).
        public let chosen: Int
        public let scoringRadius: Int
    }

    /// The seed of start `j` (0 is the run's own): the run's seed + j, so `--seed` with it reproduces
    /// that start's first iterations.
    public func seed(ofStart j: Int) -> UInt64 {
        refinement.setup.options.seed &+ UInt64(j)
    }

    /// Scores the run's own model after its `iterations` iterations against the other starts'. Collective:
    /// every rank calls it with its own particles at the same point. nil when a stop was requested.
    public func run(model: Model, particles: [Particle], totalImages: Int, reducer: any Reducer) throws -> Outcome? {
        var models = [model]
        var seeds = [seed(ofStart: 0)]
        for j in 1 ..< starts {
            if shouldStop() { return nil }
            let s = seed(ofStart: j)
            let m = try fromNothing(particles, totalImages: totalImages, seed: s, last: model.iteration, reducer: reducer)
            startFinished?(s, m)
            models.append(m)
            seeds.append(s)
        }
        let radius = models.map(\.currentRadius).min() ?? model.currentRadius
        var scored: [(model: Model, results: [ParticleResult])] = []
        var candidates: [Candidate] = []
        // The scoring E-steps are not the run's next iteration: the progress display does not count them.
        var scorer = refinement
        scorer.progress = nil
        for (m, s) in zip(models, seeds) {
            if shouldStop() { return nil }
            var probe = m
            probe.sigmaNoise = model.sigmaNoise
            probe.sigmaOffset = model.sigmaOffset
            probe.currentRadius = radius
            probe.localSearchReach = 0
            let step = try scorer.runIteration(model.iteration + 1, model: probe, particles: particles, previous: nil,
                                               reducer: reducer)
            scored.append((adjustModel(step.model), step.results))
            candidates.append(Candidate(seed: s, radius: m.currentRadius, logLikelihood: step.statistics.logLikelihood))
        }
        let best = candidates.indices.max { candidates[$0].logLikelihood < candidates[$1].logLikelihood }!
        let own = candidates[0].logLikelihood
        let chosen = candidates[best].logLikelihood - own > Self.requiredGain(radius: radius, images: totalImages) ? best : 0
        guard chosen != 0 else {
            // The run goes on from its own start as if nothing had been tried (its scoring step is not kept).
            return Outcome(model: model, results: nil, candidates: candidates, chosen: 0, scoringRadius: radius)
        }
        var next = scored[chosen].model
        next.iteration = model.iteration
        return Outcome(model: next, results: scored[chosen].results, candidates: candidates, chosen: chosen,
                       scoringRadius: radius)
    }

    /// The run's first `iterations` iterations with another seed (its own unaligned average, split and
    /// searches).
    func fromNothing(_ particles: [Particle], totalImages: Int, seed: UInt64, last: Int, reducer: any Reducer) throws -> Model {
        let sub = try refinement.withOptions {
            $0.seed = seed
            $0.realignSeeds = 0
        }
        let start = try InitialReferences.generate(particles: particles, totalImages: totalImages, setup: sub.setup,
                                                   reducer: reducer)
        var model = adjustModel(try sub.initialModel(references: start.references))
        var previous: [ParticleResult]? = nil
        // The run's own iteration numbers (they start at --istart), ending at the model's.
        for it in (last - iterations + 1) ... last {
            let step = try sub.runIteration(it, model: model, particles: particles, previous: previous, reducer: reducer)
            model = adjustModel(step.model)
            previous = step.results
        }
        return model
    }
}
