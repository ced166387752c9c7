import Foundation

/// A proper point group (rotations only) given by its Xmipp name, with its rotation matrices and the
/// asymmetric-unit test used to reduce the sampling grid (spec §5.1).
///
/// Supported names (case-insensitive) and their axis settings — the settings used by Xmipp and RELION
/// (Heymann, Chagoyen & Belnap 2005 for the icosahedral ones), given here as the generating axes:
/// * `c1`: no symmetry.
/// * `cN`: N-fold axis along z.
/// * `dN`: N-fold axis along z, a 2-fold axis along x.
/// * `t`: 3-fold axis along z, a 2-fold axis along (0, √(2/3), √(1/3)).
/// * `o`: 4-fold axis along z, a 3-fold axis along (1, 1, 1).
/// * `i`, `i2`: 2-fold axes along x, y, z; 5-fold axis along (1, 0, φ) ("Crowther 222").
/// * `i1`: 2-fold axes along x, y, z; 5-fold axis along (φ, 0, −1) (the standard 222 setting rotated
///   90° about z).
/// * `i3`: 5-fold axis along z, a 2-fold axis along (−1, 0, φ) (tilted 31.7° towards −x).
/// * `i4`: 5-fold axis along z, a 2-fold axis along (1, 0, φ) (tilted 31.7° towards +x).
/// (φ = golden ratio; "i" = "i2" as in Xmipp/RELION.) Improper groups (ci, cs, cnv, cnh, …) and `i5`
/// are rejected with an error listing these names.
///
/// `elements` always starts with the identity and contains every group element once (so
/// `elements.count == order`); `nonIdentityElements` corresponds to Xmipp's stored list (`symsNo()`).
/// The set of copies g·p is the same as Xmipp's L·Rᵀ·p since a group contains every inverse.
public struct SymmetryGroup: Sendable, Equatable, CustomStringConvertible {
    public enum Family: Sendable, Equatable {
        case cyclic(Int)
        case dihedral(Int)
        case tetrahedral
        case octahedral
        case icosahedral(setting: Int)
    }

    public let name: String
    public let family: Family
    /// All rotation matrices of the group, identity first.
    public let elements: [Matrix3]
    /// A generic point used for the asymmetric unit of t, o and i (see `isInAsymmetricUnit`).
    private let dirichletCentre: SIMD3<Double>
    private let centreImages: [SIMD3<Double>]

    public static let supportedNames = "c1, cN (N ≥ 1), dN (N ≥ 2), t, o, i, i1, i2, i3, i4"

    public static let c1 = try! SymmetryGroup(name: "c1")

    /// Parses an Xmipp symmetry name; throws `GeometryError` naming the option and listing the
    /// supported names if it is not one of them.
    public init(name rawName: String) throws {
        let n = rawName.trimmingCharacters(in: .whitespaces).lowercased()
        func bad(_ why: String) -> GeometryError {
            GeometryError("--sym '\(rawName)': \(why). Supported symmetry groups: \(Self.supportedNames)")
        }
        let family: Family
        if n == "t" {
            family = .tetrahedral
        } else if n == "o" {
            family = .octahedral
        } else if n == "i" {
            family = .icosahedral(setting: 2)
        } else if n.hasPrefix("i"), let s = Int(n.dropFirst()) {
            guard (1...4).contains(s) else { throw bad("icosahedral setting i\(s) is not supported") }
            family = .icosahedral(setting: s)
        } else if n.hasPrefix("c") || n.hasPrefix("d") {
            let rest = n.dropFirst()
            guard let order = Int(rest) else {
                throw bad("improper or unknown group (only proper rotation groups are supported)")
            }
            if n.hasPrefix("c") {
                guard order >= 1 else { throw bad("cN needs N ≥ 1") }
                family = .cyclic(order)
            } else {
                guard order >= 2 else { throw bad("dN needs N ≥ 2") }
                family = .dihedral(order)
            }
        } else {
            throw bad("unknown symmetry group")
        }
        self.name = n
        self.family = family
        self.elements = Self.closure(of: Self.generators(for: family))

        // A point on no symmetry axis: its Dirichlet (nearest-copy) region is a fundamental domain.
        let c = SIMD3<Double>(0.1234, 0.2345, 0.9643)
        let cn = c / (c * c).sum().squareRoot()
        dirichletCentre = cn
        centreImages = elements.map { $0 * cn }
    }

    public static func == (a: SymmetryGroup, b: SymmetryGroup) -> Bool { a.name == b.name }

    public var description: String { name }

    /// Number of rotations in the group (1 for c1, N for cN, 2N for dN, 12, 24, 60).
    public var order: Int { elements.count }

    /// The group elements other than the identity (Xmipp's `symsNo()` list).
    public var nonIdentityElements: [Matrix3] { Array(elements.dropFirst()) }

    /// Whether the group has elements besides the identity ("do_sym" of spec §5.2).
    public var hasSymmetry: Bool { order > 1 }

