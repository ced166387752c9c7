import Foundation
import Volumes

/// One particle's transform and class as written in a metadata file (our output convention, §10).
public struct ParticleRecord: Sendable, Equatable {
    public var image: String
    /// 0-based class.
    public var classIndex: Int
    public var angles: EulerAngles
    public var shift: SIMD3<Double>
    /// 0-based missing-region row, nil if the file has none.
    public var regionIndex: Int?

    public init(image: String, classIndex: Int, angles: EulerAngles, shift: SIMD3<Double>, regionIndex: Int? = nil) {
        self.image = image
        self.classIndex = classIndex
        self.angles = angles
        self.shift = shift
        self.regionIndex = regionIndex
    }
}

/// Summary of a set of per-particle errors.
public struct ErrorSummary: Sendable, Equatable, Codable {
    public var mean: Double
    public var median: Double
    public var rms: Double
    public var max: Double

    public init(_ xs: [Double]) {
        guard !xs.isEmpty else {
            mean = 0; median = 0; rms = 0; max = 0
            return
        }
        let n = Double(xs.count)
        mean = xs.reduce(0, +) / n
        median = FrameFit.median(xs)
        rms = (xs.reduce(0) { $0 + $1 * $1 } / n).squareRoot()
        max = xs.max()!
    }
}

/// Scores of one estimated class.
public struct ClassScore: Sendable, Equatable, Codable {
    /// 1-based estimated class and the true class it is matched to (nil: unmatched).
    public var estimatedClass: Int
    public var trueClass: Int?
    public var particles: Int
    /// Particles of this estimated class whose true class is the matched one.
    public var agreeing: Int
    /// Fitted frame: G as Euler angles (rot, tilt, psi) and g (pixels).
    public var frameAngles: [Double]
    public var frameTranslation: [Double]
    public var angularErrorFitted: ErrorSummary
    public var shiftErrorFitted: ErrorSummary
}

/// Class, angle and shift scores of an estimate against the truth.
public struct EvaluationReport: Sendable, Equatable, Codable {
    public var particles: Int
    public var trueClasses: Int
    public var estimatedClasses: Int
    public var accuracy: Double
    public var adjustedRandIndex: Double
    /// matching[e] = 1-based true class of 1-based estimated class e+1 (0 = unmatched).
    public var matching: [Int]
    /// confusion[e][t] (estimated × true, 0-based indices).
    public var confusion: [[Int]]
    /// Geodesic angle between estimate and truth, without any frame correction.
    public var angularErrorRaw: ErrorSummary
    /// After the per-class frame rotation G (A_true = G·A_est).
    public var angularErrorFitted: ErrorSummary
    public var shiftErrorRaw: ErrorSummary
    /// After the per-class frame translation g (t_est = t_true − A_trueᵀ g).
    public var shiftErrorFitted: ErrorSummary
    public var classes: [ClassScore]
    public var references: [ReferenceScore]
}

/// FSC of one estimated reference against the true reference of its matched class.
public struct ReferenceScore: Sendable, Equatable, Codable {
    public var estimatedClass: Int
    public var trueClass: Int
    public var file: String
    /// Shift found by the cross-correlation search (pixels, content moved by +shift).
    public var alignmentShift: [Double]
    /// Resolution at FSC = 0.5 and 0.143, in cycles/pixel and (with a pixel size) Å.
    public var resolution05: Double
    public var resolution0143: Double
    public var resolution05Angstrom: Double?
    public var resolution0143Angstrom: Double?
    public var fsc: [Double]
}

