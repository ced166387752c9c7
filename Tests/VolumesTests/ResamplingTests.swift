import Foundation
import Numerics
import Testing
import Volumes

/// A volume that is 0 except 1 at logical position p (physical p + floor(n/2)).
func deltaVolume(dim d: Int, at p: SIMD3<Int>) -> Volume {
    var v = Volume(dim: d)
    v[p.x + d / 2, p.y + d / 2, p.z + d / 2] = 1
    return v
}

/// Intensity-weighted centroid in logical coordinates.
func centroid(_ v: Volume) -> SIMD3<Double> {
    var s = SIMD3<Double>.zero, w = 0.0
    for z in 0..<v.nz {
        for y in 0..<v.ny {
            for x in 0..<v.nx {
                let value = Double(v[x, y, z])
                s += value * SIMD3(Double(x - v.nx / 2), Double(y - v.ny / 2), Double(z - v.nz / 2))
                w += value
            }
        }
    }
    return s / w
}

@Suite struct ResamplingTests {
    /// Content at r moves to M·r (spec §1.1). A 90° rotation maps the grid onto itself, so a single
    /// voxel moves exactly.
    @Test func deltaMovesToMr() {
        let d = 16
        let p = SIMD3(3, -2, 5)
        let m = Matrix3(0, -1, 0, 1, 0, 0, 0, 0, 1)  // 90° about z: (x, y, z) → (−y, x, z)
        let out = deltaVolume(dim: d, at: p).rotated(by: m, outside: 0)
        let q = m * SIMD3(Double(p.x), Double(p.y), Double(p.z))
        #expect(out[Int(q.x) + d / 2, Int(q.y) + d / 2, Int(q.z) + d / 2] == 1)
        #expect(abs(out.data.reduce(0, +) - 1) < 1e-6)
    }

    /// For a general rotation a smooth blob at p ends up centred at M·p.
    @Test func blobMovesToMr() {
        let d = 32
        let p = SIMD3(5.0, -3.0, 2.0)
        let blob = GaussianPhantom(centres: [p], sigmas: [2], amplitudes: [1]).volume(dim: d)
        let m = EulerAngles(rot: 40, tilt: 70, psi: -25).matrix
        let c = centroid(blob.rotated(by: m, outside: 0))
        let expected = m * p
        #expect(max(abs(c.x - expected.x), abs(c.y - expected.y), abs(c.z - expected.z)) < 0.05)
        // inverseMap uses the matrix as the output→input map: V(M·r), i.e. content moves to Mᵀ·r.
        let ci = centroid(applyGeometry(blob, matrix: m, inverseMap: true, outside: 0))
        let e2 = m.transposed * p
        #expect(max(abs(ci.x - e2.x), abs(ci.y - e2.y), abs(ci.z - e2.z)) < 0.05)
    }

    @Test func identityIsACopy() {
        let v = randomVolume(nx: 9, ny: 8, nz: 7, seed: 2)
        #expect(applyGeometry(v, matrix: .identity, outside: 99) == v)
        #expect(v.translated(by: .zero) == v)
    }

    /// Sources outside the box get `outside`; the corner of a 45°-rotated box is outside.
    @Test func outsideValue() {
        let d = 16
        let v = Volume(nx: d, ny: d, nz: d, data: [Float](repeating: 1, count: d * d * d))
        let out = v.rotated(by: EulerAngles(rot: 45, tilt: 0, psi: 0).matrix, outside: 7)
        #expect(out.cornerValue == 7)
        #expect(out[d / 2, d / 2, d / 2] == 1)
    }

    /// Integer translation moves content by +t, zeros enter from the other side (no wrap).
    @Test func integerTranslation() {
        let v = randomVolume(nx: 10, ny: 9, nz: 8, seed: 3)
        let t = SIMD3(2, -1, 3)
        let out = v.translated(by: SIMD3(Double(t.x), Double(t.y), Double(t.z)))
        for z in 0..<v.nz {
            for y in 0..<v.ny {
                for x in 0..<v.nx {
                    let sx = x - t.x, sy = y - t.y, sz = z - t.z
                    let inside = (0..<v.nx).contains(sx) && (0..<v.ny).contains(sy) && (0..<v.nz).contains(sz)
                    let expected: Float = inside ? v[sx, sy, sz] : 0
                    #expect(abs(out[x, y, z] - expected) < 1e-6)
                }
            }
        }
    }

    /// Half-voxel translation interpolates linearly; the 1e−6 range tolerance: a source just below the
    /// first index still interpolates, one 1e−5 below is outside.
    @Test func subVoxelAndTolerance() {
        let v = Volume(nx: 4, ny: 1, nz: 1, data: [1, 3, 5, 9])
        let half = v.translated(by: SIMD3(0.5, 0, 0))
        // out(r) = V(r − 0.5): the first voxel's source is below the box → 0.
        #expect(half.data[0] == 0)
        #expect(abs(half.data[1] - 2) < 1e-6 && abs(half.data[2] - 4) < 1e-6 && abs(half.data[3] - 7) < 1e-6)
        #expect(abs(v.translated(by: SIMD3(1e-7, 0, 0)).data[0] - 1) < 1e-5)
        #expect(v.translated(by: SIMD3(1e-5, 0, 0)).data[0] == 0)
        // Source just past the last index (within 1e−6): the missing right neighbour is dropped.
        #expect(abs(v.translated(by: SIMD3(-5e-7, 0, 0)).data[3] - 9) < 1e-4)
        #expect(v.translated(by: SIMD3(-1e-5, 0, 0)).data[3] == 0)
    }

