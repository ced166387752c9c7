import Foundation
import Numerics
import Volumes

/// A small deterministic generator (SplitMix64) so tests are reproducible.
struct TestRNG {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func uniform(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * uniform() }
    mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

/// A smooth phantom: a sum of isotropic Gaussians, evaluated analytically at logical coordinates.
struct GaussianPhantom {
    var centres: [SIMD3<Double>]
    var sigmas: [Double]
    var amplitudes: [Double]

    /// Blobs well inside the sphere of radius d/2 (centres within radius d/4, sigma ~ d/14).
    static func random(dim d: Int, blobs: Int = 4, seed: UInt64) -> GaussianPhantom {
        var rng = TestRNG(seed: seed)
        var c: [SIMD3<Double>] = [], s: [Double] = [], a: [Double] = []
        let r = Double(d) / 4
        for _ in 0..<blobs {
            var p: SIMD3<Double>
            repeat {
                p = SIMD3(rng.uniform(-r, r), rng.uniform(-r, r), rng.uniform(-r, r))
            } while (p * p).sum() > r * r
            c.append(p)
            s.append(Double(d) / 14 * rng.uniform(0.8, 1.2))
            a.append(rng.uniform(0.5, 1.5))
        }
        return GaussianPhantom(centres: c, sigmas: s, amplitudes: a)
    }

    func value(at r: SIMD3<Double>) -> Double {
        var v = 0.0
        for i in centres.indices {
            let dlt = r - centres[i]
            v += amplitudes[i] * exp(-(dlt * dlt).sum() / (2 * sigmas[i] * sigmas[i]))
        }
        return v
    }

    /// Volume with V(r) = f(map·r) at logical r (map = identity: the phantom itself).
    func volume(dim d: Int, map: Matrix3 = .identity) -> Volume {
        var v = Volume(dim: d)
        let c = Double(d / 2)
        for z in 0..<d {
            for y in 0..<d {
                for x in 0..<d {
                    let r = SIMD3(Double(x) - c, Double(y) - c, Double(z) - c)
                    v[x, y, z] = Float(value(at: map * r))
                }
            }
        }
        return v
    }
}

func randomRotation(_ rng: inout TestRNG) -> Matrix3 {
    EulerAngles(rot: rng.uniform(-180, 180), tilt: acos(rng.uniform(-1, 1)) * 180 / Double.pi,
                psi: rng.uniform(-180, 180)).matrix
}

/// Relative L2 difference of two half-complex spectra over |κ| ≤ radius (κ from the layout of §0.3).
func relativeSpectrumError(_ a: FourierVolume, _ b: FourierVolume, radius: Double) -> Double {
    var num = 0.0, den = 0.0
    for z in 0..<a.nz {
        let kz = FourierVolume.frequency(z, a.nz)
        for y in 0..<a.ny {
            let ky = FourierVolume.frequency(y, a.ny)
            for x in 0..<a.hx where Double(x * x + ky * ky + kz * kz) <= radius * radius {
                let d = a[x, y, z] - b[x, y, z]
                num += Double(d.lengthSquared)
                den += Double(b[x, y, z].lengthSquared)
            }
        }
    }
    return (num / den).squareRoot()
}

func rotateToFourierVolume(_ rot: FourierRotator, _ a: Matrix3, maxRadius: Double) -> FourierVolume {
    let d = rot.dim
    var out = FourierVolume(dim: d)
    out.data.withUnsafeMutableBufferPointer { rot.rotate(a, maxRadius: maxRadius, into: $0.baseAddress!) }
    return out
}
