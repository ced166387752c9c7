import Foundation

/// One entry of the orientation list (spec §5): the angles tried for an image, their matrix, the
/// index of the sampling direction it came from and the unperturbed angles (for `--perturb`).
public struct Orientation: Sendable, Equatable {
    /// Current (possibly perturbed) entry angles; with symmetry these are (−psi, −tilt, −rot) of the
    /// direction/psi pair (spec §5.2).
    public var angles: EulerAngles
    /// E(angles).
    public var matrix: Matrix3
    /// Index into `AngularSampling.directions`.
    public var direction: Int
    /// The angles before any perturbation.
    public var unperturbed: EulerAngles

    public init(angles: EulerAngles, matrix: Matrix3, direction: Int, unperturbed: EulerAngles) {
        self.angles = angles
        self.matrix = matrix
        self.direction = direction
        self.unperturbed = unperturbed
    }

    /// An unperturbed entry with matrix E(angles), e.g. for the fixed-orientation modes of §5.3.
    public init(angles: EulerAngles, direction: Int) {
        self.init(angles: angles, matrix: angles.matrix, direction: direction, unperturbed: angles)
    }
}

/// The exhaustive orientation grid of spec §5.1–5.2 and its perturbation (§5.5).
///
/// Directions come from the Baumgardner icosahedral geodesic grid, built in exactly the original's
/// order (the order defines orientation indices and the loop order of the E-step), restricted to
/// cos(tiltF) ≤ z ≤ cos(tilt0), reduced to the asymmetric unit of the symmetry group and pruned so that
/// no two accepted directions (or symmetry copies) are within 0.75·angularStep. Each direction is
/// combined with nr_psi = ceil(360/psiStep) in-plane angles, direction-major.
public struct AngularSampling: Sendable {
    public let angularStep: Double
    public let psiStep: Double
    public let symmetry: SymmetryGroup
    public let tilt0: Double
    public let tiltF: Double
    public let smallAngle: Bool
    /// n_s = round(1.107149 / rad(angularStep)) + 1: points per icosahedron edge.
    public let subdivisions: Int
    /// Accepted unit directions (after asymmetric-unit reduction and pruning).
    public let directions: [SIMD3<Double>]
    /// (rot, tilt) of each accepted direction in degrees: rot = atan2(y, x), tilt = acos(z).
    public let directionAngles: [(rot: Double, tilt: Double)]
    /// Number of grid points inside the asymmetric unit before pruning (`numberSamplesAsymmetricUnit`).
    public let asymmetricUnitCount: Int
    /// The in-plane angles psi_j (degrees), including the 2.75° offset unless disabled.
    public let psiAngles: [Double]
    /// Direction-major, psi-minor: entry index = direction · psiCount + psi index (relied on by
    /// `LocalSearch`). Entries are computed on access (see `OrientationList`).
    public private(set) var orientations: OrientationList

    /// The in-plane offset that the original adds to every psi unless `--no_SMALLANGLE` is given.
    public static let smallAngleOffset = 2.75

