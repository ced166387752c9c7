import Foundation
import Volumes

/// The coarse grid of the two-pass (adaptive) search and how the fine grid hangs from it.
///
/// Pass 1 scores every image against the grid of twice the angular step (about 1/8 of the
/// orientations) in a box cropped to the shells the fine step resolves; pass 2 visits, per image and for
/// every class, only the fine orientations within one coarse step of the coarse orientations that hold
/// `adaptiveFraction` of the image's pass-1 posterior. A sharp posterior keeps one or two coarse
/// samples, so pass 2 costs a few dozen fine orientations per image instead of the whole grid.
struct CoarseGrid: Sendable {
    /// The grid of twice the fine step (same symmetry, tilt range and psi offset).
    let sampling: AngularSampling
    /// Number of orientations of the fine grid.
    let fineCount: Int
    /// Fine orientations searched around each coarse orientation (ascending); empty for a local search,
    /// whose pass 2 takes, per image, its own candidates near the coarse samples it kept (`SearchPlan`):
    /// the table covers the whole fine grid, which at a local search's fine steps costs more than the
    /// search (40 s at 3°, against 6 s for the seed's whole 3° local line).
    let children: [[Int32]]
    /// Fourier shells of the coarse pass: those the fine step resolves (`resolvableRadius(step:)`). With
    /// the coarse step's own (half as many) shells the pass could not align the test phantom at 40°.
    let radius: Int
    /// The coarse orientations' unperturbed rotations (both grids share the perturbation's right factor).
    let matrices: [Matrix3]
    /// A local search's grid (empty otherwise): per fine direction, the coarse directions within 1.5
    /// coarse steps (all of them when none is that close), where a fine orientation's nearest coarse
    /// one lies; the fine grid itself and the coarse rotations' elements, row-major, 9 per orientation.
    private let nearDirections: [[Int32]]
    private let fine: AngularSampling?
    private let coarseElements: [Double]

    /// Nil when the coarse grid would not be coarser (or cannot be built: a step above ~38°).
    /// `local`: for a local search (no `children` table).
    init?(fine: AngularSampling, local: Bool = false) {
        guard let coarse = try? AngularSampling(angularStep: 2 * fine.angularStep, psiStep: 2 * fine.psiStep,
                                                 symmetry: fine.symmetry, tilt0: fine.tilt0, tiltF: fine.tiltF,
                                                 smallAngle: fine.smallAngle),
              coarse.count * 2 < fine.count else { return nil }
        sampling = coarse
        fineCount = fine.count
        // The fine samples within one coarse step, not only the nearest coarse sample's own (its
        // Voronoi cell): with cells alone a particle whose pose lay between two coarse samples was often
        // refined in the wrong cell (on the test phantom 7 of 24 ended 25–32° off, against ≤ 12° for the
        // exhaustive search).
        matrices = (0 ..< coarse.count).map { coarse.orientations.unperturbedAngles($0).matrix }
        children = local ? [] : Self.neighbourhoods(fine: fine, coarse: coarse, coarseMatrices: matrices, reach: coarse.angularStep)
        radius = Self.resolvableRadius(step: fine.angularStep)
        if local {
            let cosNear = cos(min(180, 1.5 * coarse.angularStep) * Double.pi / 180)
            nearDirections = fine.directions.map { f in
                let near = coarse.directions.indices.filter { (coarse.directions[$0] * f).sum() >= cosNear }
                return (near.isEmpty ? Array(coarse.directions.indices) : near).map { Int32($0) }
            }
            self.fine = fine
            coarseElements = matrices.flatMap { m in [m.e.0, m.e.1, m.e.2, m.e.3, m.e.4, m.e.5, m.e.6, m.e.7, m.e.8] }
        } else {
            nearDirections = []
            self.fine = nil
            coarseElements = []
        }
    }

