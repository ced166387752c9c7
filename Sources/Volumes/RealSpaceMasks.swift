import Foundation

/// Real-space masks of a cubic box of side d (spec §4.4), in logical coordinates about floor(d/2).
public struct RealSpaceMasks: Sendable {
    public let dim: Int
    /// `real_mask`: 1 where |r|² ≤ h², h = floor(d/2); else 0.
    public let sphere: Volume
    /// `real_omask` = 1 − `sphere`.
    public let outsideSphere: Volume
    /// Number of voxels in `outsideSphere`.
    public let outsideCount: Int

    public init(dim: Int) {
        precondition(dim > 0, "mask size must be positive")
        self.dim = dim
        let h = dim / 2
        sphere = RealSpaceMasks.binarySphere(dim: dim, radius: Double(h))
        var o = Volume(dim: dim)
        var count = 0
        for i in 0..<o.count where sphere.data[i] == 0 {
            o.data[i] = 1
            count += 1
        }
        outsideSphere = o
        outsideCount = count
    }

    /// 1 where |r|² ≤ radius² (logical r, integer coordinates), else 0.
    public static func binarySphere(dim: Int, radius: Double) -> Volume {
        var v = Volume(dim: dim)
        let c = dim / 2
        let r2 = radius * radius
        for z in 0..<dim {
            for y in 0..<dim {
                for x in 0..<dim {
                    let dx = x - c, dy = y - c, dz = z - c
                    if Double(dx * dx + dy * dy + dz * dz) <= r2 { v[x, y, z] = 1 }
                }
            }
        }
        return v
    }

    /// Raised-cosine sphere: 1 for |r| ≤ inner, ½(1 + cos(π(|r| − inner)/(outer − inner))) between,
    /// 0 for |r| ≥ outer. With outer ≤ inner it degenerates to the binary sphere of radius inner.
    public static func raisedCosineSphere(dim: Int, innerRadius: Double, outerRadius: Double) -> Volume {
        var v = Volume(dim: dim)
        let c = dim / 2
        let width = outerRadius - innerRadius
        for z in 0..<dim {
            for y in 0..<dim {
                for x in 0..<dim {
                    let dx = Double(x - c), dy = Double(y - c), dz = Double(z - c)
                    let r = (dx * dx + dy * dy + dz * dz).squareRoot()
                    let value: Double
                    if r <= innerRadius {
                        value = 1
                    } else if width <= 0 || r >= outerRadius {
                        value = 0
                    } else {
                        value = 0.5 * (1 + cos(Double.pi * (r - innerRadius) / width))
                    }
                    v[x, y, z] = Float(value)
                }
            }
        }
        return v
    }

    /// `maskSphericalAverageOutside` (spec §4.4): replaces every voxel outside the sphere by the mean of
    /// the voxels there (Double accumulation), leaving the inside untouched, so that rotations with
    /// `outside = corner value` create no edges.
    public func maskSphericalAverageOutside(_ v: inout Volume) {
        precondition(v.nx == dim && v.ny == dim && v.nz == dim, "volume \(v.nx)x\(v.ny)x\(v.nz) vs mask \(dim)³")
        guard outsideCount > 0 else { return }
        var sum = 0.0
        for i in 0..<v.count where outsideSphere.data[i] != 0 { sum += Double(v.data[i]) }
        let mean = Float(sum / Double(outsideCount))
        for i in 0..<v.count where outsideSphere.data[i] != 0 { v.data[i] = mean }
    }

    /// Functional form of `maskSphericalAverageOutside(_:)`.
    public func sphericalAverageOutside(_ v: Volume) -> Volume {
        var out = v
        maskSphericalAverageOutside(&out)
        return out
    }
}

/// Errors of volume arithmetic that depend on user input (e.g. a mask file of the wrong size).
public enum VolumeError: Error, CustomStringConvertible, Equatable {
    case sizeMismatch(what: String, expected: String, got: String)

    public var description: String {
        switch self {
        case let .sizeMismatch(what, expected, got):
            return "\(what): expected a volume of \(expected), got \(got)"
        }
    }
}

extension Volume {
    public var sizeDescription: String { "\(nx)x\(ny)x\(nz)" }

    /// Voxel-wise product with a user mask of the same size (the mask may be soft).
    public func masked(by mask: Volume) throws -> Volume {
        guard mask.nx == nx, mask.ny == ny, mask.nz == nz else {
            throw VolumeError.sizeMismatch(what: "mask", expected: sizeDescription, got: mask.sizeDescription)
        }
        var out = self
        for i in 0..<count { out.data[i] *= mask.data[i] }
        return out
    }

    /// Mean (Double accumulation in storage order).
    public var mean: Double {
        var s = 0.0
        for x in data { s += Double(x) }
        return s / Double(count)
    }

    /// Population standard deviation (divide by N: the original's Bessel factor N/(N−1) is computed
    /// with integer division and so equals 1, spec §15.4). Two-pass in Double.
    public var standardDeviation: Double {
        let m = mean
        var s = 0.0
        for x in data {
            let d = Double(x) - m
            s += d * d
        }
        return (s / Double(count)).squareRoot()
    }

    /// Σ v² in Double.
    public var sumOfSquares: Double {
        var s = 0.0
        for x in data { s += Double(x) * Double(x) }
        return s
    }

    public var minimum: Float { data.min()! }
    public var maximum: Float { data.max()! }

    /// Mean over voxels where `mask` is non-zero (binary use), nil if the mask selects nothing or
    /// does not match in size.
    public func mean(where mask: Volume) -> Double? {
        guard mask.nx == nx, mask.ny == ny, mask.nz == nz else { return nil }
        var s = 0.0
        var n = 0
        for i in 0..<count where mask.data[i] != 0 {
            s += Double(data[i])
            n += 1
        }
        return n > 0 ? s / Double(n) : nil
    }
}
