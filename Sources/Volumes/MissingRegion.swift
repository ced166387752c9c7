import Foundation

/// A region of Fourier space that the tilt series did not measure (spec §3.2–3.3), defined in the
/// frame of the experimental image.
///
/// * `wedgeY`: single-axis tilt series around y, tilt range [θ_y0, θ_yF]; missing = wedge around z in
///   the x–z plane.
/// * `wedgeX`: the same around x with [θ_x0, θ_xF].
/// * `pyramid`: dual-axis series; missing = intersection of both wedges.
/// * `cone`: conical tilt; missing = double cone of half-angle 90° − θ_y0 around z.
///
/// Angles in degrees, as in the `--missing` metadata.
public struct MissingRegion: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case wedgeY = "wedge_y"
        case wedgeX = "wedge_x"
        case pyramid
        case cone
    }

    public let kind: Kind
    public let thetaY0: Double
    public let thetaYF: Double
    public let thetaX0: Double
    public let thetaXF: Double

    // Derived constants (spec §3.2), computed exactly as the original does (tan of degrees → radians)
    // so that boundary voxels fall on the same side.
    let tg0Y: Double
    let tgFY: Double
    let tg0X: Double
    let tgFX: Double
    let tgCone: Double

    /// - Throws: `GeometryError` if a used angle is not finite, outside [−90°, 90°], or a tilt range
    ///   starts after it ends. Angles a kind does not use are ignored (they may be 0 placeholders).
    public init(kind: Kind, thetaY0: Double = 0, thetaYF: Double = 0,
                thetaX0: Double = 0, thetaXF: Double = 0) throws {
        func check(_ name: String, _ v: Double) throws {
            guard v.isFinite, v >= -90, v <= 90 else {
                throw GeometryError("missing region \(kind.rawValue): \(name) = \(v) must be a finite angle in [-90, 90] degrees")
            }
        }
        func checkRange(_ n0: String, _ a: Double, _ nF: String, _ b: Double) throws {
            try check(n0, a)
            try check(nF, b)
            guard a <= b else {
                throw GeometryError("missing region \(kind.rawValue): \(n0) = \(a) is larger than \(nF) = \(b) (the tilt range must run from the smaller to the larger angle)")
            }
        }
        switch kind {
        case .wedgeY:
            try checkRange("missingRegionThetaY0", thetaY0, "missingRegionThetaYF", thetaYF)
        case .wedgeX:
            try checkRange("missingRegionThetaX0", thetaX0, "missingRegionThetaXF", thetaXF)
        case .pyramid:
            try checkRange("missingRegionThetaY0", thetaY0, "missingRegionThetaYF", thetaYF)
            try checkRange("missingRegionThetaX0", thetaX0, "missingRegionThetaXF", thetaXF)
        case .cone:
            try check("missingRegionThetaY0", thetaY0)
        }
        self.kind = kind
        self.thetaY0 = thetaY0
        self.thetaYF = thetaYF
        self.thetaX0 = thetaX0
        self.thetaXF = thetaXF
        let d2r = Double.pi / 180
        tg0Y = -tan(d2r * (-90 - thetaYF))
        tgFY = -tan(d2r * (90 - thetaY0))
        tg0X = -tan(d2r * (-90 - thetaXF))
        tgFX = -tan(d2r * (90 - thetaX0))
        tgCone = -tan(d2r * (90 - thetaY0))
    }

    /// Parses the `missingRegionType` string; throws listing the accepted names.
    public init(type: String, thetaY0: Double = 0, thetaYF: Double = 0,
                thetaX0: Double = 0, thetaXF: Double = 0) throws {
        guard let k = Kind(rawValue: type) else {
            throw GeometryError("unknown missingRegionType '\(type)'; expected one of "
                + Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        try self.init(kind: k, thetaY0: thetaY0, thetaYF: thetaYF, thetaX0: thetaX0, thetaXF: thetaXF)
    }

    public static func == (a: MissingRegion, b: MissingRegion) -> Bool {
        a.kind == b.kind && a.thetaY0 == b.thetaY0 && a.thetaYF == b.thetaYF
            && a.thetaX0 == b.thetaX0 && a.thetaXF == b.thetaXF
    }

    public var description: String {
        switch kind {
        case .wedgeY: return "wedge_y \(thetaY0) \(thetaYF)"
        case .wedgeX: return "wedge_x \(thetaX0) \(thetaXF)"
        case .pyramid: return "pyramid \(thetaY0) \(thetaYF) \(thetaX0) \(thetaXF)"
        case .cone: return "cone \(thetaY0)"
        }
    }

    /// Whether frequency `k` = (x', y', z'), given in the image frame, was measured (spec §3.3 step 3,
    /// all comparisons inclusive; the plane z' = 0 is always measured).
    @inlinable
    public func isMeasured(_ k: SIMD3<Double>) -> Bool {
        isMeasured(x: k.x, y: k.y, z: k.z)
    }

    @usableFromInline
    func isMeasured(x: Double, y: Double, z: Double) -> Bool {
        switch kind {
        case .cone:
            let l = tgCone * z
            return x * x + y * y >= l * l
        case .wedgeY:
            return Self.wedgeTest(x, z, tg0Y, tgFY)
        case .wedgeX:
            return Self.wedgeTest(y, z, tg0X, tgFX)
        case .pyramid:
            return Self.wedgeTest(x, z, tg0Y, tgFY) || Self.wedgeTest(y, z, tg0X, tgFX)
        }
    }

    @inline(__always)
    static func wedgeTest(_ u: Double, _ z: Double, _ tg0: Double, _ tgF: Double) -> Bool {
        let l0 = tg0 * z
        let lF = tgF * z
        if z >= 0 {
            return u <= l0 || u >= lF
        } else {
            return u <= lF || u >= l0
        }
    }

    /// Half-complex binary mask M_A(κ) = binary(κ) · measured(Aᵀκ) (spec §3.3): the region measured by
    /// an image seen in the reference frame after the image has been aligned by A. With A = identity,
    /// the region in the image's own frame.
    public func mask(dim: Int, resolution: ResolutionMasks, rotation a: Matrix3 = .identity) -> [Float] {
        var out = [Float](repeating: 0, count: resolution.count)
        out.withUnsafeMutableBufferPointer { fillMask(into: $0, dim: dim, resolution: resolution, rotation: a) }
        return out
    }

    /// As `mask(dim:resolution:rotation:)`, writing into a caller's buffer of d·d·(d/2+1) floats
    /// (no allocation; every element is written).
    public func fillMask(into out: UnsafeMutableBufferPointer<Float>, dim: Int,
                         resolution: ResolutionMasks, rotation a: Matrix3 = .identity) {
        Self.fill(into: out, dim: dim, resolution: resolution, rotation: a, region: self)
    }

    /// Number of measured voxels of the image-frame mask over the full d³ grid (Hermitian mirroring);
    /// excludes κ = 0 and |κ| ≥ r_maxres (`nr_pixels` of spec §3.3).
    public func measuredCount(dim: Int, resolution: ResolutionMasks) -> Int {
        ResolutionMasks.fullGridCount(of: mask(dim: dim, resolution: resolution), dim: dim)
    }

    // MARK: - Optional region (no `--missing`): everything inside the resolution mask is measured.

    /// Mask for an optional region: `nil` (no `--missing`) gives the binary resolution mask itself.
    public static func mask(for region: MissingRegion?, dim: Int, resolution: ResolutionMasks,
                            rotation a: Matrix3 = .identity) -> [Float] {
        region?.mask(dim: dim, resolution: resolution, rotation: a) ?? resolution.binary
    }

    /// Buffer-filling variant for an optional region (`nil` copies the binary resolution mask).
    public static func fillMask(for region: MissingRegion?, into out: UnsafeMutableBufferPointer<Float>,
                                dim: Int, resolution: ResolutionMasks, rotation a: Matrix3 = .identity) {
        fill(into: out, dim: dim, resolution: resolution, rotation: a, region: region)
    }

    /// Measured voxel count for an optional region (`nil`: the resolution mask's full-grid count).
    public static func measuredCount(for region: MissingRegion?, dim: Int, resolution: ResolutionMasks) -> Int {
        region?.measuredCount(dim: dim, resolution: resolution) ?? resolution.fullGridCount
    }

    private static func fill(into out: UnsafeMutableBufferPointer<Float>, dim d: Int,
                             resolution: ResolutionMasks, rotation a: Matrix3, region: MissingRegion?) {
        precondition(resolution.dim == d, "resolution masks built for d = \(resolution.dim), asked for d = \(d)")
        precondition(out.count == d * d * (d / 2 + 1), "mask buffer must hold d·d·(d/2+1) floats")
        guard let region else {
            _ = resolution.binary.withUnsafeBufferPointer { out.initialize(from: $0) }
            return
        }
        // One specialised loop per region kind (the kind test is hoisted out of the voxel loop).
        switch region.kind {
        case .wedgeY:
            fillRows(out, resolution, d, a, WedgeTest(useY: false, tg0: region.tg0Y, tgF: region.tgFY))
        case .wedgeX:
            fillRows(out, resolution, d, a, WedgeTest(useY: true, tg0: region.tg0X, tgF: region.tgFX))
        case .pyramid:
            fillRows(out, resolution, d, a, PyramidTest(tg0Y: region.tg0Y, tgFY: region.tgFY,
                                                        tg0X: region.tg0X, tgFX: region.tgFX))
        case .cone:
            fillRows(out, resolution, d, a, ConeTest(tg: region.tgCone))
        }
    }

    /// out[κ] = binary(κ) · measured(Aᵀκ) over the half-complex grid. Aᵀκ = κx·(row 0 of A) + κy·(row 1)
    /// + κz·(row 2), accumulated per row so the inner loop is a few multiply-adds and the test.
    @inline(__always)
    private static func fillRows<T: RegionTest>(_ out: UnsafeMutableBufferPointer<Float>,
                                                _ resolution: ResolutionMasks, _ d: Int,
                                                _ a: Matrix3, _ test: T) {
        let hx = d / 2 + 1
        let a00 = a[0, 0], a01 = a[0, 1], a02 = a[0, 2]
        let a10 = a[1, 0], a11 = a[1, 1], a12 = a[1, 2]
        let a20 = a[2, 0], a21 = a[2, 1], a22 = a[2, 2]
        // Zero everything, then visit only the voxels inside the resolution sphere (binary = 1 there).
        out.update(repeating: 0)
        resolution.rowStart.withUnsafeBufferPointer { starts in
            resolution.rowEnd.withUnsafeBufferPointer { ends in
                for z in 0..<d {
                    let kz = Double(FourierVolume.frequency(z, d))
                    for y in 0..<d {
                        let r = z * d + y
                        let x0 = Int(starts[r]), x1 = Int(ends[r])
                        if x0 >= x1 { continue }
                        let ky = Double(FourierVolume.frequency(y, d))
                        let bx = ky * a10 + kz * a20
                        let by = ky * a11 + kz * a21
                        let bz = ky * a12 + kz * a22
                        let row = r * hx
                        for x in x0..<x1 {
                            let kx = Double(x)
                            let measured = test.measured(bx + kx * a00, by + kx * a01, bz + kx * a02)
                            out[row + x] = measured ? 1 : 0
                        }
                    }
                }
            }
        }
    }
}

/// The measured-region test of one region kind, specialised so the voxel loop has no kind switch.
private protocol RegionTest {
    func measured(_ x: Double, _ y: Double, _ z: Double) -> Bool
}

private struct WedgeTest: RegionTest {
    let useY: Bool
    let tg0: Double
    let tgF: Double
    @inline(__always)
    func measured(_ x: Double, _ y: Double, _ z: Double) -> Bool {
        MissingRegion.wedgeTest(useY ? y : x, z, tg0, tgF)
    }
}

private struct PyramidTest: RegionTest {
    let tg0Y: Double, tgFY: Double, tg0X: Double, tgFX: Double
    @inline(__always)
    func measured(_ x: Double, _ y: Double, _ z: Double) -> Bool {
        MissingRegion.wedgeTest(x, z, tg0Y, tgFY) || MissingRegion.wedgeTest(y, z, tg0X, tgFX)
    }
}

private struct ConeTest: RegionTest {
    let tg: Double
    @inline(__always)
    func measured(_ x: Double, _ y: Double, _ z: Double) -> Bool {
        let l = tg * z
        return x * x + y * y >= l * l
    }
}
