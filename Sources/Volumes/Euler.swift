import Foundation

/// A 3×3 rotation (or general) matrix in Double, row-major.
public struct Matrix3: Equatable, Sendable, CustomStringConvertible {
    /// Rows: m[r][c] == m.e[3*r + c]
    public var e: (Double, Double, Double, Double, Double, Double, Double, Double, Double)

    public init(_ e00: Double, _ e01: Double, _ e02: Double,
                _ e10: Double, _ e11: Double, _ e12: Double,
                _ e20: Double, _ e21: Double, _ e22: Double) {
        e = (e00, e01, e02, e10, e11, e12, e20, e21, e22)
    }

    public static let identity = Matrix3(1, 0, 0, 0, 1, 0, 0, 0, 1)

    @inlinable
    public subscript(r: Int, c: Int) -> Double {
        get {
            switch 3 * r + c {
            case 0: return e.0
            case 1: return e.1
            case 2: return e.2
            case 3: return e.3
            case 4: return e.4
            case 5: return e.5
            case 6: return e.6
            case 7: return e.7
            default: return e.8
            }
        }
        set {
            switch 3 * r + c {
            case 0: e.0 = newValue
            case 1: e.1 = newValue
            case 2: e.2 = newValue
            case 3: e.3 = newValue
            case 4: e.4 = newValue
            case 5: e.5 = newValue
            case 6: e.6 = newValue
            case 7: e.7 = newValue
            default: e.8 = newValue
            }
        }
    }

    public var transposed: Matrix3 {
        Matrix3(e.0, e.3, e.6, e.1, e.4, e.7, e.2, e.5, e.8)
    }

    public var determinant: Double {
        e.0 * (e.4 * e.8 - e.5 * e.7) - e.1 * (e.3 * e.8 - e.5 * e.6) + e.2 * (e.3 * e.7 - e.4 * e.6)
    }

    public static func * (a: Matrix3, b: Matrix3) -> Matrix3 {
        var r = Matrix3.identity
        for i in 0..<3 {
            for j in 0..<3 {
                r[i, j] = a[i, 0] * b[0, j] + a[i, 1] * b[1, j] + a[i, 2] * b[2, j]
            }
        }
        return r
    }

    public static func * (a: Matrix3, v: SIMD3<Double>) -> SIMD3<Double> {
        SIMD3(a.e.0 * v.x + a.e.1 * v.y + a.e.2 * v.z,
              a.e.3 * v.x + a.e.4 * v.y + a.e.5 * v.z,
              a.e.6 * v.x + a.e.7 * v.y + a.e.8 * v.z)
    }

    public static func == (a: Matrix3, b: Matrix3) -> Bool {
        (0..<9).allSatisfy { a[$0 / 3, $0 % 3] == b[$0 / 3, $0 % 3] }
    }

    /// Largest absolute element-wise difference.
    public func maxAbsDifference(_ other: Matrix3) -> Double {
        (0..<9).map { abs(self[$0 / 3, $0 % 3] - other[$0 / 3, $0 % 3]) }.max()!
    }

    public var description: String {
        "[[\(e.0), \(e.1), \(e.2)], [\(e.3), \(e.4), \(e.5)], [\(e.6), \(e.7), \(e.8)]]"
    }
}

/// Euler angles in degrees, Xmipp ZYZ convention (spec §1.3): rot (φ), tilt (θ), psi (ψ).
public struct EulerAngles: Equatable, Sendable, CustomStringConvertible {
    public var rot: Double
    public var tilt: Double
    public var psi: Double

    public init(rot: Double, tilt: Double, psi: Double) {
        self.rot = rot
        self.tilt = tilt
        self.psi = psi
    }

    public static let zero = EulerAngles(rot: 0, tilt: 0, psi: 0)

