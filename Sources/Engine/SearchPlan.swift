import Foundation
import Volumes

/// The orientations visited in one E-step and which local images visit each of them.
struct SearchPlan: Sendable {
    /// Entry angles (written to the output for the best orientation).
    var angles: [EulerAngles]
    /// A_a = E(angles[a]).
    var matrices: [Matrix3]
    /// Local image indices (ascending) visiting orientation a; nil means every image (exhaustive).
    var visitors: [[Int32]]?
    /// Number of orientations each image visits (the 1/n of the orientation prior).
    var visitCount: [Int]
    /// Bit c set: class c is visited, per entry of `visitors` (nil: every live class).
    var classMasks: [[UInt64]]? = nil

    var count: Int { angles.count }

    /// Builds the plan for this iteration.
    /// - fixed modes: one orientation per image, its input orientation (spec §5.3);
    /// - exhaustive: the (perturbed) grid for every image;
    /// - local search: candidates around each image's current best orientation (fix of §14.20),
    ///   or its input orientation before the first iteration.
    /// - adaptive (pass 2): the fine grid restricted to `restriction`, with the prior 1/n of the whole
    ///   grid (the orientations left out hold almost none of the posterior).
    static func make(setup: RefinementSetup, particles: [Particle], previous: [ParticleResult]?,
                     iteration: Int, restriction: SearchRestriction? = nil) -> SearchPlan {
        let o = setup.options
        if o.fixedOrientation || setup.sampling == nil {
            let angles = particles.map(\.inputAngles)
            return SearchPlan(angles: angles, matrices: angles.map(\.matrix),
                              visitors: particles.indices.map { [Int32($0)] },
                              visitCount: [Int](repeating: 1, count: particles.count))
        }
        var sampling = setup.sampling!
        if o.perturb {
            let p = AngularSampling.randomPerturbation(angularStep: o.angularStep, seed: o.seed, iteration: iteration)
            sampling = sampling.perturbed(by: p)
        }
        let angles = sampling.orientations.map(\.angles)
        let matrices = sampling.orientations.map(\.matrix)
        guard let local = setup.localSearch else {
            if let restriction {
                return SearchPlan(angles: angles, matrices: matrices, visitors: restriction.visitors,
                                  visitCount: [Int](repeating: angles.count, count: particles.count),
                                  classMasks: restriction.classMasks)
            }
            return SearchPlan(angles: angles, matrices: matrices, visitors: nil,
                              visitCount: [Int](repeating: angles.count, count: particles.count))
        }
        let candidates = restriction?.localCandidates ?? particles.indices.map {
            localCandidates(local, around: localCentre(of: $0, particles: particles, previous: previous), gridCount: angles.count)
        }
        let counts = candidates.map(\.count)
        guard let restriction else {
            var visitors = [[Int32]](repeating: [], count: angles.count)
            for (i, cands) in candidates.enumerated() {
                for a in cands { visitors[a].append(Int32(i)) }
            }
            return SearchPlan(angles: angles, matrices: matrices, visitors: visitors, visitCount: counts)
        }
        return localPass2(angles: angles, matrices: matrices, candidates: candidates, restriction: restriction,
                          fine: setup.sampling!)
    }

    /// A local search's fine candidates around `centre` (ascending, distinct); the whole grid when none is near.
    static func localCandidates(_ local: any OrientationCandidateSource, around centre: EulerAngles, gridCount: Int) -> [Int] {
        let cands = Array(Set(local.candidates(around: centre).filter { $0 >= 0 && $0 < gridCount })).sorted()
        return cands.isEmpty ? Array(0 ..< gridCount) : cands
    }

    /// The centre of image i's local search: its last best orientation, or its input orientation before
    /// the first iteration.
    static func localCentre(of i: Int, particles: [Particle], previous: [ParticleResult]?) -> EulerAngles {
        previous.flatMap { i < $0.count ? $0[i].angles : nil } ?? particles[i].inputAngles
    }

    /// Pass 2 of a two-pass local search: each image's local candidates (within `--ang_search`, psi
    /// limited) that lie within one coarse step of a coarse sample its pass 1 kept (the grid's own
    /// neighbourhood rule, `CoarseGrid`, applied to the candidates only; unperturbed matrices, as both
    /// grids are perturbed by the same right factor); an image left with none (kept samples all outside
    /// the psi range) visits all its candidates. Every class, as in the exhaustive pass 2. The prior
    /// stays 1/n of the local neighbourhood, as in the one-pass local search.
    private static func localPass2(angles: [EulerAngles], matrices: [Matrix3], candidates: [[Int]],
                                   restriction: SearchRestriction, fine: AngularSampling) -> SearchPlan {
        let kept = restriction.keptCoarse ?? []
        var visitors = [[Int32]](repeating: [], count: angles.count)
        for (i, cands) in candidates.enumerated() {
            let centres = i < kept.count ? kept[i] : []
            var near = centres.isEmpty ? cands : cands.filter { a in
                let m = fine.orientations.unperturbedAngles(a).matrix
                return centres.contains { rotationDistance(m, $0) <= restriction.reach }
            }
            if near.isEmpty { near = cands }
            for a in near { visitors[a].append(Int32(i)) }  // images in ascending order
        }
        return SearchPlan(angles: angles, matrices: matrices, visitors: visitors, visitCount: candidates.map(\.count))
    }

