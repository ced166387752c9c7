import Foundation
import Testing
import Volumes

/// Active (counter-clockwise, acting on coordinates) rotations used to express TOM's convention.
private func activeRz(_ degrees: Double) -> Matrix3 {
    let a = degrees * Double.pi / 180
    return Matrix3(cos(a), -sin(a), 0, sin(a), cos(a), 0, 0, 0, 1)
}

private func activeRx(_ degrees: Double) -> Matrix3 {
    let a = degrees * Double.pi / 180
    return Matrix3(1, 0, 0, 0, cos(a), -sin(a), 0, sin(a), cos(a))
}

/// TOM Toolbox (tom_rotate / tom_pointrotate) rotates a point r to R·r with the ZXZ product
/// R = Rz(psi)·Rx(theta)·Rz(phi) of active rotations, angles in degrees (phi first about z, then theta
/// about x, then psi about z). This is the convention the test assumes.
private func tomMatrix(phi: Double, psi: Double, theta: Double) -> Matrix3 {
    activeRz(psi) * activeRx(theta) * activeRz(phi)
}

private func randomAngles(_ rng: inout TestRNG) -> EulerAngles {
    EulerAngles(rot: rng.uniform(-180, 180), tilt: rng.uniform(0, 180), psi: rng.uniform(-180, 180))
}

@Suite struct EulerTests {
    @Test func matricesAreRotations() {
        var rng = TestRNG(seed: 1)
        for _ in 0..<200 {
            let m = randomAngles(&rng).matrix
            #expect((m * m.transposed).maxAbsDifference(.identity) < 1e-12)
            #expect(abs(m.determinant - 1) < 1e-12)
        }
    }

    /// The spec's explicit formula: third row is the direction, Eᵀ = E(−ψ, −θ, −φ).
    @Test func transposeAndDirection() {
        var rng = TestRNG(seed: 2)
        for _ in 0..<50 {
            let a = randomAngles(&rng)
            let m = a.matrix
            let back = EulerAngles(rot: -a.psi, tilt: -a.tilt, psi: -a.rot).matrix
            #expect(m.transposed.maxAbsDifference(back) < 1e-12)
            let dir = m.transposed * SIMD3(0, 0, 1)
            #expect(simd_maxAbs(dir - a.direction) < 1e-12)
        }
    }

    /// angles → matrix → angles → matrix reproduces the matrix, including the degenerate tilts 0 and 180°,
    /// and the angles themselves when the tilt is regular.
    @Test func anglesMatrixRoundTrip() {
        var rng = TestRNG(seed: 3)
        var cases: [EulerAngles] = (0..<500).map { _ in randomAngles(&rng) }
        for _ in 0..<50 {
            cases.append(EulerAngles(rot: rng.uniform(-180, 180), tilt: 0, psi: rng.uniform(-180, 180)))
            cases.append(EulerAngles(rot: rng.uniform(-180, 180), tilt: 180, psi: rng.uniform(-180, 180)))
        }
        cases.append(.zero)
        for a in cases {
            let m = a.matrix
            let b = EulerAngles(matrix: m)
            #expect(b.matrix.maxAbsDifference(m) < 1e-9, "\(a) -> \(b)")
            if a.tilt > 1e-3 && a.tilt < 180 - 1e-3 {
                #expect(abs(b.tilt - a.tilt) < 1e-9)
                #expect(abs(remainder(b.rot - a.rot, 360)) < 1e-9)
                #expect(abs(remainder(b.psi - a.psi, 360)) < 1e-9)
            } else if a.tilt == 0 {
                // Degenerate branch: only rot + psi is defined; the original reports rot = 0.
                #expect(b.rot == 0 && b.tilt == 0)
                #expect(abs(remainder(b.psi - (a.rot + a.psi), 360)) < 1e-9)
            }
        }
    }