    /// - Parameters:
    ///   - angularStep: `--ang` in degrees.
    ///   - psiStep: `--psi_sampling` in degrees; ≤ 0 means "same as angularStep".
    ///   - tilt0, tiltF: `--tilt0`, `--tiltF` in degrees, 0 ≤ tilt0 ≤ tiltF ≤ 180.
    ///   - smallAngle: add 2.75° to every psi (true unless `--no_SMALLANGLE`).
    /// - Throws: `GeometryError` for an angular step that is not positive or too coarse (n_s < 3), or a
    ///   tilt range outside [0, 180] (the original printed an error and exited with status 0, §14.35).
    public init(angularStep: Double, psiStep: Double = -1, symmetry: SymmetryGroup = .c1,
                tilt0: Double = 0, tiltF: Double = 180, smallAngle: Bool = true) throws {
        guard angularStep.isFinite, angularStep > 0 else {
            throw GeometryError("--ang \(angularStep): the angular sampling step must be a positive number of degrees")
        }
        guard tilt0.isFinite, tiltF.isFinite, tilt0 >= 0, tiltF <= 180, tilt0 <= tiltF else {
            throw GeometryError("--tilt0 \(tilt0) / --tiltF \(tiltF): need 0 ≤ tilt0 ≤ tiltF ≤ 180 degrees")
        }
        let psi = psiStep > 0 ? psiStep : angularStep
        guard psi.isFinite else {
            throw GeometryError("--psi_sampling \(psiStep): must be a finite number of degrees")
        }
        let ns = Int((1.107149 / (angularStep * Double.pi / 180)).rounded()) + 1
        guard ns >= 3 else {
            throw GeometryError("--ang \(angularStep): angular sampling too coarse (at most about 38 degrees; the icosahedral grid needs at least 3 points per edge, got \(ns))")
        }
        self.angularStep = angularStep
        self.psiStep = psi
        self.symmetry = symmetry
        self.tilt0 = tilt0
        self.tiltF = tiltF
        self.smallAngle = smallAngle
        self.subdivisions = ns

        let zMin = cos(tiltF * Double.pi / 180)
        let zMax = cos(tilt0 * Double.pi / 180)
        let grid = IcosahedralGrid.points(subdivisions: ns).filter { $0.z >= zMin && $0.z <= zMax }

        // Step 1: asymmetric unit.
        let inUnit = grid.filter { symmetry.isInAsymmetricUnit($0) }
        asymmetricUnitCount = inUnit.count
        // Step 2: prune points within 0.75·ang of an accepted point or of a symmetry copy of one.
        let accepted = Self.prune(inUnit, minimumAngle: 0.75 * angularStep, symmetry: symmetry)
        directions = accepted
        directionAngles = accepted.map { p in
            (rot: atan2(p.y, p.x) * 180 / Double.pi, tilt: acos(max(-1, min(1, p.z))) * 180 / Double.pi)
        }

        let nrPsi = Int((360 / psi).rounded(.up))
        let offset = smallAngle ? Self.smallAngleOffset : 0
        psiAngles = (0..<nrPsi).map { Double($0) * 360 / Double(nrPsi) + offset }

        orientations = OrientationList(directionAngles: directionAngles, psiAngles: psiAngles,
                                       symmetric: symmetry.hasSymmetry, perturbation: nil)
    }

    /// Number of orientations (nr_ang).
    public var count: Int { orientations.count }

    /// Number of in-plane angles per direction.
    public var psiCount: Int { psiAngles.count }

    // MARK: - Perturbation (spec §5.5)

    /// The grid with every entry's angles replaced by the angles of E(unperturbed)·P (Xmipp's
    /// `Euler_apply_transf` with L = I, R = P) and its matrix recomputed from them; `direction` and the
    /// unperturbed angles are kept. Perturbing always starts from the unperturbed angles, so
    /// perturbations do not accumulate over iterations.
    public func perturbed(by p: Matrix3) -> AngularSampling {
        var copy = self
        copy.orientations.perturbation = p
        return copy
    }

    /// The perturbation matrix P currently applied (nil: unperturbed).
    public var perturbation: Matrix3? { orientations.perturbation }

    /// Stream tag that separates the perturbation draws from every other use of the user seed.
    public static let perturbationStream: UInt64 = 0x5045_5254_5552_4221  // "PERTURB!"

    /// P = E(r1, r2, r3) with r_i ~ N(0, (angularStep/3)²) degrees, drawn from a generator keyed by
    /// (seed, iteration) only — every MPI rank gets the same P (fixing §14.24).
    public static func randomPerturbation(angularStep: Double, seed: UInt64, iteration: Int) -> Matrix3 {
        var rng = SeededRandom(seed: seed, streams: perturbationStream, UInt64(bitPattern: Int64(iteration)))
        let sd = angularStep / 3
        let r1 = rng.nextGaussian() * sd
        let r2 = rng.nextGaussian() * sd
        let r3 = rng.nextGaussian() * sd
        return EulerAngles(rot: r1, tilt: r2, psi: r3).matrix
    }