    /// The same grid with image i visiting only the orientations within `reach` degrees of `centres[i]`
    /// (the whole grid where the centre is nil or none is that close): the coarse pass of automatic local
    /// refinement.
    func local(around centres: [Matrix3?], reach: Double) -> SearchPlan {
        visiting(centres.map { centre in
            centre.map { c in matrices.indices.filter { rotationDistance(matrices[$0], c) <= reach } } ?? []
        })
    }

    /// The same grid with image i visiting only the orientations `lists[i]` (ascending indices; the whole
    /// grid where the list is empty).
    func visiting(_ lists: [[Int]]) -> SearchPlan {
        var visitors = [[Int32]](repeating: [], count: count)
        var counts = [Int](repeating: 0, count: lists.count)
        for (i, list) in lists.enumerated() {
            let near = list.isEmpty ? Array(matrices.indices) : list
            counts[i] = near.count
            for a in near { visitors[a].append(Int32(i)) }
        }
        return SearchPlan(angles: angles, matrices: matrices, visitors: visitors, visitCount: counts)
    }
}

/// The translations searched in one E-step with their log-prior (spec §6.2), on the cyclic grid
/// of the correlation volume.
struct ShiftWindow: Sendable {
    /// Physical index (z·d + y)·d + x of shift s in the c2r output.
    var index: [Int32]
    /// ln P_φ(s).
    var logPrior: [Double]
    /// |s|² (working pixels²).
    var radius2: [Double]
    /// Logical shift s (working pixels).
    var shifts: [SIMD3<Int32>]
    /// Position of s = 0 in the window.
    var zeroPosition: Int
    /// ln P_φ at every physical index of the d³ box (−∞ outside the window), for contiguous scans.
    var logPriorBox: [Float] = []
    /// Contiguous runs (start, length) of physical indices covering the window.
    var segments: [(start: Int, count: Int)] = []
    /// |s|² and the logical shift s at every physical index (meaningful inside the window).
    var radius2Box: [Double] = []
    var shiftBox: [SIMD3<Int32>] = []

    var count: Int { index.count }

    /// Fills `logPriorBox` and `segments` from the window entries.
    mutating func buildBoxLayout(dim d: Int) {
        var box = [Float](repeating: -Float.infinity, count: d * d * d)
        for j in index.indices { box[Int(index[j])] = Float(logPrior[j]) }
        logPriorBox = box
        var r2 = [Double](repeating: 0, count: d * d * d)
        var sh = [SIMD3<Int32>](repeating: .zero, count: d * d * d)
        for j in index.indices {
            r2[Int(index[j])] = radius2[j]
            sh[Int(index[j])] = shifts[j]
        }
        radius2Box = r2
        shiftBox = sh
        let sorted = index.map(Int.init).sorted()
        var runs: [(start: Int, count: Int)] = []
        for p in sorted {
            if let last = runs.last, last.start + last.count == p {
                runs[runs.count - 1].count += 1
            } else {
                runs.append((p, 1))
            }
        }
        segments = runs
    }

    static func make(dim d: Int, sigmaOffset: Double, limitTrans: Double, onlyZero: Bool) -> ShiftWindow {
        if onlyZero || sigmaOffset <= 1e-6 {
            var w = ShiftWindow(index: [0], logPrior: [0], radius2: [0], shifts: [.zero], zeroPosition: 0)
            w.buildBoxLayout(dim: d)
            return w
        }
        let var2 = sigmaOffset * sigmaOffset
        let logNorm = -1.5 * Foundation.log(2 * Double.pi * var2)
        let limit2 = limitTrans >= 0 ? limitTrans * limitTrans : Double.infinity
        // Renormalisation over the full logical d³ grid when --limit_trans cuts the prior (spec §6.2).
        var logRenorm = 0.0
        if limitTrans >= 0 {
            var total = 0.0
            let lo = -(d / 2), hi = d - 1 - d / 2
            for z in lo ... hi {
                for y in lo ... hi {
                    for x in lo ... hi {
                        let r2 = Double(x * x + y * y + z * z)
                        if r2 <= limit2 { total += Foundation.exp(logNorm - r2 / (2 * var2)) }
                    }
                }
            }
            logRenorm = total > 0 ? -Foundation.log(total) : 0
        }
        let sigdim = min(d, 2 * Int((6 * sigmaOffset).rounded(.up)) + 1)
        let lo = -(sigdim / 2), hi = sigdim - 1 - sigdim / 2
        var w = ShiftWindow(index: [], logPrior: [], radius2: [], shifts: [], zeroPosition: 0)
        for z in lo ... hi {
            for y in lo ... hi {
                for x in lo ... hi {
                    let r2 = Double(x * x + y * y + z * z)
                    if r2 > limit2 { continue }
                    if x == 0 && y == 0 && z == 0 { w.zeroPosition = w.index.count }
                    let px = (x + d) % d, py = (y + d) % d, pz = (z + d) % d
                    w.index.append(Int32((pz * d + py) * d + px))
                    w.logPrior.append(logNorm - r2 / (2 * var2) + logRenorm)
                    w.radius2.append(r2)
                    w.shifts.append(SIMD3(Int32(x), Int32(y), Int32(z)))
                }
            }
        }
        if w.index.isEmpty {  // limit_trans < 1 with a window: only s = 0 remains
            w = ShiftWindow(index: [0], logPrior: [0], radius2: [0], shifts: [.zero], zeroPosition: 0)
        }
        w.buildBoxLayout(dim: d)
        return w
    }
}
