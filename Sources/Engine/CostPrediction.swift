import Foundation
import Numerics
import Volumes

/// The cost model of `bench/README.md` applied to one run's inputs before any work is done
/// (`ml_tomo refine --dry-run`). Per iteration and rank:
///
///     t ≈ triples × r × c2r(d) / threads + rotations × c_rot / threads + t_reduce + t_M
///
/// The two kernel costs (one d³ c2r FFT, one Fourier-space rotation of a reference) are measured in
/// this process, so the prediction follows the machine it runs on; the E-step overhead `r` over one
/// FFT per triple and the reduction bandwidth are constants measured by `ml_tomo bench` (W1) and
/// written down here. The slowest rank (the one with the most images) sets the pace.
public struct CostPrediction: Sendable {
    /// E-step time ÷ (triples × c2r ÷ threads), measured on W1 (64 particles, 32³, K = 2, --ang 20,
    /// 2 threads): 1.69 (bench/README.md). Covers the product, the shift-window scan and pass 2.
    public static let eStepOverFloor = 1.7
    /// The same ratio for the two-pass search's coarse pass (pass 1 only, in its cropped box): 1.3,
    /// calibrated on W2 (2026-12-06: a 15.9 s E-step, of which ≈ 12 s for 151 200 coarse triples per rank in
    /// a 24³ box whose isolated c2r the dry run reads as 58–64 µs; the rest is the fine pass and the
    /// rotations as modelled).
    public static let coarseOverFloor = 1.3
    /// Bytes per second of one Allreduce through shared memory on the 2-rank test machine (64 MB in
    /// 0.17–0.35 s); a conservative figure for an InfiniBand cluster too.
    public static let reduceBytesPerSecond = 2.0e8
    /// M-step seconds per class and reference voxel (tens of ms at K = 2, d = 32).
    public static let mStepSecondsPerClassVoxel = 1.0e-6

    public var images: Int
    public var ranks: Int
    public var threads: Int
    public var classes: Int
    /// The box of the predicted (first) iteration; `fullDim` the run's working box (`--dim`), which the
    /// resolution-limited mode reaches as the resolution grows.
    public var dim: Int
    public var fullDim: Int
    /// Orientations one image visits per iteration (mean over a sample of the inputs for local searches).
    public var orientationsPerImage: Double
    /// Rotations of each reference per iteration on the busiest rank (the grid, or one per local image
    /// in the fixed-orientation modes).
    public var rotationsPerRank: Int
    /// (image, orientation, class) triples per iteration over all ranks: with the two-pass search, the
    /// coarse pass plus a fine pass over every fine orientation (its upper bound).
    public var triples: Int
    /// The two-pass search's lower bound: the coarse pass plus, per image and class, the fine children of
    /// the coarse sample with the fewest (each image keeps at least `SearchRestriction.minimumCoarseSamples`
    /// coarse samples, but their children overlap by an amount only the poses tell); how many it keeps
    /// depends on how sharp each particle's posterior is. Equal to `triples` otherwise.
    public var triplesAtLeast: Int
    /// The two-pass search's point estimate: the coarse pass plus, per image and class, the fine children
    /// of the coarse samples an image with a sharp posterior keeps (the best one and its two nearest,
    /// `SearchRestriction.minimumCoarseSamples`), averaged over the coarse grid. An iteration from good
    /// references (and every iteration once the orientations have settled) costs about this; early
    /// iterations at low SNR keep more. Equal to `triples` without a coarse pass.
    public var triplesExpected: Int
    /// The coarse triples of an iteration under automatic local refinement (`--auto_local`): the coarse
    /// orientations within `Refinement.localReachInCoarseSteps` of each image's pose; 0 where that cannot
    /// happen (one-pass or local searches).
    public var localCoarseTriples = 0
    /// Triples of the coarse pass (exact), scored in a box of side `coarseDim`; 0 without one.
    public var coarseTriples = 0
    public var coarseDim = 0
    public var coarseC2RSeconds = 0.0
    /// Rotations of each reference per iteration in the coarse pass (in its box), and their cost.
    public var coarseRotationsPerRank = 0
    public var coarseRotationSeconds = 0.0
    /// Seconds of one d³ c2r FFT and of one d³ Fourier-space rotation, measured here on one thread.
    public var c2rSeconds: Double
    public var rotationSeconds: Double

    /// Images on the busiest rank.
    public var imagesOnSlowestRank: Int { Self.imagesOnBusiestRank(images, ranks: ranks) }

    /// Ranks get contiguous blocks whose sizes differ by at most one: the largest is ⌈n / ranks⌉.
    static func imagesOnBusiestRank(_ n: Int, ranks: Int) -> Int { (n + ranks - 1) / max(1, ranks) }
    public var eStepSeconds: Double { eStepSeconds(fineTriples: triples - coarseTriples) }
    /// The E-step at the two-pass search's lower bound (= `eStepSeconds` without that search).
    public var eStepSecondsAtLeast: Double { eStepSeconds(fineTriples: triplesAtLeast - coarseTriples) }
    /// The E-step at the two-pass search's point estimate.
    public var eStepSecondsExpected: Double { eStepSeconds(fineTriples: triplesExpected - coarseTriples) }
    /// An iteration under automatic local refinement, with sharp posteriors, in the first iteration's box.
    public var eStepSecondsLocal: Double {
        eStepSeconds(fineTriples: triplesExpected - coarseTriples, coarseTriples: localCoarseTriples)
    }

