import Foundation
import Testing
import Volumes

@Suite struct FourierShellCorrelationTests {
    /// Number of stored half-complex coefficients per shell, by the FSC's own rule.
    func shellCounts(dim d: Int) -> [Int] {
        var counts = [Int](repeating: 0, count: d / 2 + 1)
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ... d / 2 {
                    let (kx, ky, kz) = (Double(x), Double(FourierVolume.frequency(y, d)), Double(FourierVolume.frequency(z, d)))
                    let r = (kx * kx + ky * ky + kz * kz).squareRoot()
                    if r <= Double(d) / 2 { counts[Int(r.rounded())] += 1 }
                }
            }
        }
        return counts
    }

    @Test("a volume against itself: 1 in every shell", arguments: [16, 17, 32])
    func identicalVolumes(d: Int) {
        let v = randomVolume(nx: d, ny: d, nz: d, seed: 41)
        let curve = FSCCurve(v, v)
        #expect(curve.values.count == d / 2 + 1)
        for q in 1 ..< curve.values.count { #expect(abs(curve.values[q] - 1) < 1e-12, "shell \(q): \(curve.values[q])") }
        #expect(curve.lastShellAbove(threshold: 0.5) == d / 2)
        #expect(curve.crossing(threshold: 0.143) == Double(d / 2) / Double(d))
    }

    @Test("independent noise: every shell within 4/√n of 0 (n its coefficients)")
    func independentNoise() {
        let d = 32
        let curve = FSCCurve(randomVolume(nx: d, ny: d, nz: d, seed: 1), randomVolume(nx: d, ny: d, nz: d, seed: 2))
        let counts = shellCounts(dim: d)
        // A shell of n stored coefficients holds at least n/2 independent complex values, so the FSC of
        // independent noise has a standard deviation of at most 1/√n there.
        for q in 1 ... d / 2 {
            #expect(abs(curve.values[q]) < 4 / Double(counts[q]).squareRoot(), "shell \(q) (\(counts[q]) coefficients): \(curve.values[q])")
        }
        // And not trivially 0: the noise does correlate a little in some shell.
        #expect(curve.values.dropFirst().contains { abs($0) > 0.01 })
    }

    @Test("a plane wave against its copy shifted in phase by φ: cos φ in its shell", arguments: [0.0, 0.7, Double.pi / 2, 2.5])
    func phaseShiftedWave(phi: Double) {
        let d = 16, k = SIMD3(3, 1, 0)  // |κ| = √10 ≈ 3.16: shell 3
        var a = Volume(dim: d), b = Volume(dim: d)
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< d {
                    let t = 2 * Double.pi * Double(k.x * x + k.y * y + k.z * z) / Double(d)
                    a[x, y, z] = Float(cos(t))
                    b[x, y, z] = Float(cos(t + phi))
                }
            }
        }
        let curve = FSCCurve(a, b)
        #expect(abs(curve.values[3] - cos(phi)) < 1e-5, "shell 3: \(curve.values[3]), cos φ = \(cos(phi))")
    }

    @Test("the anticorrelated copy gives −1; uniform cross weights change nothing")
    func signAndWeights() {
        let d = 16
        let v = randomVolume(nx: d, ny: d, nz: d, seed: 5), noise = randomVolume(nx: d, ny: d, nz: d, seed: 6)
        var negated = v
        for i in 0 ..< negated.count { negated.data[i] = -v.data[i] }
        #expect(FSCCurve(v, negated).values.dropFirst().allSatisfy { abs($0 + 1) < 1e-12 })
        var partner = v
        for i in 0 ..< partner.count { partner.data[i] += noise.data[i] }
        let (fa, fb) = (v.fourierTransform(), partner.fourierTransform())
        let plain = FSCCurve(fa, fb)
        let weighted = FSCCurve(fa, fb, crossWeights: ([Double](repeating: 3, count: fa.count), [Double](repeating: 0.5, count: fa.count)))
        for q in 1 ... d / 2 { #expect(abs(plain.values[q] - weighted.values[q]) < 1e-12) }
        // A weight of zero on one side leaves nothing to correlate: 0 in every shell.
        let zeroed = FSCCurve(fa, fb, crossWeights: ([Double](repeating: 1, count: fa.count), [Double](repeating: 0, count: fa.count)))
        #expect(zeroed.values.allSatisfy { $0 == 0 })
    }

    @Test("resolution rules on a known curve")
    func resolutionRules() {
        let curve = FSCCurve(dim: 16, values: [1, 0.99, 0.9, 0.7, 0.6, 0.3, 0.2, 0.1, 0.05])
        // The refinement's rule: the last shell before the first one below 0.5.
        #expect(curve.lastShellAbove(threshold: 0.5) == 4)
        #expect(curve.lastShellAbove(threshold: 0.995) == 1)  // never below 1
        #expect(curve.lastShellAbove(threshold: 0.01) == 8)   // never falls below: Nyquist
        // evaluate's rule: linear between shells 4 (0.6) and 5 (0.3): 4 + 1/3 shells, in cycles per pixel.
        #expect(abs(curve.crossing(threshold: 0.5) - (4 + 1.0 / 3) / 16) < 1e-12)
        #expect(curve.crossing(threshold: 0.01) == 0.5)
    }
}
