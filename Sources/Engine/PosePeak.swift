import Foundation
import Volumes

/// The orientation between grid samples where an image's log-posterior peaks: a quadratic in the
/// rotation vector around the best sample (full, or with one curvature when the samples are few),
/// fitted by least squares to the log-weights of the samples within `reachInSteps` of it, and its
/// maximum when the quadratic is concave and the maximum lies within
/// `maximumMoveInSteps` of the best sample.
///
/// Why: once the posterior is sharper than the grid, the best sample is off the true orientation by
/// up to about 0.7 step whatever the SNR (a 15° grid left a median error of 7.4° at SNR 1 on issue
/// 15's ribosome set), and at low SNR noise moves the best sample to a neighbour. The log-weights of
/// the neighbours say on which side of the best sample the peak lies, as the correlation values around
/// an integer shift do for a sub-pixel shift. The weighted sums stay on the grid; only the reported
/// pose (and the centre of the next local search) moves.
public enum PosePeak {
    /// Samples within this many grid steps of the best one enter the fit.
    static let reachInSteps = 1.6
    /// The full quadratic needs this many samples (10 coefficients, and some redundancy against noise),
    /// the isotropic one this many (5 coefficients).
    static let minimumSamples = 13
    static let minimumIsotropicSamples = 7
    /// The furthest the peak may lie from the best sample: beyond it the fit extrapolates. Not half a
    /// step: rotations lie up to about 0.7 step from their nearest sample (of the unit test's 20 random
    /// rotations, up to 10° from the 15° grid; with 0.5 step 12 of its 20 fits were refused).
    static let maximumMoveInSteps = 0.75
    /// Per class, the best samples each image keeps past the significance cut for the fit
    /// (`EStep.Tables.keepBest`): those within `reachInSteps` of a grid point number about 20–30.
    static let keptSamples = 32

    /// The refined orientation, or nil (too few samples, not concave, or the peak too far).
    /// - Parameters:
    ///   - best: the best sample's rotation; `bestLogWeight` its log-weight.
    ///   - samples: the other samples' rotations and log-weights (same class; any order; the ones beyond
    ///     `reachInSteps` steps are ignored).
    ///   - step: the grid step in radians.
    public static func refined(best: Matrix3, bestLogWeight: Double, samples: [(matrix: Matrix3, logWeight: Double)],
                        step: Double) -> Matrix3? {
        let reach = reachInSteps * step
        let bestT = best.transposed
        var points: [(w: SIMD3<Double>, y: Double)] = [(.zero, 0)]
        for s in samples {
            guard let w = (bestT * s.matrix).rotationVector else { continue }
            let r = (w * w).sum().squareRoot()
            if r > 1e-9 && r <= reach { points.append((w / step, s.logWeight - bestLogWeight)) }
        }
        guard let peak = fullPeak(points) ?? isotropicPeak(points),
              (peak * peak).sum().squareRoot() <= maximumMoveInSteps else { return nil }
        return best * Matrix3.exponential(of: peak * step)
    }

    /// The maximum of y ≈ c + gᵀu + ½uᵀHu (10 coefficients, u in steps), nil with fewer than
    /// `minimumSamples` points or a quadratic that is not concave.
    static func fullPeak(_ points: [(w: SIMD3<Double>, y: Double)]) -> SIMD3<Double>? {
        guard points.count >= minimumSamples else { return nil }
        let beta = leastSquares(points) { u in
            [1, u.x, u.y, u.z, 0.5 * u.x * u.x, 0.5 * u.y * u.y, 0.5 * u.z * u.z, u.x * u.y, u.x * u.z, u.y * u.z]
        }
        guard let beta else { return nil }
        let g = SIMD3(beta[1], beta[2], beta[3])
        let h = [beta[4], beta[7], beta[8], beta[7], beta[5], beta[9], beta[8], beta[9], beta[6]]
        // Concave: −H positive definite (leading minors of −H positive).
        let m2 = h[0] * h[4] - h[1] * h[3]
        let det = h[0] * (h[4] * h[8] - h[5] * h[7]) - h[1] * (h[3] * h[8] - h[5] * h[6]) + h[2] * (h[3] * h[7] - h[4] * h[6])
        guard -h[0] > 0, m2 > 0, -det > 0, let u = solve(h, [-g.x, -g.y, -g.z], n: 3) else { return nil }
        return SIMD3(u[0], u[1], u[2])
    }

    /// The maximum of y ≈ c + gᵀu − ½κ|u|² (5 coefficients): where the samples are too few for the full
    /// quadratic (a two-pass search visits only the fine samples near its kept coarse ones) or it is not
    /// concave; nil with fewer than `minimumIsotropicSamples` points or κ ≤ 0.
    static func isotropicPeak(_ points: [(w: SIMD3<Double>, y: Double)]) -> SIMD3<Double>? {
        guard points.count >= minimumIsotropicSamples,
              let beta = leastSquares(points, { u in [1, u.x, u.y, u.z, -0.5 * (u * u).sum()] }), beta[4] > 0 else { return nil }
        return SIMD3(beta[1], beta[2], beta[3]) / beta[4]
    }

    /// Least-squares coefficients of y on the features (normal equations).
    static func leastSquares(_ points: [(w: SIMD3<Double>, y: Double)], _ features: (SIMD3<Double>) -> [Double]) -> [Double]? {
        let n = features(.zero).count
        var normal = [Double](repeating: 0, count: n * n), rhs = [Double](repeating: 0, count: n)
        for p in points {
            let f = features(p.w)
            for r in 0 ..< n {
                rhs[r] += f[r] * p.y
                for c in 0 ..< n { normal[r * n + c] += f[r] * f[c] }
            }
        }
        return solve(normal, rhs, n: n)
    }

    /// Gaussian elimination with partial pivoting of the n×n row-major system a·x = b; nil if singular.
    static func solve(_ a: [Double], _ b: [Double], n: Int) -> [Double]? {
        var m = a, x = b
        let scale = a.map(abs).max() ?? 0
        guard scale > 0 else { return nil }
        for col in 0 ..< n {
            var pivot = col
            for r in col + 1 ..< n where abs(m[r * n + col]) > abs(m[pivot * n + col]) { pivot = r }
            if abs(m[pivot * n + col]) < 1e-12 * scale { return nil }
            if pivot != col {
                for c in 0 ..< n { m.swapAt(col * n + c, pivot * n + c) }
                x.swapAt(col, pivot)
            }
            for r in col + 1 ..< n {
                let f = m[r * n + col] / m[col * n + col]
                if f == 0 { continue }
                for c in col ..< n { m[r * n + c] -= f * m[col * n + c] }
                x[r] -= f * x[col]
            }
        }
        for r in stride(from: n - 1, through: 0, by: -1) {
            var s = x[r]
            for c in r + 1 ..< n { s -= m[r * n + c] * x[c] }
            x[r] = s / m[r * n + r]
        }
        return x
    }
}
