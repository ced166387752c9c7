import Foundation
import Volumes

/// The EM driver: one call per iteration does E-step → one reduction → M-step, so the command line
/// only adds file I/O and logging.
public struct Refinement: Sendable {
    public let setup: RefinementSetup
    /// Factor from the residual energy the E-step measures to the energy over the whole box: V / Σ mask
    /// with a focus mask (`FocusMask.residualScale`), 1 otherwise. Applied by the M-step to σ².
    public var residualScale: Double = 1
    /// Counts the E-step's work as it runs, for a progress display (nil: nobody watches).
    public var progress: EStepProgress?
    /// Times the phases of an iteration and the search's c2r FFTs (nil: the timings are 0).
    public var clock: (any TimeSource)?
    /// The quanta that make the E-step's sums exact, the same on every rank (`SumScale.agreed`, once per
    /// run); nil: agreed (one maximum) in every iteration.
    public var sumScale: SumScale?
    /// The coarse grid of the two-pass search (nil: one exhaustive pass).
    let coarseGrid: CoarseGrid?

    public init(setup: RefinementSetup, residualScale: Double = 1) {
        self.setup = setup
        self.residualScale = residualScale
        coarseGrid = setup.options.usesAdaptiveSearch
            ? setup.sampling.flatMap { CoarseGrid(fine: $0, local: setup.localSearch != nil) } : nil
    }

    /// The same run's refinement with other options (a seed, a class count): its residual scale, sum scale
    /// and clock, no progress display. The sub-runs of the class realignment and the start selection.
    public func withOptions(_ change: (inout RefinementOptions) -> Void) throws -> Refinement {
        var sub = Refinement(setup: try setup.withOptions(change), residualScale: residualScale)
        sub.sumScale = sumScale
        sub.clock = clock
        return sub
    }

    /// One E-step over the whole orientation grid (no previous poses, no restricted search) without the
    /// M-step: the workload `ml_tomo bench` times (Diagnostics' `EngineBenchmark`).
    public func eStep(model: Model, particles: [Particle], iteration: Int) throws -> EStepOutput {
        try EStep.run(setup: setup, model: model, particles: particles, previous: nil, iteration: iteration)
    }

    /// Prepares the local particles (spec §6.3), in parallel over `options.threads`.
    public func prepare(_ inputs: [ParticleInput]) throws -> [Particle] {
        let boxes = inputs.map { _ in SlotBox<Result<Particle, Error>?>(nil) }
        let setup = self.setup
        let chunks = max(1, min(inputs.count, 64))
        forEachSlot(chunks, threads: setup.options.threads) { c in
            var i = c
            while i < inputs.count {
                boxes[i].value = Result { try Particle(inputs[i], setup: setup) }
                i += chunks
            }
        }
        return try boxes.map { try $0.value!.get() }
    }

    /// The starting model: references, fractions (nil: uniform), σ = `--noise`, σ_off = `--offset`
    /// in working pixels; applies the start-up regularisation when `istart` = 1 (spec §8.7).
    /// - Parameter given: the references are the user's (`--ref`), not generated from the data: the
    ///   resolution-limited mode then starts at `--ini_high` or, without it, at the full radius. Starting
    ///   low would throw away what the user's map knows: on a pseudo-symmetric object the low-resolution
    ///   E-step picks symmetry mates and never leaves them (measured in `EngineTests`). References built
    ///   from input poses (`--keep_angles`, `--dont_rotate`, …) continue an alignment the same way: the
    ///   seed's 10° local refinement of a 15° consensus (36 particles, SNR 5) went from 15.9° to 18.6°
    ///   when it restarted at 5 shells.
    public func initialModel(references: [Volume], fractions: [Double]? = nil, given: Bool = false) throws -> Model {
        let o = setup.options
        guard !references.isEmpty else { throw EngineError("no references") }
        guard references.allSatisfy({ $0.isCubic && $0.nx == setup.dim }) else {
            throw EngineError("references must be \(setup.dim)³ (prepare them with InitialReferences)")
        }
        var alpha = fractions
        if let f = fractions {
            guard f.count == references.count, f.allSatisfy({ $0 >= 0 && $0.isFinite }), f.reduce(0, +) > 0 else {
                throw EngineError("reference weights must be \(references.count) non-negative numbers with a positive sum")
            }
            let s = f.reduce(0, +)
            alpha = f.map { $0 / s }
        }
        var m = Model(references: references, fractions: alpha, sigmaNoise: o.noise,
                      sigmaOffset: setup.initialSigmaOffset, iteration: o.istart - 1)
        m.fsc = [[Double]](repeating: [Double](repeating: 0, count: setup.dim / 2 + 1), count: references.count)
        if (given || o.startsFromInputPoses) && o.usesResolutionLimit {
            m.currentRadius = setup.startingRadius(givenReferences: given)
        }
        if o.istart == 1 {
            MStep.regularise(&m, setup: setup, iteration: 0, totalImages: 0)
        } else {
            m.regularisation = o.regularisation(at: o.istart - 1)
        }
        return m
    }

