import Foundation
import Numerics
import Volumes

/// One subtomogram as read by the caller, with its input metadata (spec §3.1).
public struct ParticleInput: Sendable {
    /// Global 0-based index of the image in the input metadata (the key of every random draw).
    public var globalIndex: Int
    /// The volume at its original size (cubic).
    public var volume: Volume
    /// 0-based missing-region index (row of `--missing`), nil without missing data.
    public var region: Int?
    /// Input orientation (fixed modes, `--keep_angles`, first centre of local searches).
    public var angles: EulerAngles
    /// Input shift in original pixels.
    public var shift: SIMD3<Double>
    /// 0-based input class, nil when unknown.
    public var classIndex: Int?

    public init(globalIndex: Int, volume: Volume, region: Int? = nil, angles: EulerAngles = .zero,
                shift: SIMD3<Double> = .zero, classIndex: Int? = nil) {
        self.globalIndex = globalIndex
        self.volume = volume
        self.region = region
        self.angles = angles
        self.shift = shift
        self.classIndex = classIndex
    }
}

/// A subtomogram prepared once per run for the E-step (spec §6.3): Fourier-cropped to d, pre-shifted
/// in `--dont_align`/`--only_average`, transformed and masked by its image-frame region M_I^m.
public struct Particle: Sendable {
    public let globalIndex: Int
    /// F_X = FT(X) ⊙ M_I^m, half-complex (Xmipp 1/V normalisation). Without missing data the mask is
    /// the binary resolution mask (DC removed, see DEVIATIONS.md §14.22).
    public let spectrum: [Complex<Float>]
    /// Ξ² = ‖IFT(F_X)‖² (Parseval on the half grid).
    public let xi2: Double
    /// Index into `RefinementSetup.imageFrameMasks` (0 without missing data).
    public let region: Int
    /// 1-based region number for the output (0 without missing data).
    public let regionNumber: Int
    public let inputAngles: EulerAngles
    /// Original pixels.
    public let inputShift: SIMD3<Double>
    /// 0-based, nil when unknown or out of range.
    public let inputClass: Int?
    /// Half-set for the gold-standard FSC: fixed for the run, drawn from (seed, global index).
    public let halfSet: Int

    /// Stream tag separating the half-set draws from other uses of the seed.
    public static let halfSetStream: UInt64 = 0x4841_4C46_5345_5421  // "HALFSET!"

    public static func halfSet(seed: UInt64, globalIndex: Int) -> Int {
        var rng = SeededRandom(seed: seed, streams: halfSetStream, UInt64(globalIndex))
        return rng.nextUniform() < 0.5 ? 0 : 1
    }

    /// Prepares one input volume (spec §6.3).
    public init(_ input: ParticleInput, setup: RefinementSetup) throws {
        let v = input.volume
        guard v.isCubic, v.nx == setup.originalDim else {
            throw EngineError("image \(input.globalIndex + 1) is \(v.nx)x\(v.ny)x\(v.nz), expected \(setup.originalDim)³")
        }
        let regionIndex: Int
        if setup.hasMissingData {
            guard let r = input.region else {
                throw EngineError("image \(input.globalIndex + 1) has no missingRegionNumber although --missing is given")
            }
            guard r >= 0 && r < setup.regions.count else {
                throw EngineError("image \(input.globalIndex + 1): missing region \(r + 1) is not in 1…\(setup.regions.count)")
            }
            regionIndex = r
        } else {
            regionIndex = 0
        }
        var volume = v
        let o = setup.options
        if o.onlyAverage || o.dontAlign, input.shift != .zero {
            volume = volume.translated(by: input.shift)
        }
        if setup.dim != setup.originalDim { volume = volume.fourierResized(to: setup.dim) }
        let k = setup.options.nref
        globalIndex = input.globalIndex
        (spectrum, xi2) = Self.masked(volume.fourierTransform().data, setup: setup, region: regionIndex)
        region = regionIndex
        regionNumber = setup.hasMissingData ? regionIndex + 1 : 0
        inputAngles = input.angles
        inputShift = input.shift
        if let c = input.classIndex, c >= 0, c < k { inputClass = c } else { inputClass = nil }
        halfSet = Self.halfSet(seed: setup.options.seed, globalIndex: input.globalIndex)
    }

    /// The same particle in the Fourier-cropped box of `cropped` (the resolution-limited E-step): the
    /// components inside the smaller box, times its region mask; Ξ² over those components only.
    public func cropped(to cropped: RefinementSetup, from d: Int) -> Particle {
        let dc = cropped.dim
        if dc == d { return self }
        let (f, energy) = Self.masked(windowedHalfSpectrum(spectrum, from: d, to: dc), setup: cropped, region: region)
        return Particle(copying: self, spectrum: f, xi2: energy)
    }

    /// F ⊙ M_I^region and its energy Ξ² = V·Σ w|F|² (Parseval weights of the half-complex layout).
    static func masked(_ spectrum: [Complex<Float>], setup: RefinementSetup,
                       region: Int) -> (spectrum: [Complex<Float>], xi2: Double) {
        var f = spectrum
        let mask = setup.imageFrameMasks[region]
        let weights = setup.parsevalWeights[region]
        var energy = 0.0
        for j in 0 ..< f.count {
            f[j] = f[j].multiplied(by: mask[j])
            energy += Double(weights[j]) * Double(f[j].lengthSquared)
        }
        return (f, energy * Double(setup.dim * setup.dim * setup.dim))
    }

    private init(copying p: Particle, spectrum: [Complex<Float>], xi2: Double) {
        globalIndex = p.globalIndex
        self.spectrum = spectrum
        self.xi2 = xi2
        region = p.region
        regionNumber = p.regionNumber
        inputAngles = p.inputAngles
        inputShift = p.inputShift
        inputClass = p.inputClass
        halfSet = p.halfSet
    }

    /// The masked image X̃ = IFT(F_X) in real space (working box).
    public func maskedImage(dim: Int) -> Volume {
        FourierVolume(nx: dim, ny: dim, nz: dim, data: spectrum).inverseTransform()
    }

    /// The masked image in the reference frame of a pose: translated by `shift` (original pixels), then
    /// rotated by `rotation` (outside 0), in the box of `setup`. In the fixed-orientation modes
    /// (`--dont_align`, `--only_average`) the particle was shifted by its input shift when it was
    /// prepared, and the poses those modes report carry that same shift: it is not applied again.
    func aligned(rotation a: Matrix3, shift: SIMD3<Double>, setup: RefinementSetup) -> Volume {
        let o = setup.options
        var image = maskedImage(dim: setup.dim)
        // A zero shift is skipped: the trilinear translation by 0 is the identity.
        if !(o.dontAlign || o.onlyAverage) && shift != .zero { image = image.translated(by: shift * setup.scaleFactor) }
        return image.rotated(by: a, outside: 0)
    }
}
