import Foundation
import Testing
import Volumes

/// Resolution masks (spec §4.3) and missing regions (spec §3.2–3.3, sanity numbers §15.2).
@Suite struct ResolutionMaskTests {
    @Test func radiusAndFullCount() {
        let m = ResolutionMasks(dim: 32, maxres: 0.5)
        #expect(m.rMaxres == 16)
        #expect(m.binary.count == 32 * 32 * 17)
        #expect(m.fullGridCount == 17070)
        #expect(m.binary[0] == 0 && m.soft[0] == 0)  // DC excluded
        #expect(ResolutionMasks(dim: 32, maxres: 0.25).rMaxres == 8)
        #expect(ResolutionMasks(dim: 33, maxres: 0.5).rMaxres == 16)
    }

    @Test func softMaskProfile() {
        let d = 32
        let m = ResolutionMasks(dim: d, maxres: 0.3)  // r_maxres = 9, cosine edge over (7, 9)
        #expect(m.rMaxres == 9)
        let hx = d / 2 + 1
        func at(_ x: Int, _ y: Int, _ z: Int) -> (Float, Float) {
            let i = (FourierVolume.index(ofFrequency: z, d) * d + FourierVolume.index(ofFrequency: y, d)) * hx + x
            return (m.soft[i], m.binary[i])
        }
        #expect(at(7, 0, 0) == (1, 1))
        #expect(at(0, -7, 0) == (1, 1))
        let (s8, b8) = at(8, 0, 0)
        #expect(abs(Double(s8) - 0.5) < 1e-6 && b8 == 1)  // ½(1 + cos(π/2))
        #expect(at(0, 0, -9) == (0, 0))
        let (s, b) = at(6, 5, 0)  // |κ| = √61 ≈ 7.81
        let expected = 0.5 * (1 + cos(Double.pi * (61.0.squareRoot() - 7) / 2))
        #expect(abs(Double(s) - expected) < 1e-6 && b == 1)
        // Binary is exactly soft > 0 everywhere.
        #expect(zip(m.soft, m.binary).allSatisfy { ($0 > 0) == ($1 == 1) })
    }
}

@Suite struct MissingRegionTests {
    static let res32 = ResolutionMasks(dim: 32, maxres: 0.5)

    @Test(arguments: [
        ("wedge_y", -60.0, 60.0, 0.0, 0.0, 11364),
        ("wedge_y", -64.0, 64.0, 0.0, 0.0, 12360),
        ("wedge_x", 0.0, 0.0, -60.0, 60.0, 11364),
        ("pyramid", -60.0, 60.0, -60.0, 60.0, 14344),
        ("cone", 60.0, 0.0, 0.0, 0.0, 14792),
    ])
    func sanityCounts(_ t: (String, Double, Double, Double, Double, Int)) throws {
        let r = try MissingRegion(type: t.0, thetaY0: t.1, thetaYF: t.2, thetaX0: t.3, thetaXF: t.4)
        #expect(r.measuredCount(dim: 32, resolution: Self.res32) == t.5)
    }

    @Test func noRegionMeansResolutionMask() {
        #expect(MissingRegion.measuredCount(for: nil, dim: 32, resolution: Self.res32) == 17070)
        #expect(MissingRegion.mask(for: nil, dim: 32, resolution: Self.res32) == Self.res32.binary)
        var buf = [Float](repeating: 7, count: Self.res32.count)
        buf.withUnsafeMutableBufferPointer {
            MissingRegion.fillMask(for: nil, into: $0, dim: 32, resolution: Self.res32, rotation: .identity)
        }
        #expect(buf == Self.res32.binary)
    }

    /// Measured voxel fraction inside the resolution sphere vs the analytic solid-angle fraction.
    @Test func fractionsMatchSolidAngles() throws {
        let d = 64
        let res = ResolutionMasks(dim: d, maxres: 0.5)
        let total = Double(res.fullGridCount)
        let t30 = 30.0 * Double.pi / 180
        let cases: [(MissingRegion, Double)] = [
            (try MissingRegion(kind: .wedgeY, thetaY0: -60, thetaYF: 60), 1 - 60.0 / 180),
            (try MissingRegion(kind: .wedgeY, thetaY0: -64, thetaYF: 64), 1 - 52.0 / 180),
            (try MissingRegion(kind: .wedgeY, thetaY0: -40, thetaYF: 70), 1 - 70.0 / 180),
            (try MissingRegion(kind: .wedgeX, thetaX0: -50, thetaXF: 50), 1 - 80.0 / 180),
            // Missing = double pyramid with half-angles 30°/30°: solid angle 2·4·asin(sin²30°).
            (try MissingRegion(kind: .pyramid, thetaY0: -60, thetaYF: 60, thetaX0: -60, thetaXF: 60),
             1 - 8 * asin(sin(t30) * sin(t30)) / (4 * Double.pi)),
            // Missing = double cone of half-angle 30°: fraction 1 − cos 30°.
            (try MissingRegion(kind: .cone, thetaY0: 60), cos(t30)),
        ]
        for (region, analytic) in cases {
            let measured = Double(region.measuredCount(dim: d, resolution: res)) / total
            #expect(abs(measured - analytic) < 0.02, "\(region.kind) \(measured) vs \(analytic)")
        }
    }

