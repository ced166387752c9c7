import Numerics
import Testing
import Volumes

@Suite struct FourierRotatorTests {
    /// Identity rotation reproduces the FFT of the reference inside the radius (only the
    /// interpolation at integer grid points, so exact up to the rounding of the table's Float16 values,
    /// ≤ 2⁻¹¹ ≈ 4.9·10⁻⁴ relative each, hence in relative L2 too), and zero outside.
    @Test(arguments: [16, 31, 32])
    func identityReproducesSpectrum(d: Int) {
        let v = GaussianPhantom.random(dim: d, seed: 7).volume(dim: d)
        let ft = v.fourierTransform()
        let rot = FourierRotator(reference: v)
        let r = Double(d) / 2 - 1
        let out = rotateToFourierVolume(rot, .identity, maxRadius: r)
        #expect(relativeSpectrumError(out, ft, radius: r) < 5e-4)
        var outsideNonZero = 0
        for z in 0..<d {
            let kz = FourierVolume.frequency(z, d)
            for y in 0..<d {
                let ky = FourierVolume.frequency(y, d)
                for x in 0..<(d / 2 + 1) where Double(x * x + ky * ky + kz * kz) > r * r {
                    if out[x, y, z] != .zero { outsideNonZero += 1 }
                }
            }
        }
        #expect(outsideNonZero == 0)
    }

    /// Against the FFT of the analytically rotated phantom R(x) = f(A·x): isolates the error of
    /// trilinear interpolation on the padded spectrum. Trilinear interpolation multiplies the
    /// reference by W(r) = Π sinc²(r_i/D) and leaks in its periodic copies (see FourierRotator). For blobs
    /// centred within d/4 (σ ≈ d/14) the attenuation W is 0.95 at r = d/4 for p = 2, giving ≈ 5 % error
    /// (tolerance 6.5 %); with gridding correction only the aliasing remains, ≈ 2.5 % (tolerance 3.5 %);
    /// p = 3 uncorrected ≈ 2.3 % (tolerance 3 %). The error is orientation-independent in size, so a
    /// wrong matrix convention (error ~100 %) cannot pass.
    @Test(arguments: [32, 31])
    func matchesAnalyticRotation(d: Int) {
        let phantom = GaussianPhantom.random(dim: d, seed: 11)
        let v = phantom.volume(dim: d)
        let variants: [(FourierRotator, Double)] = [
            (FourierRotator(reference: v), 0.065),
            (FourierRotator(reference: v, padding: 2, griddingCorrection: true), 0.035),
            (FourierRotator(reference: v, padding: 3), 0.03),
        ]
        var rng = TestRNG(seed: 3)
        for _ in 0..<4 {
            let a = randomRotation(&rng)
            let expected = phantom.volume(dim: d, map: a).fourierTransform()
            for (rot, tolerance) in variants {
                let got = rotateToFourierVolume(rot, a, maxRadius: Double(d) / 2)
                let err = relativeSpectrumError(got, expected, radius: Double(d) / 4)
                #expect(err < tolerance, "relative error \(err), padding \(rot.padding)")
            }
        }
    }

    /// A 90° rotation about z is grid-aligned: exact (up to Float rounding) without gridding correction.
    @Test func quarterTurnIsExact() {
        let d = 32
        let phantom = GaussianPhantom.random(dim: d, seed: 13)
        let v = phantom.volume(dim: d)
        let a = Matrix3(0, -1, 0, 1, 0, 0, 0, 0, 1)
        let expected = v.rotated(by: a.transposed, outside: 0).fourierTransform()
        let got = rotateToFourierVolume(FourierRotator(reference: v), a, maxRadius: Double(d) / 2)
        // Exact up to the Float16 table (see identityReproducesSpectrum).
        #expect(relativeSpectrumError(got, expected, radius: Double(d) / 2 - 1) < 5e-4)
    }

    /// Against real-space trilinear rotation (spec §1.1) of the same phantom: applyGeometry with
    /// matrix Aᵀ gives out(r) = V(A r). Real-space trilinear interpolation low-passes (about
    /// sinc² per axis) while the Fourier rotator attenuates off-centre content (see above); measured
    /// ≈ 4 %, tolerance 5 % over |κ| ≤ d/4.
    @Test func matchesRealSpaceRotation() {
        let d = 32
        let phantom = GaussianPhantom.random(dim: d, seed: 5)
        let v = phantom.volume(dim: d)
        let rot = FourierRotator(reference: v)
        var rng = TestRNG(seed: 9)
        for _ in 0..<3 {
            let a = randomRotation(&rng)
            let real = v.rotated(by: a.transposed, outside: 0).fourierTransform()
            let got = rotateToFourierVolume(rot, a, maxRadius: Double(d) / 2)
            let err = relativeSpectrumError(got, real, radius: Double(d) / 4)
            #expect(err < 0.05, "relative error \(err)")
        }
    }

    /// A smaller maxRadius zeroes exactly the voxels beyond it and leaves the others as with the full radius.
    @Test func maxRadiusCutsOff() {
        let d = 32
        let v = GaussianPhantom.random(dim: d, seed: 21).volume(dim: d)
        let rot = FourierRotator(reference: v)
        let a = EulerAngles(rot: 12, tilt: 66, psi: 140).matrix
        let full = rotateToFourierVolume(rot, a, maxRadius: Double(d) / 2)
        let cut = rotateToFourierVolume(rot, a, maxRadius: 7.5)
        var wrong = 0
        for z in 0..<d {
            let kz = FourierVolume.frequency(z, d)
            for y in 0..<d {
                let ky = FourierVolume.frequency(y, d)
                for x in 0..<(d / 2 + 1) {
                    let inside = Double(x * x + ky * ky + kz * kz) <= 7.5 * 7.5
                    if cut[x, y, z] != (inside ? full[x, y, z] : .zero) { wrong += 1 }
                }
            }
        }
        #expect(wrong == 0)
        // Non-finite input gives zeros rather than a crash.
        let nan = rotateToFourierVolume(rot, a, maxRadius: .nan)
        #expect(nan.data.allSatisfy { $0 == .zero })
    }

    /// Many threads rotating concurrently give the same bits as one thread.
    @Test func concurrentCallsAgree() async {
        let d = 16
        let v = GaussianPhantom.random(dim: d, seed: 2).volume(dim: d)
        let rot = FourierRotator(reference: v)
        var rng = TestRNG(seed: 4)
        let mats = (0..<8).map { _ in randomRotation(&rng) }
        let serial = mats.map { rotateToFourierVolume(rot, $0, maxRadius: 8) }
        let parallel = await withTaskGroup(of: (Int, FourierVolume).self) { group in
            for (i, m) in mats.enumerated() {
                group.addTask { (i, rotateToFourierVolume(rot, m, maxRadius: 8)) }
            }
            var res = [FourierVolume?](repeating: nil, count: mats.count)
            for await (i, f) in group { res[i] = f }
            return res
        }
        for i in mats.indices { #expect(parallel[i] == serial[i]) }
    }
}

