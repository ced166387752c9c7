import Foundation
import Volumes

/// One anisotropic Gaussian density: amplitude · exp(−½ Σ_j ((axes·(p − centre))_j / σ_j)²).
///
/// Gaussians are used because they are smooth enough (σ ≥ 1.2 px) to be sampled at any rotated and
/// shifted position without aliasing, so a simulated particle is the *exact* transformed phantom rather
/// than an interpolated copy of it.
public struct GaussianBlob: Sendable, Equatable {
    /// Centre in logical pixel coordinates (origin at floor(d/2)).
    public var centre: SIMD3<Double>
    /// Standard deviations along the blob's own axes, in pixels.
    public var sigma: SIMD3<Double>
    /// Rows are the blob's axes expressed in the box frame.
    public var axes: Matrix3
    public var amplitude: Double

    public init(centre: SIMD3<Double>, sigma: SIMD3<Double>, axes: Matrix3 = .identity, amplitude: Double) {
        self.centre = centre
        self.sigma = sigma
        self.axes = axes
        self.amplitude = amplitude
    }

    @inlinable
    public func value(at p: SIMD3<Double>) -> Double {
        let u = (axes * (p - centre)) / sigma
        return amplitude * exp(-0.5 * (u * u).sum())
    }
}

/// The density of one class: a shared body (analytic blobs or a sampled map) plus optional extra
/// domains. `sample(dim:map:shift:)` evaluates out(x) = density(map·x + shift), which is exactly the
/// forward model of spec §1.4 with map = A and shift = A·t.
public struct PhantomModel: Sendable {
    public enum Body: Sendable {
        /// Analytic body, sampled exactly at any position.
        case blobs([GaussianBlob])
        /// A map (e.g. from `--phantom`), resampled trilinearly (spec §1.1 semantics, outside 0).
        case map(Volume)
    }

    public var body: Body
    /// Domains that distinguish the classes (empty for the class without the domain).
    public var domains: [GaussianBlob]

    public init(body: Body, domains: [GaussianBlob]) {
        self.body = body
        self.domains = domains
    }

    /// out(x) = density(map·x + shift) on a dim³ grid in logical coordinates.
    public func sample(dim: Int, map: Matrix3 = .identity, shift: SIMD3<Double> = .zero) -> Volume {
        var out: Volume
        var analytic = domains
        switch body {
        case .blobs(let blobs):
            out = Volume(dim: dim)
            analytic += blobs
        case .map(let v):
            precondition(v.nx == dim && v.ny == dim && v.nz == dim, "phantom map must be \(dim)³")
            out = Volume(dim: dim)
            v.data.withUnsafeBufferPointer { src in
                out.data.withUnsafeMutableBufferPointer { dst in
                    resampleTrilinear(src.baseAddress!, nx: dim, ny: dim, nz: dim, map: map, shift: shift,
                                      outside: 0, into: dst.baseAddress!)
                }
            }
        }
        guard !analytic.isEmpty else { return out }
        let c = Double(dim / 2)
        out.data.withUnsafeMutableBufferPointer { dst in
            for z in 0..<dim {
                for y in 0..<dim {
                    let row = (z * dim + y) * dim
                    for x in 0..<dim {
                        let r = SIMD3(Double(x) - c, Double(y) - c, Double(z) - c)
                        let p = map * r + shift
                        var s = 0.0
                        for b in analytic { s += b.value(at: p) }
                        dst[row + x] += Float(s)
                    }
                }
            }
        }
        return out
    }
}

/// The family of class phantoms used by `ml_tomo simulate`: one shared, asymmetric body and one domain
/// that is present in class 1, absent in class 2 and moved to another place in every further class —
/// the way real complexes differ (a subunit bound or not, or a flexible arm in another position).
public enum PhantomFamily {
    /// Body blobs for a 32-pixel box (positions and widths scale with d/32). The arrangement has no
    /// symmetry, so every orientation is identifiable.
    static let bodyBlobs32: [(centre: SIMD3<Double>, sigma: SIMD3<Double>, axes: EulerAngles, amplitude: Double)] = [
        (SIMD3(0, 0, 0), SIMD3(5, 3.5, 3), EulerAngles(rot: 20, tilt: 30, psi: 0), 1.0),
        (SIMD3(6, 3, -2), SIMD3(2.5, 2.5, 2.5), .zero, 0.9),
        (SIMD3(-5, 4, 3), SIMD3(2, 3, 2), EulerAngles(rot: 0, tilt: 40, psi: 10), 0.8),
        (SIMD3(-2, -6, -3), SIMD3(3, 2, 2), .zero, 0.9),
        (SIMD3(1, -2, 7), SIMD3(2, 2, 2.5), .zero, 0.7),
    ]

    /// Domain positions for a 32-pixel box: class 1 uses the first, class 3 the second, and so on.
    static let domainPositions32: [SIMD3<Double>] = [
        SIMD3(7, -5, 4), SIMD3(-7, -2, -5), SIMD3(3, 8, -4), SIMD3(-6, 6, -3),
        SIMD3(5, 5, 6), SIMD3(-3, -7, 5), SIMD3(8, 1, -5), SIMD3(-8, 0, 4),
    ]

    static let domainSigma32 = 2.3