    /// The coarse orientation nearest to each fine one of `indices` (largest trace of R_f R_cᵀ, over the
    /// coarse directions near the fine direction and every coarse psi). Computed for the candidates at
    /// hand rather than as a table of the whole fine grid: at 3° that table (550 000 orientations) cost
    /// 2 s per build, longer than the seed's 3° iteration's pass 1.
    func nearestCoarse(toFine indices: [Int]) -> [Int32] {
        guard let fine else { return [] }
        let psiCount = sampling.psiCount, finePsiCount = fine.psiCount
        return coarseElements.withUnsafeBufferPointer { m in
            indices.map { i -> Int32 in
                let f = fine.orientations.unperturbedAngles(i).matrix.e
                var best = -Double.infinity
                var arg: Int32 = 0
                for dc in nearDirections[i / finePsiCount] {
                    let first = Int(dc) * psiCount
                    for c in first ..< first + psiCount {
                        let b = 9 * c
                        // trace(R_f R_cᵀ) = Σ of the elementwise products = 1 + 2 cos(angle).
                        let t = f.0 * m[b] + f.1 * m[b + 1] + f.2 * m[b + 2] + f.3 * m[b + 3] + f.4 * m[b + 4]
                            + f.5 * m[b + 5] + f.6 * m[b + 6] + f.7 * m[b + 7] + f.8 * m[b + 8]
                        if t > best { best = t; arg = Int32(c) }
                    }
                }
                return arg
            }
        }
    }

    /// Pass 1 of a local search: the coarse orientations nearest to the particle's fine candidates
    /// (ascending; `candidates`: indices into the fine grid). The candidates follow the original's rule,
    /// which near a pole lets every psi through, so they can lie up to 180° from the centre; a ball of
    /// --ang_search + one coarse step around the centre missed those: on the seed's set 5 of 36
    /// consensus flips (109–137° off) that the one-pass ±50° search turned back stayed flipped under the
    /// two-pass search. Nearest, not every sample within a coarse step: at ±30° and 15° on the test
    /// phantom that would make pass 1 alone cost more than the one-pass search.
    /// One list per image (`candidates[i]`: its fine candidates); each fine orientation is looked up once.
    func localSamples(candidates: [[Int]]) -> [[Int]] {
        let union = Array(Set(candidates.joined()))
        let nearest = Dictionary(uniqueKeysWithValues: zip(union, nearestCoarse(toFine: union)))
        return candidates.map { Array(Set($0.map { Int(nearest[$0]!) })).sorted() }
    }

    /// The shell up to which a rotation by `step` degrees moves the edge of a particle that fills 80 % of
    /// the box by less than 1/1.2 of the shell's half period (RELION's coarse-size rule, in shells):
    /// q = 1.2 d / (ρ Δθ) with ρ = 0.4 d, i.e. 3/Δθ (radians), whatever the box.
    static func resolvableRadius(step: Double) -> Int {
        max(3, Int((3 / (step * Double.pi / 180)).rounded()))
    }

    /// The fine orientations within `reach` degrees of every coarse orientation (by the angle of
    /// R_f R_cᵀ), searched among the coarse directions within `reach` + one coarse step of the fine
    /// direction (all coarse psi); every fine orientation is also given to its nearest coarse one, so
    /// the neighbourhoods cover the grid. Unperturbed matrices: both grids are perturbed by the same
    /// right factor, which leaves the distances unchanged.
    static func neighbourhoods(fine: AngularSampling, coarse: AngularSampling, coarseMatrices: [Matrix3],
                               reach: Double) -> [[Int32]] {
        let cosNear = cos(min(180, reach + coarse.angularStep) * Double.pi / 180)
        let nearDirections: [[Int]] = fine.directions.map { f in
            let near = coarse.directions.indices.filter { (coarse.directions[$0] * f).sum() >= cosNear }
            return near.isEmpty ? Array(coarse.directions.indices) : near
        }
        var out = [[Int32]](repeating: [], count: coarse.count)
        for i in 0 ..< fine.count {
            let rf = fine.orientations.unperturbedAngles(i).matrix
            var best = Double.infinity
            var arg = 0
            for dc in nearDirections[i / fine.psiCount] {
                for j in 0 ..< coarse.psiCount {
                    let c = dc * coarse.psiCount + j
                    let e = rotationDistance(rf, coarseMatrices[c])
                    if e < best { best = e; arg = c }
                    if e <= reach { out[c].append(Int32(i)) }
                }
            }
            if best > reach { out[arg].append(Int32(i)) }
        }
        return out
    }
}

