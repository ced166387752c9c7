import Foundation
import Numerics
import Volumes

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
