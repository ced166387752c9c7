import Foundation
import Testing
import Engine
import Volumes

/// Given references on another grey scale (`--ref` from elsewhere) are brought to the particles' scale
/// from their spherical averages, before any orientation is known.
@Suite struct ReferenceScaleTests {
    static func times(_ v: Volume, _ a: Float) -> Volume { var out = v; out.data = v.data.map { $0 * a }; return out }

    /// The true maps at 1/100 of the particles' scale, and one inverted at 3×: the fit undoes both (up to
    /// the shift blur, which lowers it a little) and keeps the sign of the inverted one.
    @Test func theFitUndoesAnotherScaleAndAnInvertedContrast() throws {
        let s = try Scenario(dim: 16, count: 60, noise: 0.15)
        let references = [s.truthReferences[0], Self.times(s.truthReferences[0], 0.01), Self.times(s.truthReferences[1], -3)]
        let scales = try ReferenceScale.fit(references: references, particles: s.particles, radius: 5,
                                            setup: s.refinement.setup, reducer: SingleProcessReducer())
        print("scales: \(scales)")
        #expect(scales[0] > 0.6 && scales[0] < 1.3, "the true map's own scale: \(scales[0])")
        #expect(scales[1] > 60 && scales[1] < 130, "1/100 of the scale: \(scales[1])")
        #expect(scales[2] < -0.6 / 3 && scales[2] > -1.3 / 3, "inverted at 3×: \(scales[2])")
    }

    /// What the fit is for: one E-step from the true maps at 1/100 of the particles' scale leaves the
    /// poses at chance; after the fit they are within the 30° grid's reach of the truth.
    @Test func theFirstIterationFromAWeakReferenceAlignsOnlyAfterTheFit() throws {
        let s = try Scenario(dim: 16, count: 40, noise: 0.15, distinct: true)
        let weak = s.truthReferences.map { Self.times($0, 0.01) }
        let scales = try ReferenceScale.fit(references: weak, particles: s.particles, radius: 5,
                                            setup: s.refinement.setup, reducer: SingleProcessReducer())
        var errors = [Double]()
        for references in [weak, zip(weak, scales).map { Self.times($0, Float($1)) }] {
            var model = try s.refinement.initialModel(references: references, given: true)
            model.currentRadius = 5
            let out = try s.refinement.runIteration(1, model: model, particles: s.particles, previous: nil,
                                                    reducer: SingleProcessReducer())
            errors.append(ClassRealignmentTests.fittedMedianError(out.results, s.truths, klass: 0))
        }
        print("fitted median angular error of class 1 after one E-step: \(errors[0])° unscaled, \(errors[1])° scaled by \(scales)")
        #expect(errors[1] < 20, "after the fit: \(errors[1])°")
        #expect(errors[0] > 2 * errors[1], "the unscaled reference aligned as well (\(errors[0])° vs \(errors[1])°)")
    }
}
