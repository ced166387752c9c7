import Foundation
import Volumes

/// Supplies the candidate orientations of a local search (`--ang_search`): indices into the
/// sampling's orientation list near an image's current best orientation. `LocalSearch` (Volumes)
/// is the implementation; Engine only needs this one call.
public protocol OrientationCandidateSource: Sendable {
    func candidates(around angles: EulerAngles) -> [Int]
}

extension LocalSearch: OrientationCandidateSource {}

/// Everything fixed for a whole run that the E- and M-steps share: box sizes, Fourier masks, the
/// missing regions and their image-frame masks, the orientation grid, the symmetry group.
/// Built once per process from the options; immutable and shared read-only by all threads.
public struct RefinementSetup: Sendable {
    public let options: RefinementOptions
    /// Box size of the input subtomograms.
    public let originalDim: Int
    /// Working box size d.
    public let dim: Int
    /// d / originalDim: converts original pixels to working pixels.
    public let scaleFactor: Double
    public let resolution: ResolutionMasks
    /// The real-space sphere masks of spec §4.4 (spherical average outside).
    public let realMasks: RealSpaceMasks
    /// Missing regions (0-based, in metadata order); empty means no missing data.
    public let regions: [MissingRegion]
    public let symmetry: SymmetryGroup
    /// The exhaustive orientation grid (nil in the fixed-orientation modes).
    public let sampling: AngularSampling?
    /// Local-search candidates (nil: exhaustive search).
    public let localSearch: (any OrientationCandidateSource)?

    /// Image-frame masks M_I^m (binary · measured), half-complex; one entry (the binary resolution
    /// mask) when there is no missing data, so every image has a region index.
    public let imageFrameMasks: [[Float]]
    /// M_I^m times the Hermitian multiplicity of each half-complex voxel (2 for interior x-planes,
    /// 1 for x = 0 and the even-d Nyquist plane): Σ_full |F|² = Σ_half w·|F|² (Parseval on the half grid).
    let parsevalWeights: [[Float]]
    /// Hermitian multiplicity of each half-complex voxel (1 or 2).
    let multiplicity: [Float]
    /// n_obs per region: measured voxels over the full d³ grid.
    public let observedCounts: [Int]
    /// N_F: voxels of the binary resolution mask over the full d³ grid.
    public let resolutionCount: Int

    public var hasMissingData: Bool { !regions.isEmpty }
    public var regionCount: Int { imageFrameMasks.count }

    /// - Parameters:
    ///   - options: validated here.
    ///   - originalDim: side of the input volumes.
    ///   - regions: missing regions (empty without `--missing`).
    ///   - symmetry: the point group (ignored in fixed-orientation modes, as the original).
    ///   - sampling: the orientation grid; required unless a fixed-orientation mode is used.
    ///   - localSearch: candidates for `--ang_search`; required when `options.angSearch > 0`.
    public init(options: RefinementOptions, originalDim: Int, regions: [MissingRegion] = [],
                symmetry: SymmetryGroup = .c1, sampling: AngularSampling?,
                localSearch: (any OrientationCandidateSource)? = nil) throws {
        try options.validate()
        guard originalDim > 0 else { throw EngineError("input volumes have an invalid size \(originalDim)") }
        var d = options.dim < 0 ? originalDim : options.dim
        if d > originalDim { throw EngineError("--dim \(d) is larger than the input volumes (\(originalDim))") }
        if (d % 2) != (originalDim % 2) { d += 1 }  // spec §2.1 row 21: keep the parity of the input
        guard d >= 4 else { throw EngineError("--dim \(d) is too small (need at least 4)") }
        self.options = options
        self.originalDim = originalDim
        self.dim = d
        self.scaleFactor = Double(d) / Double(originalDim)
        let resolution = ResolutionMasks(dim: d, maxres: options.maxres)
        self.resolution = resolution
        self.realMasks = RealSpaceMasks(dim: d)
        self.regions = regions
        self.symmetry = options.fixedOrientation ? .c1 : symmetry
        if !options.fixedOrientation && sampling == nil {
            throw EngineError("an angular sampling is needed unless --dont_align, --dont_rotate or --only_average is given")
        }
        self.sampling = options.fixedOrientation ? nil : sampling
        if options.angSearch > 0 && !options.fixedOrientation && localSearch == nil {
            throw EngineError("--ang_search \(options.angSearch) needs a local-search neighbourhood")
        }
        self.localSearch = options.fixedOrientation || options.angSearch <= 0 ? nil : localSearch

        let hx = d / 2 + 1
        var multiplicity = [Float](repeating: 2, count: d * d * hx)
        for z in 0 ..< d {
            for y in 0 ..< d {
                multiplicity[(z * d + y) * hx] = 1
                if d % 2 == 0 { multiplicity[(z * d + y) * hx + hx - 1] = 1 }
            }
        }
        let masks: [[Float]] = regions.isEmpty
            ? [resolution.binary]
            : regions.map { $0.mask(dim: d, resolution: resolution) }
        imageFrameMasks = masks
        self.multiplicity = multiplicity
        parsevalWeights = masks.map { m in zip(m, multiplicity).map { $0 * $1 } }
        let counts = masks.map { ResolutionMasks.fullGridCount(of: $0, dim: d) }
        observedCounts = counts
        resolutionCount = resolution.fullGridCount
        if counts.contains(0) {
            throw EngineError("a missing region leaves no measured Fourier voxel inside --maxres \(options.maxres)")
        }
    }

    /// Reference-frame mask of region m for an image aligned by A (M_A, spec §3.3), into a buffer.
    func fillReferenceFrameMask(region m: Int, rotation a: Matrix3, into out: UnsafeMutableBufferPointer<Float>) {
        MissingRegion.fillMask(for: regions.isEmpty ? nil : regions[m], into: out, dim: dim,
                               resolution: resolution, rotation: a)
    }

