import Foundation

/// The JSON lines `refine` prints on standard output for scripts (the bench, the scaling study, the
/// tests): one object per line, told apart by its `event` key. Each event is one Codable type, written by
/// `RunEvents.line` and read by `RunEvents.decode`; a missing key is an error, never a default.
/// Non-finite numbers (a numerical breakdown) are written as the strings "nan", "inf" and "-inf".
public protocol RunEvent: Codable, Sendable {
    /// The value of the `event` key.
    static var name: String { get }
    var event: String { get }
}

/// One iteration of a refinement, printed by rank 0 after the iteration's files (`{"event":"iteration",…}`).
public struct IterationEvent: RunEvent, Equatable {
    public static let name = "iteration"
    public var event = IterationEvent.name
    public var iteration: Int
    public var ranks: Int
    public var threads: Int
    /// Wall seconds of the iteration, and of its parts (E-step on the slowest and the fastest rank,
    /// the reduction, the M-step, the writing of its files by the previous iteration's writer).
    public var seconds: Double
    public var eStepMax: Double
    public var eStepMin: Double
    public var reduce: Double
    public var mStep: Double
    public var write: Double
    public var logLikelihood: Double
    /// The mean over the images of their largest posterior probability.
    public var pMax: Double
    public var sigmaNoise: Double
    public var sigmaOffset: Double
    public var fractions: [Double]
    /// (image, orientation, class) triples of the E-step (both passes of the two-pass search), those of
    /// its coarse pass (0 without one), and those significant in its second pass.
    public var triples: Int
    public var coarseTriples: Int
    public var significantTriples: Int
    /// Largest peak RSS over the ranks, that rank's runtime baseline and data budget (MiB).
    public var peakRSSMiB: Double
    public var baselineRSSMiB: Double
    public var budgetMiB: Double
    /// One d³ complex-to-real FFT on one thread, measured by rank 0 at start-up (the cost floor unit).
    public var fftC2RSeconds: Double
    /// Mean wall seconds of the E-step's own c2r FFTs (0 when the E-step did none).
    public var c2rInEStepSeconds: Double
    /// Fourier radius (shells) the iteration used, 0 in the classic mode, and its working box.
    public var radius: Int
    public var box: Int
    public var converged: Bool

    enum CodingKeys: String, CodingKey {
        case event, iteration, ranks, threads, seconds, reduce, write, fractions, triples, radius, box, converged
        case eStepMax = "estep_max", eStepMin = "estep_min", mStep = "mstep", logLikelihood = "log_likelihood"
        case pMax = "pmax", sigmaNoise = "sigma_noise", sigmaOffset = "sigma_offset"
        case coarseTriples = "coarse_triples", significantTriples = "significant_triples", peakRSSMiB = "peak_rss_mib", baselineRSSMiB = "baseline_rss_mib"
        case budgetMiB = "budget_mib", fftC2RSeconds = "fft_c2r_seconds", c2rInEStepSeconds = "c2r_in_estep_seconds"
    }

    public init(iteration: Int, ranks: Int, threads: Int, seconds: Double, eStepMax: Double, eStepMin: Double,
                reduce: Double, mStep: Double, write: Double, logLikelihood: Double, pMax: Double, sigmaNoise: Double,
                sigmaOffset: Double, fractions: [Double], triples: Int, coarseTriples: Int, significantTriples: Int, peakRSSMiB: Double,
                baselineRSSMiB: Double, budgetMiB: Double, fftC2RSeconds: Double, c2rInEStepSeconds: Double,
                radius: Int, box: Int, converged: Bool) {
        self.iteration = iteration
        self.ranks = ranks
        self.threads = threads
        self.seconds = seconds
        self.eStepMax = eStepMax
        self.eStepMin = eStepMin
        self.reduce = reduce
        self.mStep = mStep
        self.write = write
        self.logLikelihood = logLikelihood
        self.pMax = pMax
        self.sigmaNoise = sigmaNoise
        self.sigmaOffset = sigmaOffset
        self.fractions = fractions
        self.triples = triples
        self.coarseTriples = coarseTriples
        self.significantTriples = significantTriples
        self.peakRSSMiB = peakRSSMiB
        self.baselineRSSMiB = baselineRSSMiB
        self.budgetMiB = budgetMiB
        self.fftC2RSeconds = fftC2RSeconds
        self.c2rInEStepSeconds = c2rInEStepSeconds
        self.radius = radius
        self.box = box
        self.converged = converged
    }
}