    /// The one-class model whose reference is the mean of the classes.
    static func consensus(of m: Model) -> Model {
        let k = m.classCount
        var mean = Volume(nx: m.dim, ny: m.dim, nz: m.dim)
        for r in m.references { for j in 0 ..< mean.count { mean.data[j] += r.data[j] / Float(k) } }
        var c = Model(references: [mean], fractions: [1], sigmaNoise: m.sigmaNoise, sigmaOffset: m.sigmaOffset,
                      iteration: m.iteration, regularisation: m.regularisation)
        c.fsc = [m.fsc.first ?? []]
        c.resolutions = [m.resolutions.first ?? 0]
        return c
    }

    /// K identical copies of a one-class model, with uniform fractions.
    static func expand(_ m: Model, to k: Int) -> Model {
        var e = Model(references: [Volume](repeating: m.references[0], count: k), fractions: nil,
                      sigmaNoise: m.sigmaNoise, sigmaOffset: m.sigmaOffset, iteration: m.iteration,
                      regularisation: m.regularisation)
        e.fsc = [[Double]](repeating: m.fsc[0], count: k)
        e.resolutions = [Double](repeating: m.resolutions[0], count: k)
        e.signalChange = [Double](repeating: m.signalChange[0], count: k)
        return e
    }

    public static let splitStream: UInt64 = 0x5350_4C49_5443_4C53  // "SPLITCLS"

    /// The class an image seeds when the consensus is split (seeded, identical on every process).
    public static func splitClass(seed: UInt64, globalIndex: Int, classes: Int) -> Int {
        var rng = SeededRandom(seed: seed, streams: splitStream, UInt64(globalIndex))
        return rng.nextInt(below: classes)
    }

    /// The half-set FSC a shell needs to count as supported. Not RELION's 0.143: the two half-sets are
    /// aligned to the same reference, so their noise is partly aligned too and the FSC is inflated
    /// (measured on 200 ribosome particles at SNR 0.05: with 0.143 the radius reached Nyquist in 6
    /// iterations at 2–8 × the cost, with 0.5 it settled at 9–10 of 16 shells and classified
    /// perfectly; see DEVIATIONS.md).
    static let fscThreshold = 0.5

    /// Number of first iterations refined as one consensus (see `RefinementOptions.consensusIterations`).
    var consensusIterations: Int { setup.options.effectiveConsensusIterations }

