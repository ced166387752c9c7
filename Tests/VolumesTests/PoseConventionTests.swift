import Foundation
import Testing
import Volumes

@Suite struct PoseConventionTests {
    private func randomPose(_ rng: inout TestRNG) -> ParticlePose {
        ParticlePose(angles: EulerAngles(rot: rng.uniform(-180, 180), tilt: rng.uniform(0, 180), psi: rng.uniform(-180, 180)),
                     shift: SIMD3(rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(-5, 5)))
    }

    /// Degenerate tilts (0 and 180°) hit the special branches of both angle extractions.
    private var poses: [ParticlePose] {
        var rng = TestRNG(seed: 19)
        return (0..<300).map { _ in randomPose(&rng) } + [
            ParticlePose(angles: EulerAngles(rot: 30, tilt: 0, psi: 40), shift: SIMD3(1, 2, 3)),
            ParticlePose(angles: EulerAngles(rot: -70, tilt: 180, psi: 15), shift: SIMD3(-1, 0, 2)),
            ParticlePose(angles: EulerAngles(rot: 0, tilt: 90, psi: 0), shift: .zero),
        ]
    }

    @Test func everyConventionRoundTripsMatrixAndShift() {
        for p in poses {
            let e = p.angles.matrix
            let r = RelionConvention.fromXmipp(p, pixelSize: 2.5)
            let rp = RelionConvention.toXmipp(angles: r.angles, originAngst: r.originAngst, pixelSize: 2.5)
            let d = DynamoConvention.fromXmipp(p)
            let dp = DynamoConvention.toXmipp(tdrot: d.tdrot, tilt: d.tilt, narot: d.narot, d: d.d)
            let t = TOMMotiveConvention.fromXmipp(p)
            let tp = TOMMotiveConvention.toXmipp(phi: t.phi, psi: t.psi, theta: t.theta, shift: t.shift)
            for back in [rp, dp, tp] {
                #expect(back.angles.matrix.maxAbsDifference(e) < 1e-9)
                #expect(max(abs(back.shift.x - p.shift.x), abs(back.shift.y - p.shift.y), abs(back.shift.z - p.shift.z)) < 1e-9)
            }
            #expect(d.tilt >= 0 && d.tilt <= 180 && t.theta >= 0 && t.theta <= 180)
        }
    }

    /// RELION's matrix is the inverse of ours (same angle formula); its origin is s in Å.
    @Test func relionIsTheInverseRotation() {
        for p in poses {
            let r = RelionConvention.fromXmipp(p, pixelSize: 2)
            #expect(r.angles.matrix.maxAbsDifference(p.angles.matrix.transposed) < 1e-9)
            #expect(r.originAngst == p.shift * 2)
        }
    }

    /// The motive list equals the seed FAQ's two blocks applied in turn (TOMConvention), up to the
    /// choice of angles for the same rotation.
    @Test func motiveListMatchesTheSeedFAQ() {
        for p in poses {
            let faq = TOMConvention.fromXmipp(p.angles)
            let b = TOMConvention.inverse(phi: faq.phi, psi: faq.psi, theta: faq.theta, offset: p.shift)
            let ours = TOMMotiveConvention.fromXmipp(p)
            let mFAQ = ZXZ.matrix(first: b.phi, second: b.theta, third: b.psi)
            let mOurs = ZXZ.matrix(first: ours.phi, second: ours.theta, third: ours.psi)
            #expect(mFAQ.maxAbsDifference(mOurs) < 1e-9)
            #expect(ours.shift == b.offset)
        }
    }

    /// A value computed with eulerangles 1.0.2: convert_eulers([30, 50, -70], 'relion', 'dynamo')
    /// = [-160, 50, 120]. RELION (30, 50, -70) is our (rot, tilt, psi) = (70, -50, -30).
    @Test func dynamoAgreesWithEulerangles() {
        let p = ParticlePose(angles: EulerAngles(rot: 70, tilt: -50, psi: -30), shift: .zero)
        let d = DynamoConvention.fromXmipp(p)
        #expect(abs(d.tdrot - -160) < 1e-9 && abs(d.tilt - 50) < 1e-9 && abs(d.narot - 120) < 1e-9)
    }
}