    // MARK: - Pruning

    /// Scans `points` in order and accepts a point only if its angle to every accepted point and to
    /// every symmetry copy g·q of an accepted point exceeds `minimumAngle` (degrees). Copies are binned
    /// by tilt so that only nearby bands are compared; the result equals the exhaustive comparison.
    static func prune(_ points: [SIMD3<Double>], minimumAngle: Double,
                      symmetry: SymmetryGroup) -> [SIMD3<Double>] {
        let cosMin = cos(minimumAngle * Double.pi / 180)
        let bandWidth = max(minimumAngle, 1e-3)
        let bandCount = Int((180 / bandWidth).rounded(.up)) + 1
        func band(_ p: SIMD3<Double>) -> Int {
            let t = acos(max(-1, min(1, p.z))) * 180 / Double.pi
            return min(bandCount - 1, Int(t / bandWidth))
        }
        var bands = [[SIMD3<Double>]](repeating: [], count: bandCount)
        var accepted: [SIMD3<Double>] = []
        for p in points {
            let b = band(p)
            var tooClose = false
            search: for nb in max(0, b - 1)...min(bandCount - 1, b + 1) {
                for q in bands[nb] where (p * q).sum() >= cosMin {
                    tooClose = true
                    break search
                }
            }
            if tooClose { continue }
            accepted.append(p)
            for g in symmetry.elements {
                let q = g * p
                bands[band(q)].append(q)
            }
        }
        return accepted
    }
}

/// The orientation list of an `AngularSampling`, computed on access rather than stored: a 1° grid has
/// 39 692 directions × 360 psi ≈ 14 million entries, which would take ~1.8 GB as stored structs.
/// Entry i has direction i / psiCount and psi index i % psiCount; its unperturbed angles are
/// (rot, tilt, psi) (c1) or (−psi, −tilt, −rot) (with symmetry, spec §5.2); with a perturbation P the
/// angles are those of E(unperturbed)·P and the matrix is E(angles) (spec §5.5).
public struct OrientationList: RandomAccessCollection, Sendable {
    public typealias Index = Int
    let directionAngles: [(rot: Double, tilt: Double)]
    let psiAngles: [Double]
    let symmetric: Bool
    var perturbation: Matrix3?

    public var startIndex: Int { 0 }
    public var endIndex: Int { directionAngles.count * psiAngles.count }

    /// Angles before any perturbation of entry i.
    @inlinable
    public func unperturbedAngles(_ i: Int) -> EulerAngles {
        unperturbedAngles(direction: i / psiCount, psi: i % psiCount)
    }

    public var psiCount: Int { psiAngles.count }

    @usableFromInline
    func unperturbedAngles(direction d: Int, psi j: Int) -> EulerAngles {
        let dir = directionAngles[d]
        let p = psiAngles[j]
        return symmetric
            ? EulerAngles(rot: -p, tilt: -dir.tilt, psi: -dir.rot)
            : EulerAngles(rot: dir.rot, tilt: dir.tilt, psi: p)
    }

    /// Current angles of entry i (perturbed if a perturbation is set).
    public func angles(_ i: Int) -> EulerAngles {
        let u = unperturbedAngles(i)
        guard let p = perturbation else { return u }
        return u.applying(left: .identity, right: p)
    }

    public subscript(i: Int) -> Orientation {
        precondition(i >= 0 && i < endIndex, "orientation index \(i) out of range 0..<\(endIndex)")
        let u = unperturbedAngles(i)
        let a = perturbation.map { u.applying(left: .identity, right: $0) } ?? u
        return Orientation(angles: a, matrix: a.matrix, direction: i / psiCount, unperturbed: u)
    }
}