/// The time prediction of a dry run (`refine --dry-run`, `{"event":"prediction",…}`).
public struct PredictionEvent: RunEvent, Equatable {
    public static let name = "prediction"
    public var event = PredictionEvent.name
    public var images: Int
    public var ranks: Int
    public var threads: Int
    public var classes: Int
    /// The first iteration's box (cropped to the starting resolution by the default MAP computation) and the run's box.
    public var dim: Int
    public var fullDim: Int
    public var orientationsPerImage: Double
    /// (image, orientation, class) triples of the first iteration: with the two-pass search, its upper
    /// bound (`triplesAtLeast` the lower), of which `coarseTriples` in the coarse pass, in a `coarseDim`³ box.
    public var triples: Int
    public var triplesAtLeast: Int
    public var coarseTriples: Int
    public var coarseDim: Int
    /// The two kernels measured on this machine: one d³ c2r FFT, one Fourier-space rotation.
    public var c2rSeconds: Double
    public var rotationSeconds: Double
    public var eStepSeconds: Double
    public var reduceSeconds: Double
    public var mStepSeconds: Double
    public var secondsPerIteration: Double
    public var secondsPerIterationAtLeast: Double
    /// The two-pass search's point estimate (sharp posteriors: an iteration from good references or once
    /// the poses settle); equal to `triples` and `secondsPerIteration` without a coarse pass.
    public var triplesExpected = 0
    public var secondsPerIterationExpected = 0.0
    /// An iteration under automatic local refinement (0: none can happen): its coarse triples and time.
    public var localCoarseTriples = 0
    public var secondsPerLocalIteration = 0.0

    enum CodingKeys: String, CodingKey {
        case event, images, ranks, threads, classes, dim, triples
        case fullDim = "full_dim", triplesAtLeast = "triples_at_least", coarseTriples = "coarse_triples", coarseDim = "coarse_dim"
        case secondsPerIterationAtLeast = "seconds_per_iteration_at_least"
        case orientationsPerImage = "orientations_per_image", c2rSeconds = "c2r_seconds", rotationSeconds = "rotation_seconds"
        case eStepSeconds = "estep_seconds", reduceSeconds = "reduce_seconds", mStepSeconds = "mstep_seconds"
        case secondsPerIteration = "seconds_per_iteration"
        case triplesExpected = "triples_expected", secondsPerIterationExpected = "seconds_per_iteration_expected"
        case localCoarseTriples = "local_coarse_triples", secondsPerLocalIteration = "seconds_per_local_iteration"
    }

    public init(images: Int, ranks: Int, threads: Int, classes: Int, dim: Int, fullDim: Int, orientationsPerImage: Double,
                triples: Int, triplesAtLeast: Int, coarseTriples: Int, coarseDim: Int,
                c2rSeconds: Double, rotationSeconds: Double, eStepSeconds: Double, reduceSeconds: Double,
                mStepSeconds: Double, secondsPerIteration: Double, secondsPerIterationAtLeast: Double) {
        self.images = images
        self.ranks = ranks
        self.threads = threads
        self.classes = classes
        self.dim = dim
        self.fullDim = fullDim
        self.orientationsPerImage = orientationsPerImage
        self.triples = triples
        self.triplesAtLeast = triplesAtLeast
        self.coarseTriples = coarseTriples
        self.coarseDim = coarseDim
        self.c2rSeconds = c2rSeconds
        self.rotationSeconds = rotationSeconds
        self.eStepSeconds = eStepSeconds
        self.reduceSeconds = reduceSeconds
        self.mStepSeconds = mStepSeconds
        self.secondsPerIteration = secondsPerIteration
        self.secondsPerIterationAtLeast = secondsPerIterationAtLeast
    }
}

/// Writing and reading the event lines.
public enum RunEvents {
    /// The key every event line has, read first to tell the kinds apart.
    private struct EventName: Decodable { var event: String }

    private static let nonFinite = (positive: "inf", negative: "-inf", nan: "nan")

    /// One line (no newline) of JSON for `event`: `{"event":"<name>",` then the other keys, sorted.
    public static func line<E: RunEvent>(_ event: E) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(
            positiveInfinity: nonFinite.positive, negativeInfinity: nonFinite.negative, nan: nonFinite.nan)
        do {
            // The `event` key first, the others sorted: `grep '^{"event":"iteration"'` finds the lines,
            // as the README and the Slurm scripts say.
            let sorted = String(decoding: try encoder.encode(event), as: UTF8.self)
            let key = "\"event\":\"\(E.name)\""
            var body = Substring(sorted.dropFirst())
            if let r = body.range(of: key + ",") ?? body.range(of: "," + key) ?? body.range(of: key) {
                body.removeSubrange(r)
            }
            return "{" + key + (body.hasPrefix("}") ? "" : ",") + body
        } catch {
            // Only numbers, strings and arrays of them, with non-finite numbers converted: cannot fail.
            preconditionFailure("encoding a \(E.name) event failed: \(error)")
        }
    }

    /// Every event of type `E` in `text` (a program's standard output: other lines, and events of other
    /// kinds, are skipped). A line that is an `E` event but lacks a key, or has one of the wrong type,
    /// is an error naming the line.
    public static func decode<E: RunEvent>(_ type: E.Type, from text: String) throws -> [E] {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(
            positiveInfinity: nonFinite.positive, negativeInfinity: nonFinite.negative, nan: nonFinite.nan)
        var events: [E] = []
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard trimmed.hasPrefix("{"), let kind = try? decoder.decode(EventName.self, from: Data(trimmed.utf8)),
                  kind.event == E.name else { continue }
            do {
                events.append(try decoder.decode(E.self, from: Data(trimmed.utf8)))
            } catch {
                throw FormatError(.syntax, file: "<output>", line: number + 1, "a \"\(E.name)\" event that cannot be read: \(error)")
            }
        }
        return events
    }
}