    private func eStepSeconds(fineTriples: Int, coarseTriples: Int? = nil) -> Double {
        let share = Double(imagesOnSlowestRank) / Double(max(1, images))
        let fine = Double(fineTriples) * share * Self.eStepOverFloor * c2rSeconds
        let coarse = Double(coarseTriples ?? self.coarseTriples) * share * Self.coarseOverFloor * coarseC2RSeconds
        let rotations = Double(rotationsPerRank * classes) * rotationSeconds
            + Double(coarseRotationsPerRank * classes) * coarseRotationSeconds
        return (fine + coarse + rotations) / Double(max(1, threads))
    }
    public var reduceSeconds: Double {
        guard ranks > 1 else { return 0 }
        let doubles = 2 * classes * (dim * dim * dim + dim * dim * (dim / 2 + 1))
        return Double(8 * doubles) / Self.reduceBytesPerSecond
    }
    public var mStepSeconds: Double { Double(classes * dim * dim * dim) * Self.mStepSecondsPerClassVoxel }
    public var secondsPerIteration: Double { eStepSeconds + reduceSeconds + mStepSeconds }
    public var secondsPerIterationAtLeast: Double { eStepSecondsAtLeast + reduceSeconds + mStepSeconds }
    public var secondsPerIterationExpected: Double { eStepSecondsExpected + reduceSeconds + mStepSeconds }
    public var secondsPerLocalIteration: Double { eStepSecondsLocal + reduceSeconds + mStepSeconds }

