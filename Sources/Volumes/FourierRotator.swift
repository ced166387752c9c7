import Numerics

/// Rotates one reference volume many times in Fourier space (the hot kernel of the fast E-step).
///
/// Mathematics. Let V be the reference (cubic, side d, logical centre c = floor(d/2)) and write
/// F_V(ω) = Σ_r V(r)·e^{−2πi ω·r} for its *centred* continuous spectrum (r in logical coordinates,
/// ω in cycles/voxel). For R(x) = V(A·x) with A orthogonal, F_R(ω) = F_V(A·ω) exactly. The Xmipp-normalised
/// FFT of R in the usual layout (origin at physical 0, so logical r sits at physical r + c) is
///   FT(R)(κ) = (1/d³)·e^{−2πi κ·c/d}·F_R(κ/d) = (1/d³)·e^{−2πi κ·c/d}·F_V(A·κ/d).
/// The initialiser samples F_V on a p-times finer grid (p = `padding`): V is placed in a D = p·d box
/// with its logical centre at physical 0 (cyclic wrap) and transformed once; sample k of that FFT is
/// F_V(k/D). So F_V(A·κ/d) is read by trilinear interpolation at grid coordinate s = p·A·κ. Zero padding
/// makes the samples p times denser than the spectrum's natural resolution, which is what makes
/// trilinear interpolation in Fourier space accurate (for p = 1 it would be badly blurred).
///
/// Hermitian symmetry: only s_x ≥ 0 is stored; a source with s_x < 0 is read as conj(F_V(−s)).
/// The stored table covers every cell the 2×2×2 neighbourhood of a source inside the padded Nyquist
/// sphere can touch (values filled periodically and Hermitian-consistently), so the inner loop reads it
/// without tests; index clamps and a trailing pad only keep memory safe against rounding.
///
/// Performance: see `table` (Float16 storage) and `ml_tomo bench` W4, which times a 32³ rotation paired
/// with a 32³ c2r. The E-step amortises one rotation per (orientation, class) over all images.
///
/// Output frequencies with |κ| > min(maxRadius, d/2) are set to 0 (beyond d/2 the source would lie
/// outside the padded band; the E-step never asks for them because its resolution mask stops at d/2).
public final class FourierRotator: @unchecked Sendable {
    public let dim: Int
    public let padding: Int
    /// Padded box side D = padding·dim.
    private let paddedDim: Int
    /// Centred half spectrum (scaled by 1/d³, then by `tableScale`), interleaved (re, im) Float16, packed
    /// by rows: only the cells a source inside the padded Nyquist sphere can touch are stored (about half
    /// of the cube). Element (kx, ky, kz) is at complex index rowStart[(kz + offset)·extY + (ky + offset)] + kx.
    ///
    /// Why Float16: the kernel is bound by the latency of its four table reads per voxel, and halving the
    /// table (632 → 316 KB for a 32³ reference at padding 2) keeps it in a 512 KB L2. Measured paired
    /// against one 32³ c2r: 1.86–2.05 × with Float, 1.48 / 1.67 in a C model of both. The price is the
    /// Float16 rounding of each table value (≤ 2⁻¹¹ relative, ≈ 1.5·10⁻⁴ rms), two orders of magnitude
    /// below the interpolation error itself (≈ 5 % at d/4, see below). `tableScale` (a power of two)
    /// puts the largest value near 2¹⁴, so high frequencies stay clear of Float16's subnormal range
    /// (values below ≈ 4·10⁻⁹ of the maximum lose relative precision; they do not matter next to it).
    private let table: AlignedBuffer<Float16>
    private let tableScale: Float
    private let rowStart: [Int32]
    private let extX: Int
    private let extY: Int
    private let offset: Int
    /// Centring phase tables e^{−2πi κ c/d}, indexed by the physical index along an axis (size d).
    private let phase: [Complex<Float>]

    /// Prepares `reference` (cubic, side d): zero-pads by `padding` in real space about the logical
    /// centre and FFTs once. No gridding correction (see the other initialiser), so grid-aligned
    /// rotations (identity, multiples of 90° about the axes) reproduce the reference's FFT up to the
    /// Float16 rounding of the table.
    public convenience init(reference: Volume, padding: Int = 2) {
        self.init(reference: reference, padding: padding, griddingCorrection: false)
    }

