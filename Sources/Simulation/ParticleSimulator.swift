import Foundation
import Volumes

/// A rotation drawn uniformly on SO(3): a uniformly random unit quaternion (four independent standard
/// normals, normalised — uniform on S³, hence Haar-uniform on SO(3)) turned into a matrix.
public func uniformRandomRotation(_ rng: inout SeededRandom) -> Matrix3 {
    var q = SIMD4<Double>(0, 0, 0, 0)
    var n2 = 0.0
    repeat {
        q = SIMD4(rng.nextGaussian(), rng.nextGaussian(), rng.nextGaussian(), rng.nextGaussian())
        n2 = (q * q).sum()
    } while n2 < 1e-12
    return rotationMatrix(quaternion: q / n2.squareRoot())
}

/// Rotation matrix of a unit quaternion (w, x, y, z).
public func rotationMatrix(quaternion q: SIMD4<Double>) -> Matrix3 {
    let w = q[0], x = q[1], y = q[2], z = q[3]
    return Matrix3(1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                   2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                   2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y))
}

/// Everything that defines a synthetic data set. The same settings always give the same particles.
public struct SimulationSettings: Sendable, Equatable {
    public var classes: Int
    public var particles: Int
    public var dim: Int
    /// Signal-to-noise ratio, defined as var(signal) / var(noise) over all d³ voxels of a particle,
    /// where both the signal (transformed phantom) and the noise (white Gaussian) have been through the
    /// particle's missing-region filter — i.e. measured on exactly what ends up in the file.
    public var snr: Double
    public var seed: UInt64
    /// Standard deviation (pixels) of each component of the true shift t.
    public var shiftSigma: Double
    public var missing: MissingRegionPlan

    public init(classes: Int = 2, particles: Int, dim: Int = 32, snr: Double = 0.1, seed: UInt64 = 1,
                shiftSigma: Double = 2, missing: MissingRegionPlan) {
        self.classes = classes
        self.particles = particles
        self.dim = dim
        self.snr = snr
        self.seed = seed
        self.shiftSigma = shiftSigma
        self.missing = missing
    }

    public func validate() throws {
        guard classes >= 1 else { throw SimulationError("--classes \(classes) must be at least 1") }
        guard particles >= 1 else { throw SimulationError("--particles \(particles) must be at least 1") }
        guard dim >= 8 else { throw SimulationError("--size \(dim) must be at least 8 pixels") }
        guard snr.isFinite, snr > 0 else { throw SimulationError("--snr \(snr) must be a positive number") }
        guard shiftSigma.isFinite, shiftSigma >= 0 else {
            throw SimulationError("--shift-sigma \(shiftSigma) must be a non-negative number of pixels")
        }
    }
}

/// The hidden variables of one particle, in the program's output convention (spec §1.4, §10):
/// the particle X satisfies X(x) ≈ Ref_class(A·(x + t)) with A = E(rot, tilt, psi), so a perfect
/// refinement writes exactly these angles and shifts.
public struct ParticleTruth: Sendable, Equatable {
    /// 0-based class.
    public var classIndex: Int
    public var angles: EulerAngles
    public var shift: SIMD3<Double>
    /// 0-based row of the missing-region table (nil: nothing missing).
    public var regionIndex: Int?

    public init(classIndex: Int, angles: EulerAngles, shift: SIMD3<Double>, regionIndex: Int?) {
        self.classIndex = classIndex
        self.angles = angles
        self.shift = shift
        self.regionIndex = regionIndex
    }

    public var matrix: Matrix3 { angles.matrix }
}

/// One simulated particle: the data (mean 0, std 1), the same affine normalisation applied to the
/// noise-free signal, and the variances that define the SNR.
public struct SimulatedParticle: Sendable {
    public var truth: ParticleTruth
    public var volume: Volume
    /// (filtered signal − m) / s with the m, s used for `volume`: `volume − clean` is the scaled noise.
    public var clean: Volume
    /// Variances of the filtered signal and the added (filtered, scaled) noise before normalisation.
    public var signalVariance: Double
    public var noiseVariance: Double
}

