import Foundation
import Testing
import Volumes

/// Orientation grid (spec §5.1, §5.2, §5.5; counts from §15.2).
@Suite struct AngularSamplingTests {
    @Test(arguments: [(5.0, 1692), (10.0, 362), (15.0, 162), (20.0, 92), (30.0, 42)])
    func directionCounts(_ t: (Double, Int)) throws {
        let s = try AngularSampling(angularStep: t.0)
        let ns = Int((1.107149 / (t.0 * Double.pi / 180)).rounded()) + 1
        #expect(s.subdivisions == ns)
        #expect(IcosahedralGrid.points(subdivisions: ns).count == 10 * (ns - 1) * (ns - 1) + 2)
        #expect(s.directions.count == t.1)
        #expect(s.asymmetricUnitCount == t.1)  // c1: pruning removes nothing
    }

    /// Fine grids are cheap: entries are computed on access.
    @Test func fineGridIsLazy() throws {
        let s = try AngularSampling(angularStep: 2)
        #expect(s.directions.count == 10 * 32 * 32 + 2)
        #expect(s.count == s.directions.count * 180)
        let last = s.orientations[s.count - 1]
        #expect(last.direction == s.directions.count - 1)
        #expect(abs(last.angles.psi - (358 + 2.75)) < 1e-9)
        #expect(s.perturbation == nil)
        let p = EulerAngles(rot: 1, tilt: 2, psi: 3).matrix
        #expect(s.perturbed(by: p).perturbation == p)
    }

    @Test func gridPointsAreUnitAndDistinct() {
        let pts = IcosahedralGrid.points(subdivisions: 5)
        #expect(pts.count == 162)
        #expect(pts[0] == SIMD3(0, 0, -1) && pts[1] == SIMD3(0, 0, 1))
        var minAngle = 180.0
        for i in pts.indices {
            #expect(abs((pts[i] * pts[i]).sum() - 1) < 1e-9)
            for j in 0..<i {
                minAngle = min(minAngle, acos(min(1, (pts[i] * pts[j]).sum())) * 180 / Double.pi)
            }
        }
        #expect(minAngle > 0.75 * 15)
        #expect(minAngle < 16.2)
    }

    @Test(arguments: [(15.0, 3888), (20.0, 1656), (30.0, 504)])
    func orientationCounts(_ t: (Double, Int)) throws {
        let s = try AngularSampling(angularStep: t.0)
        #expect(s.count == t.1)
        #expect(s.psiCount == Int((360 / t.0).rounded(.up)))
    }

    @Test func c1EntriesAreDirectionMajor() throws {
        let s = try AngularSampling(angularStep: 30)
        let n = s.psiCount
        for (k, o) in s.orientations.enumerated() {
            #expect(o.direction == k / n)
            let dir = s.directionAngles[o.direction]
            #expect(o.angles == EulerAngles(rot: dir.rot, tilt: dir.tilt, psi: Double(k % n) * 30 + 2.75))
            #expect(o.matrix == o.angles.matrix)
            #expect(o.unperturbed == o.angles)
            // The entry's projection direction is the sampling direction.
            let e = o.angles.direction, p = s.directions[o.direction]
            #expect(((e - p) * (e - p)).sum() < 1e-18)
        }
        let plain = try AngularSampling(angularStep: 30, smallAngle: false)
        #expect(plain.psiAngles.first == 0)
        let coarsePsi = try AngularSampling(angularStep: 30, psiStep: 90)
        #expect(coarsePsi.count == 42 * 4)
    }

    @Test func symmetricEntriesAreInverseRotations() throws {
        let s = try AngularSampling(angularStep: 15, symmetry: try SymmetryGroup(name: "c4"))
        let n = s.psiCount
        for (k, o) in s.orientations.enumerated() {
            let dir = s.directionAngles[o.direction]
            let forward = EulerAngles(rot: dir.rot, tilt: dir.tilt, psi: s.psiAngles[k % n]).matrix
            #expect(o.matrix.maxAbsDifference(forward.transposed) < 1e-12)
        }
    }

    @Test func tiltRangeRestrictsDirections() throws {
        let s = try AngularSampling(angularStep: 10, tilt0: 0, tiltF: 90)
        #expect(s.directionAngles.allSatisfy { $0.tilt <= 90 + 1e-9 })
        #expect(s.directions.count > 150 && s.directions.count < 362)
        let band = try AngularSampling(angularStep: 10, tilt0: 30, tiltF: 60)
        #expect(band.directionAngles.allSatisfy { $0.tilt >= 30 - 1e-9 && $0.tilt <= 60 + 1e-9 })
    }

