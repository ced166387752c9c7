import Foundation
import Volumes

/// The EM driver: one call per iteration does E-step → one reduction → M-step, so the command line
/// only adds file I/O and logging.
public struct Refinement: Sendable {
    public let setup: RefinementSetup

    public init(setup: RefinementSetup) { self.setup = setup }

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

    /// One EM iteration over the local particles.
    /// - Parameters:
    ///   - iteration: iteration number (istart…iter).
    ///   - previous: last iteration's results for the same local particles (centres of local searches).
    ///   - reducer: sums the partial sums across processes (one call).
    public func runIteration(_ iteration: Int, model: Model, particles: [Particle], previous: [ParticleResult]?,
                             reducer: any Reducer) throws -> (model: Model, results: [ParticleResult],
                                                               statistics: IterationStatistics) {
        var timing = IterationTiming()
        let t0 = Date()
        let e = try EStep.run(setup: setup, model: model, particles: particles, previous: previous, iteration: iteration)
        let t1 = Date()
        var packed = e.sums.packed()
        try reducer.sumInPlace(&packed)
        let sums = try Sums(unpacking: packed, dim: setup.dim, classCount: model.classCount)
        let t2 = Date()
        let (next, reseeded) = MStep.run(setup: setup, model: model, sums: sums, iteration: iteration)
        let t3 = Date()
        timing.eStep = t1.timeIntervalSince(t0)
        timing.reduce = t2.timeIntervalSince(t1)
        timing.mStep = t3.timeIntervalSince(t2)
        let n = max(sums.imageCount, 1)
        let stats = IterationStatistics(
            iteration: iteration, logLikelihood: sums.logLikelihood, averageMaxProbability: sums.maxProbabilitySum / n,
            sigmaNoise: next.sigmaNoise, sigmaOffset: next.sigmaOffset, fractions: next.fractions,
            resolutions: next.resolutions, signalChange: next.signalChange,
            converged: MStep.converged(next, eps: setup.options.eps, reseeded: reseeded),
            reseededClasses: reseeded, triples: e.triples, significantTriples: e.significantTriples, timing: timing)
        return (next, e.results, stats)
    }
}
