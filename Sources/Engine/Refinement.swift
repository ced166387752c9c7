import Foundation
import Volumes

/// The EM driver: one call per iteration does E-step → one reduction → M-step, so the command line
/// only adds file I/O and logging.
public struct Refinement: Sendable {
    public let setup: RefinementSetup
    /// Factor from the residual energy the E-step measures to the energy over the whole box: V / Σ mask
    /// with a focus mask (`FocusMask.residualScale`), 1 otherwise. Applied by the M-step to σ².
    public var residualScale: Double = 1

    public init(setup: RefinementSetup, residualScale: Double = 1) {
        self.setup = setup
        self.residualScale = residualScale
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
    public func initialModel(references: [Volume], fractions: [Double]? = nil) throws -> Model {
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

    /// One EM iteration over the local particles.
    /// - Parameters:
    ///   - iteration: iteration number (istart…iter).
    ///   - previous: last iteration's results for the same local particles (centres of local searches).
    ///   - reducer: sums the partial sums across processes (one call).
    public func runIteration(_ iteration: Int, model: Model, particles: [Particle], previous: [ParticleResult]?,
                             reducer: any Reducer) throws -> (model: Model, results: [ParticleResult],
                                                               statistics: IterationStatistics) {
        var timing = IterationTiming()
        let o = setup.options
        let k = model.classCount
        let consensusPhase = k > 1 && o.consensusIterations > 0 && iteration <= o.istart + o.consensusIterations
        // Consensus phase: one reference (the class mean) for everyone; the last step of the phase
        // splits it into K classes by a seeded random class per image.
        let eModel = consensusPhase ? Self.consensus(of: model) : model
        let splitting = consensusPhase && iteration == o.istart + o.consensusIterations
        let partition = splitting
            ? (classes: k, classOf: particles.map { Self.splitClass(seed: o.seed, globalIndex: $0.globalIndex, classes: k) })
            : nil
        let t0 = Date()
        let e = try EStep.run(setup: setup, model: eModel, particles: particles, previous: previous, iteration: iteration,
                              partition: partition)
        let t1 = Date()
        var packed = e.sums.packed()
        try reducer.sumInPlace(&packed)
        let sums = try Sums(unpacking: packed, dim: setup.dim, classCount: e.sums.classCount)
        let t2 = Date()
        var (next, reseeded) = splitting
            ? MStep.run(setup: setup, model: Self.expand(eModel, to: k), sums: sums, iteration: iteration,
                        residualScale: residualScale)
            : MStep.run(setup: setup, model: eModel, sums: sums, iteration: iteration, residualScale: residualScale)
        if consensusPhase && !splitting {
            next = Self.expand(next, to: k)
            reseeded = []
        }
        let t3 = Date()
        timing.eStep = t1.timeIntervalSince(t0)
        timing.reduce = t2.timeIntervalSince(t1)
        timing.mStep = t3.timeIntervalSince(t2)
        let n = max(sums.imageCount, 1)
        var stats = IterationStatistics(
            iteration: iteration, logLikelihood: sums.logLikelihood, averageMaxProbability: sums.maxProbabilitySum / n,
            sigmaNoise: next.sigmaNoise, sigmaOffset: next.sigmaOffset, fractions: next.fractions,
            resolutions: next.resolutions, signalChange: next.signalChange,
            converged: MStep.converged(next, eps: setup.options.eps, reseeded: reseeded),
            reseededClasses: reseeded, triples: e.triples, significantTriples: e.significantTriples, timing: timing)
        stats.c2rSeconds = e.c2rSeconds
        stats.c2rCalls = e.c2rCalls
        return (next, e.results, stats)
    }
}