    /// Whether unit direction `p` lies in (the closure of) the asymmetric unit used to reduce the
    /// sampling grid. Boundary points of the unit are accepted (they may have a symmetry copy that is
    /// accepted too; the 0.75·ang pruning of §5.1 removes such duplicates).
    ///
    /// * cN: −180/N ≤ rot ≤ 180/N (as the original).
    /// * dN: the same and tilt ≤ 90° (z ≥ 0).
    /// * t, o, i: the points at least as close to a fixed generic point c as to any of its symmetry
    ///   copies g·c (the Dirichlet cell of c), i.e. c·p ≥ (g·c)·p for all g — a fundamental domain of
    ///   area 4π/order. (The original uses hand-written angular ranges; any fundamental domain gives an
    ///   equivalent sampling of orientations.)
    public func isInAsymmetricUnit(_ p: SIMD3<Double>) -> Bool {
        let tol = 1e-9
        switch family {
        case .cyclic(1):
            return true
        case .cyclic(let n), .dihedral(let n):
            if case .dihedral = family, p.z < -tol { return false }
            // |rot| ≤ 180/N, tested without atan2 branch issues: points on the axis are in.
            let rxy = (p.x * p.x + p.y * p.y).squareRoot()
            if rxy < 1e-12 { return true }
            let rot = atan2(p.y, p.x) * 180 / Double.pi
            let half = 180 / Double(n)
            return rot >= -half - 1e-9 && rot <= half + 1e-9
        case .tetrahedral, .octahedral, .icosahedral:
            let own = (dirichletCentre * p).sum()
            for g in centreImages where (g * p).sum() > own + tol {
                return false
            }
            return true
        }
    }

    // MARK: - Construction

    /// Rotation by `degrees` about unit axis `u` (right-handed, active: R·v rotates v).
    public static func rotation(axis u0: SIMD3<Double>, degrees: Double) -> Matrix3 {
        let u = u0 / (u0 * u0).sum().squareRoot()
        let a = degrees * Double.pi / 180
        let c = cos(a), s = sin(a), t = 1 - c
        return Matrix3(t * u.x * u.x + c, t * u.x * u.y - s * u.z, t * u.x * u.z + s * u.y,
                       t * u.x * u.y + s * u.z, t * u.y * u.y + c, t * u.y * u.z - s * u.x,
                       t * u.x * u.z - s * u.y, t * u.y * u.z + s * u.x, t * u.z * u.z + c)
    }

    static func generators(for family: Family) -> [Matrix3] {
        let z = SIMD3<Double>(0, 0, 1), x = SIMD3<Double>(1, 0, 0)
        let phi = (1 + 5.0.squareRoot()) / 2
        switch family {
        case .cyclic(let n):
            return [rotation(axis: z, degrees: 360 / Double(n))]
        case .dihedral(let n):
            return [rotation(axis: z, degrees: 360 / Double(n)), rotation(axis: x, degrees: 180)]
        case .tetrahedral:
            // The 2-fold makes the tetrahedral angle arccos(1/√3) = 54.7° with the 3-fold on z.
            return [rotation(axis: z, degrees: 120),
                    rotation(axis: SIMD3(0, (2.0 / 3).squareRoot(), (1.0 / 3).squareRoot()), degrees: 180)]
        case .octahedral:
            return [rotation(axis: z, degrees: 90), rotation(axis: SIMD3(1, 1, 1), degrees: 120)]
        case .icosahedral(let setting):
            // A 5-fold and a 2-fold axis 31.7° apart (arctan(1/φ)) generate the whole group.
            switch setting {
            case 1:
                return [rotation(axis: x, degrees: 180), rotation(axis: SIMD3(phi, 0, -1), degrees: 72)]
            case 3:
                return [rotation(axis: z, degrees: 72), rotation(axis: SIMD3(-1, 0, phi), degrees: 180)]
            case 4:
                return [rotation(axis: z, degrees: 72), rotation(axis: SIMD3(1, 0, phi), degrees: 180)]
            default:
                return [rotation(axis: z, degrees: 180), rotation(axis: SIMD3(1, 0, phi), degrees: 72)]
            }
        }
    }

    /// All products of the generators, identity first, deduplicated with a tolerance.
    static func closure(of generators: [Matrix3]) -> [Matrix3] {
        var elements: [Matrix3] = [.identity]
        func contains(_ m: Matrix3) -> Bool { elements.contains { $0.maxAbsDifference(m) < 1e-6 } }
        var frontier: [Matrix3] = [.identity]
        while !frontier.isEmpty {
            var next: [Matrix3] = []
            for a in frontier {
                for g in generators {
                    let p = g * a
                    if !contains(p) {
                        elements.append(p)
                        next.append(p)
                    }
                }
            }
            frontier = next
            precondition(elements.count <= 120, "symmetry group closure did not terminate")
        }
        return elements
    }
}
