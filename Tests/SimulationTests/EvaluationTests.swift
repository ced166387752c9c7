import Foundation
import Simulation
import Testing
import Volumes

/// Truth records of a small simulated set (no volumes are generated: only the hidden variables).
private func truthRecords(classes: Int, particles: Int, seed: UInt64 = 7) throws -> [ParticleRecord] {
    let plan = try MissingRegionPlan(choice: .wedgeY, tiltRange: 60)
    let settings = SimulationSettings(classes: classes, particles: particles, dim: 16, seed: seed, missing: plan)
    let sim = try ParticleSimulator(settings: settings, phantoms: PhantomFamily.analytic(classes: classes, dim: 16))
    return (0..<particles).map { i in
        let t = sim.truth(i)
        return ParticleRecord(image: "particles/particle_\(i).mrc", classIndex: t.classIndex, angles: t.angles,
                              shift: t.shift, regionIndex: t.regionIndex)
    }
}

private func randomRotation(_ seed: UInt64, _ stream: UInt64) -> Matrix3 {
    var rng = SeededRandom(seed: seed, streams: stream)
    return uniformRandomRotation(&rng)
}

@Suite("Evaluation scores")
struct EvaluationTests {
    @Test("the truth scored against itself is perfect")
    func truthAgainstItself() throws {
        let truth = try truthRecords(classes: 3, particles: 90)
        let (report, frames) = try Evaluation.evaluate(truth: truth, estimates: truth)
        #expect(report.accuracy == 1)
        #expect(abs(report.adjustedRandIndex - 1) < 1e-12)
        #expect(report.matching == [1, 2, 3])
        #expect(report.angularErrorRaw.max < 1e-5)
        #expect(report.angularErrorFitted.max < 1e-5)
        #expect(report.shiftErrorRaw.max < 1e-9)
        #expect(report.shiftErrorFitted.max < 1e-9)
        for f in frames { #expect(rotationDistance(f.rotation, .identity) < 1e-5) }
    }

    @Test("a reference compared with itself has FSC 1 up to Nyquist")
    func fscOfTruthReachesNyquist() throws {
        let ref = PhantomFamily.analytic(classes: 1, dim: 24)[0].sample(dim: 24)
        let score = try Evaluation.scoreReference(ref, truth: ref, frame: .identity, estimatedClass: 1, trueClass: 1,
                                                  file: "self", pixelSize: 2)
        #expect(score.resolution05 == 0.5)
        #expect(score.resolution0143 == 0.5)
        #expect(score.resolution05Angstrom == 4)
        #expect(score.alignmentShift == [0, 0, 0])  // exact: no resampling at all
        #expect(score.fsc.dropFirst().allSatisfy { abs($0 - 1) < 1e-4 })
    }

    @Test("random class labels score at chance level")
    func randomAssignmentsAreChance() throws {
        let truth = try truthRecords(classes: 2, particles: 200)
        var rng = SeededRandom(seed: 99, streams: 5)
        let estimates = truth.map { r -> ParticleRecord in
            var e = r
            e.classIndex = rng.nextInt(below: 2)
            return e
        }
        let (report, _) = try Evaluation.evaluate(truth: truth, estimates: estimates)
        #expect(abs(report.accuracy - 0.5) <= 0.15)
        // Random orientations stay wrong even after the best frame: the fit cannot explain noise.
        let randomAngles = truth.enumerated().map { i, r -> ParticleRecord in
            var e = r
            e.angles = EulerAngles(matrix: randomRotation(77, UInt64(i)))
            return e
        }
        let (angleReport, _) = try Evaluation.evaluate(truth: truth, estimates: randomAngles)
        #expect(angleReport.angularErrorFitted.median > 60)
        #expect(report.accuracy >= 0.5)  // best matching of two labels is never below one half
        #expect(abs(report.adjustedRandIndex) < 0.05)
    }

    @Test("one global frame per class is fitted away; raw errors stay large")
    func globalFramePerClass() throws {
        let truth = try truthRecords(classes: 2, particles: 120)
        let frames = [RigidFrame(rotation: randomRotation(1, 11), translation: SIMD3(1.5, -2, 0.7)),
                      RigidFrame(rotation: randomRotation(1, 12), translation: SIMD3(-0.4, 0.9, 2.2))]
        // The estimate swaps the labels too: estimated class 1 is true class 2.
        let estimates = truth.map { r -> ParticleRecord in
            let f = frames[r.classIndex]
            let (a, t) = f.estimate(fromTrue: r.angles.matrix, shift: r.shift)
            return ParticleRecord(image: r.image, classIndex: 1 - r.classIndex, angles: EulerAngles(matrix: a), shift: t)
        }
        let (report, fitted) = try Evaluation.evaluate(truth: truth, estimates: estimates)
        #expect(report.accuracy == 1)
        #expect(report.matching == [2, 1])
        #expect(report.angularErrorFitted.max < 1e-4)
        #expect(report.shiftErrorFitted.max < 1e-6)
        #expect(report.angularErrorRaw.median > 20)
        #expect(report.shiftErrorRaw.median > 0.5)
        // Estimated class e carries the frame of true class 1 − e.
        for e in 0..<2 {
            #expect(rotationDistance(fitted[e].rotation, frames[1 - e].rotation) < 1e-4)
            let dg = fitted[e].translation - frames[1 - e].translation
            #expect((dg * dg).sum().squareRoot() < 1e-6)
        }
    }

    @Test("the frame fit ignores a minority of wrong orientations")
    func robustFrameFit() throws {
        let truth = try truthRecords(classes: 1, particles: 100)
        let g = randomRotation(3, 1)
        let frame = RigidFrame(rotation: g)
        let estimates = truth.enumerated().map { i, r -> ParticleRecord in
            let (a, t) = frame.estimate(fromTrue: r.angles.matrix, shift: r.shift)
            let reported = i % 4 == 0 ? randomRotation(4, UInt64(i)) : a  // 25 % outliers
            return ParticleRecord(image: r.image, classIndex: 0, angles: EulerAngles(matrix: reported), shift: t)
        }
        let (report, fitted) = try Evaluation.evaluate(truth: truth, estimates: estimates)
        #expect(rotationDistance(fitted[0].rotation, g) < 1e-4)
        #expect(report.angularErrorFitted.median < 1e-4)
        #expect(report.angularErrorFitted.max > 10)
    }

    @Test("random rotations are Haar-uniform: the mean rotation matrix vanishes")
    func uniformRotations() {
        var rng = SeededRandom(seed: 8, streams: 1)
        var sum = [Double](repeating: 0, count: 9)
        let n = 4000
        for _ in 0..<n {
            let r = uniformRandomRotation(&rng)
            #expect(abs(r.determinant - 1) < 1e-12)
            for i in 0..<9 { sum[i] += r[i / 3, i % 3] }
        }
        // Each entry has variance 1/3 under the Haar measure: 5 standard errors of the mean.
        #expect(sum.allSatisfy { abs($0 / Double(n)) < 5 * (1.0 / 3.0 / Double(n)).squareRoot() })
    }

    @Test("nearest rotation of a rotation is itself; of a scaled rotation, the rotation")
    func nearestRotation() {
        let r = randomRotation(5, 5)
        #expect(FrameFit.nearestRotation(to: r).maxAbsDifference(r) < 1e-10)
        var scaled = r
        for i in 0..<9 { scaled[i / 3, i % 3] *= 3.5 }
        #expect(FrameFit.nearestRotation(to: scaled).maxAbsDifference(r) < 1e-10)
    }

    @Test("adjusted Rand index matches a hand-computed value; matching handles unequal class counts")
    func randIndexAndMatching() {
        // Rows [0,0,1,1] vs [0,0,1,2]: index 1, expected 1/3, max 3/2 ⇒ ARI = 4/7.
        let t = ContingencyTable(estimated: [0, 0, 1, 1], truth: [0, 0, 1, 2], estimatedCount: 2, trueCount: 3)
        #expect(abs(adjustedRandIndex(t) - 4.0 / 7.0) < 1e-12)
        // 3 estimated classes, 2 true: estimated 2 is the big match for true 0, estimated 0 for true 1.
        let est = [2, 2, 2, 2, 0, 0, 0, 1, 1, 2]
        let tru = [0, 0, 0, 0, 1, 1, 1, 1, 0, 1]
        let m = LabelMatching(ContingencyTable(estimated: est, truth: tru, estimatedCount: 3, trueCount: 2))
        #expect(m.estimatedToTrue == [1, nil, 0])
        #expect(m.agreeing == 7)
    }

    @Test("reference alignment undoes a frame rotation and finds the shift")
    func referenceAlignment() throws {
        let d = 24
        let truth = PhantomFamily.analytic(classes: 1, dim: d)[0].sample(dim: d)
        let g = EulerAngles(rot: 30, tilt: 50, psi: -20).matrix
        // Ref'(y) = T_s[Ref](G y) with s = (2, −1, 3): after undoing G the reference is still moved by s.
        let estimate = truth.translated(by: SIMD3(2, -1, 3)).rotated(by: g.transposed, outside: 0)
        let score = try Evaluation.scoreReference(estimate, truth: truth, frame: RigidFrame(rotation: g),
                                                  estimatedClass: 1, trueClass: 1, file: "x", pixelSize: nil)
        let expected: [Double] = [-2, 1, -3]
        #expect(zip(score.alignmentShift, expected).allSatisfy { abs($0 - $1) < 0.25 })
        #expect(score.resolution05 > 0.25)
        // Without the frame rotation the FSC collapses.
        let wrong = try Evaluation.scoreReference(estimate, truth: truth, frame: .identity,
                                                  estimatedClass: 1, trueClass: 1, file: "x", pixelSize: nil)
        #expect(wrong.resolution05 < score.resolution05 - 0.1)
    }
}
