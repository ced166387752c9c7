import Foundation
import Engine
import Volumes

/// Synthetic subtomograms with ground truth, made inside the tests.
enum Synthetic {
    struct Blob {
        var centre: SIMD3<Double>
        var sigma: Double
        var amplitude: Double
    }

    /// An asymmetric phantom of Gaussian blobs (logical coordinates, box d).
    static func phantom(dim d: Int, blobs: [Blob]) -> Volume {
        var v = Volume(dim: d)
        let c = Double(d / 2)
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< d {
                    let r = SIMD3(Double(x) - c, Double(y) - c, Double(z) - c)
                    var s = 0.0
                    for b in blobs {
                        let q = r - b.centre
                        s += b.amplitude * Foundation.exp(-(q * q).sum() / (2 * b.sigma * b.sigma))
                    }
                    v[x, y, z] = Float(s)
                }
            }
        }
        return v
    }

    /// Two classes differing by one domain (an extra blob in class 2). The base is a bent arm with
    /// a short oblique side arm: clearly asymmetric (no pseudo-symmetry that would make orientations
    /// ambiguous).
    static func twoClasses(dim d: Int) -> [Volume] {
        let u = Double(d) / 16
        let base = [
            Blob(centre: SIMD3(-1 * u, 0, 0), sigma: 1.5 * u, amplitude: 1),
            Blob(centre: SIMD3(2.2 * u, 0, 0), sigma: 1.2 * u, amplitude: 1),
            Blob(centre: SIMD3(4.6 * u, 1.2 * u, 0), sigma: 0.9 * u, amplitude: 0.8),
            Blob(centre: SIMD3(-1 * u, 2.4 * u, 1.8 * u), sigma: 0.8 * u, amplitude: 0.7),
        ]
        let extra = Blob(centre: SIMD3(-2.5 * u, -1.8 * u, -2.2 * u), sigma: 1.0 * u, amplitude: 1.0)
        return [phantom(dim: d, blobs: base), phantom(dim: d, blobs: base + [extra])]
    }

    /// Two clearly different asymmetric shapes (a bent arm, and a compact triangle of unequal blobs).
    static func twoDistinctClasses(dim d: Int) -> [Volume] {
        let u = Double(d) / 16
        let other = [
            Blob(centre: SIMD3(0, -2.0 * u, -1.0 * u), sigma: 1.6 * u, amplitude: 1),
            Blob(centre: SIMD3(0.5 * u, 2.8 * u, 0), sigma: 1.0 * u, amplitude: 0.9),
            Blob(centre: SIMD3(-2.6 * u, 0.5 * u, 2.4 * u), sigma: 1.1 * u, amplitude: 0.8),
        ]
        return [twoClasses(dim: d)[0], phantom(dim: d, blobs: other)]
    }

    struct Truth {
        var klass: Int
        var rotation: Matrix3
        var shift: SIMD3<Double>
    }

    /// Images X(x) = Ref_k(A·(x + t)) + noise, Fourier-masked by the region (if any).
    static func particles(references: [Volume], count n: Int, noiseSigma: Double, maxShift: Double,
                          region: MissingRegion?, seed: UInt64) -> ([ParticleInput], [Truth]) {
        let d = references[0].nx
        let res = ResolutionMasks(dim: d, maxres: 0.5)
        let mask = region.map { $0.mask(dim: d, resolution: res) }
        var inputs: [ParticleInput] = []
        var truths: [Truth] = []
        for i in 0 ..< n {
            var rng = SeededRandom(seed: seed, streams: 77, UInt64(i))
            let k = i % references.count
            let angles = EulerAngles(rot: 360 * rng.nextUniform(),
                                     tilt: Foundation.acos(2 * rng.nextUniform() - 1) * 180 / Double.pi,
                                     psi: 360 * rng.nextUniform())
            let a = angles.matrix
            let t = SIMD3((rng.nextUniform() * 2 - 1) * maxShift, (rng.nextUniform() * 2 - 1) * maxShift,
                          (rng.nextUniform() * 2 - 1) * maxShift).rounded(.toNearestOrEven)
            var x = references[k].rotated(by: a.transposed, outside: 0).translated(by: -t)
            for j in 0 ..< x.count { x.data[j] += Float(noiseSigma * rng.nextGaussian()) }
            if let mask {
                var f = x.fourierTransform()
                for j in 0 ..< f.count where mask[j] == 0 {
                    // keep DC: the mask drops it, but the data would have it
                    if j != 0 { f.data[j] = .zero }
                }
                x = f.inverseTransform()
            }
            inputs.append(ParticleInput(globalIndex: i, volume: x, region: region == nil ? nil : 0,
                                        angles: EulerAngles(matrix: a), shift: t, classIndex: k))
            truths.append(Truth(klass: k, rotation: a, shift: t))
        }
        return (inputs, truths)
    }

    /// Fraction of correctly classified images under the best label permutation (K = 2).
    static func classAccuracy(_ results: [ParticleResult], _ truths: [Truth]) -> Double {
        let same = zip(results, truths).filter { $0.0.classNumber - 1 == $0.1.klass }.count
        return Double(max(same, results.count - same)) / Double(results.count)
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }
}