    /// Predicts the first iteration of a run on `images` subtomograms (their input angles, in order,
    /// centre the local searches) with `ranks` processes of `setup.options.threads` threads. In the
    /// resolution-limited mode that iteration works in the box cropped to its starting radius (the full
    /// radius when it starts from `givenReferences` or input poses), searches one consensus class when K
    /// classes are to be split from it, and, with the two-pass search, scores the coarse grid in the box
    /// of the shells the fine step resolves, then a data-dependent part of the fine grid (`triplesAtLeast`
    /// … `triples`). Later iterations grow towards the full box.
    /// `kernels(d, padding)` measures the two kernels on this machine for a d³ box (one c2r FFT, one
    /// Fourier-space rotation, on one thread; Diagnostics' `KernelTiming`): the Engine reads no clocks.
    public static func predict(setup: RefinementSetup, inputAngles: [EulerAngles], ranks: Int, givenReferences: Bool,
                               kernels: (_ dim: Int, _ rotationPadding: Int) -> (c2r: Double, rotation: Double)) -> CostPrediction {
        let o = setup.options
        let n = inputAngles.count
        var perImage = 1.0
        if !o.fixedOrientation, let sampling = setup.sampling {
            if let local = setup.localSearch, n > 0 {
                // Evenly spaced sample: the neighbourhood size hardly depends on the centre.
                let step = max(1, n / 256)
                let sample = stride(from: 0, to: n, by: step).map { i -> Int in
                    let c = local.candidates(around: inputAngles[i]).count
                    return c == 0 ? sampling.count : c
                }
                perImage = Double(sample.reduce(0, +)) / Double(sample.count)
            } else {
                perImage = Double(sampling.count)
            }
        }
        let radius = setup.startingRadius(givenReferences: givenReferences)
        let d = o.usesResolutionLimit ? setup.croppedDim(radius: radius) : setup.dim
        // A K-class run starts from one consensus, unless the user gave the K references (`--ref`).
        let classes = o.splitsConsensus && !givenReferences ? 1 : o.nref
        let busiest = imagesOnBusiestRank(n, ranks: ranks)
        // Each visited orientation rotates the references once per rank: a local search visits at most
        // its images' candidates.
        let visitedPerRank = setup.localSearch == nil ? Double(setup.sampling?.count ?? 0)
            : min(Double(setup.sampling?.count ?? 0), Double(busiest) * perImage)
        let rotations = o.onlyAverage ? 0 : (o.fixedOrientation ? busiest : Int(visitedPerRank.rounded()))
        let triples = o.onlyAverage ? 0 : Int((Double(n) * perImage).rounded()) * classes
        let timed = kernels(d, o.rotationPadding)
        var p = CostPrediction(images: n, ranks: ranks, threads: o.threads, classes: classes, dim: d, fullDim: setup.dim,
                               orientationsPerImage: perImage, rotationsPerRank: rotations,
                               triples: triples, triplesAtLeast: triples, triplesExpected: triples,
                               c2rSeconds: timed.c2r, rotationSeconds: timed.rotation)
        if o.usesAdaptiveSearch && !o.onlyAverage, let fine = setup.sampling,
           let coarse = CoarseGrid(fine: fine, local: setup.localSearch != nil) {
            let matrices = coarse.matrices
            var fewest = Double(coarse.children.map(\.count).min() ?? 1)
            var sharp = setup.localSearch == nil ? Self.sharpPosteriorChildren(coarse) : 0
            var coarsePerImage = Double(coarse.sampling.count)
            if let local = setup.localSearch, n > 0 {
                // Pass 1 of a local search: the coarse orientations nearest to the fine candidates (as
                // `Refinement.coarsePass`); pass 2 at most the local candidates.
                let sampled = Array(stride(from: 0, to: n, by: max(1, n / 64)))
                let sampledCandidates = sampled.map {
                    SearchPlan.localCandidates(local, around: inputAngles[$0], gridCount: fine.count)
                }
                let coarseCounts = coarse.localSamples(candidates: sampledCandidates).map(\.count)
                var fineCounts: [Int] = []
                for (i, candidates) in zip(sampled, sampledCandidates) {
                    let c = inputAngles[i].matrix
                    let distances = matrices.map { rotationDistance($0, c) }
                    // Pass 2 with a sharp posterior at the centre: the candidates within one coarse step
                    // of the coarse samples nearest to it (as `SearchPlan.localPass2`).
                    let kept = Self.nearestCoarseSamples(distances).map { matrices[$0] }
                    let visited = candidates.filter { a in
                        let m = fine.orientations.unperturbedAngles(a).matrix
                        return kept.contains { rotationDistance(m, $0) <= coarse.sampling.angularStep }
                    }.count
                    fineCounts.append(visited == 0 ? candidates.count : visited)
                }
                coarsePerImage = Double(coarseCounts.reduce(0, +)) / Double(coarseCounts.count)
                sharp = min(perImage, Double(fineCounts.reduce(0, +)) / Double(fineCounts.count))
                fewest = min(1, perImage)
            } else if o.autoLocalFraction > 0 {
                let reach = Refinement.localReachInCoarseSteps * coarse.sampling.angularStep
                let step = max(1, matrices.count / 64)
                let sample = stride(from: 0, to: matrices.count, by: step).map { c in
                    matrices.reduce(0) { $0 + (rotationDistance($1, matrices[c]) <= reach ? 1 : 0) }
                }
                p.localCoarseTriples = Int((Double(n) * Double(sample.reduce(0, +)) / Double(sample.count)).rounded()) * classes
            }
            p.coarseTriples = Int((Double(n) * coarsePerImage).rounded()) * classes
            p.coarseDim = setup.croppedDim(radius: min(radius, coarse.radius))
            let coarseKernels = kernels(p.coarseDim, o.rotationPadding)
            p.coarseC2RSeconds = coarseKernels.c2r
            p.coarseRotationSeconds = coarseKernels.rotation
            p.triples = p.coarseTriples + triples
            p.triplesAtLeast = p.coarseTriples + Int((Double(n) * fewest).rounded()) * classes
            p.triplesExpected = p.coarseTriples + Int((Double(n) * max(fewest, sharp)).rounded()) * classes
            if setup.localSearch != nil {
                p.rotationsPerRank = Int(min(Double(fine.count), Double(busiest) * sharp).rounded())
                p.coarseRotationsPerRank = Int(min(Double(coarse.sampling.count), Double(busiest) * coarsePerImage).rounded())
            } else {
                p.coarseRotationsPerRank = coarse.sampling.count
            }
        }
        return p
    }

    /// The fine orientations an image with a sharp pass-1 posterior visits: the union of the children of
    /// a coarse sample and of its `minimumCoarseSamples` − 1 nearest coarse neighbours, averaged over
    /// an even sample of the coarse grid.
    static func sharpPosteriorChildren(_ coarse: CoarseGrid) -> Double {
        let matrices = coarse.matrices
        let count = matrices.count
        guard count > 0 else { return 0 }
        let step = max(1, count / 64)
        let sizes = stride(from: 0, to: count, by: step).map { c -> Int in
            var union = Set<Int32>()
            for j in nearestCoarseSamples(matrices.map { rotationDistance($0, matrices[c]) }) {
                union.formUnion(coarse.children[j])
            }
            return union.count
        }
        return Double(sizes.reduce(0, +)) / Double(sizes.count)
    }

    /// The coarse samples a sharp pass-1 posterior keeps: the `minimumCoarseSamples` nearest to its peak
    /// (`distances`: from every coarse sample to it; ties by index).
    private static func nearestCoarseSamples(_ distances: [Double]) -> [Int] {
        // One pass keeping the few smallest (a sort of the whole coarse grid per image was 7 % of a 3° dry run).
        var best: [Int] = []
        for j in distances.indices {
            let at = best.firstIndex { (distances[j], j) < (distances[$0], $0) } ?? best.count
            if at < SearchRestriction.minimumCoarseSamples {
                best.insert(j, at: at)
                if best.count > SearchRestriction.minimumCoarseSamples { best.removeLast() }
            }
        }
        return best
    }
}