    /// The caller-buffer variant gives the same voxels.
    @Test func bufferVariantAgrees() {
        let v = randomVolume(nx: 12, ny: 12, nz: 12, seed: 4)
        let m = EulerAngles(rot: 10, tilt: 20, psi: 30).matrix
        let expected = applyGeometry(v, matrix: m, outside: v.cornerValue)
        let buffer = AlignedBuffer<Float>(count: v.count)
        applyGeometry(v, matrix: m, outside: v.cornerValue, into: buffer.pointer)
        #expect(buffer.toArray() == expected.data)
    }
}

@Suite struct PhaseShiftTests {
    /// A phase ramp by integer t equals the cyclic real-space shift by +t.
    @Test(arguments: [16, 15])
    func integerShiftIsCyclicTranslation(d: Int) {
        let v = randomVolume(nx: d, ny: d, nz: d, seed: UInt64(d))
        let t = SIMD3(3, -5, 7)
        let shifted = v.fourierTransform().shifted(by: SIMD3(Double(t.x), Double(t.y), Double(t.z))).inverseTransform()
        let expected = v.cyclicallyShifted(by: t)
        var maxErr: Float = 0
        for i in 0..<v.count { maxErr = max(maxErr, abs(shifted.data[i] - expected.data[i])) }
        #expect(maxErr < 1e-4)
    }

    /// A sub-voxel shift of a smooth blob (far from the box edges) matches the analytically shifted blob,
    /// and shifting back restores the spectrum.
    @Test func subVoxelShift() {
        let d = 32
        let t = SIMD3(0.3, -1.6, 2.25)
        let blob = GaussianPhantom(centres: [SIMD3(1, 2, -1)], sigmas: [2.5], amplitudes: [1])
        let moved = GaussianPhantom(centres: [SIMD3(1, 2, -1) + t], sigmas: [2.5], amplitudes: [1])
        let f = blob.volume(dim: d).fourierTransform()
        let got = f.shifted(by: t).inverseTransform()
        let expected = moved.volume(dim: d)
        var maxErr: Float = 0
        for i in 0..<got.count { maxErr = max(maxErr, abs(got.data[i] - expected.data[i])) }
        #expect(maxErr < 1e-4)
        let back = f.shifted(by: t).shifted(by: -t)
        #expect(relativeSpectrumError(back, f, radius: Double(d)) < 1e-5)
    }
}

@Suite struct MaskTests {
    @Test(arguments: [16, 15])
    func sphereAndComplement(d: Int) {
        let masks = RealSpaceMasks(dim: d)
        let h = d / 2
        var inside = 0
        for z in 0..<d {
            for y in 0..<d {
                for x in 0..<d {
                    let r2 = (x - h) * (x - h) + (y - h) * (y - h) + (z - h) * (z - h)
                    let expected: Float = r2 <= h * h ? 1 : 0
                    #expect(masks.sphere[x, y, z] == expected)
                    #expect(masks.outsideSphere[x, y, z] == 1 - expected)
                    if r2 <= h * h { inside += 1 }
                }
            }
        }
        #expect(masks.outsideCount == d * d * d - inside)
    }

    @Test func raisedCosine() {
        let d = 32
        let m = RealSpaceMasks.raisedCosineSphere(dim: d, innerRadius: 8, outerRadius: 12)
        #expect(m[16, 16, 16] == 1)
        #expect(m[16 + 8, 16, 16] == 1)
        #expect(abs(m[16 + 10, 16, 16] - 0.5) < 1e-6)
        #expect(m[16 + 12, 16, 16] == 0)
        #expect(m.cornerValue == 0)
        #expect(m.data.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    /// Inside the sphere unchanged; outside replaced by the mean over the outside voxels (so the corner
    /// value, used as `outside` in rotations, is that mean).
    @Test func sphericalAverageOutside() {
        let d = 16
        let masks = RealSpaceMasks(dim: d)
        let v = randomVolume(nx: d, ny: d, nz: d, seed: 9)
        let out = masks.sphericalAverageOutside(v)
        var sum = 0.0
        for i in 0..<v.count where masks.outsideSphere.data[i] == 1 { sum += Double(v.data[i]) }
        let mean = Float(sum / Double(masks.outsideCount))
        for i in 0..<v.count {
            if masks.sphere.data[i] == 1 {
                #expect(out.data[i] == v.data[i])
            } else {
                #expect(out.data[i] == mean)
            }
        }
        #expect(out.cornerValue == mean)
    }

    @Test func userMask() throws {
        let v = randomVolume(nx: 4, ny: 4, nz: 4, seed: 1)
        let m = RealSpaceMasks.binarySphere(dim: 4, radius: 1)
        let out = try v.masked(by: m)
        for i in 0..<v.count { #expect(out.data[i] == v.data[i] * m.data[i]) }
        #expect(throws: VolumeError.self) { try v.masked(by: Volume(dim: 5)) }
    }

    /// Population standard deviation (divide by N), mean, sum of squares, extremes.
    @Test func statistics() {
        let v = Volume(nx: 4, ny: 1, nz: 1, data: [1, 2, 3, 4])
        #expect(v.mean == 2.5)
        #expect(abs(v.standardDeviation - 1.25.squareRoot()) < 1e-12)
        #expect(v.sumOfSquares == 30)
        #expect(v.minimum == 1 && v.maximum == 4)
        #expect(v.mean(where: Volume(nx: 4, ny: 1, nz: 1, data: [0, 1, 1, 0])) == 2.5)
        #expect(v.mean(where: Volume(nx: 4, ny: 1, nz: 1)) == nil)
    }
}