    /// M_A(κ) = M_I(Aᵀκ): with an exact grid permutation A, the rotated mask at κ equals the
    /// unrotated mask at the rotated frequency.
    @Test func rotatedMaskIsMaskAtRotatedFrequency() throws {
        let d = 32
        let hx = d / 2 + 1
        let region = try MissingRegion(kind: .wedgeY, thetaY0: -50, thetaYF: 65)
        // A cyclic permutation of the axes and a 90° turn (exact integer matrices).
        let mats = [Matrix3(0, 1, 0, 0, 0, 1, 1, 0, 0), Matrix3(0, -1, 0, 1, 0, 0, 0, 0, 1)]
        for a in mats {
            let rotated = region.mask(dim: d, resolution: Self.res32, rotation: a)
            let plain = region.mask(dim: d, resolution: Self.res32)
            var checked = 0
            for z in 0..<d { for y in 0..<d { for x in 0..<hx {
                let k = SIMD3<Double>(Double(x), Double(FourierVolume.frequency(y, d)), Double(FourierVolume.frequency(z, d)))
                var q = a.transposed * k
                if q.x < 0 { q = -q }  // Hermitian half: the mask is symmetric under κ → −κ
                let qi = SIMD3<Int>(Int(q.x.rounded()), Int(q.y.rounded()), Int(q.z.rounded()))
                guard qi.x < hx, abs(qi.y) < d / 2, abs(qi.z) < d / 2 else { continue }
                let j = (FourierVolume.index(ofFrequency: qi.z, d) * d + FourierVolume.index(ofFrequency: qi.y, d)) * hx + qi.x
                #expect(rotated[(z * d + y) * hx + x] == plain[j])
                checked += 1
            }}}
            #expect(checked > 10000)
            #expect(rotated != plain)
        }
    }

    /// A ±60° y-wedge turned by 90° about z is the ±60° x-wedge.
    @Test func turnedWedgeYIsWedgeX() throws {
        let wy = try MissingRegion(kind: .wedgeY, thetaY0: -60, thetaYF: 60)
        let wx = try MissingRegion(kind: .wedgeX, thetaX0: -60, thetaXF: 60)
        let turn = Matrix3(0, -1, 0, 1, 0, 0, 0, 0, 1)
        #expect(wy.mask(dim: 32, resolution: Self.res32, rotation: turn) == wx.mask(dim: 32, resolution: Self.res32))
    }

    /// The buffer variant equals the allocating one for a generic rotation.
    @Test func bufferVariantMatches() throws {
        let region = try MissingRegion(kind: .pyramid, thetaY0: -55, thetaYF: 62, thetaX0: -48, thetaXF: 70)
        let a = EulerAngles(rot: 33, tilt: 71, psi: -122).matrix
        let expected = region.mask(dim: 32, resolution: Self.res32, rotation: a)
        var buf = [Float](repeating: -1, count: Self.res32.count)
        buf.withUnsafeMutableBufferPointer { region.fillMask(into: $0, dim: 32, resolution: Self.res32, rotation: a) }
        #expect(buf == expected)
        // And each value agrees with the point test at Aᵀκ.
        let d = 32, hx = 17
        for (i, v) in expected.enumerated() where Self.res32.binary[i] == 1 {
            let x = i % hx, y = (i / hx) % d, z = i / (hx * d)
            let k = SIMD3<Double>(Double(x), Double(FourierVolume.frequency(y, d)), Double(FourierVolume.frequency(z, d)))
            #expect((v == 1) == region.isMeasured(a.transposed * k))
        }
    }

    @Test func pointTestEdges() throws {
        let w = try MissingRegion(kind: .wedgeY, thetaY0: -60, thetaYF: 60)
        #expect(w.isMeasured(SIMD3(5, 3, 0)))        // z' = 0 always measured
        #expect(!w.isMeasured(SIMD3(0, 0, 5)))       // along the beam: missing
        #expect(w.isMeasured(SIMD3(5, 0, 1)))
        #expect(!w.isMeasured(SIMD3(0.5, 9, 5)))     // y does not matter for wedge_y
        #expect(w.isMeasured(SIMD3(-5, 0, -1)))
        let c = try MissingRegion(kind: .cone, thetaY0: 60)
        #expect(!c.isMeasured(SIMD3(0.1, 0.1, 3)))
        #expect(c.isMeasured(SIMD3(3, 0, 1)))
    }

    @Test func nonsenseIsRejected() {
        #expect(throws: GeometryError.self) { try MissingRegion(type: "wedge_z", thetaY0: -60, thetaYF: 60) }
        #expect(throws: GeometryError.self) { try MissingRegion(kind: .wedgeY, thetaY0: 60, thetaYF: -60) }
        #expect(throws: GeometryError.self) { try MissingRegion(kind: .wedgeY, thetaY0: -100, thetaYF: 60) }
        #expect(throws: GeometryError.self) { try MissingRegion(kind: .wedgeX, thetaX0: .nan, thetaXF: 60) }
        #expect(throws: GeometryError.self) { try MissingRegion(kind: .pyramid, thetaY0: -60, thetaYF: 60, thetaX0: 10, thetaXF: 5) }
        #expect(throws: GeometryError.self) { try MissingRegion(kind: .cone, thetaY0: 120) }
        // Unused angles are not validated.
        #expect((try? MissingRegion(kind: .wedgeY, thetaY0: -60, thetaYF: 60, thetaX0: 500)) != nil)
    }
}