public enum Evaluation {
    /// Scores `estimates` against `truth`, pairing particles by image name (exact name first, then the
    /// file name without directories). Frames (G_e, g_e) are fitted per estimated class on the
    /// particles whose true class is the one matched to it (all its particles if none are).
    public static func evaluate(truth: [ParticleRecord], estimates: [ParticleRecord]) throws -> (EvaluationReport, [RigidFrame]) {
        guard !truth.isEmpty else { throw SimulationError("the truth file lists no particles") }
        var byName: [String: Int] = [:]
        var byBase: [String: Int] = [:]
        for (i, r) in truth.enumerated() {
            byName[r.image] = i
            byBase[(r.image as NSString).lastPathComponent] = i
        }
        var pairs: [(t: ParticleRecord, e: ParticleRecord)] = []
        for e in estimates {
            guard let i = byName[e.image] ?? byBase[(e.image as NSString).lastPathComponent] else {
                throw SimulationError("particle '\(e.image)' of the result is not in the truth file")
            }
            pairs.append((truth[i], e))
        }
        guard !pairs.isEmpty else { throw SimulationError("the result lists no particles") }
        for p in pairs where p.e.classIndex < 0 {
            throw SimulationError("particle '\(p.e.image)' has class \(p.e.classIndex + 1); classes start at 1")
        }
        let kt = (truth.map(\.classIndex).max() ?? 0) + 1
        let ke = (pairs.map(\.e.classIndex).max() ?? 0) + 1
        let table = ContingencyTable(estimated: pairs.map(\.e.classIndex), truth: pairs.map(\.t.classIndex),
                                     estimatedCount: ke, trueCount: kt)
        let matching = LabelMatching(table)

        func transformPair(_ p: (t: ParticleRecord, e: ParticleRecord)) -> TransformPair {
            TransformPair(trueRotation: p.t.angles.matrix, trueShift: p.t.shift,
                          estimatedRotation: p.e.angles.matrix, estimatedShift: p.e.shift)
        }
        var frames = [RigidFrame](repeating: .identity, count: ke)
        var classScores: [ClassScore] = []
        var fittedAngles = [Double](repeating: 0, count: pairs.count)
        var fittedShifts = fittedAngles
        for e in 0..<ke {
            let members = pairs.indices.filter { pairs[$0].e.classIndex == e }
            let matched = matching.estimatedToTrue[e]
            var fitSet = members.filter { pairs[$0].t.classIndex == matched }
            if fitSet.isEmpty { fitSet = members }
            let frame = FrameFit.fit(fitSet.map { transformPair(pairs[$0]) })
            frames[e] = frame
            for i in members {
                let tp = transformPair(pairs[i])
                fittedAngles[i] = frame.angularError(estimated: tp.estimatedRotation, truth: tp.trueRotation)
                fittedShifts[i] = frame.shiftError(estimated: tp.estimatedShift, truth: tp.trueShift,
                                                   trueRotation: tp.trueRotation)
            }
            let g = EulerAngles(matrix: frame.rotation)
            classScores.append(ClassScore(
                estimatedClass: e + 1, trueClass: matched.map { $0 + 1 }, particles: members.count,
                agreeing: members.filter { pairs[$0].t.classIndex == matched }.count,
                frameAngles: [g.rot, g.tilt, g.psi],
                frameTranslation: [frame.translation.x, frame.translation.y, frame.translation.z],
                angularErrorFitted: ErrorSummary(members.map { fittedAngles[$0] }),
                shiftErrorFitted: ErrorSummary(members.map { fittedShifts[$0] })))
        }
        let rawAngles = pairs.map { rotationDistance($0.e.angles.matrix, $0.t.angles.matrix) }
        let rawShifts = pairs.map { p -> Double in
            let r = p.e.shift - p.t.shift
            return (r * r).sum().squareRoot()
        }
        let report = EvaluationReport(
            particles: pairs.count, trueClasses: kt, estimatedClasses: ke,
            accuracy: matching.accuracy, adjustedRandIndex: adjustedRandIndex(table),
            matching: matching.estimatedToTrue.map { ($0 ?? -1) + 1 }, confusion: table.counts,
            angularErrorRaw: ErrorSummary(rawAngles), angularErrorFitted: ErrorSummary(fittedAngles),
            shiftErrorRaw: ErrorSummary(rawShifts), shiftErrorFitted: ErrorSummary(fittedShifts),
            classes: classScores, references: [])
        return (report, frames)
    }

    /// FSC of an estimated reference against the true one after aligning it with the class's fitted
    /// frame rotation and a translational search (±d/4 pixels, sub-pixel refined).
    public static func scoreReference(_ reference: Volume, truth: Volume, frame: RigidFrame,
                                      estimatedClass: Int, trueClass: Int, file: String,
                                      pixelSize: Double?) throws -> ReferenceScore {
        guard reference.isCubic, truth.isCubic else {
            throw SimulationError("reference \(file) must be a cube")
        }
        guard reference.nx == truth.nx else {
            throw SimulationError("reference \(file) is \(reference.nx)³ but the true reference is \(truth.nx)³")
        }
        let aligned = ReferenceAlignment.align(reference, onto: truth, rotation: frame.rotation, maxShift: truth.nx / 4)
        let curve = FSCCurve(aligned.aligned, truth)
        let r05 = curve.crossing(threshold: 0.5), r0143 = curve.crossing(threshold: 0.143)
        func angstrom(_ f: Double) -> Double? { f > 0 ? pixelSize.map { $0 / f } : nil }
        return ReferenceScore(estimatedClass: estimatedClass, trueClass: trueClass, file: file,
                              alignmentShift: [aligned.shift.x, aligned.shift.y, aligned.shift.z],
                              resolution05: r05, resolution0143: r0143,
                              resolution05Angstrom: angstrom(r05), resolution0143Angstrom: angstrom(r0143),
                              fsc: curve.values)
    }
}
