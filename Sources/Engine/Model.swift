import Volumes

/// The parameters the EM iteration estimates (identical on every rank after each M-step).
public struct Model: Sendable, Equatable {
    /// K references, working box d³.
    public var references: [Volume]
    /// Class fractions α_k (sum 1).
    public var fractions: [Double]
    /// Noise standard deviation per voxel.
    public var sigmaNoise: Double
    /// Standard deviation of the translation prior, working-box pixels.
    public var sigmaOffset: Double
    /// Number of the iteration that produced this model (istart − 1 for the starting model).
    public var iteration: Int
    /// Resolution per class (FSC = 0.5, in 1/Å with the pixel size, spec §8.6); 0 when unknown.
    public var resolutions: [Double]
    /// FSC curve per class, shells q = 0 … d/2 (index q; shell 0 unused).
    public var fsc: [[Double]]
    /// Relative change of each reference in the last M-step (spec §8.8), −1 for empty classes.
    public var signalChange: [Double]
    /// Current regularisation strength.
    public var regularisation: Double
    /// Fourier radius (working-box shells) up to which the next E- and M-step use the data; 0 = all
    /// (the classic mode). Grows with the resolution the half-set FSC supports.
    public var currentRadius: Int = 0
    /// The two-pass search's coarse pass visits, per image, only the coarse orientations within this
    /// many degrees of the image's last orientation (automatic local refinement); 0: the whole grid.
    public var localSearchReach: Double = 0
    /// Per class, per shell q = 0 … d/2: the signal-to-noise ratio of the merged reference the half-set
    /// FSC implies, FSC′/(1 − FSC′) with FSC′ = √(2·FSC/(1 + FSC)) (0 where the FSC is ≤ 0); empty in
    /// the classic mode. T × this is the prior's signal power in units of the reconstruction noise.
    public var ssnr: [[Double]] = []
    /// Per class, per shell q = 0 … d/2: τ²_q/σ²_q = 1/λ_q of the class's last MAP update, the prior's
    /// signal power over one image's noise power in shell q (0 where the update zeroes the shell);
    /// empty in the classic mode. With K > 1 every class has the pooled prior (see `MStep`).
    public var priorSignalToNoise: [[Double]] = []

    /// Whether all references are the same volume (a consensus not yet split into classes).
    public var referencesAreIdentical: Bool {
        references.dropFirst().allSatisfy { $0.data == references[0].data }
    }

    public init(references: [Volume], fractions: [Double]? = nil, sigmaNoise: Double, sigmaOffset: Double,
                iteration: Int = 0, regularisation: Double = 0) {
        let k = references.count
        self.references = references
        self.fractions = fractions ?? [Double](repeating: 1 / Double(max(k, 1)), count: k)
        self.sigmaNoise = sigmaNoise
        self.sigmaOffset = sigmaOffset
        self.iteration = iteration
        self.resolutions = [Double](repeating: 0, count: k)
        self.fsc = [[Double]](repeating: [], count: k)
        self.signalChange = [Double](repeating: -1, count: k)
        self.regularisation = regularisation
    }

    public var classCount: Int { references.count }
    public var dim: Int { references.first?.nx ?? 0 }
}

/// Everything one E-step accumulates, per process; summed across processes by ONE reduction
/// (`packed()` → `Reducer.sumInPlace` → `init(unpacking:)`).
///
/// Image and wedge sums are kept per half-set h ∈ {0, 1} and class k at index h·K + k, so the M-step
/// can compute a gold-standard FSC before merging the halves (spec §8.1).
public struct Sums: Sendable, Equatable {
    public let dim: Int
    public let classCount: Int
    /// 2K real-space reference-frame weighted image sums, d³ each (x fastest).
    public var imageSums: [[Double]]
    /// 2K half-complex wedge sums (posterior-weighted counts of measured Fourier voxels), d²(d/2+1) each.
    public var wedgeSums: [[Double]]
    /// The scalar sums, exact (`ExactScalar`: their bits do not depend on the order of the terms).
    var exactClassWeights: [ExactScalar]
    var exactSigmaNoise = ExactScalar(), exactSigmaOffset = ExactScalar(), exactMaxProbability = ExactScalar()
    var exactLogLikelihood = ExactScalar(), exactImageCount = ExactScalar()
    /// Σ_i P(k | X_i) per class.
    public var classWeights: [Double] {
        get { exactClassWeights.map(\.value) }
        set { exactClassWeights = newValue.map(ExactScalar.init) }
    }
    /// Σ_i E[‖X̃_i − T_s R̃‖²] (measured components).
    public var sigmaNoiseSum: Double {
        get { exactSigmaNoise.value }
        set { exactSigmaNoise = ExactScalar(newValue) }
    }
    /// Σ_i E[|s|²] (working pixels²).
    public var sigmaOffsetSum: Double {
        get { exactSigmaOffset.value }
        set { exactSigmaOffset = ExactScalar(newValue) }
    }
    /// Σ_i max-probability (ML) or max CC (maxCC).
    public var maxProbabilitySum: Double {
        get { exactMaxProbability.value }
        set { exactMaxProbability = ExactScalar(newValue) }
    }
    /// Σ_i log-likelihood.
    public var logLikelihood: Double {
        get { exactLogLikelihood.value }
        set { exactLogLikelihood = ExactScalar(newValue) }
    }
    /// Number of images that contributed.
    public var imageCount: Double {
        get { exactImageCount.value }
        set { exactImageCount = ExactScalar(newValue) }
    }