/// The Baumgardner (1995) icosahedral geodesic grid in the exact point order of spec §5.1.
public enum IcosahedralGrid {
    /// Icosahedron vertices exactly as the original's constants (not exactly normalised).
    static let vertices: [SIMD3<Double>] = [
        SIMD3(0, 0, 1),
        SIMD3(0.723606900230461, -0.525731185781806, 0.447213343087301),
        SIMD3(0.723606900230461, 0.525731185781806, 0.447213343087301),
        SIMD3(-0.276393239417711, 0.850650928976665, 0.447213343087301),
        SIMD3(-0.8944273172062, 0, 0.447213343087301),
        SIMD3(-0.276393239417711, -0.850650928976665, 0.447213343087301),
        SIMD3(0.8944273172062, 0, -0.447213343087301),
        SIMD3(0.276393242471372, 0.850650927984471, -0.447213343087301),
        SIMD3(-0.723606898343194, 0.525731188379405, -0.447213343087301),
        SIMD3(-0.723606898343194, -0.525731188379405, -0.447213343087301),
        SIMD3(0.276393242471372, -0.850650927984471, -0.447213343087301),
        SIMD3(0, 0, -1),
    ]

    /// The ten diamonds (a, b, c, e) in construction order.
    static let diamonds: [(Int, Int, Int, Int)] = [
        (0, 1, 6, 2), (0, 2, 7, 3), (0, 3, 8, 4), (0, 4, 9, 5), (0, 5, 10, 1),
        (11, 10, 5, 9), (11, 9, 4, 8), (11, 8, 3, 7), (11, 7, 2, 6), (11, 6, 1, 10),
    ]

    /// Spherical linear interpolation, normalised to unit length.
    static func slerp(_ p: SIMD3<Double>, _ q: SIMD3<Double>, _ gamma: Double) -> SIMD3<Double> {
        let upsilon = acos((p * q).sum())
        let s = sin(upsilon)
        let v = (sin((1 - gamma) * upsilon) / s) * p + (sin(gamma * upsilon) / s) * q
        return v / (v * v).sum().squareRoot()
    }

    /// Points p→q for γ = i/(n_s−1), i = 1…n_s−1; with `skipEnd` the end point (q-coefficient > 0.9999)
    /// is left out.
    static func edge(_ p: SIMD3<Double>, _ q: SIMD3<Double>, skipEnd: Bool, ns: Int,
                     into out: inout [SIMD3<Double>]) {
        let upsilon = acos((p * q).sum())
        let s = sin(upsilon)
        for i in 1...(ns - 1) {
            let gamma = Double(i) / Double(ns - 1)
            let b = sin(gamma * upsilon) / s
            if skipEnd && b > 0.9999 { continue }
            let v = (sin((1 - gamma) * upsilon) / s) * p + b * q
            out.append(v / (v * v).sum().squareRoot())
        }
    }

    /// All 10(n_s−1)² + 2 grid points on the full sphere in the original's order (n_s ≥ 3).
    public static func points(subdivisions ns: Int) -> [SIMD3<Double>] {
        precondition(ns >= 3, "icosahedral grid needs at least 3 points per edge")
        let v = vertices
        var starts: [SIMD3<Double>] = []
        var ends: [SIMD3<Double>] = []
        for (a, b, c, e) in diamonds {
            edge(v[a], v[b], skipEnd: false, ns: ns, into: &starts)
            edge(v[c], v[b], skipEnd: true, ns: ns, into: &starts)
            edge(v[a], v[e], skipEnd: false, ns: ns, into: &ends)
            edge(v[c], v[e], skipEnd: true, ns: ns, into: &ends)
        }
        let count = starts.count
        var out: [SIMD3<Double>] = [v[11], v[0]]
        out.reserveCapacity(10 * (ns - 1) * (ns - 1) + 2)
        for i in 0..<count {
            out.append(i < 10 * ns - 15 ? starts[i] : ends[i])
        }
        var j = 0
        var flag = false
        for i in 0..<count {
            if j != 0 && j % (ns - 1) == 0 {
                j = 0
                flag = true
            }
            if j != 0 && j % (ns - 2) == 0 && flag {
                j = 0
                flag = false
            }
            let m = (j + 1) % ns
            if m > 1 {
                for t in 1..<m {
                    out.append(slerp(starts[i], ends[i], Double(t) / Double(m)))
                }
            }
            j += 1
        }
        return out
    }
}
