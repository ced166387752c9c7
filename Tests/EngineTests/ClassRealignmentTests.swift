import Foundation
import Testing
import Engine
import Volumes

/// `--realign_classes`: a class that kept wrong poses is refined alone from nothing and replaced by the
/// run its members' likelihood prefers; the scores compare because they are taken at one radius.
@Suite struct ClassRealignmentTests {
    /// Class 1 enters with the other class's map as its reference and random poses (what a consensus
    /// that aligned only the other state leaves); class 2 enters right. After the realignment class 1's
    /// poses are within the grid's reach of the truth and its reference resembles its own true map more
    /// than the other; class 2 stays aligned.
    @Test func anUnalignedClassIsReplacedByARunFromNothing() throws {
        let s = try Scenario(dim: 16, count: 40, noise: 0.15, distinct: true)
        var model = try s.refinement.initialModel(references: [s.truthReferences[1], s.truthReferences[1]])
        model.currentRadius = 5
        let incoming = zip(s.particles, s.truths).map { p, t in
            let klass = t.klass + 1
            let angles = klass == 1 ? InitialReferences.randomOrientation(seed: 99, globalIndex: p.globalIndex)
                                    : EulerAngles(matrix: t.rotation)
            return ParticleResult(globalIndex: p.globalIndex, angles: angles, shift: klass == 1 ? .zero : t.shift,
                                  classNumber: klass, logLikelihood: 0, maxProbability: 1,
                                  regionNumber: p.regionNumber, halfSet: p.halfSet)
        }
        var refinement = s.refinement
        refinement.sumScale = try SumScale.agreed(s.particles, reducer: SingleProcessReducer())
        let realignment = ClassRealignment(refinement: refinement, seeds: 2, iterations: 4)
        let out = try realignment.run(model: model, particles: s.particles, results: incoming,
                                      reducer: SingleProcessReducer())
        for o in out.outcomes {
            print("class \(o.klass + 1): \(o.members) members, radius \(o.scoringRadius), "
                  + o.candidates.map { "\($0.seed.map(String.init) ?? "as it was") \($0.logLikelihood) (r \($0.finalRadius))" }
                      .joined(separator: ", ") + "; kept \(o.chosen)")
        }
        #expect(out.outcomes.count == 2)
        #expect(out.outcomes.allSatisfy { $0.candidates.count == 3 && $0.scoringRadius > 0 })
        #expect(out.outcomes[0].chosen != 0, "the class with the wrong map was kept as it was")
        #expect(zip(out.results, s.truths).allSatisfy { $0.0.classNumber == $0.1.klass + 1 }, "the realignment changed classes")
        let errors = (0 ... 1).map { Self.fittedMedianError(out.results, s.truths, klass: $0) }
        let before = Self.fittedMedianError(incoming, s.truths, klass: 0)
        print("fitted median angular error: class 1 \(before)° before, \(errors[0])° after; class 2 \(errors[1])°")
        #expect(before > 45, "the incoming class 1 poses should be wrong (\(before)°)")
        #expect(errors[0] < 20 && errors[1] < 20, "fitted median errors \(errors) at a 30° step")
        let corr = EngineReconstructionTests.correlation
        let own = corr(out.model.references[0], s.truthReferences[0])
        let other = corr(out.model.references[0], s.truthReferences[1])
        #expect(own > other, "class 1's new reference resembles the other class (\(own) vs \(other))")
        #expect(out.model.localSearchReach == 0, "the next search must be global")
    }

    /// Median angular error (degrees) of the particles of true class `klass`, after the one global
    /// rotation (taken from one of them) that makes it smallest.
    static func fittedMedianError(_ results: [ParticleResult], _ truths: [Synthetic.Truth], klass: Int) -> Double {
        let members = truths.indices.filter { truths[$0].klass == klass }
        return members.map { j in
            let g = results[j].angles.matrix * truths[j].rotation.transposed
            return Synthetic.median(members.map { rotationDistance(results[$0].angles.matrix, g * truths[$0].rotation) })
        }.min() ?? .infinity
    }
}