    /// One EM iteration over the local particles.
    /// - Parameters:
    ///   - iteration: iteration number (istart…iter).
    ///   - previous: last iteration's results for the same local particles (centres of local searches).
    ///   - reducer: sums the partial sums across processes (one call, which also carries a failed E-step;
    ///     the consensus split adds its own).
    public func runIteration(_ iteration: Int, model: Model, particles: [Particle], previous: [ParticleResult]?,
                             reducer: any Reducer) throws -> (model: Model, results: [ParticleResult],
                                                               statistics: IterationStatistics) {
        var timing = IterationTiming()
        let o = setup.options
        let d = setup.dim
        let k = model.classCount
        progress?.begin(iteration: iteration, particles: particles.count,
                        steps: o.onlyAverage ? [.accumulate] : (coarseGrid == nil ? [.search, .accumulate] : [.coarse, .search, .accumulate]))
        // The resolution-limited mode works in the Fourier-cropped box that holds the current radius.
        let radius = o.usesResolutionLimit ? (model.currentRadius > 0 ? model.currentRadius : setup.initialRadius) : 0
        let work = try setup.cropped(to: o.usesResolutionLimit ? setup.croppedDim(radius: radius) : d)
        let dc = work.dim
        let workParticles = dc == d ? particles : particles.map { $0.cropped(to: work, from: d) }
        let workModel = model.resized(to: dc)
        // Consensus phase: one reference (the class mean) for everyone; the last step of the phase
        // splits it into K classes (along the main directions of variation, or by a seeded random class
        // per image), so every class starts in the consensus frame. With the consensus split it runs
        // only while the classes are still identical copies: given references (`--ref`) and a restart
        // after the split keep their classes.
        let c = consensusIterations
        let consensusPhase = k > 1 && iteration <= o.istart + c
            && (o.splitsConsensus ? model.referencesAreIdentical : c > 0)
        let eModel = consensusPhase ? Self.consensus(of: workModel) : workModel
        let splitting = consensusPhase && iteration == o.istart + c
        var partition: (classes: Int, classOf: [Int])?
        if splitting {
            if o.splitsConsensus, let poses = previous ?? (o.startsFromInputPoses ? particles.map(inputPose) : nil) {
                var total = [Double(particles.count)]
                try reducer.sumInPlace(&total)
                let classOf = try ConsensusSplit.classes(particles: workParticles, poses: poses,
                                                         consensus: eModel.references[0], setup: work,
                                                         radius: radius, classes: k,
                                                         totalImages: Int(total[0]), seed: o.seed, reducer: reducer)
                partition = (k, classOf)
            } else {
                partition = (k, particles.map { Self.splitClass(seed: o.seed, globalIndex: $0.globalIndex, classes: k) })
            }
        }
        let scale = try sumScale ?? SumScale.agreed(particles, reducer: reducer)
        let now = { self.clock?.seconds() ?? 0 }
        let t0 = now()
        // Both passes of the search inside the Result: a failure in either joins the reduction.
        var restriction: SearchRestriction?
        let eStep = Result { () throws -> EStepOutput in
            restriction = try coarseGrid.map {
                try coarsePass($0, radius: radius > 0 ? radius : setup.radiusCap,
                               model: consensusPhase ? Self.consensus(of: model) : model,
                               particles: particles, previous: previous, iteration: iteration)
            }
            return try EStep.run(setup: work, model: eModel, particles: workParticles, previous: previous,
                                 iteration: iteration, partition: partition, restriction: restriction, progress: progress,
                                 clock: clock, scale: scale)
        }
        progress?.finish()
        let t1 = now()
        // A process whose E-step failed still joins the reduction (with zero sums of the same shape), so
        // that every process learns of the failure there instead of waiting for it.
        var packed = (try? eStep.get())?.sums.packed()
            ?? Sums(dim: dc, classCount: partition?.classes ?? eModel.classCount).packed()
        try reducer.sumInPlace(&packed, localFailure: eStep.error)
        let e = try eStep.get()
        let sums = try Sums(unpacking: packed, dim: dc, classCount: e.sums.classCount)
        let t2 = now()
        var (next, reseeded, donors) = splitting
            ? MStep.run(setup: work, model: Self.expand(eModel, to: k), sums: sums, iteration: iteration,
                        residualScale: residualScale)
            : MStep.run(setup: work, model: eModel, sums: sums, iteration: iteration, residualScale: residualScale)
        if consensusPhase && !splitting {
            next = Self.expand(next, to: k)
            reseeded = []
        } else if o.usesResolutionLimit && !reseeded.isEmpty {
            // The resolution-limited mode re-seeds an emptied class by bisecting its donor, not with a
            // noisy copy of it (ConsensusSplit.bisect says why). The reduced sums count every image.
            for (c, donor) in zip(reseeded, donors) {
                next = try ConsensusSplit.bisect(donor: donor, into: c, model: next, particles: workParticles,
                                                 results: e.results, setup: work, radius: radius,
                                                 totalImages: Int(sums.imageCount), reducer: reducer)
            }
        }
        if dc != d {
            next = next.resized(to: d)
            // An even cropped box holds its Nyquist frequency on one side only (−dc/2), so padding back
            // breaks the point group's symmetry at that shell (a C4 reference came out 1.7 % asymmetric):
            // symmetrise again in the full box.
            next.references = next.references.map { MStep.symmetrised($0, setup: setup) }
        }
        if o.usesResolutionLimit { next.currentRadius = nextRadius(after: next, radius: radius) }
        var moved: Double?
        if let coarseGrid, setup.localSearch == nil, o.autoLocalFraction > 0, !consensusPhase {
            let decision = try localSearchDecision(results: e.results, previous: previous, current: model.localSearchReach,
                                                   reseeded: !reseeded.isEmpty, coarseStep: coarseGrid.sampling.angularStep,
                                                   reducer: reducer)
            next.localSearchReach = decision.reach
            moved = decision.moved
        } else {
            next.localSearchReach = 0
        }
        let t3 = now()
        timing.eStep = t1 - t0
        timing.reduce = t2 - t1
        timing.mStep = t3 - t2
        let n = max(sums.imageCount, 1)
        var stats = IterationStatistics(
            iteration: iteration, logLikelihood: sums.logLikelihood, averageMaxProbability: sums.maxProbabilitySum / n,
            sigmaNoise: next.sigmaNoise, sigmaOffset: next.sigmaOffset, fractions: next.fractions,
            resolutions: next.resolutions, signalChange: next.signalChange,
            converged: MStep.converged(next, eps: setup.options.eps, reseeded: reseeded)
                && (!o.usesResolutionLimit || (next.currentRadius == radius && !consensusPhase)),
            reseededClasses: reseeded, triples: e.triples, significantTriples: e.significantTriples, timing: timing)
        stats.c2rSeconds = e.c2rSeconds
        stats.c2rCalls = e.c2rCalls
        stats.radius = radius
        stats.workingDim = dc
        if let restriction {
            stats.triples += restriction.coarseTriples
            stats.coarseTriples = restriction.coarseTriples
        }
        stats.localSearchReach = coarseGrid != nil && setup.localSearch == nil && !consensusPhase ? model.localSearchReach : 0
        stats.movedFraction = moved
        stats.nextLocalSearchReach = next.localSearchReach
        return (next, e.results, stats)
    }