    public init(dim: Int, classCount: Int) {
        self.dim = dim
        self.classCount = classCount
        let v = dim * dim * dim
        let vh = dim * dim * (dim / 2 + 1)
        imageSums = [[Double]](repeating: [Double](repeating: 0, count: v), count: 2 * classCount)
        wedgeSums = [[Double]](repeating: [Double](repeating: 0, count: vh), count: 2 * classCount)
        exactClassWeights = [ExactScalar](repeating: ExactScalar(), count: classCount)
    }

    /// One image's share of the scalar sums (each added exactly). `sigmaNoise` and `sigmaOffset` are
    /// its posterior means of the residual and of |s|², `logLikelihood` 0 where there is none.
    mutating func addImage(maxProbability: Double, logLikelihood: Double = 0, sigmaNoise: Double = 0,
                           sigmaOffset: Double = 0) {
        exactMaxProbability.add(maxProbability)
        exactLogLikelihood.add(logLikelihood)
        exactSigmaNoise.add(sigmaNoise)
        exactSigmaOffset.add(sigmaOffset)
        exactImageCount.add(1)
    }

    /// Adds `weight` to class `klass`'s weight, exactly.
    mutating func addClassWeight(_ weight: Double, to klass: Int) { exactClassWeights[klass].add(weight) }

    /// The scalar sums in `packed()`'s order.
    private var exactScalars: [ExactScalar] {
        [exactSigmaNoise, exactSigmaOffset, exactMaxProbability, exactLogLikelihood, exactImageCount] + exactClassWeights
    }

    static let scalarCount = 5

    /// Number of doubles in `packed()`.
    public static func packedCount(dim: Int, classCount: Int) -> Int {
        let v = dim * dim * dim
        let vh = dim * dim * (dim / 2 + 1)
        return (scalarCount + classCount) * ExactScalar.digitCount + 2 * classCount * (v + vh)
    }

    /// All values as one flat array: the scalar sums and class weights as their canonical digits (so a
    /// sum of packed arrays, in any order, is the exact sum), then the image sums and wedge sums.
    public func packed() -> [Double] {
        var out = [Double]()
        out.reserveCapacity(Self.packedCount(dim: dim, classCount: classCount) + reducerTrailingCapacity)
        out.append(contentsOf: ExactScalar.packed(exactScalars))
        for s in imageSums { out.append(contentsOf: s) }
        for s in wedgeSums { out.append(contentsOf: s) }
        return out
    }

    /// Rebuilds sums from `packed()` output (typically after a cross-process reduction).
    public init(unpacking values: [Double], dim: Int, classCount: Int) throws {
        let expected = Self.packedCount(dim: dim, classCount: classCount)
        guard values.count == expected else {
            throw EngineError("reduced sums have \(values.count) values, expected \(expected) for d = \(dim), K = \(classCount)")
        }
        self.init(dim: dim, classCount: classCount)
        let n = ExactScalar.digitCount
        let scalars = ExactScalar.unpacked(values[...], count: Self.scalarCount + classCount)
        (exactSigmaNoise, exactSigmaOffset, exactMaxProbability, exactLogLikelihood, exactImageCount) =
            (scalars[0], scalars[1], scalars[2], scalars[3], scalars[4])
        exactClassWeights = Array(scalars[Self.scalarCount...])
        var at = scalars.count * n
        let v = dim * dim * dim
        let vh = dim * dim * (dim / 2 + 1)
        for i in 0 ..< 2 * classCount {
            imageSums[i] = Array(values[at ..< at + v])
            at += v
        }
        for i in 0 ..< 2 * classCount {
            wedgeSums[i] = Array(values[at ..< at + vh])
            at += vh
        }
    }
}

