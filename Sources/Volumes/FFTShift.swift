extension Volume {
    /// MATLAB `fftshift` (Xmipp `CenterFFT(v, true)`, spec §1.2): element at physical i moves to
    /// (i + floor(n/2)) mod n in each axis, so index 0 lands on the logical centre.
    public func fftShifted() -> Volume { cyclicallyShifted(by: SIMD3(nx / 2, ny / 2, nz / 2)) }

    /// MATLAB `ifftshift` (`CenterFFT(v, false)`): the inverse of `fftShifted()` (shift by −floor(n/2)).
    public func ifftShifted() -> Volume { cyclicallyShifted(by: SIMD3(-(nx / 2), -(ny / 2), -(nz / 2))) }

    /// out[(i + s) mod n] = in[i] in each axis (content moves by +s with wrap-around).
    public func cyclicallyShifted(by s: SIMD3<Int>) -> Volume {
        var out = Volume(nx: nx, ny: ny, nz: nz)
        func wrap(_ i: Int, _ n: Int) -> Int { ((i % n) + n) % n }
        data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                for z in 0..<nz {
                    let oz = wrap(z + s.z, nz)
                    for y in 0..<ny {
                        let oy = wrap(y + s.y, ny)
                        let srow = (z * ny + y) * nx, drow = (oz * ny + oy) * nx
                        for x in 0..<nx { dst[drow + wrap(x + s.x, nx)] = src[srow + x] }
                    }
                }
            }
        }
        return out
    }
}