    /// A particle's input pose as a result (the consensus split of a run that starts from input poses).
    /// Fixed-orientation modes applied the input shift when the particle was prepared.
    func inputPose(_ p: Particle) -> ParticleResult {
        let o = setup.options
        return ParticleResult(globalIndex: p.globalIndex, angles: p.inputAngles,
                              shift: o.onlyAverage || o.dontAlign ? .zero : p.inputShift, classNumber: 1,
                              logLikelihood: 0, maxProbability: 1, regionNumber: p.regionNumber, halfSet: p.halfSet)
    }

    /// Pass 1 of the adaptive search: the coarse grid in the box cropped to the shells it resolves (at
    /// most the current radius), and the fine triples it leaves for pass 2.
    /// Under automatic local refinement (`model.localSearchReach` > 0) each image visits only the coarse
    /// orientations within that reach of its `previous` orientation, unless that pose was uncertain.
    /// In a local search (`--ang_search`) it visits the coarse orientations nearest to its fine
    /// candidates (`CoarseGrid.localSamples`); pass 2 then keeps only the fine candidates of the local
    /// search (`SearchPlan.make`).
    func coarsePass(_ coarse: CoarseGrid, radius: Int, model: Model, particles: [Particle],
                    previous: [ParticleResult]?, iteration: Int) throws -> SearchRestriction {
        let d = setup.dim
        let cd = setup.croppedDim(radius: min(radius, coarse.radius))
        let cs = try setup.cropped(to: cd, sampling: coarse.sampling)
        let cp = cd == d ? particles : particles.map { $0.cropped(to: cs, from: d) }
        var centres: [Matrix3?]? = nil
        var candidates: [[Int]]? = nil
        var neighbourhoods: [[Int]]? = nil
        if let local = setup.localSearch, let fine = setup.sampling {
            let found = particles.indices.map {
                SearchPlan.localCandidates(local, around: SearchPlan.localCentre(of: $0, particles: particles, previous: previous),
                                           gridCount: fine.count)
            }
            candidates = found
            neighbourhoods = coarse.localSamples(candidates: found)
        } else if model.localSearchReach > 0 && previous?.count == particles.count {
            centres = previous!.map { $0.maxProbability >= Self.localCertainty ? $0.angles.matrix : nil }
        }
        let (posteriors, triples) = try EStep.coarsePosteriors(setup: cs, model: model.resized(to: cd),
                                                               particles: cp, iteration: iteration, centres: centres,
                                                               reach: model.localSearchReach,
                                                               neighbourhoods: neighbourhoods, progress: progress)
        var restriction = SearchRestriction.make(coarse: coarse, posteriors: posteriors, classes: model.classCount,
                                                 fraction: setup.options.adaptiveFraction, coarseTriples: triples)
        restriction.localCandidates = candidates
        return restriction
    }