    /// E(φ,θ,ψ) = Rz(ψ)·Ry(θ)·Rz(φ) with coordinate-frame rotation matrices.
    public var matrix: Matrix3 {
        let d2r = Double.pi / 180
        let ca = cos(rot * d2r), sa = sin(rot * d2r)
        let cb = cos(tilt * d2r), sb = sin(tilt * d2r)
        let cg = cos(psi * d2r), sg = sin(psi * d2r)
        return Matrix3(cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb,
                       -sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb,
                       sb * ca, sb * sa, cb)
    }

    /// The projection direction (third row of the matrix): (sinθ cosφ, sinθ sinφ, cosθ).
    public var direction: SIMD3<Double> {
        let d2r = Double.pi / 180
        return SIMD3(sin(tilt * d2r) * cos(rot * d2r), sin(tilt * d2r) * sin(rot * d2r), cos(tilt * d2r))
    }

    /// Angles of a rotation matrix, reproducing Xmipp's `Euler_matrix2angles` branch by branch
    /// (spec §1.3), including its choices in the degenerate tilt = 0 / 180° cases.
    public init(matrix a: Matrix3) {
        let eps = Double(Float.ulpOfOne)  // FLT_EPSILON
        let sgn: (Double) -> Double = { $0 >= 0 ? 1 : -1 }
        let sinBeta = (a[0, 2] * a[0, 2] + a[1, 2] * a[1, 2]).squareRoot()
        var alpha: Double, beta: Double, gamma: Double
        if sinBeta > 16 * eps {
            gamma = atan2(a[1, 2], -a[0, 2])
            alpha = atan2(a[2, 1], a[2, 0])
            let s: Double
            if abs(sin(gamma)) < eps {
                s = sgn(-a[0, 2] / cos(gamma))
            } else {
                s = sin(gamma) > 0 ? sgn(a[1, 2]) : -sgn(a[1, 2])
            }
            beta = atan2(s * sinBeta, a[2, 2])
        } else if a[2, 2] >= 0 {
            alpha = 0
            beta = 0
            gamma = atan2(-a[1, 0], a[0, 0])
        } else {
            alpha = 0
            beta = Double.pi
            gamma = atan2(a[1, 0], -a[0, 0])
        }
        let r2d = 180 / Double.pi
        self.init(rot: alpha * r2d, tilt: beta * r2d, psi: gamma * r2d)
    }

    /// Angles of L·E(self)·R (Xmipp's `Euler_apply_transf`).
    public func applying(left l: Matrix3, right r: Matrix3) -> EulerAngles {
        EulerAngles(matrix: l * matrix * r)
    }

    public var description: String { "(rot \(rot), tilt \(tilt), psi \(psi))" }
}

/// Geodesic distance in degrees between two rotations: the angle of A·Bᵀ.
public func rotationDistance(_ a: Matrix3, _ b: Matrix3) -> Double {
    let m = a * b.transposed
    let c = max(-1, min(1, (m[0, 0] + m[1, 1] + m[2, 2] - 1) / 2))
    return acos(c) * 180 / Double.pi
}

/// Conversions between Xmipp and TOM Toolbox angles, as given in the seed document's FAQ.
public enum TOMConvention {
    /// Xmipp (rot, tilt, psi) → TOM (phi, psi, theta) describing the same transform
    /// (experimental image onto reference).
    public static func fromXmipp(_ a: EulerAngles) -> (phi: Double, psi: Double, theta: Double) {
        (phi: 90 - a.rot, psi: 270 - a.psi, theta: a.tilt)
    }

    public static func toXmipp(phi: Double, psi: Double, theta: Double) -> EulerAngles {
        EulerAngles(rot: 90 - phi, tilt: theta, psi: 270 - psi)
    }

    /// TOM angles of the inverse transform (reference onto the experimental image), and the
    /// inverted offsets, as the FAQ's second block says.
    public static func inverse(phi: Double, psi: Double, theta: Double,
                               offset: SIMD3<Double>) -> (phi: Double, psi: Double, theta: Double, offset: SIMD3<Double>) {
        (phi: -psi, psi: -phi, theta: -theta, offset: -offset)
    }
}
