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
    /// Triples of the coarse pass (exact), scored in a box of side `coarseDim`; 0 without one.
    public var coarseTriples = 0
    public var coarseDim = 0
    public var coarseC2RSeconds = 0.0
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

    private func eStepSeconds(fineTriples: Int) -> Double {
        let share = Double(imagesOnSlowestRank) / Double(max(1, images))
        let fine = Double(fineTriples) * share * Self.eStepOverFloor * c2rSeconds
        let coarse = Double(coarseTriples) * share * Self.eStepOverFloor * coarseC2RSeconds
        let rotations = Double(rotationsPerRank * classes) * rotationSeconds
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
        let classes = o.splitsConsensus ? 1 : o.nref
        let rotations = o.onlyAverage ? 0
            : (o.fixedOrientation ? imagesOnBusiestRank(n, ranks: ranks) : (setup.sampling?.count ?? 0))
        let triples = o.onlyAverage ? 0 : Int((Double(n) * perImage).rounded()) * classes
        let timed = kernels(d, o.rotationPadding)
        var p = CostPrediction(images: n, ranks: ranks, threads: o.threads, classes: classes, dim: d, fullDim: setup.dim,
                               orientationsPerImage: perImage, rotationsPerRank: rotations,
                               triples: triples, triplesAtLeast: triples,
                               c2rSeconds: timed.c2r, rotationSeconds: timed.rotation)
        if o.usesAdaptiveSearch && setup.localSearch == nil && !o.onlyAverage, let fine = setup.sampling,
           let coarse = CoarseGrid(fine: fine) {
            let fewest = Double(coarse.children.map(\.count).min() ?? fine.count)
            p.coarseTriples = n * coarse.sampling.count * classes
            p.coarseDim = setup.croppedDim(radius: min(radius, coarse.radius))
            p.coarseC2RSeconds = kernels(p.coarseDim, o.rotationPadding).c2r
            p.triples = p.coarseTriples + triples
            p.triplesAtLeast = p.coarseTriples + Int((Double(n) * fewest).rounded()) * classes
            p.rotationsPerRank += coarse.sampling.count
        }
        return p
    }
}
