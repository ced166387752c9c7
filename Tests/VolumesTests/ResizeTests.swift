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

/// The original's algorithm written out literally (spec §4.2), with a naive full complex DFT: FT (1/n³),
/// fftshift, centred window of the target size (zeros outside the source), ifftshift, then a c2r fed
/// with the x-columns 0…floor(n'/2). Small sizes only.
private func literalReScale(_ v: Volume, to m: Int) -> Volume {
    let n = v.nx
    // Full complex forward transform, indices = physical FFT layout.
    var full = [Complex<Double>](repeating: .zero, count: n * n * n)
    let w = 2 * Double.pi / Double(n)
    for kz in 0..<n {
        for ky in 0..<n {
            for kx in 0..<n {
                var acc = Complex<Double>.zero
                for z in 0..<n {
                    for y in 0..<n {
                        for x in 0..<n {
                            let phase: Int = kx * x + ky * y + kz * z
                            let angle: Double = -w * Double(phase)
                            let value: Double = Double(v[x, y, z])
                            acc += Complex<Double>(value * Double.cos(angle), value * Double.sin(angle))
                        }
                    }
                }
                let volumeCount = Double(n * n * n)
                let index: Int = (kz * n + ky) * n + kx
                full[index] = acc.divided(by: volumeCount)
            }
        }
    }
    // fftshift: physical i → (i + floor(n/2)) mod n; logical index = shifted − floor(n/2).
    func shiftedValue(logical l: SIMD3<Int>) -> Complex<Double> {
        // Logical l ∈ [−floor(n/2), n−1−floor(n/2)] of the shifted array came from physical (l mod n).
        let lo = -(n / 2), hi = n - 1 - n / 2
        guard (lo...hi).contains(l.x), (lo...hi).contains(l.y), (lo...hi).contains(l.z) else { return .zero }
        let p = SIMD3((l.x + n) % n, (l.y + n) % n, (l.z + n) % n)
        return full[(p.z * n + p.y) * n + p.x]
    }
    // Window of size m (logical −floor(m/2) … m−1−floor(m/2)), then ifftshift: logical l → physical l mod m.
    var half = FourierVolume(dim: m)
    for pz in 0..<m {
        for py in 0..<m {
            for px in 0...(m / 2) {
                // Physical p of the ifftshifted window holds logical l with l ≡ p (mod m) inside the window.
                func logical(_ p: Int) -> Int { p <= m - 1 - m / 2 ? p : p - m }
                let value = shiftedValue(logical: SIMD3(logical(px), logical(py), logical(pz)))
                half[px, py, pz] = Complex(Float(value.real), Float(value.imaginary))
            }
        }
    }
    return half.inverseTransform()
}

@Suite struct ResizeLiteralTests {
    /// Same result as the literal algorithm, including what happens at Nyquist (random, not band-limited
    /// input, so every Nyquist component is present): crop and pad, even and odd sizes.
    @Test(arguments: [(8, 6), (8, 5), (7, 4), (6, 9), (5, 8), (6, 10)])
    func matchesLiteralAlgorithm(from n: Int, to m: Int) {
        let v = randomVolume(nx: n, ny: n, nz: n, seed: UInt64(10 * n + m))
        let expected = literalReScale(v, to: m)
        let got = v.fourierResized(to: m)
        var maxErr: Float = 0
        for i in 0..<got.count { maxErr = max(maxErr, abs(got.data[i] - expected.data[i])) }
        #expect(maxErr < 1e-4, "max difference \(maxErr)")
    }
}
