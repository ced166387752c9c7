import Numerics

extension Volume {
    /// Fourier cropping / zero padding of a cubic volume to side `dim` (spec §4.2, "reScaleVolume").
    ///
    /// The original: full complex FT normalised by 1/n³, fftshift, keep the centred window of logical
    /// frequencies −floor(n'/2) … n'−1−floor(n'/2) (zeros where the source has none), ifftshift, and a c2r
    /// inverse of size n' fed with the x-columns 0…floor(n'/2) of that array. Because of the 1/n³ forward
    /// scale, real-space grey values (not the integral) are preserved.
    ///
    /// Here the r2c half spectrum of the source gives every full-grid value exactly (Hermitian symmetry of a
    /// real input), and the target half spectrum is filled with exactly the values the original hands to
    /// c2r — so the result is the same, including at Nyquist:
    /// - target frequency k is taken from the source iff −floor(n/2) ≤ k ≤ n−1−floor(n/2) per axis, so when
    ///   padding an even n the source's −n/2 component is kept and +n/2 is zero;
    /// - for an even target the x-column n'/2 holds the frequency −n'/2 (the window's lowest), and rows n'/2
    ///   in y, z hold −n'/2.
    /// Such components are not Hermitian-consistent by themselves; c2r then uses their Hermitian-symmetric
    /// part (FFTW reads the half array as if it came from a real signal), exactly as in the original.
    /// All other (non-Nyquist) components are plain copies. Same size: identity (a copy).
    public func fourierResized(to dim: Int) -> Volume {
        precondition(isCubic, "Fourier resizing needs a cubic volume, got \(nx)x\(ny)x\(nz)")
        precondition(dim > 0, "Fourier resizing to a non-positive size \(dim)")
        let n = nx
        if dim == n { return self }
        let source = fourierTransform()
        let lo = -(n / 2), hi = n - 1 - n / 2
        let hxs = n / 2 + 1
        func wrap(_ k: Int) -> Int { ((k % n) + n) % n }
        func sourceValue(_ fx: Int, _ fy: Int, _ fz: Int) -> Complex<Float> {
            guard fx >= lo, fx <= hi, fy >= lo, fy <= hi, fz >= lo, fz <= hi else { return .zero }
            let ix = wrap(fx)
            if ix < hxs {
                return source.data[(wrap(fz) * n + wrap(fy)) * hxs + ix]
            }
            return source.data[(wrap(-fz) * n + wrap(-fy)) * hxs + (n - ix)].conjugate
        }
        var target = FourierVolume(dim: dim)
        let hxt = dim / 2 + 1
        for z in 0..<dim {
            let fz = FourierVolume.frequency(z, dim)
            for y in 0..<dim {
                let fy = FourierVolume.frequency(y, dim)
                for x in 0..<hxt {
                    let fx = FourierVolume.frequency(x, dim)
                    target.data[(z * dim + y) * hxt + x] = sourceValue(fx, fy, fz)
                }
            }
        }
        return target.inverseTransform()
    }
}

/// Window of a half-complex spectrum (layout of `FourierVolume`) at another box size: the components
/// whose logical frequencies exist in both boxes are copied, the others are zero. With the 1/V forward
/// normalisation a component's value does not depend on the box, so cropping keeps a band-limited
/// volume's grey values and padding back restores them exactly. Frequencies ±n/2 of an even box are
/// taken as −n/2 on both sides (`FourierVolume.frequency`); callers that need exactness keep the
/// band strictly inside both Nyquist limits.
public func windowedHalfSpectrum(_ source: [Complex<Float>], from n: Int, to m: Int) -> [Complex<Float>] {
    precondition(source.count == n * n * (n / 2 + 1), "half spectrum of \(source.count) values is not \(n)³")
    if n == m { return source }
    let hxs = n / 2 + 1, hxt = m / 2 + 1
    let half = min(n, m) / 2
    var out = [Complex<Float>](repeating: .zero, count: m * m * hxt)
    func wrap(_ k: Int, _ size: Int) -> Int { ((k % size) + size) % size }
    for fz in -half ..< half {
        let zs = wrap(fz, n), zt = wrap(fz, m)
        for fy in -half ..< half {
            let ys = wrap(fy, n), yt = wrap(fy, m)
            let s = (zs * n + ys) * hxs, t = (zt * m + yt) * hxt
            for x in 0 ..< min(hxs, hxt) where x < half || (x == half && n == m) {
                out[t + x] = source[s + x]
            }
        }
    }
    return out
}
