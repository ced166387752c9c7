import Foundation
import Formats
import Testing

/// The JSON event lines of a run: one Codable type per event, written and read by `RunEvents`.
@Suite struct RunEventsTests {
    let iteration = IterationEvent(
        iteration: 3, ranks: 2, threads: 4, seconds: 1.5, eStepMax: 1.25, eStepMin: 1.0, reduce: 0.01, mStep: 0.2,
        write: 0.05, logLikelihood: -52646.163736774535, pMax: 0.89, sigmaNoise: 1.08, sigmaOffset: 2.07,
        fractions: [0.25, 0.75], triples: 1000, coarseTriples: 300, significantTriples: 40, peakRSSMiB: 80, baselineRSSMiB: 40,
        budgetMiB: 30, fftC2RSeconds: 2e-5, c2rInEStepSeconds: 3e-5, radius: 6, box: 16, converged: false)

    @Test("an iteration event round-trips, among other output lines and events")
    func roundTrip() throws {
        var prediction = PredictionEvent(images: 24, ranks: 2, threads: 2, classes: 2, dim: 16, fullDim: 24,
                                         orientationsPerImage: 92.5, triples: 4440, triplesAtLeast: 900, coarseTriples: 600,
                                         coarseDim: 12, c2rSeconds: 1e-5, rotationSeconds: 2e-4, eStepSeconds: 0.1,
                                         reduceSeconds: 0.01, mStepSeconds: 0.02, secondsPerIteration: 0.13,
                                         secondsPerIterationAtLeast: 0.05)
        prediction.triplesExpected = 1200
        prediction.secondsPerIterationExpected = 0.07
        prediction.localCoarseTriples = 40
        prediction.secondsPerLocalIteration = 0.03
        let stdout = ["ml_tomo: a log line", RunEvents.line(prediction), "{not json", RunEvents.line(iteration), ""]
            .joined(separator: "\n")
        #expect(try RunEvents.decode(IterationEvent.self, from: stdout) == [iteration])
        #expect(try RunEvents.decode(PredictionEvent.self, from: stdout) == [prediction])
    }

    /// The keys scripts read (slurm/scaling_report.py, bench/README.md) keep their names.
    @Test("the iteration line has exactly the documented keys")
    func keys() throws {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(RunEvents.line(iteration).utf8)) as? [String: Any])
        #expect(Set(object.keys) == [
            "event", "iteration", "ranks", "threads", "seconds", "estep_max", "estep_min", "reduce", "mstep", "write",
            "log_likelihood", "pmax", "sigma_noise", "sigma_offset", "fractions", "triples", "coarse_triples", "significant_triples",
            "peak_rss_mib", "baseline_rss_mib", "budget_mib", "fft_c2r_seconds", "c2r_in_estep_seconds", "radius", "box",
            "converged",
        ])
        #expect(object["event"] as? String == "iteration")
        #expect(RunEvents.line(iteration).hasPrefix("{\"event\":\"iteration\",\"baseline_rss_mib\":40,"), "\(RunEvents.line(iteration))")
        #expect(object["estep_max"] as? Double == 1.25)
    }

    @Test("a missing key is an error naming the line, not a default")
    func missingKey() throws {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(RunEvents.line(iteration).utf8)) as? [String: Any])
        object.removeValue(forKey: "estep_max")
        let broken = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        do {
            _ = try RunEvents.decode(IterationEvent.self, from: "first line\n" + broken)
            Issue.record("a line without estep_max was read")
        } catch let e as FormatError {
            #expect(e.line == 2 && e.message.contains("estep_max"), "\(e)")
        }
    }

    @Test("non-finite numbers survive the round trip")
    func nonFinite() throws {
        var e = iteration
        e.logLikelihood = -.infinity
        e.sigmaNoise = .nan
        let back = try #require(try RunEvents.decode(IterationEvent.self, from: RunEvents.line(e)).first)
        #expect(back.logLikelihood == -.infinity && back.sigmaNoise.isNaN)
    }
}
