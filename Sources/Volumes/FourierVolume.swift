import Numerics

/// The half-complex Fourier transform of a real nx×ny×nz volume (FFTW r2c layout):
/// shape z = nz, y = ny, x = nx/2+1, x fastest.
///
/// Physical (z, y, x) ↔ frequency (κz, κy, κx) with κx = x ∈ [0, nx/2], κy = y if y ≤ (ny-1)/2 else y − ny,
/// and likewise κz (spec §0.3: for even sizes the Nyquist row maps to −n/2).
public struct FourierVolume: Equatable, Sendable {
    public let nx: Int
    public let ny: Int
    public let nz: Int
    /// Number of stored x frequencies: nx/2 + 1.
    public var hx: Int { nx / 2 + 1 }
    public var data: [Complex<Float>]

    public init(nx: Int, ny: Int, nz: Int) {
        self.nx = nx
        self.ny = ny
        self.nz = nz
        data = [Complex<Float>](repeating: .zero, count: nz * ny * (nx / 2 + 1))
    }

    public init(dim: Int) { self.init(nx: dim, ny: dim, nz: dim) }

    public init(nx: Int, ny: Int, nz: Int, data: [Complex<Float>]) {
        precondition(data.count == nz * ny * (nx / 2 + 1), "half-complex count mismatch")
        self.nx = nx
        self.ny = ny
        self.nz = nz
        self.data = data
    }

    public var count: Int { data.count }

    @inlinable
    public subscript(x: Int, y: Int, z: Int) -> Complex<Float> {
        get { data[(z * ny + y) * (nx / 2 + 1) + x] }
        set { data[(z * ny + y) * (nx / 2 + 1) + x] = newValue }
    }

    /// Signed frequency of physical index `i` along an axis of size `n` (spec §0.3).
    @inlinable
    public static func frequency(_ i: Int, _ n: Int) -> Int { i <= (n - 1) / 2 ? i : i - n }

    /// Physical index of signed frequency `k` along an axis of size `n`.
    @inlinable
    public static func index(ofFrequency k: Int, _ n: Int) -> Int { k >= 0 ? k : k + n }
}
