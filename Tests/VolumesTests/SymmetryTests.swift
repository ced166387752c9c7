import Foundation
import Testing
import Volumes

@Suite struct SymmetryGroupTests {
    static let names: [(String, Int)] = [("c1", 1), ("c4", 4), ("d7", 14), ("t", 12), ("o", 24),
                                         ("i", 60), ("i1", 60), ("i2", 60), ("i3", 60), ("i4", 60)]

    @Test(arguments: names)
    func orderAndClosure(_ t: (String, Int)) throws {
        let g = try SymmetryGroup(name: t.0)
        #expect(g.order == t.1)
        #expect(g.elements[0] == .identity)
        #expect(g.nonIdentityElements.count == t.1 - 1)
        func index(_ m: Matrix3) -> Int? { g.elements.firstIndex { $0.maxAbsDifference(m) < 1e-9 } }
        for a in g.elements {
            #expect(abs(a.determinant - 1) < 1e-12)
            #expect((a * a.transposed).maxAbsDifference(.identity) < 1e-12)
            #expect(index(a.transposed) != nil)  // inverses
            for b in g.elements { #expect(index(a * b) != nil) }
        }
        // Distinct elements.
        for i in g.elements.indices {
            for j in 0..<i { #expect(g.elements[i].maxAbsDifference(g.elements[j]) > 1e-6) }
        }
    }

    /// The documented axis settings (those of Xmipp/RELION).
    @Test func axisSettings() throws {
        let phi = (1 + 5.0.squareRoot()) / 2
        let x = SIMD3<Double>(1, 0, 0), y = SIMD3<Double>(0, 1, 0), z = SIMD3<Double>(0, 0, 1)
        func has(_ name: String, _ axis: SIMD3<Double>, _ fold: Int) throws -> Bool {
            let g = try SymmetryGroup(name: name)
            let r = SymmetryGroup.rotation(axis: axis, degrees: 360 / Double(fold))
            return g.elements.contains { $0.maxAbsDifference(r) < 1e-9 }
        }
        #expect(try has("c5", z, 5))
        #expect(try has("d3", z, 3) && has("d3", x, 2))
        #expect(try has("t", z, 3) && has("t", SIMD3(0, (2.0 / 3).squareRoot(), (1.0 / 3).squareRoot()), 2))
        #expect(try has("o", z, 4) && has("o", SIMD3(1, 1, 1), 3))
        for name in ["i", "i2"] {
            #expect(try has(name, x, 2) && has(name, y, 2) && has(name, z, 2) && has(name, SIMD3(1, 0, phi), 5))
            #expect(try has(name, SIMD3(0, 1 / (phi * 3.0.squareRoot()), phi / 3.0.squareRoot()), 3))
        }
        #expect(try has("i1", x, 2) && has("i1", y, 2) && has("i1", z, 2) && has("i1", SIMD3(phi, 0, -1), 5))
        #expect(try has("i3", z, 5) && has("i3", SIMD3(-1, 0, phi), 2))
        #expect(try has("i4", z, 5) && has("i4", SIMD3(1, 0, phi), 2) && has("i4", SIMD3(2, 0, 1), 5))
        #expect(try !has("i1", SIMD3(1, 0, phi), 5))
    }

    @Test func namesAreParsedAndBadOnesRejected() throws {
        #expect(try SymmetryGroup(name: "C3").order == 3)
        #expect(try SymmetryGroup(name: " D2 ").order == 4)
        for bad in ["", "x", "c0", "d1", "cs", "ci", "c2v", "c3h", "i5", "i9", "dd"] {
            #expect(throws: GeometryError.self) { try SymmetryGroup(name: bad) }
        }
        do {
            _ = try SymmetryGroup(name: "c2v")
        } catch let e as GeometryError {
            #expect(e.message.contains("c1, cN"))
        }
    }

    /// The asymmetric unit is a fundamental domain: for a generic direction, exactly one of its
    /// symmetry copies is inside.
    @Test(arguments: names.map(\.0))
    func asymmetricUnitIsFundamentalDomain(_ name: String) throws {
        let g = try SymmetryGroup(name: name)
        var rng = SeededRandom(seed: 99, streams: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
        for _ in 0..<300 {
            var p = SIMD3(rng.nextGaussian(), rng.nextGaussian(), rng.nextGaussian())
            p /= (p * p).sum().squareRoot()
            let inside = g.elements.filter { g.isInAsymmetricUnit($0 * p) }.count
            #expect(inside == 1, "\(name): \(inside) copies of \(p) inside")
        }
    }

    /// Direction count of the reduced grid ≈ full-sphere count ÷ order.
    @Test(arguments: names)
    func asymmetricUnitSizes(_ t: (String, Int)) throws {
        let g = try SymmetryGroup(name: t.0)
        let s = try AngularSampling(angularStep: 4, symmetry: g)
        let full = Double(10 * (s.subdivisions - 1) * (s.subdivisions - 1) + 2)
        let expected = full / Double(t.1)
        let n = Double(s.directions.count)
        #expect(abs(n - expected) <= 0.15 * expected, "\(t.0): \(n) directions, expected ≈ \(expected)")
        #expect(s.directions.allSatisfy { g.isInAsymmetricUnit($0) })
        // No two accepted directions are symmetry-equivalent closer than 0.75·ang.
        let cosMin = cos(0.75 * 4 * Double.pi / 180)
        for i in s.directions.indices {
            for j in 0..<i {
                for e in g.elements { #expect((s.directions[i] * (e * s.directions[j])).sum() < cosMin) }
            }
        }
        // With symmetry the orientation count is directions × psi.
        #expect(s.count == s.directions.count * s.psiCount)
    }

    @Test func cyclicUnitIsRotWedge() throws {
        let s = try AngularSampling(angularStep: 10, symmetry: try SymmetryGroup(name: "c4"))
        #expect(s.directionAngles.allSatisfy { abs($0.rot) <= 45 + 1e-9 || $0.tilt < 1e-9 || $0.tilt > 180 - 1e-9 })
        let d = try AngularSampling(angularStep: 10, symmetry: try SymmetryGroup(name: "d4"))
        #expect(d.directionAngles.allSatisfy { $0.tilt <= 90 + 1e-9 })
    }
}