    // MARK: - The resolution-limited mode

    /// The largest radius (working-box shells) the data may use: below Nyquist and `--maxres`.
    public var radiusCap: Int { max(1, min(dim / 2 - 1, resolution.rMaxres - 1)) }

    /// The radius of the first iteration: `--ini_high` (Å, with `--pixel_size`), else 5 shells: about a
    /// quarter of the diameter of a particle that fills 80 % of the box, whatever the box. Coarse enough
    /// that the featureless starting blob does not lock onto noise, fine enough to tell orientations
    /// apart (3 shells of a 16³ box left the test phantom's poses in symmetry mates).
    /// Shell q of the working box is the frequency q/(originalDim · pixelSize), as in the original box.
    public var initialRadius: Int {
        let o = options
        let r = o.initialHighResolution > 0
            ? Int((Double(originalDim) * o.pixelSize / o.initialHighResolution).rounded())
            : 5
        return max(2, min(radiusCap, r))
    }

    /// The radius of a run's first iteration in the resolution-limited mode: `--ini_high` when given;
    /// else the full radius when the run continues an alignment (given references, or references built
    /// from input poses), else `initialRadius`.
    public func startingRadius(givenReferences: Bool) -> Int {
        (givenReferences || options.startsFromInputPoses) && options.initialHighResolution <= 0 ? radiusCap : initialRadius
    }

    /// Shells added to the resolution the data support, per iteration (`--incr_size`).
    public var radiusIncrement: Int { options.resolutionIncrement > 0 ? options.resolutionIncrement : max(2, dim / 16) }

    /// Single-precision 3-D c2r time (µs) of FFTW 3.3 with `FFTW_ESTIMATE` plans (the program's, which
    /// keep results independent of timing) for even sides 10…64, measured on the development VM (best
    /// of 3 × 1000 transforms, 150 above 32³). Not monotonic in the side: 20³ takes 15 µs, 18³ 38,
    /// 24³ 72, 30³ 434 and 32³ 104.
    static let measuredC2RMicroseconds: [Int: Double] = [
        10: 1.4, 12: 2.3, 14: 6.5, 16: 7.0, 18: 37.6, 20: 14.6, 22: 74.1, 24: 72.4, 26: 144.2, 28: 183.5,
        30: 434.2, 32: 104.3, 34: 564.6, 36: 308.7, 38: 847.9, 40: 752.8, 42: 548.1, 44: 567.1, 46: 1712.8,
        48: 685.2, 50: 981.1, 52: 957.0, 54: 914.9, 56: 694.7, 58: 2707.1, 60: 1837.9, 62: 3468.9, 64: 617.4,
    ]

    /// The Fourier-cropped box that holds every component within `radius`, no larger than the working
    /// box: among the sides ≥ 2·radius + 2 with the working box's parity, the one whose FFT is cheapest
    /// (`measuredC2RMicroseconds`; ties and sides beyond the table: the smallest whose prime factors are
    /// 2, 3 and 5, as FFTW is several times slower on sizes such as 22 = 2·11 or 26 = 2·13). The smallest
    /// side alone chose 18³ at radius 8 (2.6× the FFT time of 20³) and 30³ at radius 12–14 (4× 32³).
    public func croppedDim(radius: Int) -> Int {
        guard radius > 0 else { return dim }
        var need = 2 * radius + 2
        if need % 2 != dim % 2 { need += 1 }
        if need >= dim { return dim }
        func smooth(_ n: Int) -> Bool {
            var m = n
            for p in [2, 3, 5] { while m % p == 0 { m /= p } }
            return m == 1
        }
        var smallestSmooth = need
        while smallestSmooth < dim && !smooth(smallestSmooth) { smallestSmooth += 2 }
        smallestSmooth = min(dim, smallestSmooth)
        let cost = Self.measuredC2RMicroseconds
        guard let base = cost[smallestSmooth] else { return smallestSmooth }
        // A larger tabulated side (up to the working box) that is cheaper still.
        var best = (side: smallestSmooth, cost: base)
        for n in stride(from: smallestSmooth + 2, through: dim, by: 2) {
            guard let c = cost[n] else { break }
            if c < best.cost { best = (n, c) }
        }
        return best.side
    }

    /// The same run in a Fourier-cropped working box of side `dc` (≤ dim): masks, regions and
    /// orientations as here; `--maxres` becomes Nyquist of the smaller box (the caller keeps the radius
    /// under the real cap) and `--limit_trans` is rescaled to its pixels.
    /// With `sampling`, the run's grid is replaced (the coarse pass of the adaptive search).
    public func cropped(to dc: Int, sampling replacement: AngularSampling? = nil) throws -> RefinementSetup {
        if dc == dim && replacement == nil { return self }
        var o = options
        if dc != dim {
            o.dim = dc
            o.maxres = 0.5
            if o.limitTrans >= 0 { o.limitTrans *= Double(dc) / Double(dim) }
        }
        return try RefinementSetup(options: o, originalDim: originalDim, regions: regions, symmetry: symmetry,
                                   sampling: replacement ?? sampling, localSearch: localSearch)
    }

    /// The same run with some options changed (a one-class sub-run of `ClassRealignment`): regions,
    /// symmetry, grid and local search as here.
    public func withOptions(_ change: (inout RefinementOptions) -> Void) throws -> RefinementSetup {
        var o = options
        change(&o)
        return try RefinementSetup(options: o, originalDim: originalDim, regions: regions, symmetry: symmetry,
                                   sampling: sampling, localSearch: localSearch)
    }

    /// σ_offset in working pixels from the `--offset` option (original pixels).
    public var initialSigmaOffset: Double { options.offset * scaleFactor }
}
