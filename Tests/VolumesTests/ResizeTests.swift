import Numerics
import Testing
import Volumes

/// A real band-limited volume of side n: random Hermitian spectrum on |κ| ≤ kmax (well below Nyquist).
func bandLimitedVolume(dim n: Int, kmax: Int, seed: UInt64) -> Volume {
    var rng = TestRNG(seed: seed)
    var f = FourierVolume(dim: n)
    for z in 0..<n {
        let kz = FourierVolume.frequency(z, n)
        for y in 0..<n {
            let ky = FourierVolume.frequency(y, n)
            for x in 0..<f.hx where x * x + ky * ky + kz * kz <= kmax * kmax {
                f[x, y, z] = Complex(Float(rng.normal()), Float(rng.normal()))
            }
        }
    }
    // Round trip through real space makes the κx = 0 plane Hermitian (c2r then r2c).
    return f.inverseTransform().fourierTransform().inverseTransform()
}

@Suite struct ResizeTests {
    @Test func sameSizeIsIdentity() {
        let v = randomVolume(nx: 16, ny: 16, nz: 16, seed: 1)
        #expect(v.fourierResized(to: 16) == v)
    }

    /// Padding a band-limited volume samples the same trigonometric polynomial twice as finely
    /// (physical index 2i of the big box is index i of the small one; grey scale preserved), and
    /// cropping back reproduces it.
    @Test(arguments: [(32, 64), (16, 32), (15, 30)])
    func padThenCropReproduces(small: Int, big: Int) {
        let v = bandLimitedVolume(dim: small, kmax: small / 4, seed: UInt64(small))
        let padded = v.fourierResized(to: big)
        var maxErr: Float = 0
        for z in 0..<small {
            for y in 0..<small {
                for x in 0..<small {
                    maxErr = max(maxErr, abs(padded[2 * x, 2 * y, 2 * z] - v[x, y, z]))
                }
            }
        }
        let scale = v.data.map { abs($0) }.max()!
        #expect(maxErr < 1e-4 * scale, "max sample error \(maxErr)")
        let back = padded.fourierResized(to: small)
        var backErr: Float = 0
        for i in 0..<v.count { backErr = max(backErr, abs(back.data[i] - v.data[i])) }
        #expect(backErr < 1e-4 * scale, "max crop-back error \(backErr)")
        #expect(abs(padded.mean - v.mean) < 1e-5 * Double(scale))
    }

    /// Cropping a volume that is band-limited below the small box's Nyquist keeps the grey scale: the
    /// small volume equals the big one at every other voxel.
    @Test(arguments: [(64, 32), (33, 17)])
    func cropBandLimited(big: Int, small: Int) {
        let v = bandLimitedVolume(dim: big, kmax: small / 4, seed: UInt64(big))
        let c = v.fourierResized(to: small)
        if big == 2 * small {
            for z in 0..<small {
                for y in 0..<small {
                    for x in 0..<small {
                        #expect(abs(c[x, y, z] - v[2 * x, 2 * y, 2 * z]) < 1e-4)
                    }
                }
            }
        }
        #expect(abs(c.mean - v.mean) < 1e-5)
        // Energy per voxel (grey scale, not integral) is preserved for band-limited content.
        let ratio = (c.sumOfSquares / Double(c.count)) / (v.sumOfSquares / Double(v.count))
        #expect(abs(ratio - 1) < 1e-3)
    }

    @Test func constantStaysConstant() {
        let v = Volume(nx: 20, ny: 20, nz: 20, data: [Float](repeating: 3, count: 8000))
        for n in [10, 13, 32] {
            let r = v.fourierResized(to: n)
            #expect(r.data.allSatisfy { abs($0 - 3) < 1e-5 })
        }
    }
}
