import Numerics
import Testing
import Volumes

func randomVolume(nx: Int, ny: Int, nz: Int, seed: UInt64) -> Volume {
    var rng = TestRNG(seed: seed)
    var v = Volume(nx: nx, ny: ny, nz: nz)
    for i in 0..<v.count { v.data[i] = Float(rng.normal()) }
    return v
}

@Suite struct FFTTests {
    /// IFT(FT(x)) = x with the 1/V forward scale (spec §0.3).
    @Test(arguments: [16, 31, 32, 64])
    func roundTrip(d: Int) {
        let v = randomVolume(nx: d, ny: d, nz: d, seed: UInt64(d))
        let back = v.fourierTransform().inverseTransform()
        var maxErr: Float = 0
        for i in 0..<v.count { maxErr = max(maxErr, abs(back.data[i] - v.data[i])) }
        #expect(maxErr < 1e-4, "max round-trip error \(maxErr)")
    }

    /// Parseval in the original's normalisation: Σ|x|² = V·Σ_{full grid}|FT|². The half-complex array
    /// holds κx = 0…floor(d/2); every κx with a distinct mirror −κx (0 < κx < d/2) stands for two
    /// full-grid points, so those planes count twice.
    @Test(arguments: [16, 31, 32, 64])
    func parseval(d: Int) {
        let v = randomVolume(nx: d, ny: d, nz: d, seed: UInt64(100 + d))
        let f = v.fourierTransform()
        var spectral = 0.0
        for z in 0..<d {
            for y in 0..<d {
                for x in 0..<f.hx {
                    let twice = x > 0 && !(d % 2 == 0 && x == d / 2)
                    spectral += Double(f[x, y, z].lengthSquared) * (twice ? 2 : 1)
                }
            }
        }
        let volumeCount = Double(d * d * d)
        let real = v.sumOfSquares
        #expect(abs(real - volumeCount * spectral) / real < 1e-5)
    }

    /// FT(constant c) has c at κ = 0 and nothing else.
    @Test func constantGivesDC() {
        let d = 12
        let v = Volume(nx: d, ny: d, nz: d, data: [Float](repeating: 2.5, count: d * d * d))
        let f = v.fourierTransform()
        #expect(abs(f[0, 0, 0].real - 2.5) < 1e-6)
        var rest = 0.0
        for i in 1..<f.count { rest += Double(f.data[i].length) }
        #expect(rest < 1e-4)
    }

    /// Non-cubic sizes use the same conventions (x fastest).
    @Test func nonCubicRoundTrip() {
        let v = randomVolume(nx: 10, ny: 7, nz: 5, seed: 77)
        let back = v.fourierTransform().inverseTransform()
        for i in 0..<v.count { #expect(abs(back.data[i] - v.data[i]) < 1e-5) }
    }

    /// fftshift / ifftshift follow MATLAB: fftshift([0 1 2 3 4]) = [3 4 0 1 2], fftshift([0 1 2 3]) = [2 3 0 1].
    @Test func fftShiftSemantics() {
        let odd = Volume(nx: 5, ny: 1, nz: 1, data: [0, 1, 2, 3, 4])
        #expect(odd.fftShifted().data == [3, 4, 0, 1, 2])
        #expect(odd.ifftShifted().data == [2, 3, 4, 0, 1])
        let even = Volume(nx: 4, ny: 1, nz: 1, data: [0, 1, 2, 3])
        #expect(even.fftShifted().data == [2, 3, 0, 1])
        let v = randomVolume(nx: 5, ny: 6, nz: 7, seed: 3)
        #expect(v.fftShifted().ifftShifted() == v)
        // fftshift puts physical index 0 at the logical centre floor(n/2).
        let s = v.fftShifted()
        #expect(s[5 / 2, 6 / 2, 7 / 2] == v[0, 0, 0])
    }
}
