import Foundation

/// Rotation vectors (axis × angle in radians): the chart of the rotation group around a rotation in
/// which a small change of orientation is a 3-vector, with exp ∘ log = identity.
public extension Matrix3 {
    /// The rotation exp([ω]×) (Rodrigues), [ω]× = [[0, −z, y], [z, 0, −x], [−y, x, 0]].
    static func exponential(of w: SIMD3<Double>) -> Matrix3 {
        let theta = (w * w).sum().squareRoot()
        // Second-order series below 1e-8 rad: sinθ/θ → 1, (1 − cosθ)/θ² → 1/2.
        let a = theta < 1e-8 ? 1 : sin(theta) / theta
        let b = theta < 1e-8 ? 0.5 : (1 - cos(theta)) / (theta * theta)
        let (x, y, z) = (w.x, w.y, w.z)
        // I + a[ω]× + b[ω]×², with [ω]×² = ωωᵀ − |ω|²I.
        let t2 = theta * theta
        return Matrix3(1 + b * (x * x - t2), -a * z + b * x * y, a * y + b * x * z,
                       a * z + b * x * y, 1 + b * (y * y - t2), -a * x + b * y * z,
                       -a * y + b * x * z, a * x + b * y * z, 1 + b * (z * z - t2))
    }

    /// The rotation vector ω with exp([ω]×) = self, |ω| ≤ π (self a rotation; nil at a half turn, where
    /// the axis's sign is not defined by the antisymmetric part).
    var rotationVector: SIMD3<Double>? {
        let c = max(-1, min(1, (self[0, 0] + self[1, 1] + self[2, 2] - 1) / 2))
        let theta = acos(c)
        let v = SIMD3(self[2, 1] - self[1, 2], self[0, 2] - self[2, 0], self[1, 0] - self[0, 1]) / 2
        if theta < 1e-8 { return v }
        let s = sin(theta)
        if s < 1e-6 { return nil }
        return v * (theta / s)
    }
}
