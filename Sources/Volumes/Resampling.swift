/// Real-space resampling with the original program's semantics (spec §1.1, §15.4).
///
/// `applyGeometry(v, matrix: M)` gives out(r) = V(M⁻¹·r): content at r moves to M·r. With
/// `inverseMap: true` the matrix is the output→input map itself: out(r) = V(M·r). Coordinates are
/// logical (relative to floor(n/2) in each axis). Interpolation is trilinear. A source point outside
/// [first − 1e−6, last + 1e−6) in any axis gives `outside`; for sources inside, neighbours beyond the
/// last index are dropped from the sum (no renormalisation), which is what the original does.
/// An identity map short-circuits to a copy.
public func applyGeometry(_ v: Volume, matrix: Matrix3, inverseMap: Bool = false, outside: Float) -> Volume {
    var out = Volume(nx: v.nx, ny: v.ny, nz: v.nz)
    out.data.withUnsafeMutableBufferPointer { dst in
        applyGeometry(v, matrix: matrix, inverseMap: inverseMap, outside: outside, into: dst.baseAddress!)
    }
    return out
}

/// As `applyGeometry(_:matrix:inverseMap:outside:)`, writing nx·ny·nz voxels into a caller buffer
/// (hot paths; no allocation). `output` must not alias `v.data`.
public func applyGeometry(_ v: Volume, matrix: Matrix3, inverseMap: Bool = false, outside: Float,
                          into output: UnsafeMutablePointer<Float>) {
    v.data.withUnsafeBufferPointer { src in
        resampleTrilinear(src.baseAddress!, nx: v.nx, ny: v.ny, nz: v.nz,
                          map: inverseMap ? matrix : matrix.inverse, shift: .zero,
                          outside: outside, into: output)
    }
}

/// out(r) = V(map·r + shift) in logical coordinates, trilinear, with the §1.1 range rules.
/// An exact identity map with zero shift is a copy.
public func resampleTrilinear(_ src: UnsafePointer<Float>, nx: Int, ny: Int, nz: Int,
                              map m: Matrix3, shift: SIMD3<Double>, outside: Float,
                              into out: UnsafeMutablePointer<Float>) {
    let count = nx * ny * nz
    if m == .identity && shift == .zero {
        out.update(from: src, count: count)
        return
    }
    let cx = Double(nx / 2), cy = Double(ny / 2), cz = Double(nz / 2)
    let tol = 1e-6
    let lastX = Double(nx - 1), lastY = Double(ny - 1), lastZ = Double(nz - 1)
    let sxy = nx * ny
    for z in 0..<nz {
        let rz = Double(z) - cz
        for y in 0..<ny {
            let ry = Double(y) - cy
            // Source of x = 0 in physical coordinates (logical + centre), then step by column 0.
            var ux = m[0, 0] * -cx + m[0, 1] * ry + m[0, 2] * rz + shift.x + cx
            var uy = m[1, 0] * -cx + m[1, 1] * ry + m[1, 2] * rz + shift.y + cy
            var uz = m[2, 0] * -cx + m[2, 1] * ry + m[2, 2] * rz + shift.z + cz
            let row = out + (z * ny + y) * nx
            for x in 0..<nx {
                defer { ux += m[0, 0]; uy += m[1, 0]; uz += m[2, 0] }
                if !(ux >= -tol && ux < lastX + tol && uy >= -tol && uy < lastY + tol && uz >= -tol && uz < lastZ + tol) {
                    row[x] = outside
                    continue
                }
                // Truncation (not floor): a source in (−1e−6, 0) uses index 0 with a tiny negative weight.
                let x0 = Int(ux), y0 = Int(uy), z0 = Int(uz)
                let fx = ux - Double(x0), fy = uy - Double(y0), fz = uz - Double(z0)
                let b = z0 &* sxy &+ y0 &* nx &+ x0
                if x0 &+ 1 < nx && y0 &+ 1 < ny && z0 &+ 1 < nz {
                    // All eight neighbours exist (every voxel except those on the last planes).
                    let p = src + b
                    let q = p + sxy
                    let c00 = Double(p[0]) + fx * (Double(p[1]) - Double(p[0]))
                    let c10 = Double(p[nx]) + fx * (Double(p[nx &+ 1]) - Double(p[nx]))
                    let c01 = Double(q[0]) + fx * (Double(q[1]) - Double(q[0]))
                    let c11 = Double(q[nx]) + fx * (Double(q[nx &+ 1]) - Double(q[nx]))
                    let c0 = c00 + fy * (c10 - c00)
                    let c1 = c01 + fy * (c11 - c01)
                    row[x] = Float(c0 + fz * (c1 - c0))
                    continue
                }
                row[x] = Float(trilinearDroppingMissing(src, b, nx: nx, sxy: sxy,
                                                        hasX1: x0 + 1 < nx, hasY1: y0 + 1 < ny, hasZ1: z0 + 1 < nz,
                                                        fx: fx, fy: fy, fz: fz))
            }
        }
    }
}