    /// Accuracy trade-off. Trilinear interpolation of the padded spectrum equals the FT of the
    /// D-periodic reference multiplied by W(r) = Π_i sinc²(r_i/D). Its central copy is attenuated by
    /// W (≈ 1 − 0.2·(|r|/(d/2))² for p = 2, nearly isotropic) and the periodic copies at n·D leak in
    /// with weight W(r + nD) (aliasing). For grid-aligned rotations the leaks sum exactly to 1 − W, which
    /// is why the uncorrected table is exact for them (up to its Float16 storage). `griddingCorrection: true` divides the reference by
    /// W before the FFT: the attenuation disappears, only aliasing remains, so general rotations are about
    /// twice as accurate but grid-aligned ones are no longer exact. Measured on Gaussian blobs (σ ≈ d/14,
    /// centres within d/4), relative L2 error over |κ| ≤ d/4 vs the analytic rotation: p = 2 uncorrected
    /// 0 % (identity) / ≈ 5 % (random); corrected ≈ 5 % / ≈ 2.4 %; p = 3 uncorrected 0 / 2.2 %,
    /// corrected 2.3 % / 1.0 %.
    public init(reference: Volume, padding: Int, griddingCorrection: Bool) {
        precondition(reference.isCubic, "FourierRotator needs a cubic volume, got \(reference.nx)x\(reference.ny)x\(reference.nz)")
        precondition(padding >= 1, "FourierRotator padding must be ≥ 1")
        let d = reference.nx
        let p = padding
        let bigD = p * d
        dim = d
        self.padding = p
        paddedDim = bigD
        let c = d / 2

        // Place V in the D-box with its logical centre at physical 0 (cyclic), so the FFT is the
        // centred spectrum F_V sampled at k/D (optionally of V/W, see above).
        let plan = FFTPlan.shared(dim: bigD)
        let real = AlignedBuffer<Float>(count: bigD * bigD * bigD)
        reference.data.withUnsafeBufferPointer { src in
            for z in 0..<d {
                let pz = ((z - c) + bigD) % bigD
                for y in 0..<d {
                    let py = ((y - c) + bigD) % bigD
                    for x in 0..<d {
                        let px = ((x - c) + bigD) % bigD
                        var w: Float = 1
                        if griddingCorrection {
                            w = sincSquared(Double(x - c) / Double(bigD)) * sincSquared(Double(y - c) / Double(bigD))
                                * sincSquared(Double(z - c) / Double(bigD))
                        }
                        real[(pz * bigD + py) * bigD + px] = src[(z * d + y) * d + x] / w
                    }
                }
            }
        }
        let hx = bigD / 2 + 1
        let spectrum = AlignedBuffer<Complex<Float>>(count: bigD * bigD * hx)
        plan.forwardUnnormalised(real.pointer, spectrum.pointer)

        // Extended table: kx ∈ [0, D/2 + 2], ky, kz ∈ [−offset, D − offset + 3].
        let off = bigD / 2 + 2
        let ex = bigD / 2 + 4
        let ey = bigD + 6
        extX = ex
        extY = ey
        offset = off
        let (starts, lengths, total) = Self.packedRows(paddedDim: bigD)
        // A trailing pad keeps the 16-byte reads of (ix, ix+1) in bounds whatever the rounding.
        let tab = AlignedBuffer<Float16>(count: 2 * (total + ex))
        var largest: Float = 0
        for j in 0..<spectrum.count {
            largest = max(largest, abs(spectrum[j].real), abs(spectrum[j].imaginary))
        }
        let normalisation = 1 / Float(d * d * d)
        // 2^(14 − ⌈log2 max⌉): exact in binary, so dividing it out again adds no rounding.
        let exponent = largest > 0 ? 14 - Int((largest * normalisation).exponent) - 1 : 0
        let storedScale = Float(sign: .plus, exponent: exponent, significand: 1)
        tableScale = storedScale
        let scale = normalisation * storedScale
        func wrap(_ k: Int) -> Int { ((k % bigD) + bigD) % bigD }
        for iz in 0..<ey {
            for iy in 0..<ey {
                let start = Int(starts[iz * ey + iy])
                for ix in 0..<lengths[iz * ey + iy] {
                    let kx = wrap(ix), ky = wrap(iy - off), kz = wrap(iz - off)
                    var v: Complex<Float>
                    if kx <= bigD / 2 {
                        v = spectrum[(kz * bigD + ky) * hx + kx]
                    } else {
                        v = spectrum[(wrap(-kz) * bigD + wrap(-ky)) * hx + (bigD - kx)].conjugate
                    }
                    v = v.multiplied(by: scale)
                    tab[2 * (start + ix)] = Float16(v.real)
                    tab[2 * (start + ix) + 1] = Float16(v.imaginary)
                }
            }
        }
        rowStart = starts
        table = tab

        var ph = [Complex<Float>](repeating: .one, count: d)
        for i in 0..<d {
            let k = FourierVolume.frequency(i, d)
            let angle = -2 * Double.pi * Double(k * c) / Double(d)
            ph[i] = Complex(Float(Double.cos(angle)), Float(Double.sin(angle)))
        }
        phase = ph
    }

