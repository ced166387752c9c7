import Numerics

/// Multiplies a half-complex spectrum (FFTW r2c layout of an nx×ny×nz real volume) in place by the
/// phase ramp e^{−2πi (κx tx/nx + κy ty/ny + κz tz/nz)}, so that its inverse transform is V(r − t)
/// cyclically (content moves by +t, wrapping around), for any real, also sub-voxel, t.
///
/// Frequencies follow §0.3 (κ = i for i ≤ (n−1)/2, else i − n; the x column holds κx = 0…nx/2).
/// Nyquist (even n): the Nyquist component has no sign of its own (+n/2 ≡ −n/2), so a sub-voxel shift
/// leaves it with a phase that a real volume cannot carry; c2r then keeps only its Hermitian-consistent
/// part (for the κx = nx/2 plane and the self-conjugate points, effectively the real part). For integer
/// t the phase there is ±1 and the shift is exact.
///
/// Allocation-free: the x phases live in a stack buffer, y and z phases are evaluated per row.
public func applyPhaseShift(_ spectrum: UnsafeMutablePointer<Complex<Float>>, nx: Int, ny: Int, nz: Int,
                            by t: SIMD3<Double>) {
    let hx = nx / 2 + 1
    guard t.x.isFinite, t.y.isFinite, t.z.isFinite else { return }
    if t == .zero { return }
    let twoPi = 2 * Double.pi
    withUnsafeTemporaryAllocation(of: Complex<Float>.self, capacity: hx) { px in
        for x in 0..<hx {
            let a = -twoPi * Double(x) * t.x / Double(nx)
            px[x] = Complex(Float(Double.cos(a)), Float(Double.sin(a)))
        }
        for z in 0..<nz {
            let kz = FourierVolume.frequency(z, nz)
            for y in 0..<ny {
                let ky = FourierVolume.frequency(y, ny)
                let a = -twoPi * (Double(ky) * t.y / Double(ny) + Double(kz) * t.z / Double(nz))
                let rowPhase = Complex(Float(Double.cos(a)), Float(Double.sin(a)))
                let row = spectrum + (z * ny + y) * hx
                for x in 0..<hx {
                    row[x] = row[x] * (px[x] * rowPhase)
                }
            }
        }
    }
}

extension FourierVolume {
    /// The spectrum of V(r − t) (cyclic shift by +t, sub-voxel allowed): a phase ramp, see
    /// `applyPhaseShift(_:nx:ny:nz:by:)` for the Nyquist caveat.
    public func shifted(by t: SIMD3<Double>) -> FourierVolume {
        var out = self
        out.data.withUnsafeMutableBufferPointer { applyPhaseShift($0.baseAddress!, nx: nx, ny: ny, nz: nz, by: t) }
        return out
    }
}
