/// A real-space 3D array of Float32, stored contiguously with x fastest, then y, then z.
///
/// Logical (centred) indices follow Xmipp (spec §0.3): along an axis of size n the logical
/// index runs from -floor(n/2) to n-1-floor(n/2); logical 0 sits at physical floor(n/2).
public struct Volume: Equatable, Sendable {
    public let nx: Int
    public let ny: Int
    public let nz: Int
    /// Voxels, x fastest: `data[(z * ny + y) * nx + x]` for physical indices.
    public var data: [Float]

    /// A zero volume of the given size.
    public init(nx: Int, ny: Int, nz: Int) {
        precondition(nx > 0 && ny > 0 && nz > 0, "volume dimensions must be positive")
        self.nx = nx
        self.ny = ny
        self.nz = nz
        self.data = [Float](repeating: 0, count: nx * ny * nz)
    }

    /// A zero cubic volume of side `dim`.
    public init(dim: Int) { self.init(nx: dim, ny: dim, nz: dim) }

    /// Wraps existing voxels (x fastest); the count must match.
    public init(nx: Int, ny: Int, nz: Int, data: [Float]) {
        precondition(data.count == nx * ny * nz, "voxel count \(data.count) does not match \(nx)x\(ny)x\(nz)")
        self.nx = nx
        self.ny = ny
        self.nz = nz
        self.data = data
    }

    public var count: Int { nx * ny * nz }
    public var isCubic: Bool { nx == ny && ny == nz }

    /// Voxel at physical indices.
    @inlinable
    public subscript(x: Int, y: Int, z: Int) -> Float {
        get { data[(z * ny + y) * nx + x] }
        set { data[(z * ny + y) * nx + x] = newValue }
    }
}
