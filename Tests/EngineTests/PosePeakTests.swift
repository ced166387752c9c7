import Foundation
import Testing
import Volumes
import Engine

/// Poses between grid samples (`PosePeak`): the peak of a quadratic fitted to the log-weights around
/// the best sample.
@Suite struct PosePeakTests {
    /// Log-weights that fall with the squared angle to a rotation between the samples of a 15° grid
    /// (what a posterior sharper than the grid looks like): the fitted peak lands within 1.5° of that
    /// rotation, where the best sample is 3–9° off.
    @Test func peakBetweenSamplesIsRecoveredFromTheNeighbours() throws {
        let step = 15.0
        let grid = try AngularSampling(angularStep: step).orientations.map(\.matrix)
        var rng = SeededRandom(seed: 5, streams: 1)
        var gains = [(Double, Double)]()
        for _ in 0 ..< 20 {
            let truth = EulerAngles(rot: Double.random(in: -180 ..< 180, using: &rng),
                                    tilt: acos(Double.random(in: -1 ... 1, using: &rng)) * 180 / .pi,
                                    psi: Double.random(in: -180 ..< 180, using: &rng)).matrix
            // κ: 12 nats down one step away, as in a sharp late iteration.
            func logWeight(_ m: Matrix3) -> Double { -12 * pow(rotationDistance(m, truth) / step, 2) }
            let best = grid.min { rotationDistance($0, truth) < rotationDistance($1, truth) }!
            let samples = grid.map { (matrix: $0, logWeight: logWeight($0)) }
            guard let peak = PosePeak.refined(best: best, bestLogWeight: logWeight(best), samples: samples,
                                              step: step * .pi / 180) else {
                Issue.record("no peak for a concave posterior around \(EulerAngles(matrix: truth))"); continue
            }
            gains.append((rotationDistance(best, truth), rotationDistance(peak, truth)))
        }
        print("best sample vs fitted peak, degrees to the truth: \(gains.map { "\(Int($0.0)) → \(String(format: "%.2f", $0.1))" })")
        #expect(gains.count == 20)
        #expect(gains.allSatisfy { $0.1 < 1.5 })
    }

    /// No peak from log-weights that rise away from the best sample (not concave), from too few
    /// samples, or when the quadratic's maximum lies more than half a step away.
    @Test func noPeakWhereTheFitCannotBeTrusted() throws {
        let step = 15.0
        let grid = try AngularSampling(angularStep: step).orientations.map(\.matrix)
        let best = grid[100]
        let rising = grid.map { (matrix: $0, logWeight: pow(rotationDistance($0, best) / step, 2)) }
        #expect(PosePeak.refined(best: best, bestLogWeight: 0, samples: rising, step: step * .pi / 180) == nil)
        let near = grid.filter { rotationDistance($0, best) < 1.6 * step }
        let few = near.prefix(5).map { (matrix: $0, logWeight: -pow(rotationDistance($0, best) / step, 2)) }
        #expect(PosePeak.refined(best: best, bestLogWeight: 0, samples: few, step: step * .pi / 180) == nil)
        // A peak one step away (the best sample is not the best: the fit is extrapolating).
        let far = best * Matrix3.exponential(of: SIMD3(0, 0, step * .pi / 180))
        let shifted = grid.map { (matrix: $0, logWeight: -2 * pow(rotationDistance($0, far) / step, 2)) }
        #expect(PosePeak.refined(best: best, bestLogWeight: -2, samples: shifted, step: step * .pi / 180) == nil)
    }

    /// exp and log of rotation vectors are inverse, and exp is a rotation by |ω| about ω.
    @Test func rotationVectorRoundTrips() {
        for w in [SIMD3(0.1, -0.2, 0.3), SIMD3(1.2, 0.4, -2.0), SIMD3(1e-10, 0, 0), SIMD3(0, 0, 3.0)] {
            let r = Matrix3.exponential(of: w)
            #expect(abs(r.determinant - 1) < 1e-12)
            #expect(abs(rotationDistance(r, .identity) - (w * w).sum().squareRoot() * 180 / .pi) < 1e-6)
            let back = r.rotationVector!
            #expect(((back - w) * (back - w)).sum().squareRoot() < 1e-9)
        }
    }
}

extension PosePeakTests {
    /// One iteration from the true references (16³, 15° grid): the peak between samples is closer to the
    /// truth than the best sample (`--grid_poses`) for most particles (measured 17 of 24; the rest keep
    /// their sample or move ≤ 7° the wrong way) and the median error falls (measured 5.1° against 10.2°).
    @Test func posesBetweenSamplesAreCloserToTheTruth() throws {
        func run(subGrid: Bool) throws -> ([ParticleResult], Scenario) {
            let s = try Scenario(count: 24, noise: 0.15, distinct: true) {
                $0.angularStep = 15; $0.iterations = 1; $0.classic = false; $0.subGridPoses = subGrid
            }
            let refs = try InitialReferences.prepare(loaded: s.truthReferences, setup: s.refinement.setup)
            let model = try s.refinement.initialModel(references: refs.references, given: true)
            let (_, results, _) = try s.run(from: model, iterations: 1 ... 1)
            return (results, s)
        }
        let (fitted, s) = try run(subGrid: true)
        let (grid, _) = try run(subGrid: false)
        let eF = zip(fitted, s.truths).map { rotationDistance($0.0.angles.matrix, $0.1.rotation) }
        let eG = zip(grid, s.truths).map { rotationDistance($0.0.angles.matrix, $0.1.rotation) }
        func median(_ x: [Double]) -> Double { let v = x.sorted(); return (v[(v.count - 1) / 2] + v[v.count / 2]) / 2 }
        let closer = zip(eF, eG).filter { $0.0 < $0.1 }.count
        print("pose errors, between samples vs grid: median \(median(eF)) vs \(median(eG)); closer \(closer)/\(eF.count): \(zip(eF, eG).map { "\(Int($0.0))/\(Int($0.1))" })")
        #expect(zip(fitted, grid).allSatisfy { $0.0.classNumber == $0.1.classNumber })
        #expect(median(eF) < 0.8 * median(eG))
        #expect(closer * 5 >= 3 * eF.count)
    }
}
