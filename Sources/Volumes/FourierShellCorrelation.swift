import Numerics

/// Fourier shell correlation of two cubic volumes of one size: the one FSC of the project, used by the
/// refinement (half-set FSC, resolution, the resolution-limited radius and the MAP prior; spec §8.6) and by
/// `ml_tomo evaluate` (a reference against the true one).
///
/// Shell q (q = 0 … d/2) holds the stored half-complex coefficients whose frequency radius ρ = |κ|/d
/// (cycles per pixel) is at most Nyquist (0.5) and rounds to q/d. Every stored coefficient counts once:
/// the coefficients of the planes κx = 0 and κx = d/2, which hold both members of a Hermitian pair, count
/// twice as much as the rest. This is the refinement's definition since its first version; its files and
/// the radius it grows depend on it, so it stays.
public struct FSCCurve: Sendable, Equatable {
    /// The side of the volumes.
    public let dim: Int
    /// FSC per shell q = 0 … d/2 (shell 0, the DC term, is not used); 0 in a shell without signal.
    public let values: [Double]

    public init(dim: Int, values: [Double]) {
        self.dim = dim
        self.values = values
    }

    /// FSC of two spectra of one d³ box. With `crossWeights` (w₁, w₂), per half-complex coefficient,
    /// each spectrum is weighted by the other's weight before correlating (w₂·F₁ against w₁·F₂): the
    /// refinement's wedge sums, so that a coefficient counts as much as both halves measured it.
    public init(_ a: FourierVolume, _ b: FourierVolume, crossWeights: ([Double], [Double])? = nil) {
        precondition(a.nx == b.nx && a.ny == b.ny && a.nz == b.nz && a.nx == a.ny && a.ny == a.nz,
                     "FSC needs two spectra of one cube")
        let d = a.nx, h = d / 2, hx = a.hx
        if let w = crossWeights { precondition(w.0.count == a.count && w.1.count == a.count, "FSC weights need one per coefficient") }
        var cross = [Double](repeating: 0, count: h + 1)
        var power1 = cross, power2 = cross
        // Frequency along an axis in cycles per pixel; the Nyquist row counts as +½ (its sign is irrelevant here).
        func cycles(_ i: Int) -> Double { i <= h ? Double(i) / Double(d) : Double(i - d) / Double(d) }
        for z in 0 ..< d {
            let fz = cycles(z)
            for y in 0 ..< d {
                let fy = cycles(y)
                for x in 0 ..< hx {
                    let fx = cycles(x)
                    let rho = (fx * fx + fy * fy + fz * fz).squareRoot()
                    if rho > 0.5 { continue }
                    let q = Int((rho * Double(d)).rounded())
                    if q > h { continue }
                    let j = (z * d + y) * hx + x
                    let w1 = crossWeights?.0[j] ?? 1, w2 = crossWeights?.1[j] ?? 1
                    let ar = w2 * Double(a.data[j].real), ai = w2 * Double(a.data[j].imaginary)
                    let br = w1 * Double(b.data[j].real), bi = w1 * Double(b.data[j].imaginary)
                    cross[q] += ar * br + ai * bi
                    power1[q] += ar * ar + ai * ai
                    power2[q] += br * br + bi * bi
                }
            }
        }
        dim = d
        values = (0 ... h).map { q in cross[q] == 0 ? 0 : cross[q] / (power1[q] * power2[q]).squareRoot() }
    }

    /// FSC of two real cubic volumes of one size.
    public init(_ a: Volume, _ b: Volume) {
        precondition(a.nx == b.nx && a.ny == b.ny && a.nz == b.nz && a.isCubic, "FSC needs two cubes of one size")
        self.init(a.fourierTransform(), b.fourierTransform())
    }

    /// The refinement's resolution rule (spec §8.6): the last shell before the curve first falls below
    /// `threshold`, at least 1 (d/2 when it never falls below).
    public func lastShellAbove(threshold: Double) -> Int {
        let h = values.count - 1
        let first = (1 ..< max(1, values.count)).first { values[$0] < threshold } ?? h + 1
        return min(h, max(first - 1, 1))
    }

    /// Frequency (cycles per pixel) where the curve first falls below `threshold`, linearly interpolated
    /// between the last shell above and the first shell below; Nyquist (d/2 shells) if it never does.
    public func crossing(threshold: Double) -> Double {
        let n = Double(dim)
        for q in 1 ..< values.count where values[q] < threshold {
            let above = values[q - 1] >= threshold ? values[q - 1] : 1
            let frac = above > values[q] ? (above - threshold) / (above - values[q]) : 0
            return (Double(q - 1) + frac) / n
        }
        return Double(values.count - 1) / n
    }
}
