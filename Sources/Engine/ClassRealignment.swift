import Foundation
import Volumes

/// Re-aligns every class on its own, from nothing, with a few seeds, and keeps per class the alignment
/// its members' likelihood supports best (`--realign_classes S`).
///
/// Why: at SNR 0.01 the consensus aligns only one of two states that differ by a large part of the map
/// (the one without the subunit); the other class is found but keeps the consensus' wrong poses, and more
/// iterations of the K-class run do not move it (400 ribosome particles: the full ribosome's class at
/// 81–86° against 7–8° for the other). Refined alone from nothing, that class aligned in two of five
/// seeds, and among runs scored at the same resolution the aligned one had the highest log-likelihood
/// (README, issue 15). This automates that: per class, S runs of `iterations` iterations from the
/// class's own unaligned average (seeds differ in the random orientations of that average), then every
/// candidate (the class as it is, and each run's final reference) is scored by one E-step over the
/// class's members at one common radius (the smallest the candidates reached) and with one σ (the
/// K-class model's), so the log-likelihoods compare; the highest wins. The class as it is can win, so
/// an aligned class is never replaced by a worse run.
///
/// Every sum goes through the reducer with each rank's own members, and the seeds derive from `--seed`,
/// so every rank computes the same choice, and the choice does not depend on the number of ranks.
public struct ClassRealignment {
    public let refinement: Refinement
    /// Runs from nothing per class.
    public let seeds: Int
    /// Iterations of each run.
    public let iterations: Int

    /// Called on every rank after each run from nothing (class, seed, its final model): progress for a
    /// phase that can take as long as the rest of the run.
    public var runFinished: ((_ klass: Int, _ seed: UInt64, _ model: Model) -> Void)?
    /// Read before each run; when true (a stop request, agreed between the ranks at the last reduction)
    /// the realignment ends at once and leaves the model and the poses as they were.
    public var shouldStop: () -> Bool = { false }

    public init(refinement: Refinement, seeds: Int, iterations: Int) {
        self.refinement = refinement
        self.seeds = seeds
        self.iterations = iterations
    }

    /// One scored candidate of one class.
    public struct Candidate: Sendable {
        /// The seed of the run from nothing; nil for the class as it was.
        public let seed: UInt64?
        /// The radius (working-box shells) the run ended at (the class's own for the incumbent).
        public let finalRadius: Int
        /// The members' log-likelihood at the common radius.
        public let logLikelihood: Double
    }

    /// What happened to one class.
    public struct ClassOutcome: Sendable {
        /// 0-based class.
        public let klass: Int
        /// Its members over all ranks.
        public let members: Int
        /// The radius at which the candidates were scored (0: the class was too small and kept as it was).
        public let scoringRadius: Int
        public let candidates: [Candidate]
        /// Index into `candidates` of the one kept.
        public let chosen: Int
    }

    /// Classes with fewer members over all ranks are kept as they are: a map refined from a handful of
    /// particles says nothing about their alignment.
    static let minimumMembers = 10