    /// Bytes of the interpolation table for a d³ reference at this padding (for memory budgets).
    public static func tableBytes(dim d: Int, padding p: Int) -> Int {
        let bigD = p * d
        return 4 * (packedRows(paddedDim: bigD).total + bigD / 2 + 4) + 4 * (bigD + 6) * (bigD + 6)
    }

    /// Row layout of the packed table for a padded side D: start (in complex elements) and length of row
    /// (ky, kz), and the total. Cell (kx, ky, kz) is read iff some source s with |s| ≤ Rs has
    /// floor(s_a) ∈ {k_a − 1, k_a} in every axis, i.e. iff Σ max(0, |k_a| − 1)² ≤ Rs² (x only from 0, by
    /// the Hermitian mirror). Rs carries a small margin for Float rounding of s.
    private static func packedRows(paddedDim bigD: Int) -> (starts: [Int32], lengths: [Int], total: Int) {
        let off = bigD / 2 + 2
        let ex = bigD / 2 + 4
        let ey = bigD + 6
        let rs = Double(bigD) / 2 + 0.05
        var starts = [Int32](repeating: 0, count: ey * ey)
        var lengths = [Int](repeating: 0, count: ey * ey)
        var total = 0
        for iz in 0..<ey {
            let az = Double(max(0, abs(iz - off) - 1))
            for iy in 0..<ey {
                let ay = Double(max(0, abs(iy - off) - 1))
                let rest = rs * rs - ay * ay - az * az
                let length = rest < 0 ? 0 : min(ex, Int(rest.squareRoot()) + 2)
                starts[iz * ey + iy] = Int32(total)
                lengths[iz * ey + iy] = length
                total += length
            }
        }
        return (starts, lengths, total)
    }