    @Test func badInputThrows() {
        #expect(throws: GeometryError.self) { try AngularSampling(angularStep: 60) }  // n_s = 2
        #expect(throws: GeometryError.self) { try AngularSampling(angularStep: 0) }
        #expect(throws: GeometryError.self) { try AngularSampling(angularStep: 10, tilt0: -5) }
        #expect(throws: GeometryError.self) { try AngularSampling(angularStep: 10, tiltF: 200) }
        #expect(throws: GeometryError.self) { try AngularSampling(angularStep: 10, tilt0: 90, tiltF: 30) }
        #expect((try? AngularSampling(angularStep: 38)) != nil)  // n_s = 3 is allowed
    }

    @Test func identityPerturbationLeavesAnglesUnchanged() throws {
        let s = try AngularSampling(angularStep: 20)
        let p = s.perturbed(by: .identity)
        for (a, b) in zip(s.orientations, p.orientations) {
            #expect(a.direction == b.direction)
            #expect(a.matrix.maxAbsDifference(b.matrix) < 1e-12)
            #expect(rotationDistance(a.matrix, b.matrix) < 1e-5)
        }
    }

    @Test func perturbationIsEPTimesP() throws {
        let s = try AngularSampling(angularStep: 20)
        let pm = AngularSampling.randomPerturbation(angularStep: 20, seed: 42, iteration: 3)
        let p = s.perturbed(by: pm)
        var total = 0.0
        for (a, b) in zip(s.orientations, p.orientations) {
            #expect(b.matrix.maxAbsDifference(a.matrix * pm) < 1e-9)
            #expect(b.unperturbed == a.unperturbed)
            total += rotationDistance(a.matrix, b.matrix)
        }
        #expect(total > 0)
        // Perturbing again starts from the unperturbed angles: no accumulation.
        let twice = p.perturbed(by: pm)
        for (a, b) in zip(p.orientations, twice.orientations) {
            #expect(a.matrix.maxAbsDifference(b.matrix) < 1e-9)
        }
    }

    @Test func perturbationDrawsAreKeyed() {
        let a = AngularSampling.randomPerturbation(angularStep: 10, seed: 7, iteration: 1)
        let b = AngularSampling.randomPerturbation(angularStep: 10, seed: 7, iteration: 1)
        let c = AngularSampling.randomPerturbation(angularStep: 10, seed: 7, iteration: 2)
        let d = AngularSampling.randomPerturbation(angularStep: 10, seed: 8, iteration: 1)
        #expect(a == b)
        #expect(a != c)
        #expect(a != d)
        #expect(abs(a.determinant - 1) < 1e-12)
        // Size: the rotation angle of P has rms ≈ ang/3·√3 ≈ 5.8° for ang 10; over many iterations the
        // mean must be a few degrees, never tens.
        var mean = 0.0
        for it in 0..<200 {
            mean += rotationDistance(AngularSampling.randomPerturbation(angularStep: 10, seed: 1, iteration: it), .identity)
        }
        mean /= 200
        #expect(mean > 3 && mean < 9)
    }
}

@Suite struct SeededRandomTests {
    @Test func keyedStreamsAreReproducibleAndDistinct() {
        var a = SeededRandom(seed: 1, streams: 2, 3)
        var b = SeededRandom(seed: 1, streams: 2, 3)
        var c = SeededRandom(seed: 1, streams: 3, 2)
        var d = SeededRandom(seed: 1, streams: 2)
        let xa = (0..<8).map { _ in a.next() }
        #expect(xa == (0..<8).map { _ in b.next() })
        #expect(xa != (0..<8).map { _ in c.next() })
        #expect(xa != (0..<8).map { _ in d.next() })
    }

    @Test func uniformAndGaussianMoments() {
        var r = SeededRandom(seed: 12345)
        let n = 100_000
        var su = 0.0, sg = 0.0, sg2 = 0.0
        for _ in 0..<n {
            let u = r.nextUniform()
            #expect(u >= 0 && u < 1)
            su += u
            let g = r.nextGaussian()
            sg += g
            sg2 += g * g
        }
        #expect(abs(su / Double(n) - 0.5) < 0.01)
        #expect(abs(sg / Double(n)) < 0.02)
        #expect(abs(sg2 / Double(n) - 1) < 0.02)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 { counts[r.nextInt(below: 7)] += 1 }
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
    }
}
