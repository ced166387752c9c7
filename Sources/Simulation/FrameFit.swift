import Foundation
import Volumes

/// The rigid frame in which a reference-free refinement expresses its reference.
///
/// Derivation (spec §1.4). A particle satisfies X(x) ≈ Ref(A·(x + t)). If the refinement's reference
/// is Ref'(y) = Ref(G·y + g) — the true reference seen through a rotation G and translation g — then a
/// perfect refinement reports A', t' with X(x) ≈ Ref'(A'(x + t')) = Ref(G·A'·(x + t') + g). Matching
/// both sides for all x gives
///
///     A_true = G · A_est          (the frame rotation multiplies the estimate on the left)
///     t_est  = t_true − A_trueᵀ · g
///
/// So one G and one g per class explain a whole class of estimates; the "fitted" errors are measured
/// after removing them: angle(G·A_est, A_true) and |t_est − (t_true − A_trueᵀ g)|.
/// The estimated reference maps onto the true one by Ref(z) = Ref'(Gᵀ(z − g)).
public struct RigidFrame: Sendable, Equatable {
    public var rotation: Matrix3
    public var translation: SIMD3<Double>

    public init(rotation: Matrix3 = .identity, translation: SIMD3<Double> = .zero) {
        self.rotation = rotation
        self.translation = translation
    }

    public static let identity = RigidFrame()

    /// The estimate a perfect refinement in this frame would report for a true (A, t).
    public func estimate(fromTrue a: Matrix3, shift t: SIMD3<Double>) -> (Matrix3, SIMD3<Double>) {
        (rotation.transposed * a, t - a.transposed * translation)
    }

    /// Geodesic angle (degrees) between the frame-corrected estimate and the truth.
    public func angularError(estimated b: Matrix3, truth a: Matrix3) -> Double {
        rotationDistance(rotation * b, a)
    }

    /// |t_est − (t_true − A_trueᵀ g)| in pixels.
    public func shiftError(estimated s: SIMD3<Double>, truth t: SIMD3<Double>, trueRotation a: Matrix3) -> Double {
        let r = s - (t - a.transposed * translation)
        return (r * r).sum().squareRoot()
    }
}

/// One particle's true and estimated transforms, as used by the frame fit.
public struct TransformPair: Sendable {
    public var trueRotation: Matrix3
    public var trueShift: SIMD3<Double>
    public var estimatedRotation: Matrix3
    public var estimatedShift: SIMD3<Double>

    public init(trueRotation: Matrix3, trueShift: SIMD3<Double>, estimatedRotation: Matrix3, estimatedShift: SIMD3<Double>) {
        self.trueRotation = trueRotation
        self.trueShift = trueShift
        self.estimatedRotation = estimatedRotation
        self.estimatedShift = estimatedShift
    }
}

public enum FrameFit {
    /// The rotation R maximising tr(Rᵀ·C) (the rotation closest to C; the polar factor with det +1),
    /// by Horn's quaternion method: the top eigenvector of a symmetric 4×4 matrix built from C.
    public static func nearestRotation(to c: Matrix3) -> Matrix3 {
        // Horn maximises tr(R·S); tr(Rᵀ C) = tr(R·Cᵀ), so S = Cᵀ.
        let s = c.transposed
        let sxx = s[0, 0], sxy = s[0, 1], sxz = s[0, 2]
        let syx = s[1, 0], syy = s[1, 1], syz = s[1, 2]
        let szx = s[2, 0], szy = s[2, 1], szz = s[2, 2]
        let n: [[Double]] = [
            [sxx + syy + szz, syz - szy, szx - sxz, sxy - syx],
            [syz - szy, sxx - syy - szz, sxy + syx, szx + sxz],
            [szx - sxz, sxy + syx, -sxx + syy - szz, syz + szy],
            [sxy - syx, szx + sxz, syz + szy, -sxx - syy + szz],
        ]
        let (values, vectors) = symmetricEigen(n)
        let top = (0..<4).max { values[$0] < values[$1] }!
        let q = SIMD4(vectors[0][top], vectors[1][top], vectors[2][top], vectors[3][top])
        let norm = (q * q).sum().squareRoot()
        return rotationMatrix(quaternion: norm > 0 ? q / norm : SIMD4(1, 0, 0, 0))
    }

