import Foundation
import Engine
import Numerics
import Volumes

/// Performance figures of the E-step on synthetic data (for `ml_tomo bench`).
public enum EngineBenchmark {
    public struct Report: Sendable, CustomStringConvertible {
        public var particles: Int
        public var dim: Int
        public var classes: Int
        public var orientations: Int
        public var threads: Int
        /// (image, orientation, class) triples of the timed E-step.
        public var triples: Int
        public var significantTriples: Int
        public var eStepSeconds: Double
        /// Seconds of one d³ c2r FFT on one thread, measured in this process.
        public var fftSeconds: Double
        /// One c2r FFT per triple divided over the threads.
        public var floorSeconds: Double { Double(triples) * fftSeconds / Double(threads) }
        public var triplesPerSecond: Double { Double(triples) / eStepSeconds }
        public var ratioToFloor: Double { eStepSeconds / floorSeconds }

        public var description: String {
            String(format: "E-step: %d particles, %d³, K = %d, %d orientations, %d threads: %.2f s, %d triples (%d significant), %.0f triples/s; FFT floor %.2f s (%.1f µs per c2r) → %.2f× the floor",
                   particles, dim, classes, orientations, threads, eStepSeconds, triples, significantTriples,
                   triplesPerSecond, floorSeconds, fftSeconds * 1e6, ratioToFloor)
        }
    }

    /// A random asymmetric phantom of Gaussian blobs.
    static func phantom(dim d: Int, rng: inout SeededRandom, blobs: Int) -> Volume {
        var v = Volume(dim: d)
        let c = Double(d / 2)
        var centres: [(SIMD3<Double>, Double)] = []
        for _ in 0 ..< blobs {
            let p = SIMD3(rng.nextUniform(in: -0.25, 0.25), rng.nextUniform(in: -0.25, 0.25), rng.nextUniform(in: -0.25, 0.25)) * Double(d)
            centres.append((p, Double(d) * rng.nextUniform(in: 0.05, 0.09)))
        }
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< d {
                    let r = SIMD3(Double(x) - c, Double(y) - c, Double(z) - c)
                    var s = 0.0
                    for (p, sd) in centres {
                        let q = r - p
                        s += Foundation.exp(-(q * q).sum() / (2 * sd * sd))
                    }
                    v[x, y, z] = Float(s)
                }
            }
        }
        return v
    }

    /// Times one E-step (the second of two iterations is not run: the first E-step from the true
    /// references is representative of converged posteriors) on synthetic particles with a ±60° wedge.
    public static func refinementWorkload(particles n: Int = 64, dim d: Int = 32, classes k: Int = 2,
                                          angularStep: Double = 20, threads: Int = 2, offset: Double = 3,
                                          seed: UInt64 = 1) throws -> Report {
        var o = RefinementOptions()
        o.nref = k
        o.angularStep = angularStep
        o.threads = threads
        o.offset = offset
        o.noise = 0.5
        o.seed = seed
        let region = try MissingRegion(kind: .wedgeY, thetaY0: -60, thetaYF: 60)
        let sampling = try AngularSampling(angularStep: angularStep)
        let setup = try RefinementSetup(options: o, originalDim: d, regions: [region], sampling: sampling)
        var rng = SeededRandom(seed: seed, streams: 0xBE4C)
        let refs = (0 ..< k).map { _ in phantom(dim: d, rng: &rng, blobs: 6) }
        var inputs: [ParticleInput] = []
        for i in 0 ..< n {
            let a = InitialReferences.randomOrientation(seed: seed, globalIndex: i).matrix
            var x = refs[i % k].rotated(by: a.transposed, outside: 0)
            for j in 0 ..< x.count { x.data[j] += Float(0.5 * rng.nextGaussian()) }
            inputs.append(ParticleInput(globalIndex: i, volume: x, region: 0))
        }
        let refinement = Refinement(setup: setup)
        let particles = try refinement.prepare(inputs)
        let model = try refinement.initialModel(references: refs)
        let start = Date()
        let e = try refinement.eStep(model: model, particles: particles, iteration: 1)
        let seconds = Date().timeIntervalSince(start)
        return Report(particles: n, dim: d, classes: k, orientations: sampling.count, threads: threads,
                      triples: e.triples, significantTriples: e.significantTriples, eStepSeconds: seconds,
                      fftSeconds: KernelTiming.c2rSeconds(dim: d))
    }
}
