import Foundation
import Testing
import Engine
import Volumes

/// Builds a refinement on synthetic data (d small, coarse sampling) through the single-process reducer.
struct Scenario {
    var refinement: Refinement
    var particles: [Particle]
    var truths: [Synthetic.Truth]
    var truthReferences: [Volume]

    init(dim d: Int = 16, count: Int = 24, noise: Double = 0.15, maxShift: Double = 1, wedge: Bool = true,
         options adjust: (inout RefinementOptions) -> Void = { _ in }) throws {
        var o = RefinementOptions()
        o.nref = 2
        o.angularStep = 30
        o.offset = 1
        o.noise = noise
        o.iterations = 4
        o.noSmallAngle = true
        adjust(&o)
        let region = wedge ? try MissingRegion(kind: .wedgeY, thetaY0: -60, thetaYF: 60) : nil
        let sampling = try AngularSampling(angularStep: o.angularStep, psiStep: o.psiSampling, smallAngle: !o.noSmallAngle)
        let setup = try RefinementSetup(options: o, originalDim: d, regions: region.map { [$0] } ?? [],
                                        sampling: o.fixedOrientation ? nil : sampling)
        truthReferences = Synthetic.twoClasses(dim: d)
        let (inputs, truths) = Synthetic.particles(references: truthReferences, count: count, noiseSigma: noise,
                                                   maxShift: maxShift, region: region, seed: 42)
        refinement = Refinement(setup: setup)
        particles = try refinement.prepare(inputs)
        self.truths = truths
    }

    /// Runs `iterations` EM iterations from `model`; returns the last model, results and all statistics.
    func run(from model: Model, iterations: ClosedRange<Int>) throws -> (Model, [ParticleResult], [IterationStatistics]) {
        var m = model
        var results: [ParticleResult]? = nil
        var stats: [IterationStatistics] = []
        for it in iterations {
            let out = try refinement.runIteration(it, model: m, particles: particles, previous: results,
                                                  reducer: SingleProcessReducer())
            m = out.model
            results = out.results
            stats.append(out.statistics)
        }
        return (m, results ?? [], stats)
    }

    /// Median angular error (degrees) after the best global rotation per class.
    func medianAngularError(_ results: [ParticleResult]) -> Double {
        var errors: [Double] = []
        for k in Set(results.map(\.classNumber)) {
            let members = results.indices.filter { results[$0].classNumber == k }
            var best = Double.infinity
            for j in members {
                let g = results[j].angles.matrix * truths[j].rotation.transposed
                let e = Synthetic.median(members.map {
                    rotationDistance(results[$0].angles.matrix, g * truths[$0].rotation)
                })
                best = min(best, e)
            }
            errors.append(contentsOf: [Double](repeating: best, count: members.count))
        }
        return Synthetic.median(errors)
    }
}

@Suite struct EngineTests {
    @Test func knownReferencesGiveAnglesWithinTheStep() throws {
        let s = try Scenario(count: 12) { $0.iterations = 1 }
        let refs = try InitialReferences.prepare(loaded: s.truthReferences, setup: s.refinement.setup)
        let model = try s.refinement.initialModel(references: refs.references)
        let (_, results, _) = try s.run(from: model, iterations: 1 ... 1)
        let accuracy = Synthetic.classAccuracy(results, s.truths)
        let direct = zip(results, s.truths).map { rotationDistance($0.0.angles.matrix, $0.1.rotation) }
        print("known refs: accuracy \(accuracy), angular errors \(direct.map { Int($0) })")
        #expect(accuracy == 1)
        #expect(zip(results, s.truths).allSatisfy { $0.0.classNumber - 1 == $0.1.klass })
        #expect(Synthetic.median(direct) <= s.refinement.setup.options.angularStep)
        let shiftErrors = zip(results, s.truths).map { (($0.0.shift - $0.1.shift) * ($0.0.shift - $0.1.shift)).sum().squareRoot() }
        #expect(Synthetic.median(shiftErrors) <= 1)
    }
}

@Suite struct EngineBenchmarkTests {
    @Test func benchmarkReportsTheWorkload() throws {
        let env = ProcessInfo.processInfo.environment
        let n = Int(env["ENGINE_BENCH_PARTICLES"] ?? "") ?? 8
        let ang = Double(env["ENGINE_BENCH_ANG"] ?? "") ?? 30
        let r = try EngineBenchmark.refinementWorkload(particles: n, dim: 32, classes: 2, angularStep: ang, threads: 2)
        print(r)
        #expect(r.triples == n * 2 * r.orientations)
        #expect(r.eStepSeconds > 0 && r.fftSeconds > 0)
    }
}
