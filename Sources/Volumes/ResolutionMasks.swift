import Foundation

/// An error in the geometric set-up (missing regions, angular sampling, symmetry): bad user input,
/// described so that the user can find the option or file row at fault.
public struct GeometryError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The Fourier-space resolution masks of spec §4.3, in the half-complex layout of `FourierVolume`
/// (index (z·d + y)·(d/2+1) + x, frequencies per `FourierVolume.frequency`).
///
/// * `soft`: 1 for |κ| ≤ r_maxres − 2, a raised cosine ½(1 + cos(π(|κ| − r₁)/2)) for
///   r₁ = r_maxres − 2 < |κ| < r_maxres, 0 beyond.
/// * `binary`: 1 ⇔ soft > 0 ⇔ |κ| < r_maxres.
/// Both are 0 at κ = 0 (the DC term is never used).
public struct ResolutionMasks: Sendable, Equatable {
    /// Box size d.
    public let dim: Int
    /// Number of stored x frequencies, d/2 + 1.
    public let hx: Int
    /// The maximum resolution as a digital frequency (`--maxres`).
    public let maxres: Double
    /// r_maxres = min(h, floor(maxres·d)), in Fourier voxels.
    public let rMaxres: Int
    public let soft: [Float]
    public let binary: [Float]
    /// For each half-complex row (z, y), the x range [start, end) where `binary` = 1 (a sphere minus
    /// the DC term is contiguous along x). Lets mask builders skip the zeros outside the sphere.
    let rowStart: [Int32]
    let rowEnd: [Int32]

    public init(dim: Int, maxres: Double) {
        precondition(dim > 0, "ResolutionMasks needs a positive box size")
        self.dim = dim
        self.maxres = maxres
        let h = dim / 2
        hx = h + 1
        let r = min(h, Int((maxres * Double(dim)).rounded(.down)))
        rMaxres = max(0, r)
        let rMax = Double(rMaxres)
        let r1 = rMax - 2
        var soft = [Float](repeating: 0, count: dim * dim * hx)
        var binary = soft
        for z in 0..<dim {
            let kz = FourierVolume.frequency(z, dim)
            for y in 0..<dim {
                let ky = FourierVolume.frequency(y, dim)
                let row = (z * dim + y) * hx
                for x in 0..<hx {
                    let r2 = x * x + ky * ky + kz * kz
                    if r2 == 0 { continue }  // DC excluded
                    // Compare squared integer radii so that the binary mask has no rounding ties.
                    guard r2 < rMaxres * rMaxres else { continue }
                    let radius = Double(r2).squareRoot()
                    let f: Double = radius <= r1 ? 1 : 0.5 * (1 + cos(Double.pi * (radius - r1) / 2))
                    soft[row + x] = Float(f)
                    binary[row + x] = 1
                }
            }
        }
        self.soft = soft
        self.binary = binary
        var starts = [Int32](repeating: 0, count: dim * dim)
        var ends = [Int32](repeating: 0, count: dim * dim)
        for r in 0..<(dim * dim) {
            let row = binary[(r * hx)..<((r + 1) * hx)]
            guard let first = row.firstIndex(of: 1), let last = row.lastIndex(of: 1) else { continue }
            precondition(row[first...last].allSatisfy { $0 == 1 }, "resolution mask row not contiguous")
            starts[r] = Int32(first - r * hx)
            ends[r] = Int32(last - r * hx + 1)
        }
        rowStart = starts
        rowEnd = ends
    }

    /// Number of half-complex elements, d·d·(d/2+1).
    public var count: Int { binary.count }

    /// Number of voxels with `binary` = 1 on the full d³ grid (Hermitian mirroring, spec §3.3):
    /// 17070 for d = 32, maxres 0.5.
    public var fullGridCount: Int { Self.fullGridCount(of: binary, dim: dim) }

    /// Sum of a half-complex array over the full d³ Fourier grid, obtained by Hermitian mirroring as
    /// in spec §3.3: for x ≤ h the stored value at (z, y, x), else the value at
    /// ((d−z) mod d, (d−y) mod d, d−x). Exact for masks that are symmetric under κ → −κ.
    public static func fullGridSum(of halfComplex: [Float], dim d: Int) -> Double {
        var sum = 0.0
        forEachFullGridValue(of: halfComplex, dim: d) { sum += Double($0) }
        return sum
    }

    /// Number of non-zero entries of a half-complex mask over the full d³ grid (Hermitian mirroring).
    public static func fullGridCount(of halfComplex: [Float], dim d: Int) -> Int {
        var n = 0
        forEachFullGridValue(of: halfComplex, dim: d) { if $0 != 0 { n += 1 } }
        return n
    }

    /// Visits the value of every voxel of the full d³ grid: for x ≤ h the stored value at (z, y, x),
    /// else the stored value at ((d−z) mod d, (d−y) mod d, d−x) (spec §3.3).
    @inline(__always)
    private static func forEachFullGridValue(of halfComplex: [Float], dim d: Int, _ body: (Float) -> Void) {
        let hx = d / 2 + 1
        precondition(halfComplex.count == d * d * hx, "half-complex size mismatch")
        for z in 0..<d {
            for y in 0..<d {
                for x in 0..<d {
                    if x < hx {
                        body(halfComplex[(z * d + y) * hx + x])
                    } else {
                        body(halfComplex[(((d - z) % d) * d + (d - y) % d) * hx + (d - x)])
                    }
                }
            }
        }
    }
}