    /// Least-squares (chordal L2) frame rotation: G minimising Σ‖G·A_est,i − A_true,i‖²_F, i.e. the
    /// rotation nearest to Σ A_true,i · A_est,iᵀ.
    public static func chordalRotation(_ pairs: [TransformPair]) -> Matrix3 {
        var c = Matrix3(0, 0, 0, 0, 0, 0, 0, 0, 0)
        for p in pairs {
            let m = p.trueRotation * p.estimatedRotation.transposed
            for i in 0..<9 { c[i / 3, i % 3] += m[i / 3, i % 3] }
        }
        return nearestRotation(to: c)
    }

    static func median(_ xs: [Double]) -> Double {
        guard !xs.isEmpty else { return 0 }
        let s = xs.sorted()
        let n = s.count
        return n % 2 == 1 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2])
    }

    static func medianError(_ g: Matrix3, _ pairs: [TransformPair]) -> Double {
        median(pairs.map { rotationDistance(g * $0.estimatedRotation, $0.trueRotation) })
    }

    /// Robust frame rotation: candidates are the chordal L2 fit and the rotation implied by each of up
    /// to 128 evenly spaced particles (G_i = A_true,i·A_est,iᵀ); the candidate with the smallest median
    /// error wins, then the L2 fit is redone on its inliers (error ≤ max(3·median, 5°)) and kept if its
    /// median is no worse. Robust against a minority of particles stuck in wrong orientations.
    public static func robustRotation(_ pairs: [TransformPair]) -> Matrix3 {
        guard !pairs.isEmpty else { return .identity }
        var best = chordalRotation(pairs)
        var bestMedian = medianError(best, pairs)
        let step = max(1, pairs.count / 128)
        for i in stride(from: 0, to: pairs.count, by: step) {
            let g = pairs[i].trueRotation * pairs[i].estimatedRotation.transposed
            let m = medianError(g, pairs)
            if m < bestMedian {
                best = g
                bestMedian = m
            }
        }
        let threshold = max(3 * bestMedian, 5)
        let inliers = pairs.filter { rotationDistance(best * $0.estimatedRotation, $0.trueRotation) <= threshold }
        if !inliers.isEmpty {
            let refined = chordalRotation(inliers)
            if medianError(refined, pairs) <= bestMedian + 1e-12 { best = refined }
        }
        return best
    }

    /// Frame translation g from t_est = t_true − A_trueᵀ g, i.e. g = A_true·(t_true − t_est) for every
    /// particle; the component-wise median over the particles (robust to outliers).
    public static func robustTranslation(_ pairs: [TransformPair]) -> SIMD3<Double> {
        guard !pairs.isEmpty else { return .zero }
        let gs = pairs.map { $0.trueRotation * ($0.trueShift - $0.estimatedShift) }
        return SIMD3(median(gs.map(\.x)), median(gs.map(\.y)), median(gs.map(\.z)))
    }

    /// Rotation and translation of one class's frame.
    public static func fit(_ pairs: [TransformPair]) -> RigidFrame {
        RigidFrame(rotation: robustRotation(pairs), translation: robustTranslation(pairs))
    }
}

/// Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations. Returns the eigenvalues
/// and a matrix whose columns are the eigenvectors.
func symmetricEigen(_ input: [[Double]]) -> ([Double], [[Double]]) {
    let n = input.count
    var a = input
    var v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0.0 } }
    for _ in 0..<100 {
        var off = 0.0
        for i in 0..<n { for j in 0..<n where i != j { off += a[i][j] * a[i][j] } }
        if off < 1e-30 { break }
        for p in 0..<(n - 1) {
            for q in (p + 1)..<n where abs(a[p][q]) > 1e-300 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {
                    let akp = a[k][p], akq = a[k][q]
                    a[k][p] = c * akp - s * akq
                    a[k][q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let apk = a[p][k], aqk = a[q][k]
                    a[p][k] = c * apk - s * aqk
                    a[q][k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let vkp = v[k][p], vkq = v[k][q]
                    v[k][p] = c * vkp - s * vkq
                    v[k][q] = s * vkp + c * vkq
                }
            }
        }
    }
    return ((0..<n).map { a[$0][$0] }, v)
}