    /// Composition: `applying(left:right:)` gives the angles of L·E·R, and composing rotations about z
    /// adds their angles.
    @Test func composition() {
        var rng = TestRNG(seed: 4)
        for _ in 0..<100 {
            let l = randomAngles(&rng).matrix, r = randomAngles(&rng).matrix
            let a = randomAngles(&rng)
            let c = a.applying(left: l, right: r)
            #expect(c.matrix.maxAbsDifference(l * a.matrix * r) < 1e-9)
        }
        let z1 = EulerAngles(rot: 30, tilt: 0, psi: 0).matrix
        let z2 = EulerAngles(rot: 45, tilt: 0, psi: 0).matrix
        #expect((z1 * z2).maxAbsDifference(EulerAngles(rot: 75, tilt: 0, psi: 0).matrix) < 1e-12)
        // E(φ,θ,ψ) = Rz(ψ)·Ry(θ)·Rz(φ) as a product of its own factors.
        let a = EulerAngles(rot: 20, tilt: 35, psi: -70)
        let product = EulerAngles(rot: 0, tilt: 0, psi: -70).matrix * EulerAngles(rot: 0, tilt: 35, psi: 0).matrix
            * EulerAngles(rot: 20, tilt: 0, psi: 0).matrix
        #expect(product.maxAbsDifference(a.matrix) < 1e-12)
    }

    @Test func geodesicDistance() {
        var rng = TestRNG(seed: 5)
        for _ in 0..<100 {
            let a = randomAngles(&rng).matrix, b = randomAngles(&rng).matrix, c = randomAngles(&rng).matrix
            #expect(rotationDistance(a, a) < 1e-5)
            #expect(abs(rotationDistance(a, b) - rotationDistance(b, a)) < 1e-9)
            #expect(rotationDistance(a, c) <= rotationDistance(a, b) + rotationDistance(b, c) + 1e-9)
            // Left-invariance: d(R·A, R·B) = d(A, B).
            #expect(abs(rotationDistance(c * a, c * b) - rotationDistance(a, b)) < 1e-7)
        }
        for angle in [0.5, 10.0, 90.0, 179.0] {
            let r = EulerAngles(rot: angle, tilt: 0, psi: 0).matrix
            #expect(abs(rotationDistance(r, .identity) - angle) < 1e-6)
            let t = EulerAngles(rot: 0, tilt: angle, psi: 0).matrix
            #expect(abs(rotationDistance(t, .identity) - angle) < 1e-6)
        }
    }

    /// The seed FAQ's TOM ⇄ Xmipp formulas describe the same physical rotation: TOM's matrix for
    /// (phi, psi, theta) = fromXmipp(rot, tilt, psi) equals Xmipp's E(rot, tilt, psi) (both move content at
    /// r to M·r: tom_rotate with R, Xmipp's alignment Rot_E with E, spec §1.1/§1.4).
    @Test func tomConventionSamePhysicalRotation() {
        var rng = TestRNG(seed: 6)
        for _ in 0..<200 {
            let a = randomAngles(&rng)
            let tom = TOMConvention.fromXmipp(a)
            let m = tomMatrix(phi: tom.phi, psi: tom.psi, theta: tom.theta)
            #expect(m.maxAbsDifference(a.matrix) < 1e-12)
            let back = TOMConvention.toXmipp(phi: tom.phi, psi: tom.psi, theta: tom.theta)
            #expect(back.matrix.maxAbsDifference(a.matrix) < 1e-12)
            // The FAQ's inverse block gives the inverse rotation and negated offsets.
            let off = SIMD3(rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(-5, 5))
            let inv = TOMConvention.inverse(phi: tom.phi, psi: tom.psi, theta: tom.theta, offset: off)
            #expect(tomMatrix(phi: inv.phi, psi: inv.psi, theta: inv.theta).maxAbsDifference(m.transposed) < 1e-12)
            #expect(inv.offset == -off)
        }
    }
}

private func simd_maxAbs(_ v: SIMD3<Double>) -> Double { max(abs(v.x), abs(v.y), abs(v.z)) }
