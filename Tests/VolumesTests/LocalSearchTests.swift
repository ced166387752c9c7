import Foundation
import Testing
import Volumes

@Suite struct LocalSearchTests {
    static func angle(_ a: SIMD3<Double>, _ b: SIMD3<Double>) -> Double {
        acos(max(-1, min(1, (a * b).sum()))) * 180 / Double.pi
    }

    /// Angle between the sampling direction of entry `o` and the closest symmetry copy of `e`.
    static func distance(_ s: AngularSampling, _ o: Orientation, _ e: SIMD3<Double>) -> Double {
        s.symmetry.elements.map { angle(s.directions[o.direction], $0 * e) }.min()!
    }

    @Test func c1CandidatesAreWithinRadius() throws {
        let s = try AngularSampling(angularStep: 10)
        let centre = EulerAngles(rot: 37, tilt: 64, psi: -101)
        var previous = 0
        for delta in [8.0, 15, 25, 40, 90] {
            let ls = try LocalSearch(sampling: s, radius: delta, limitPsi: true)
            let c = ls.candidates(around: centre)
            #expect(c == c.sorted())
            for i in c {
                let o = s.orientations[i]
                #expect(Self.distance(s, o, centre.direction) <= delta + 1e-9)
                // Away from the poles the in-plane angle is within Δ as well.
                if abs(o.angles.tilt) >= 1.1 * delta && abs(o.angles.tilt) <= 180 - 1.1 * delta {
                    let dpsi = abs(remainder(o.angles.psi - centre.psi, 360))
                    #expect(dpsi <= delta + 1e-9)
                }
            }
            #expect(c.count > previous)
            previous = c.count
            // Without psi limiting only the neighbour test applies: more candidates, all whole directions.
            let free = try LocalSearch(sampling: s, radius: delta, limitPsi: false).candidates(around: centre)
            #expect(free.count >= c.count && free.count % s.psiCount == 0)
            #expect(Set(c).isSubset(of: Set(free)))
        }
    }

    @Test func largeRadiusGivesEverything() throws {
        let s = try AngularSampling(angularStep: 20)
        for delta in [180.0, 200] {
            let ls = try LocalSearch(sampling: s, radius: delta)
            #expect(ls.candidates(around: EulerAngles(rot: 10, tilt: 100, psi: 50)) == Array(0..<s.count))
        }
        let sym = try AngularSampling(angularStep: 20, symmetry: try SymmetryGroup(name: "d3"))
        let ls = try LocalSearch(sampling: sym, radius: 180)
        #expect(ls.candidates(around: EulerAngles(rot: 10, tilt: 100, psi: 50)) == Array(0..<sym.count))
    }

    @Test func currentGridOrientationIsItsOwnCandidate() throws {
        for name in ["c1", "c3", "o"] {
            let s = try AngularSampling(angularStep: 15, symmetry: try SymmetryGroup(name: name))
            let ls = try LocalSearch(sampling: s, radius: 10)
            for i in stride(from: 0, to: s.count, by: 37) {
                let c = ls.candidates(around: s.orientations[i].angles)
                #expect(c.contains(i), "\(name): entry \(i) not among its own candidates")
                // The nearest entry is i itself or a symmetry-equivalent entry (at the poles, psi
                // entries related by a rotation about the symmetry axis coincide).
                let n = ls.nearestOrientation(to: s.orientations[i].angles, among: c)
                let d = s.symmetry.elements.map {
                    rotationDistance($0 * s.orientations[n].matrix, s.orientations[i].matrix)
                }.min()!
                #expect(d < 1e-5)
            }
        }
    }

    @Test func symmetricNeighbourhoodUsesCopies() throws {
        let g = try SymmetryGroup(name: "c4")
        let s = try AngularSampling(angularStep: 10, symmetry: g)
        let ls = try LocalSearch(sampling: s, radius: 15, limitPsi: false)
        // A direction outside the asymmetric unit (rot 130°) still finds neighbours through its copies.
        let forward = EulerAngles(rot: 130, tilt: 70, psi: 20)
        let entry = EulerAngles(rot: -forward.psi, tilt: -forward.tilt, psi: -forward.rot)
        let c = ls.candidates(around: entry)
        #expect(!c.isEmpty)
        for i in c { #expect(Self.distance(s, s.orientations[i], forward.direction) <= 15 + 1e-9) }
    }

    @Test func badRadiusThrows() throws {
        let s = try AngularSampling(angularStep: 30)
        #expect(throws: GeometryError.self) { try LocalSearch(sampling: s, radius: 0) }
        #expect(throws: GeometryError.self) { try LocalSearch(sampling: s, radius: .nan) }
    }
}