    /// Automatic local refinement: the coarse pass turns local (within `localReachInCoarseSteps` coarse
    /// steps of each image's last orientation) once fewer than `autoLocalFraction` of the particles moved
    /// by more than one fine step or changed class since the previous iteration, and stays local; a
    /// re-seeded class makes it global again (its new members have no orientation in it yet). Collective:
    /// the count is summed over processes, so every process decides the same. Returns the next
    /// iteration's reach (degrees, 0: global) and the fraction that moved (nil: nothing to compare).
    public func localSearchDecision(results: [ParticleResult], previous: [ParticleResult]?, current: Double,
                             reseeded: Bool, coarseStep: Double, reducer: any Reducer) throws -> (reach: Double, moved: Double?) {
        var counts = [0.0, 0.0]  // moved, compared
        if let previous, previous.count == results.count {
            for (p, r) in zip(previous, results) {
                counts[1] += 1
                if p.classNumber != r.classNumber
                    || rotationDistance(p.angles.matrix, r.angles.matrix) > setup.options.angularStep { counts[0] += 1 }
            }
        }
        try reducer.sumInPlace(&counts)
        let moved = counts[1] > 0 ? counts[0] / counts[1] : nil
        if reseeded { return (0, moved) }
        if current > 0 { return (current, moved) }
        if let moved, moved < setup.options.autoLocalFraction {
            return (Self.localReachInCoarseSteps * coarseStep, moved)
        }
        return (0, moved)
    }

    /// Images whose last posterior gave their best pose less than this probability keep the global
    /// coarse pass under local refinement. Measured on 200 ribosome particles at SNR 0.03: the two that
    /// a local pass left 158–165° off (pseudo-symmetric flips the global pass corrected later) had
    /// max-probabilities 0.54–0.87 in the iterations before their flips, against a median of 1.00.
    static let localCertainty = 0.9

    /// Reach of the local coarse pass, in coarse steps: 2 (60° at `--ang 15`) leaves about 6 % of the
    /// rotations, the volume fraction (θ − sin θ)/π of a ball of angle θ in SO(3).
    static let localReachInCoarseSteps = 2.0

    /// The radius of the next iteration: the last shell before any live class's half-set FSC falls
    /// below `fscThreshold`, plus `radiusIncrement`, never smaller than the current one, at most the cap.
    public func nextRadius(after m: Model, radius: Int) -> Int {
        var supported = 0
        for c in 0 ..< m.classCount where m.fractions[c] > 0 {
            let curve = m.fsc[c]
            var last = 0
            for q in 1 ..< max(1, min(curve.count, radius + 1)) {
                if curve[q] < Self.fscThreshold { break }
                last = q
            }
            supported = max(supported, last)
        }
        return max(radius, min(setup.radiusCap, supported + setup.radiusIncrement))
    }
}

extension Model {
    /// The same model in another working box: references Fourier-cropped or zero-padded (grey values
    /// kept), σ as the per-voxel σ of the same per-component noise (∝ box^{3/2}), σ_offset in that box's
    /// pixels, per-shell curves cut or padded with zeros.
    public func resized(to n: Int) -> Model {
        let d = dim
        if n == d { return self }
        var m = self
        m.references = references.map { $0.fourierResized(to: n) }
        let ratio = Double(n) / Double(d)
        m.sigmaNoise = sigmaNoise * ratio * ratio.squareRoot()
        m.sigmaOffset = sigmaOffset * ratio
        func fit(_ curve: [Double]) -> [Double] {
            curve.isEmpty ? curve : Array((curve + [Double](repeating: 0, count: n / 2 + 1)).prefix(n / 2 + 1))
        }
        m.fsc = fsc.map(fit)
        m.ssnr = ssnr.map(fit)
        m.priorSignalToNoise = priorSignalToNoise.map(fit)
        return m
    }
}

extension Result {
    /// The error of a failed result, nil for a success.
    var error: Failure? {
        if case let .failure(error) = self { return error }
        return nil
    }
}