/// Which (fine orientation, image, class) triples pass 2 of the adaptive search visits.
struct SearchRestriction: Sendable {
    /// Coarse orientations kept per image however sharp its pass-1 posterior: at high SNR that
    /// posterior puts all its mass on one sample even when the pose lies between two (on the test
    /// phantom one particle in 24 ended 32° off where the exhaustive search found 4°). Pass 1 keeps
    /// these samples past its significance cut (`EStep.Tables.keepBest`): without that, the minimum
    /// never applied, and the seed's external-reference line (36 particles, SNR 5) aligned to a median
    /// of 53.9° instead of the exhaustive search's 11.4° (11.4° with it).
    static let minimumCoarseSamples = 3

    /// Local images visiting each fine orientation (ascending).
    var visitors: [[Int32]]
    /// Bit c set: class c is visited, per entry of `visitors`.
    var classMasks: [[UInt64]]
    /// Coarse triples evaluated in pass 1.
    var coarseTriples: Int
    /// Fine triples pass 2 will evaluate (0 for a local search: `SearchPlan` picks them).
    var fineTriples: Int
    /// A local search's pass 1 (a grid without `children`): per image, the kept coarse orientations as
    /// unperturbed matrices (empty: pass 1 found nothing, search every candidate), and the reach (one
    /// coarse step) within which pass 2 visits the image's candidates around them.
    var keptCoarse: [[Matrix3]]? = nil
    var reach = 0.0
    /// A local search's fine candidates per image, as pass 1 found them (`SearchPlan.localCandidates`),
    /// so that pass 2 does not scan the grid for them again.
    var localCandidates: [[Int]]? = nil

    /// Keeps, per image, the smallest set of coarse (orientation, class) samples that holds `fraction`
    /// of its pass-1 posterior (all samples when pass 1 found none) and expands them to their children.
    static func make(coarse: CoarseGrid, posteriors: [[(orientation: Int32, klass: Int32, logWeight: Double)]],
                     classes k: Int, fraction: Double, coarseTriples: Int) -> SearchRestriction {
        let fineCount = coarse.fineCount
        let local = coarse.children.isEmpty
        var keptCoarse = [[Matrix3]](repeating: [], count: local ? posteriors.count : 0)
        var visitors = [[Int32]](repeating: [], count: local ? 0 : fineCount)
        var masks = [[UInt64]](repeating: [], count: local ? 0 : fineCount)
        let all: UInt64 = k >= 64 ? ~0 : (UInt64(1) << UInt64(k)) - 1
        var fine = 0
        for (i, samples) in posteriors.enumerated() {
            var byFine = [Int32: UInt64]()
            if samples.isEmpty {
                if !local { for f in 0 ..< fineCount { byFine[Int32(f)] = all } }
            } else {
                let sorted = samples.sorted { ($0.logWeight, $1.orientation, $1.klass) > ($1.logWeight, $0.orientation, $0.klass) }
                let top = sorted[0].logWeight
                let weights = sorted.map { Foundation.exp($0.logWeight - top) }
                let total = weights.reduce(0, +)
                var kept = 0.0
                var orientations = Set<Int32>()
                for (s, w) in zip(sorted, weights) {
                    if local {
                        if !orientations.contains(s.orientation) {
                            keptCoarse[i].append(coarse.sampling.orientations.unperturbedAngles(Int(s.orientation)).matrix)
                        }
                    } else {
                        for f in coarse.children[Int(s.orientation)] { byFine[f] = all }
                    }
                    orientations.insert(s.orientation)
                    kept += w
                    if kept >= fraction * total && orientations.count >= minimumCoarseSamples { break }
                }
            }
            // Images are visited in ascending order, so every visitor list comes out ascending.
            for (f, mask) in byFine {
                visitors[Int(f)].append(Int32(i))
                masks[Int(f)].append(mask)
                fine += mask.nonzeroBitCount
            }
        }
        var restriction = SearchRestriction(visitors: visitors, classMasks: masks, coarseTriples: coarseTriples, fineTriples: fine)
        if local {
            restriction.keptCoarse = keptCoarse
            restriction.reach = coarse.sampling.angularStep
        }
        return restriction
    }
}
