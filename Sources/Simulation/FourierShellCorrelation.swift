import Foundation
import Numerics
import Volumes

/// Fourier shell correlation of two cubic volumes of the same size. Shell q holds the frequencies with
/// round(|κ|) = q (Fourier voxels), q = 0 … d/2; the half-complex planes x = 0 and x = d/2 (even d)
/// count once, every other stored coefficient twice (it stands for itself and its Hermitian mate).
public struct FSCCurve: Sendable, Equatable {
    public let dim: Int
    /// values[q] for q = 0 … d/2 (values[0] is the DC term's correlation).
    public let values: [Double]

    public init(dim: Int, values: [Double]) {
        self.dim = dim
        self.values = values
    }

    public init(_ a: Volume, _ b: Volume) {
        precondition(a.nx == b.nx && a.ny == b.ny && a.nz == b.nz && a.isCubic, "FSC needs two cubes of one size")
        let d = a.nx, hx = d / 2 + 1, shells = d / 2 + 1
        let fa = a.fourierTransform(), fb = b.fourierTransform()
        var cross = [Double](repeating: 0, count: shells)
        var pa = cross, pb = cross
        for z in 0..<d {
            let kz = FourierVolume.frequency(z, d)
            for y in 0..<d {
                let ky = FourierVolume.frequency(y, d)
                let row = (z * d + y) * hx
                for x in 0..<hx {
                    let q = Int((Double(x * x + ky * ky + kz * kz).squareRoot()).rounded())
                    guard q < shells else { continue }
                    let w: Double = (x == 0 || (d % 2 == 0 && x == d / 2)) ? 1 : 2
                    let u = fa.data[row + x], v = fb.data[row + x]
                    let ur = Double(u.real), ui = Double(u.imaginary), vr = Double(v.real), vi = Double(v.imaginary)
                    cross[q] += w * (ur * vr + ui * vi)
                    pa[q] += w * (ur * ur + ui * ui)
                    pb[q] += w * (vr * vr + vi * vi)
                }
            }
        }
        dim = d
        values = (0..<shells).map { q in
            let den = (pa[q] * pb[q]).squareRoot()
            return den > 0 ? cross[q] / den : 0
        }
    }

    /// Frequency (cycles/pixel) where the curve first falls below `threshold`, linearly interpolated
    /// between the last shell above and the first shell below. Nyquist (0.5) if it never falls below.
    public func resolution(threshold: Double) -> Double {
        let n = Double(dim)
        for q in 1..<values.count where values[q] < threshold {
            let above = values[q - 1] >= threshold ? values[q - 1] : 1
            let frac = above > values[q] ? (above - threshold) / (above - values[q]) : 0
            return (Double(q - 1) + frac) / n
        }
        return Double(values.count - 1) / n
    }

    /// True when the curve stays at or above `threshold` in every shell up to Nyquist.
    public func reachesNyquist(threshold: Double) -> Bool {
        values.dropFirst().allSatisfy { $0 >= threshold }
    }
}

/// Brings an estimated reference onto its true phantom: rotation by the class's fitted frame
/// (aligned(z) = Ref'(Gᵀ z), see `RigidFrame`), then a translational search of the cross-correlation
/// (integer peak within ±maxShift per axis, refined to sub-pixel by a parabola through the peak and its
/// two neighbours on each axis), applied as a Fourier phase shift.
public enum ReferenceAlignment {
    public struct Result: Sendable {
        public var aligned: Volume
        /// Applied translation (content moved by +shift), pixels.
        public var shift: SIMD3<Double>
    }

    public static func align(_ reference: Volume, onto target: Volume, rotation g: Matrix3, maxShift: Int) -> Result {
        let d = reference.nx
        // Rot_G (spec §1.1): content at y moves to G·y. Skip resampling for an identity frame so that a
        // perfect reference is compared without interpolation blur.
        let rotated = rotationDistance(g, .identity) < 1e-7
            ? reference : reference.rotated(by: g, outside: reference.cornerValue)
        let ft = target.fourierTransform(), fr = rotated.fourierTransform()
        var prod = FourierVolume(dim: d)
        for i in 0..<prod.count { prod.data[i] = ft.data[i] * fr.data[i].conjugate }
        // c(s) = (1/V) Σ_x target(x) · rotated(x − s)   (spec §1.2)
        let c = prod.inverseTransform()
        func value(_ s: SIMD3<Int>) -> Double {
            let i = (FourierVolume.index(ofFrequency: s.z, d) * d + FourierVolume.index(ofFrequency: s.y, d)) * d
                + FourierVolume.index(ofFrequency: s.x, d)
            return Double(c.data[i])
        }
        var best = -Double.infinity
        var peak = SIMD3<Int>(0, 0, 0)
        let m = min(maxShift, (d - 1) / 2)
        for sz in -m...m {
            for sy in -m...m {
                for sx in -m...m {
                    let v = value(SIMD3(sx, sy, sz))
                    if v > best {
                        best = v
                        peak = SIMD3(sx, sy, sz)
                    }
                }
            }
        }
        var shift = SIMD3<Double>(Double(peak.x), Double(peak.y), Double(peak.z))
        for axis in 0..<3 {
            var minus = peak, plus = peak
            minus[axis] -= 1
            plus[axis] += 1
            let a = value(minus), b = best, e = value(plus)
            let curvature = a - 2 * b + e
            if curvature < 0 { shift[axis] += max(-0.5, min(0.5, 0.5 * (a - e) / curvature)) }
        }
        if max(abs(shift.x), abs(shift.y), abs(shift.z)) < 1e-3 { return Result(aligned: rotated, shift: .zero) }
        let moved = rotated.fourierTransform().shifted(by: shift).inverseTransform()
        return Result(aligned: moved, shift: shift)
    }
}
