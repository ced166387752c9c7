import Foundation

/// Local angular searches (`--ang_search Δ`, spec §5.4): which entries of the orientation list an
/// image may visit, given its current orientation.
///
/// Deviation from the original (§14.20, fixed): the original computed each image's neighbourhood and
/// "old psi" once from the *input* angles and never updated them, and built a rank-dependent
/// orientation list from the directions near any local image. Here the full orientation list is kept
/// (identical on every rank) and the neighbourhood is recomputed from the image's *current* orientation
/// every time `candidates(around:)` is called (the E-step calls it once per image and iteration).
///
/// The search holds the sampling it was built from (including its current perturbation, which the
/// psi and pole tests read); rebuild it after `AngularSampling.perturbed(by:)` — that is free.
///
/// The tests themselves are those of the original:
/// * neighbour: the entry's sampling direction p satisfies p·(g·e) > cos Δ for some symmetry element g
///   (identity included), e = projection direction of the current orientation;
/// * psi (if `limitPsi`): the entry is near a pole, |wrap(tilt_a, −90, 90)| < 1.1·Δ, or its in-plane
///   angle is within Δ of the current one: |wrap(ψ_cur − ψ_a, −180, 180)| ≤ Δ for c1, and
///   |wrap(rot_cur − rot_a, −180, 180)| ≤ Δ with symmetry (entry angles there are (−ψ, −θ, −φ)).
public struct LocalSearch: Sendable {
    public let sampling: AngularSampling
    /// Δ in degrees.
    public let radius: Double
    public let limitPsi: Bool
    private let cosRadius: Double

    /// - Throws: `GeometryError` if Δ is not a positive finite number of degrees.
    public init(sampling: AngularSampling, radius: Double, limitPsi: Bool = true) throws {
        guard radius.isFinite, radius > 0 else {
            throw GeometryError("--ang_search \(radius): the local search radius must be a positive number of degrees")
        }
        self.sampling = sampling
        self.radius = radius
        self.limitPsi = limitPsi
        cosRadius = cos(radius * Double.pi / 180)
    }

    /// x wrapped into [lo, hi) by whole periods (hi − lo).
    static func wrap(_ x: Double, _ lo: Double, _ hi: Double) -> Double {
        let period = hi - lo
        var y = (x - lo).truncatingRemainder(dividingBy: period)
        if y < 0 { y += period }
        return y + lo
    }

    /// Indices (ascending) of the orientation-list entries that pass the neighbour and psi tests
    /// around the orientation `current`, given as entry angles (the same representation as
    /// `Orientation.angles` and as written to the output metadata).
    public func candidates(around current: EulerAngles) -> [Int] {
        let sym = sampling.symmetry
        // Undo the symmetry-mode angle inversion to get (rot, tilt, psi) of the direction/psi pair.
        let directionAngles = sym.hasSymmetry
            ? EulerAngles(rot: -current.psi, tilt: -current.tilt, psi: -current.rot)
            : current
        let oldPsi = sym.hasSymmetry ? current.rot : current.psi
        let e = directionAngles.direction
        let copies = sym.elements.map { $0 * e }

        let everything = radius >= 180
        // Entries are direction-major with psiCount entries per direction, so a passing direction
        // contributes the block [dir·psiCount, (dir+1)·psiCount) filtered by the psi test.
        let nPsi = sampling.psiCount
        let orientations = sampling.orientations
        var out: [Int] = []
        for (dir, p) in sampling.directions.enumerated() {
            guard everything || copies.contains(where: { ($0 * p).sum() > cosRadius }) else { continue }
            for i in (dir * nPsi)..<((dir + 1) * nPsi) {
                if limitPsi && !everything {
                    let a = orientations.angles(i)
                    // Near a pole any psi passes; otherwise the in-plane angle must be within Δ.
                    if abs(Self.wrap(a.tilt, -90, 90)) >= 1.1 * radius {
                        let entryPsi = sym.hasSymmetry ? a.rot : a.psi
                        if abs(Self.wrap(oldPsi - entryPsi, -180, 180)) > radius { continue }
                    }
                }
                out.append(i)
            }
        }
        return out
    }

    /// The entry whose matrix is closest to `current` among `candidates` (or among all entries when
    /// the list is empty), up to symmetry: the distance is min over g of the angle between g·A_entry
    /// and E(current) (a symmetric reference makes A and g·A equivalent). A well-defined starting
    /// orientation for a local search (§14.8).
    public func nearestOrientation(to current: EulerAngles, among candidates: [Int]) -> Int {
        let m = current.matrix
        let pool = candidates.isEmpty ? Array(sampling.orientations.indices) : candidates
        let elements = sampling.symmetry.elements
        var best = pool[0]
        var bestDistance = Double.infinity
        for i in pool {
            let a = sampling.orientations[i].matrix
            let d = elements.map { rotationDistance($0 * a, m) }.min()!
            if d < bestDistance {
                bestDistance = d
                best = i
            }
        }
        return best
    }
}