    /// Realigns each class of `model`; `results` are the last results of the local `particles`, same
    /// order. Returns the model to continue from (the chosen references; the next search is global) and
    /// the local results with the chosen poses.
    public func run(model: Model, particles: [Particle], results: [ParticleResult],
                    reducer: any Reducer) throws -> (model: Model, results: [ParticleResult], outcomes: [ClassOutcome]) {
        guard results.count == particles.count else {
            throw EngineError("the class realignment needs one result per particle (\(results.count) for \(particles.count))")
        }
        let k = model.classCount
        // Members per class and, last, N over all ranks (global indices run below it), in one reduction.
        var counts = (0 ..< k).map { c in Double(results.lazy.filter { $0.classNumber == c + 1 }.count) } + [Double(particles.count)]
        try reducer.sumInPlace(&counts)
        let total = Int(counts[k])
        var next = model
        next.localSearchReach = 0
        var merged = results
        var outcomes: [ClassOutcome] = []
        for c in 0 ..< k {
            let local = results.indices.filter { results[$0].classNumber == c + 1 }
            let members = Int(counts[c])
            guard members >= Self.minimumMembers else {
                outcomes.append(ClassOutcome(klass: c, members: members, scoringRadius: 0,
                                             candidates: [Candidate(seed: nil, finalRadius: model.currentRadius, logLikelihood: 0)],
                                             chosen: 0))
                continue
            }
            let memberParticles = local.map { particles[$0] }
            // The candidates' models: the class as it is, then one run from nothing per seed.
            var models = [single(model, klass: c)]
            var seedsUsed: [UInt64?] = [nil]
            for j in 1 ... seeds {
                if shouldStop() { return (model, results, outcomes) }
                let seed = refinement.setup.options.seed &+ UInt64(j)
                let run = try fromNothing(memberParticles, totalImages: total, seed: seed, reducer: reducer)
                runFinished?(c, seed, run)
                models.append(run)
                seedsUsed.append(seed)
            }
            let radius = models.map(\.currentRadius).filter { $0 > 0 }.min() ?? 0
            let scorer = try subRefinement(seed: refinement.setup.options.seed)
            var scored: [(model: Model, results: [ParticleResult])] = []
            var candidates: [Candidate] = []
            for (m, seed) in zip(models, seedsUsed) {
                var s = m
                s.sigmaNoise = model.sigmaNoise
                s.sigmaOffset = model.sigmaOffset
                s.currentRadius = radius
                s.localSearchReach = 0
                let step = try scorer.runIteration(iterations + 1, model: s, particles: memberParticles, previous: nil,
                                                   reducer: reducer)
                scored.append((step.model, step.results))
                candidates.append(Candidate(seed: seed, finalRadius: m.currentRadius, logLikelihood: step.statistics.logLikelihood))
            }
            let chosen = candidates.indices.max { candidates[$0].logLikelihood < candidates[$1].logLikelihood }!
            outcomes.append(ClassOutcome(klass: c, members: members, scoringRadius: radius, candidates: candidates,
                                         chosen: chosen))
            guard chosen != 0 else { continue }
            let winner = scored[chosen]
            next.references[c] = winner.model.references[0]
            if c < next.fsc.count, let f = winner.model.fsc.first { next.fsc[c] = f }
            if c < next.resolutions.count, let r = winner.model.resolutions.first { next.resolutions[c] = r }
            if c < next.ssnr.count, let s = winner.model.ssnr.first { next.ssnr[c] = s }
            if c < next.priorSignalToNoise.count, let p = winner.model.priorSignalToNoise.first { next.priorSignalToNoise[c] = p }
            for (i, r) in zip(local, winner.results) {
                var pose = r
                pose.classNumber = c + 1
                merged[i] = pose
            }
        }
        return (next, merged, outcomes)
    }

    /// Class `c` of `m` as a one-class model.
    func single(_ m: Model, klass c: Int) -> Model {
        var s = Model(references: [m.references[c]], fractions: [1], sigmaNoise: m.sigmaNoise, sigmaOffset: m.sigmaOffset,
                      iteration: m.iteration, regularisation: m.regularisation)
        s.fsc = [c < m.fsc.count ? m.fsc[c] : []]
        s.resolutions = [c < m.resolutions.count ? m.resolutions[c] : 0]
        if c < m.ssnr.count { s.ssnr = [m.ssnr[c]] }
        if c < m.priorSignalToNoise.count { s.priorSignalToNoise = [m.priorSignalToNoise[c]] }
        s.currentRadius = m.currentRadius
        return s
    }

    /// One-class refinement of the same run with another seed (the orientations of the starting average).
    func subRefinement(seed: UInt64) throws -> Refinement {
        try refinement.withOptions {
            $0.nref = 1
            $0.seed = seed
            $0.istart = 1
            $0.iterations = iterations
            $0.consensusIterations = nil
            $0.realignSeeds = 0
        }
    }

    /// `iterations` iterations of a one-class refinement of the members from their unaligned average.
    func fromNothing(_ members: [Particle], totalImages: Int, seed: UInt64, reducer: any Reducer) throws -> Model {
        let sub = try subRefinement(seed: seed)
        let start = try InitialReferences.generate(particles: members, totalImages: totalImages, setup: sub.setup,
                                                   reducer: reducer)
        var model = try sub.initialModel(references: start.references)
        var previous: [ParticleResult]? = nil
        for it in 1 ... iterations {
            let step = try sub.runIteration(it, model: model, particles: members, previous: previous, reducer: reducer)
            model = step.model
            previous = step.results
            if step.statistics.converged { break }
        }
        return model
    }
}