    /// Where the domain of class k (0-based) sits, or nil for the class without it (k = 1).
    static func domainPosition(classIndex k: Int, scale: Double) -> SIMD3<Double>? {
        if k == 1 { return nil }
        let slot = k == 0 ? 0 : k - 1
        if slot < domainPositions32.count { return domainPositions32[slot] * scale }
        // Beyond the hand-placed list: a Fibonacci-sphere point at radius 8.5 (×scale).
        let i = Double(slot), golden = Double.pi * (3 - 5.0.squareRoot())
        let zc = 1 - 2 * (i + 0.5) / Double(slot + 1)
        let r = (1 - zc * zc).squareRoot()
        return SIMD3(r * cos(golden * i), r * sin(golden * i), zc) * 8.5 * scale
    }

    /// K analytic phantoms for box size `dim`.
    public static func analytic(classes: Int, dim: Int) -> [PhantomModel] {
        let s = Double(dim) / 32
        let body = bodyBlobs32.map {
            GaussianBlob(centre: $0.centre * s, sigma: pointwiseMax($0.sigma * s, SIMD3(repeating: 1.2)), axes: $0.axes.matrix, amplitude: $0.amplitude)
        }
        return (0..<classes).map { k in
            PhantomModel(body: .blobs(body), domains: domain(classIndex: k, scale: s, amplitude: 1.0))
        }
    }

    /// K phantoms whose shared body is a given map (already at the target size). The domain's peak is
    /// 0.8 × the map's maximum so that it is as visible as a real subunit.
    public static func fromMap(_ map: Volume, classes: Int) -> [PhantomModel] {
        let s = Double(map.nx) / 32
        let peak = Double(map.data.max() ?? 1)
        let amplitude = 0.8 * (peak > 0 ? peak : 1)
        return (0..<classes).map { k in
            PhantomModel(body: .map(map), domains: domain(classIndex: k, scale: s, amplitude: amplitude))
        }
    }

    static func domain(classIndex k: Int, scale s: Double, amplitude: Double) -> [GaussianBlob] {
        guard let p = domainPosition(classIndex: k, scale: s) else { return [] }
        let sigma = max(1.2, domainSigma32 * s)
        return [GaussianBlob(centre: p, sigma: SIMD3(repeating: sigma), amplitude: amplitude)]
    }

    /// K phantoms from a map where the classes differ by a sphere of density removed at the periphery
    /// (a subunit or factor that is bound or not): class 1 is the whole map; class k ≥ 2 lacks the
    /// sphere of radius `radius` (pixels, 1-pixel cosine edge) centred at the densest place at
    /// `distance` pixels from the box centre that overlaps no sphere chosen before.
    /// - Returns: the phantoms and the chosen centres (logical pixels, origin at floor(d/2)).
    public static func fromMap(_ map: Volume, classes: Int, removingSphereOfRadius radius: Double,
                               atDistance distance: Double) -> (phantoms: [PhantomModel], centres: [SIMD3<Double>]) {
        let d = map.nx
        let c = Double(d / 2)
        func value(_ x: Int, _ y: Int, _ z: Int) -> Double {
            guard x >= 0, y >= 0, z >= 0, x < d, y < d, z < d else { return 0 }
            return Double(map.data[(z * d + y) * d + x])
        }
        let r = Int(radius.rounded(.up))
        func mass(at p: SIMD3<Double>) -> Double {
            var sum = 0.0
            let (px, py, pz) = (Int(p.x + c), Int(p.y + c), Int(p.z + c))
            for z in -r ... r { for y in -r ... r { for x in -r ... r where Double(x * x + y * y + z * z) <= radius * radius {
                sum += max(0, value(px + x, py + y, pz + z))
            } } }
            return sum
        }
        var candidates: [(SIMD3<Double>, Double)] = []
        let span = Int(distance.rounded(.up)) + 1
        for z in -span ... span { for y in -span ... span { for x in -span ... span {
            let p = SIMD3(Double(x), Double(y), Double(z))
            let l = (p * p).sum().squareRoot()
            if abs(l - distance) <= 0.5 { candidates.append((p, mass(at: p))) }
        } } }
        // Densest first; ties by position so the choice is deterministic.
        candidates.sort { $0.1 != $1.1 ? $0.1 > $1.1 : ($0.0.x, $0.0.y, $0.0.z) < ($1.0.x, $1.0.y, $1.0.z) }
        var centres: [SIMD3<Double>] = []
        for (p, _) in candidates where centres.count < max(0, classes - 1) {
            if centres.allSatisfy({ (($0 - p) * ($0 - p)).sum().squareRoot() >= 2 * radius }) { centres.append(p) }
        }
        let phantoms = (0 ..< classes).map { k -> PhantomModel in
            guard k >= 1, k - 1 < centres.count else { return PhantomModel(body: .map(map), domains: []) }
            var v = map
            let centre = centres[k - 1]
            for z in 0 ..< d { for y in 0 ..< d { for x in 0 ..< d {
                let q = SIMD3(Double(x) - c, Double(y) - c, Double(z) - c) - centre
                let l = (q * q).sum().squareRoot()
                let keep = l <= radius - 0.5 ? 0.0 : l >= radius + 0.5 ? 1.0 : 0.5 * (1 - cos(Double.pi * (l - radius + 0.5)))
                v.data[(z * d + y) * d + x] *= Float(keep)
            } } }
            return PhantomModel(body: .map(v), domains: [])
        }
        return (phantoms, centres)
    }
}