/// The per-image outcome of one E-step (one row of the output docfile).
public struct ParticleResult: Sendable, Equatable {
    /// Global 0-based index of the image in the input metadata.
    public var globalIndex: Int
    /// Orientation of the most probable (orientation, class, shift): aligns the image onto the
    /// reference as spec §1.4 / §10.
    public var angles: EulerAngles
    /// Best shift in original pixels (spec §10: translate first, then rotate).
    public var shift: SIMD3<Double>
    /// 1-based class of the most probable assignment.
    public var classNumber: Int
    /// Per-image log-likelihood contribution (0 in maxCC mode).
    public var logLikelihood: Double
    /// max weight / Σ weights (ML) or the maximum constrained correlation (maxCC).
    public var maxProbability: Double
    /// 1-based missing-region number, 0 without missing data.
    public var regionNumber: Int
    /// Half-set (0/1) the image contributed to.
    public var halfSet: Int

    public init(globalIndex: Int, angles: EulerAngles, shift: SIMD3<Double>, classNumber: Int,
                logLikelihood: Double, maxProbability: Double, regionNumber: Int, halfSet: Int) {
        self.globalIndex = globalIndex
        self.angles = angles
        self.shift = shift
        self.classNumber = classNumber
        self.logLikelihood = logLikelihood
        self.maxProbability = maxProbability
        self.regionNumber = regionNumber
        self.halfSet = halfSet
    }
}

/// Wall-clock seconds of the parts of one iteration (this process).
public struct IterationTiming: Sendable, Equatable {
    public var eStep: Double = 0
    public var reduce: Double = 0
    public var mStep: Double = 0
    public init() {}
}

/// Summary of one iteration, for the log file and the progress output.
public struct IterationStatistics: Sendable, Equatable {
    public var iteration: Int
    /// Σ_i log-likelihood over all images (0 in maxCC mode).
    public var logLikelihood: Double
    /// Average max-probability (ML) or average max CC (maxCC).
    public var averageMaxProbability: Double
    public var sigmaNoise: Double
    /// Working-box pixels.
    public var sigmaOffset: Double
    public var fractions: [Double]
    public var resolutions: [Double]
    public var signalChange: [Double]
    public var converged: Bool
    /// Classes that were re-seeded because they emptied (0-based).
    public var reseededClasses: [Int]
    /// (image, orientation, class) triples evaluated by this process, and how many were significant.
    public var triples: Int
    public var significantTriples: Int
    /// Of `triples`, those of the adaptive search's coarse pass (0: one exhaustive pass).
    public var coarseTriples: Int = 0
    /// The coarse pass's local reach in this iteration (degrees; 0: global).
    public var localSearchReach: Double = 0
    /// Fraction of the particles that moved by more than one angular step or changed class since the
    /// previous iteration (nil where not measured: first iteration, consensus phase, no two-pass search).
    public var movedFraction: Double?
    /// The reach the next iteration's coarse pass will use (degrees; 0: global).
    public var nextLocalSearchReach: Double = 0
    /// Pass 1's c2r FFTs inside the E-step: summed wall time over threads, and their number.
    public var c2rSeconds: Double = 0
    public var c2rCalls: Int = 0
    /// Resolution-limited mode: the Fourier radius (working-box shells) the iteration used, and the
    /// side of the cropped box it ran in (the working box in the classic mode).
    public var radius: Int = 0
    public var workingDim: Int = 0
    public var timing: IterationTiming

    public init(iteration: Int, logLikelihood: Double, averageMaxProbability: Double, sigmaNoise: Double,
                sigmaOffset: Double, fractions: [Double], resolutions: [Double], signalChange: [Double],
                converged: Bool, reseededClasses: [Int] = [], triples: Int = 0, significantTriples: Int = 0,
                timing: IterationTiming = IterationTiming()) {
        self.iteration = iteration
        self.logLikelihood = logLikelihood
        self.averageMaxProbability = averageMaxProbability
        self.sigmaNoise = sigmaNoise
        self.sigmaOffset = sigmaOffset
        self.fractions = fractions
        self.resolutions = resolutions
        self.signalChange = signalChange
        self.converged = converged
        self.reseededClasses = reseededClasses
        self.triples = triples
        self.significantTriples = significantTriples
        self.timing = timing
    }
}