    /// Writes into `output` (d·d·(d/2+1) half-complex, Xmipp normalisation, i.e. what
    /// `FFTPlan.shared(dim: d).forward(R)` would give) the spectrum of R(x) = reference(A·x):
    /// FT(R)(κ) ≈ FT(reference)(A·κ) up to the centring phase. Voxels with |κ| > maxRadius (Fourier
    /// voxels of the d-box; clamped to d/2) are set to 0. Thread-safe, allocation-free.
    public func rotate(_ a: Matrix3, maxRadius: Double, into output: UnsafeMutablePointer<Complex<Float>>) {
        let d = dim
        let hx = d / 2 + 1
        let total = d * d * hx
        let finite = (0..<9).allSatisfy { a[$0 / 3, $0 % 3].isFinite }
        let radius = min(maxRadius, Double(d) / 2)
        guard finite, radius >= 0 else {
            output.update(repeating: .zero, count: total)
            return
        }
        let r2 = radius * radius
        let p = Float(padding)
        // Columns of p·A: s = p·A·κ = κx·colX + κy·colY + κz·colZ.
        let axx = p * Float(a[0, 0]), ayx = p * Float(a[1, 0]), azx = p * Float(a[2, 0])
        let axy = p * Float(a[0, 1]), ayy = p * Float(a[1, 1]), azy = p * Float(a[2, 1])
        let axz = p * Float(a[0, 2]), ayz = p * Float(a[1, 2]), azz = p * Float(a[2, 2])
        let ey = extY
        let unscale = 1 / tableScale
        let offF = Float(offset)
        let maxIX = extX - 2, maxIYZ = extY - 2

        // Output rows are visited in blocks of `yBlock` rows for every z, so that the table lines a row
        // reads are still in cache when the rows one z-plane further (whose sources are 2·A·ẑ away) need
        // them again.
        let yBlock = 4
        let evenDim = d % 2 == 0
        // Each row is done in chunks of two passes. Pass 1 only computes addresses and weights and copies
        // the four table reads of every voxel into a small stack buffer: short, independent
        // iterations, so the processor keeps many cache misses in flight (the table does not fit in L2 for
        // d ≥ 32 and the reads of a rotated row are scattered). Pass 2 interpolates from that buffer.
        // Scratch for one chunk of a row: 4 corner reads + 1 weight vector per voxel. 12 voxels = 960 bytes,
        // under the 1 KiB that withUnsafeTemporaryAllocation always places on the stack (larger requests
        // make it query the thread's stack bounds, which is slow on the main thread).
        let chunk = 12
        withUnsafeTemporaryAllocation(of: SIMD4<Float>.self, capacity: 5 * chunk) { scratch in
            let corners = scratch.baseAddress!
            let weights = corners + 4 * chunk
            phase.withUnsafeBufferPointer { ph in
                rowStart.withUnsafeBufferPointer { starts in
                    let tab = UnsafeRawPointer(table.pointer)
                    var y0 = 0
                    while y0 < d {
                        let y1 = min(d, y0 + yBlock)
                        for z in 0..<d {
                            let kz = FourierVolume.frequency(z, d)
                            for y in y0..<y1 {
                                let ky = FourierVolume.frequency(y, d)
                                let row = output + (z * d + y) * hx
                                let rest = r2 - Double(ky * ky + kz * kz)
                                if rest < 0 {
                                    row.update(repeating: .zero, count: hx)
                                    continue
                                }
                                let xmax = min(hx - 1, Int(rest.squareRoot()))
                                var sx = Float(ky) * axy + Float(kz) * axz
                                var sy = Float(ky) * ayy + Float(kz) * ayz
                                var sz = Float(ky) * azy + Float(kz) * azz
                                // Both also undo the table's power-of-two scale (exactly).
                                let rowSign: Float = (ky + kz) & 1 == 0 ? unscale : -unscale
                                let rowPhase = (ph[y] * ph[z]).multiplied(by: unscale)
                                var x0 = 0
                                while x0 <= xmax {
                                    let n = min(chunk, xmax + 1 - x0)
                                    for i in 0..<n {
                                        var tx = sx, ty = sy, tz = sz
                                        let sign: Float = tx < 0 ? -1 : 1
                                        tx *= sign; ty *= sign; tz *= sign
                                        let fy = ty + offF, fz = tz + offF
                                        // Sources lie inside the padded Nyquist sphere, so fy, fz ≥ 0 and
                                        // truncation is floor; the clamps only guard memory against rounding.
                                        let ix = min(max(Int(tx), 0), maxIX)
                                        let iy = min(max(Int(fy), 0), maxIYZ)
                                        let iz = min(max(Int(fz), 0), maxIYZ)
                                        weights[i] = SIMD4(tx - Float(ix), fy - Float(iy), fz - Float(iz), sign)
                                        let r0 = iz &* ey &+ iy
                                        let r1 = r0 &+ ey
                                        // Each read fetches the x-neighbours (ix, ix+1) as (re0, im0, re1, im1),
                                        // 8 bytes of Float16 widened by one vcvtph2ps.
                                        let c = corners + 4 &* i
                                        c[0] = SIMD4<Float>(tab.loadUnaligned(fromByteOffset: (Int(starts[r0]) &+ ix) &* 4, as: SIMD4<Float16>.self))
                                        c[1] = SIMD4<Float>(tab.loadUnaligned(fromByteOffset: (Int(starts[r0 &+ 1]) &+ ix) &* 4, as: SIMD4<Float16>.self))
                                        c[2] = SIMD4<Float>(tab.loadUnaligned(fromByteOffset: (Int(starts[r1]) &+ ix) &* 4, as: SIMD4<Float16>.self))
                                        c[3] = SIMD4<Float>(tab.loadUnaligned(fromByteOffset: (Int(starts[r1 &+ 1]) &+ ix) &* 4, as: SIMD4<Float16>.self))
                                        sx += axx; sy += ayx; sz += azx
                                    }
                                    if evenDim {
                                        // Centring phase (−1)^(κx+κy+κz): a sign, folded into the Hermitian sign.
                                        for i in 0..<n {
                                            let kx = x0 + i
                                            let w = weights[i]
                                            let s = (kx & 1 == 0) ? rowSign : -rowSign
                                            let lx = interpolate(corners + 4 &* i, w)
                                            row[kx] = Complex(lx.x * s, lx.y * (w.w * s))
                                        }
                                    } else {
                                        for i in 0..<n {
                                            let kx = x0 + i
                                            let w = weights[i]
                                            let lx = interpolate(corners + 4 &* i, w)
                                            row[kx] = Complex(lx.x, lx.y * w.w) * (rowPhase * ph[kx])
                                        }
                                    }
                                    x0 += n
                                }
                                if xmax + 1 < hx {
                                    (row + xmax + 1).update(repeating: .zero, count: hx - xmax - 1)
                                }
                            }
                        }
                        y0 = y1
                    }
                }
            }
        }
    }
}

/// Trilinear interpolation from the four x-pair reads `c` (z0y0, z0y1, z1y0, z1y1) with weights
/// (wx, wy, wz, ·) in `w`; returns (re, im).
@inline(__always)
private func interpolate(_ c: UnsafeMutablePointer<SIMD4<Float>>, _ w: SIMD4<Float>) -> SIMD2<Float> {
    let wy = SIMD4<Float>(repeating: w.y)
    let wz = SIMD4<Float>(repeating: w.z)
    let lz0 = c[0].addingProduct(wz, c[2] - c[0])
    let lz1 = c[1].addingProduct(wz, c[3] - c[1])
    let ly = lz0.addingProduct(wy, lz1 - lz0)
    let weighted = ly * SIMD4(1 - w.x, 1 - w.x, w.x, w.x)
    return weighted.lowHalf + weighted.highHalf
}

private func sincSquared(_ x: Double) -> Float {
    if x == 0 { return 1 }
    let s = Double.sin(Double.pi * x) / (Double.pi * x)
    return Float(s * s)
}
