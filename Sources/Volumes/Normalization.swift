/// Mean and standard deviation of a volume, over all voxels or over those where a mask is > 0.5, and the
/// affine normalisation (v − mean) / std that the seed FAQ (question 1) asks for before a refinement:
/// the likelihood compares squared differences, so grey-level offsets and scales between subtomograms
/// would otherwise dominate it.
public struct VoxelStatistics: Equatable, Sendable {
    public var mean: Double
    /// Population standard deviation (divided by the voxel count, as xmipp_statistics reports it).
    public var std: Double
    public var count: Int

    /// Two passes in Double, so the result does not depend on the volume's offset.
    public init(_ v: Volume, mask: Volume? = nil) {
        precondition(mask.map { $0.nx == v.nx && $0.ny == v.ny && $0.nz == v.nz } ?? true, "mask and volume differ in size")
        var sum = 0.0
        var n = 0
        for i in 0 ..< v.count where mask.map({ $0.data[i] > 0.5 }) ?? true {
            sum += Double(v.data[i])
            n += 1
        }
        let mean = n > 0 ? sum / Double(n) : 0
        var ss = 0.0
        for i in 0 ..< v.count where mask.map({ $0.data[i] > 0.5 }) ?? true {
            let d = Double(v.data[i]) - mean
            ss += d * d
        }
        self.mean = mean
        self.std = n > 0 ? (ss / Double(n)).squareRoot() : 0
        self.count = n
    }
}

extension Volume {
    /// (v − mean) / std with the statistics of `stats`, applied to every voxel.
    public func normalised(by stats: VoxelStatistics) -> Volume {
        var out = self
        let m = stats.mean, s = stats.std
        for i in 0 ..< out.count { out.data[i] = Float((Double(data[i]) - m) / s) }
        return out
    }
}
