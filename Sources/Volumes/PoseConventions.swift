import Foundation

/// The alignment of one particle in this program's convention (the seed FAQ, question 2): the angles
/// and shifts map the experimental subtomogram X onto the reference, X(x) = Ref(E·(x + s)) with
/// E = E(rot, tilt, psi) (`EulerAngles.matrix`) and s in pixels. A feature at q in the reference is
/// therefore at x = Eᵀ·q − s in the particle: the particle's centre sits at −s from the box centre.
///
/// The other packages describe the opposite transform, the reference onto the particle, with their own
/// angle conventions; the conversions below keep the rotation matrix and the particle's centre exact.
public struct ParticlePose: Equatable, Sendable {
    public var angles: EulerAngles
    /// Pixels of the particle box.
    public var shift: SIMD3<Double>

    public init(angles: EulerAngles, shift: SIMD3<Double>) {
        self.angles = angles
        self.shift = shift
    }

    public static let identity = ParticlePose(angles: .zero, shift: .zero)
}

/// RELION (3.1 and later): `rlnAngleRot/Tilt/Psi` define A = E(rot, tilt, psi) with the same formula as
/// Xmipp, but A rotates the reference onto the particle (its projector samples the reference at Aᵀ·r),
/// so A = Eᵀ: the RELION angles of E(rot, tilt, psi) are (−psi, −tilt, −rot). `rlnOriginX/Y/ZAngst` is
/// where the particle's centre is *not*: RELION finds the centre at coordinate − origin, and our centre
/// is at −s, so origin = s · pixel size.
public enum RelionConvention {
    public static func fromXmipp(_ pose: ParticlePose, pixelSize: Double) -> (angles: EulerAngles, originAngst: SIMD3<Double>) {
        let a = pose.angles
        return (EulerAngles(rot: -a.psi, tilt: -a.tilt, psi: -a.rot).normalised, pose.shift * pixelSize)
    }

    public static func toXmipp(angles r: EulerAngles, originAngst: SIMD3<Double>, pixelSize: Double) -> ParticlePose {
        ParticlePose(angles: EulerAngles(rot: -r.psi, tilt: -r.tilt, psi: -r.rot).normalised, shift: originAngst / pixelSize)
    }
}

/// Dynamo tables: (tdrot, tilt, narot) in degrees and (dx, dy, dz), the particle's centre in pixels
/// from the box centre (the shift of the aligned template inside the particle box). The angle
/// convention is the one the `eulerangles` package documents for Dynamo: the active matrix
/// Rz(narot)·Rx(tilt)·Rz(tdrot) is the same rotation as RELION's with both read as passive, which works
/// out to our E itself. The centre at −s gives (dx, dy, dz) = −s.
public enum DynamoConvention {
    public static func fromXmipp(_ pose: ParticlePose) -> (tdrot: Double, tilt: Double, narot: Double, d: SIMD3<Double>) {
        let z = ZXZ.angles(of: pose.angles.matrix)
        return (z.first, z.second, z.third, -pose.shift)
    }

    public static func toXmipp(tdrot: Double, tilt: Double, narot: Double, d: SIMD3<Double>) -> ParticlePose {
        let m = ZXZ.matrix(first: tdrot, second: tilt, third: narot)
        return ParticlePose(angles: EulerAngles(matrix: m), shift: -d)
    }
}

/// TOM Toolbox / AV3 motive lists: (phi, psi, theta) rotate the reference onto the particle, then the
/// shift (rows 11–13) moves it to the particle's centre — the seed FAQ's second block applied to its
/// first (`TOMConvention.fromXmipp`, then `.inverse`). tom_rotate's matrix for (phi, psi, theta) is
/// Rz(psi)·Rx(theta)·Rz(phi) (active), so the motive list's matrix is Eᵀ, and its shift is −s.
public enum TOMMotiveConvention {
    public static func fromXmipp(_ pose: ParticlePose) -> (phi: Double, psi: Double, theta: Double, shift: SIMD3<Double>) {
        // Through the matrix rather than the FAQ's closed form, so that theta comes out in [0, 180]
        // (the closed form gives −tilt); both describe the same rotation (tested).
        let z = ZXZ.angles(of: pose.angles.matrix.transposed)
        return (z.first, z.third, z.second, -pose.shift)
    }

    public static func toXmipp(phi: Double, psi: Double, theta: Double, shift: SIMD3<Double>) -> ParticlePose {
        let m = ZXZ.matrix(first: phi, second: theta, third: psi).transposed
        return ParticlePose(angles: EulerAngles(matrix: m), shift: -shift)
    }
}

/// Active z-x-z rotations: M = Rz(third)·Rx(second)·Rz(first), angles in degrees (Dynamo's and TOM's form).
public enum ZXZ {
    public static func matrix(first a: Double, second b: Double, third c: Double) -> Matrix3 {
        let d2r = Double.pi / 180
        let ca = cos(a * d2r), sa = sin(a * d2r)
        let cb = cos(b * d2r), sb = sin(b * d2r)
        let cc = cos(c * d2r), sc = sin(c * d2r)
        return Matrix3(cc * ca - sc * cb * sa, -cc * sa - sc * cb * ca, sc * sb,
                       sc * ca + cc * cb * sa, -sc * sa + cc * cb * ca, -cc * sb,
                       sb * sa, sb * ca, cb)
    }

    /// Angles with second ∈ [0, 180]; at second = 0 or 180 only first ± third is defined and third = 0.
    public static func angles(of m: Matrix3) -> (first: Double, second: Double, third: Double) {
        let r2d = 180 / Double.pi
        let sb = (m[2, 0] * m[2, 0] + m[2, 1] * m[2, 1]).squareRoot()
        let b = atan2(sb, m[2, 2])
        if sb > 1e-9 {
            return (atan2(m[2, 0], m[2, 1]) * r2d, b * r2d, atan2(m[0, 2], -m[1, 2]) * r2d)
        }
        // Rz(c)·Rx(0 or π)·Rz(a) with c = 0: the first column is (cos a, ±sin a, 0).
        let a = m[2, 2] > 0 ? atan2(m[1, 0], m[0, 0]) : atan2(-m[1, 0], m[0, 0])
        return (a * r2d, m[2, 2] > 0 ? 0 : 180, 0)
    }
}

extension EulerAngles {
    /// The same rotation with tilt in [0, 180] and rot, psi in (−180, 180] (Xmipp's own choice of angles).
    public var normalised: EulerAngles { EulerAngles(matrix: matrix) }
}
