import Foundation
import Testing
import Engine
import Volumes

/// `--starts S`: the run's own start is scored against S − 1 starts from other seeds at one common
/// radius, and the run goes on from the highest log-likelihood.
@Suite struct StartSelectionTests {
    /// The run's own "start" is a lost one: both classes hold the unaligned average of all particles, at
    /// its 3rd iteration. Two other starts run their first 3 iterations from the data; one of them must
    /// be kept, its score must be the highest, and its poses must be nearer the truth than the lost
    /// start's. The same selection twice gives the same scores (the starts are seeded).
    @Test func aLostStartIsReplacedByTheBestScoringOther() throws {
        let s = try Scenario(dim: 16, count: 40, noise: 0.15, distinct: true) { $0.iterations = 6 }
        var refinement = s.refinement
        refinement.sumScale = try SumScale.agreed(s.particles, reducer: SingleProcessReducer())
        let average = try InitialReferences.generate(particles: s.particles, totalImages: s.particles.count,
                                                     setup: refinement.setup, reducer: SingleProcessReducer())
        var lost = try refinement.initialModel(references: [average.references[0], average.references[0]])
        lost.iteration = 3
        lost.currentRadius = 5
        let selection = StartSelection(refinement: refinement, starts: 3, iterations: 3)
        let out = try #require(try selection.run(model: lost, particles: s.particles, totalImages: s.particles.count,
                                                 reducer: SingleProcessReducer()))
        print("scores at radius \(out.scoringRadius): " + out.candidates.map { "seed \($0.seed) \($0.logLikelihood) (r \($0.radius))" }
            .joined(separator: ", ") + "; kept \(out.chosen)")
        #expect(out.candidates.map(\.seed) == [1, 2, 3], "start j has seed --seed + j")
        #expect(out.scoringRadius == out.candidates.map(\.radius).min())
        #expect(out.chosen != 0, "the lost start was kept")
        let best = out.candidates.map(\.logLikelihood).max()!
        #expect(out.candidates[out.chosen].logLikelihood == best)
        #expect(out.model.iteration == 3, "the run goes on with its own iteration numbers")
        let kept = try #require(out.results, "another start was kept: its results go on")
        #expect(kept.count == s.particles.count)
        // The kept start's poses against the poses the lost start's own next E-step gives (fitted median
        // angular error per class, 30° grid).
        let lostStep = try refinement.runIteration(4, model: lost, particles: s.particles, previous: nil,
                                                   reducer: SingleProcessReducer())
        let keptError = s.medianAngularError(kept), lostError = s.medianAngularError(lostStep.results)
        print("fitted median angular error: kept \(keptError)°, lost \(lostError)°")
        #expect(keptError < 0.5 * lostError, "kept \(keptError)°, lost \(lostError)°")
        let again = try #require(try selection.run(model: lost, particles: s.particles, totalImages: s.particles.count,
                                                   reducer: SingleProcessReducer()))
        #expect(again.candidates.map(\.logLikelihood) == out.candidates.map(\.logLikelihood))

        // A good start is kept as it is: the kept model, entered as the run's own, scores about as the best of
        // the others (the same starts), so nothing replaces it and the run goes on unchanged.
        let good = try #require(try selection.run(model: out.model, particles: s.particles, totalImages: s.particles.count,
                                                  reducer: SingleProcessReducer()))
        let gain = good.candidates.map(\.logLikelihood).max()! - good.candidates[0].logLikelihood
        print("good start: " + good.candidates.map { "seed \($0.seed) \($0.logLikelihood)" }.joined(separator: ", ")
              + "; gain \(gain), required \(StartSelection.requiredGain(radius: good.scoringRadius, images: s.particles.count))")
        #expect(good.chosen == 0 && good.results == nil && good.model.references == out.model.references)
    }

    @Test func optionsRejectNoStartAndTheClassicRunsOne() throws {
        var o = RefinementOptions()
        #expect(o.effectiveStarts == 3)
        o.classic = true
        #expect(o.effectiveStarts == 1)
        o.starts = 0
        #expect(throws: EngineError.self) { try o.validate() }
    }
}