/// Trilinear sum where neighbours beyond the last index are dropped (their weight is simply not added,
/// as in the original; no renormalisation).
@inline(never)
private func trilinearDroppingMissing(_ src: UnsafePointer<Float>, _ b: Int, nx: Int, sxy: Int,
                                      hasX1: Bool, hasY1: Bool, hasZ1: Bool,
                                      fx: Double, fy: Double, fz: Double) -> Double {
    func plane(_ base: Int) -> Double {
        var p = Double(src[base]) * (1 - fx)
        if hasX1 { p += Double(src[base + 1]) * fx }
        var value = p * (1 - fy)
        if hasY1 {
            var q = Double(src[base + nx]) * (1 - fx)
            if hasX1 { q += Double(src[base + nx + 1]) * fx }
            value += q * fy
        }
        return value
    }
    var acc = plane(b) * (1 - fz)
    if hasZ1 { acc += plane(b + sxy) * fz }
    return acc
}

extension Matrix3 {
    /// The inverse (the transpose for a rotation; computed generally via the adjugate). A singular
    /// matrix gives non-finite entries, which the resampler turns into `outside` everywhere.
    public var inverse: Matrix3 {
        let det = determinant
        let a = self
        let c00 = a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1]
        let c01 = a[0, 2] * a[2, 1] - a[0, 1] * a[2, 2]
        let c02 = a[0, 1] * a[1, 2] - a[0, 2] * a[1, 1]
        let c10 = a[1, 2] * a[2, 0] - a[1, 0] * a[2, 2]
        let c11 = a[0, 0] * a[2, 2] - a[0, 2] * a[2, 0]
        let c12 = a[0, 2] * a[1, 0] - a[0, 0] * a[1, 2]
        let c20 = a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0]
        let c21 = a[0, 1] * a[2, 0] - a[0, 0] * a[2, 1]
        let c22 = a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
        let s = 1 / det
        return Matrix3(c00 * s, c01 * s, c02 * s, c10 * s, c11 * s, c12 * s, c20 * s, c21 * s, c22 * s)
    }
}

extension Volume {
    /// The first stored voxel (physical index 0, a corner): the `outside` value ml_tomo uses for its
    /// rotations (spec §1.1).
    public var cornerValue: Float { data[0] }

    /// `Rot_M[V]`: out(r) = V(M⁻¹·r), trilinear, `outside` for sources outside the box (spec §1.1).
    public func rotated(by m: Matrix3, outside: Float) -> Volume {
        applyGeometry(self, matrix: m, outside: outside)
    }

    /// `T_t[V]`: out(r) = V(r − t), trilinear, outside 0, no wrapping (spec §1.1).
    public func translated(by t: SIMD3<Double>) -> Volume {
        var out = Volume(nx: nx, ny: ny, nz: nz)
        data.withUnsafeBufferPointer { src in
            out.data.withUnsafeMutableBufferPointer { dst in
                resampleTrilinear(src.baseAddress!, nx: nx, ny: ny, nz: nz, map: .identity, shift: -t,
                                  outside: 0, into: dst.baseAddress!)
            }
        }
        return out
    }
}