/// Generates particles from class phantoms. Particle i depends only on (seed, i): its hidden
/// variables come from `SeededRandom(seed, streams: 1, i)` and its noise from `(seed, 2, i)`, so any
/// subset can be regenerated and the result does not depend on how many threads generate them.
public struct ParticleSimulator: Sendable {
    public let settings: SimulationSettings
    public let phantoms: [PhantomModel]

    public init(settings: SimulationSettings, phantoms: [PhantomModel]) throws {
        try settings.validate()
        guard phantoms.count == settings.classes else {
            throw SimulationError("\(phantoms.count) phantoms for \(settings.classes) classes")
        }
        self.settings = settings
        self.phantoms = phantoms
    }

    /// The true reference of class k (0-based): the phantom sampled without any transform.
    public func reference(_ k: Int) -> Volume { phantoms[k].sample(dim: settings.dim) }

    /// Hidden variables of particle i: uniform class, Haar-uniform rotation, Gaussian shift. The
    /// rotation is stored as Euler angles and the matrix recomputed from them, so the angles written to
    /// truth.star define the transform used here.
    public func truth(_ i: Int) -> ParticleTruth {
        var rng = SeededRandom(seed: settings.seed, streams: 1, UInt64(i))
        let k = rng.nextInt(below: settings.classes)
        let angles = EulerAngles(matrix: uniformRandomRotation(&rng))
        let s = settings.shiftSigma
        let t = SIMD3(rng.nextGaussian() * s, rng.nextGaussian() * s, rng.nextGaussian() * s)
        return ParticleTruth(classIndex: k, angles: angles, shift: t,
                             regionIndex: settings.missing.regionIndex(forParticle: i))
    }

    /// The noise-free particle before the missing region: out(x) = Ref_k(A·(x + t)), sampled from the
    /// phantom directly (no interpolation for analytic phantoms).
    public func signal(_ truth: ParticleTruth) -> Volume {
        let a = truth.matrix
        return phantoms[truth.classIndex].sample(dim: settings.dim, map: a, shift: a * truth.shift)
    }

    public func particle(_ i: Int) -> SimulatedParticle {
        let truth = truth(i)
        let region = settings.missing.region(truth.regionIndex)
        let d = settings.dim
        let signal = filter(signal(truth), region)

        var rng = SeededRandom(seed: settings.seed, streams: 2, UInt64(i))
        var white = Volume(dim: d)
        for j in 0..<white.count { white.data[j] = Float(rng.nextGaussian()) }
        let noise = filter(white, region)

        let signalStats = VoxelStatistics(signal)
        let noiseStats = VoxelStatistics(noise)
        // Scale the noise so that var(signal) / var(noise) is exactly the requested SNR.
        let targetNoiseVariance = signalStats.variance / settings.snr
        let c = noiseStats.variance > 0 ? (targetNoiseVariance / noiseStats.variance).squareRoot() : 0
        var data = Volume(dim: d)
        for j in 0..<data.count {
            data.data[j] = Float(Double(signal.data[j]) + c * Double(noise.data[j]))
        }
        let stats = VoxelStatistics(data)
        let m = stats.mean
        let sd = stats.standardDeviation > 0 ? stats.standardDeviation : 1
        var clean = signal
        for j in 0..<data.count {
            data.data[j] = Float((Double(data.data[j]) - m) / sd)
            clean.data[j] = Float((Double(signal.data[j]) - m) / sd)
        }
        return SimulatedParticle(truth: truth, volume: data, clean: clean,
                                 signalVariance: signalStats.variance,
                                 noiseVariance: c * c * noiseStats.variance)
    }
}

private func filter(_ v: Volume, _ region: MissingRegion?) -> Volume {
    region?.filtered(v) ?? v
}

/// Mean and population variance over all voxels (Volumes' Double-accumulated statistics).
public struct VoxelStatistics: Sendable {
    public let mean: Double
    public let variance: Double
    public var standardDeviation: Double { variance.squareRoot() }

    public init(_ v: Volume) {
        mean = v.mean
        let sd = v.standardDeviation
        variance = sd * sd
    }
}
