import Foundation
import Volumes

/// A problem the Engine cannot continue from: bad option combinations, inconsistent inputs, or a
/// numerical breakdown. The message names the option or input at fault.
public struct EngineError: Error, CustomStringConvertible, Equatable, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Every numeric option and flag of `ml_tomo refine` that the computation needs (spec §2.1).
/// File names, ranks and output naming are the CLI's business and are not here.
///
/// Units follow the original: `offset` in original pixels (scaled to the working box internally),
/// `limitTrans` in working-box pixels, angles in degrees, `maxres` in cycles per working-box pixel.
public struct RefinementOptions: Sendable, Equatable {
    /// Number of classes K (from `--nref`, or the number of `--ref` volumes).
    public var nref: Int = 1
    /// First iteration number (`--istart`): numbering, regularisation schedule, start-up regularisation.
    public var istart: Int = 1
    /// Last iteration number (`--iter`), inclusive.
    public var iterations: Int = 25
    /// Angular sampling of directions (`--ang`), degrees.
    public var angularStep: Double = 10
    /// In-plane step (`--psi_sampling`); ≤ 0 means `angularStep`.
    public var psiSampling: Double = -1
    /// Local search radius (`--ang_search`); ≤ 0 means exhaustive search.
    public var angSearch: Double = -1
    /// Restrict psi to ±angSearch of the current psi during local searches (off with `--dont_limit_psirange`).
    public var limitPsi: Bool = true
    /// Range of tilt angles of the sampled directions (`--tilt0`, `--tiltF`), degrees.
    public var tilt0: Double = 0
    public var tiltF: Double = 180
    /// Point group name (`--sym`), e.g. "c1".
    public var symmetry: String = "c1"
    /// Working box size d (`--dim`); −1 means the original size.
    public var dim: Int = -1
    /// Maximum resolution in cycles per working-box pixel (`--maxres`).
    public var maxres: Double = 0.5
    /// Initial σ of the translation prior, original pixels (`--offset`).
    public var offset: Double = 3
    /// Initial noise σ per voxel (`--noise`).
    public var noise: Double = 1
    /// Regularisation schedule (`--reg0`, `--regF`, `--reg_steps`, spec §8.7).
    public var reg0: Double = 0
    public var regF: Double = 0
    public var regSteps: Int = 5
    /// Inner imputation iterations of the M-step (`--impute_iter`).
    public var imputeIterations: Int = 1
    /// Wedge-sum threshold of division mode (`--noimp_threshold`).
    public var noimpThreshold: Double = 1
    /// Divide by the wedge sums instead of imputing (`--dont_impute`).
    public var dontImpute: Bool = false
    public var fixSigmaNoise: Bool = false
    public var fixSigmaOffset: Bool = false
    public var fixFractions: Bool = false
    /// Convergence threshold on the relative reference change (`--eps`).
    public var eps: Double = 5e-5
    /// Maximum shift in working-box pixels (`--limit_trans`); < 0 means no limit.
    public var limitTrans: Double = -1
    /// Constrained cross-correlation with hard assignment instead of ML (`--maxCC`, spec §7).
    public var maxCC: Bool = false
    public var dontAlign: Bool = false
    public var dontRotate: Bool = false
    public var onlyAverage: Bool = false
    /// Random rigid perturbation of the orientation grid every iteration (`--perturb`).
    public var perturb: Bool = false
    /// Do not add 2.75° to every sampled psi (`--no_SMALLANGLE`); used by the CLI when building the grid.
    public var noSmallAngle: Bool = false
    /// Seed of every random decision (initial partition, orientations, half-sets, perturbation).
    /// Fixed by default so that runs are reproducible.
    public var seed: UInt64 = 1
    /// Threads inside one process (`--thr`).
    public var threads: Int = 1
    /// Å per original pixel, for the FSC frequency axis only (`--pixel_size`).
    public var pixelSize: Double = 1
    /// Use input angles/shifts when generating initial references (`--keep_angles`).
    public var keepAngles: Bool = false
    /// Low-pass every reference at its FSC = 0.5 resolution (`--filter`) / the initial ones (`--ini_filter`).
    public var filter: Bool = false
    public var iniFilter: Bool = false
    /// Re-seed a class whose fraction falls to zero instead of letting it die (see DEVIATIONS.md).
    public var reseedEmptyClasses: Bool = true
    /// With K > 1: number of first iterations in which all classes are refined as one consensus
    /// reference; the last of them splits the consensus into K classes (along its main directions of
    /// variation in the default computation, by a seeded random class per image in the classic one), so
    /// every class starts in the same frame (see DEVIATIONS.md). nil = automatic: 0, the classes start at
    /// the first iteration as the averages of a seeded random class per image, all in the one frame of
    /// that iteration's search (from runs that start from input poses: the split of those poses).
    public var consensusIterations: Int? = nil
    /// Starts of a run from generated references, the best kept by likelihood after
    /// `startIterations` iterations (`--starts S`, `StartSelection`); nil = automatic: 3 in the default
    /// computation, 1 (off) in the classic one. The caller applies it only to runs whose references are
    /// generated (no `--ref` or input poses; a `--restart` of such a run selects as the run would have).
    public var starts: Int? = nil
    /// Iterations of every start before they are scored (the failed start of StartSelection's example
    /// was last of five at its 3rd iteration's E-step and far behind at its 4th).
    public static let startIterations = 3
    /// The number of starts this computation runs when its references are generated.
    public var effectiveStarts: Int { starts ?? (usesResolutionLimit ? 3 : 1) }
    /// Runs from nothing per class in the class realignment (`--realign_classes S`, `ClassRealignment`);
    /// 0 = none.
    public var realignSeeds: Int = 0
    /// Iterations of each of those runs (`--realign_iter`).
    public var realignIterations: Int = 10
    /// Iterations of all classes together after the realignment: it runs after iteration
    /// `iterations − realignTail`, so these continue from the chosen poses (4 took the 400-particle SNR 0.01
    /// set from a merged start to 0.993 and 9°, README).
    public static let realignTail = 4
    /// The iteration after which the classes are realigned (nil: no realignment).
    public var realignAfter: Int? { realignSeeds > 0 ? iterations - Self.realignTail : nil }

    /// The original's computation (`--classic`): full-resolution E- and M-steps, imputation of the missing
    /// region from the previous reference, references generated from random subsets in random
    /// orientations, one-pass exhaustive search. Off by default: the resolution-limited MAP computation
    /// classifies from nothing where the original stays at chance (DEVIATIONS.md has the measurements).
    public var classic: Bool = false
    /// Regularisation parameter T of the MAP M-step (`--tau2_fudge`): the per-shell prior on the signal
    /// power is T × the power the half-set FSC supports; larger T trusts the data more.
    public var tau2Fudge: Double = 2
    /// Starting resolution of the likelihood (`--ini_high`, Å with `pixelSize`); 0 = 5 shells.
    public var initialHighResolution: Double = 0
    /// Shells added to the supported resolution each iteration (`--incr_size`); 0 = max(2, d/16).
    public var resolutionIncrement: Int = 0
    /// Padding factor of the Fourier-space reference rotation (2 is accurate enough for trilinear
    /// interpolation of the padded spectrum).
    public var rotationPadding: Int = 2
    /// Two-pass search in the resolution-limited mode (`--exhaustive` turns it off): a coarse pass on the grid of twice the step in a
    /// box cropped to what that grid resolves, then the fine grid only around the coarse orientations
    /// (and classes) that hold `adaptiveFraction` of each image's posterior.
    public var adaptiveSearch: Bool = true
    /// Local searches (`--ang_search`) in two passes as well (`--one_pass_local` turns it off). Pass 1 visits
    /// the coarse orientations nearest to the particle's fine candidates (`CoarseGrid.localSamples`); on the
    /// seed's 1-class local lines it gives the one-pass search's poses 4–5× faster (DEVIATIONS.md).
    public var twoPassLocalSearch: Bool = true
    /// Posterior mass of the coarse pass kept for the fine pass (`--adaptive_fraction`).
    public var adaptiveFraction: Double = 0.999
    /// Automatic local refinement of the two-pass search (`--auto_local`): once fewer than this fraction
    /// of the particles move by more than one angular step (or change class) between two iterations,
    /// the coarse pass searches only within `Refinement.localReachInCoarseSteps` coarse steps of each
    /// particle's last orientation. 0 keeps the coarse pass global.
    public var autoLocalFraction: Double = 0.1
    /// Report each particle's orientation at the peak of its log-posterior between grid samples
    /// (`PosePeak`) instead of at the best sample (`--grid_poses` turns it off).
    public var subGridPoses: Bool = true

    public init() {}

    /// The effective psi step.
    public var effectivePsiStep: Double { psiSampling > 0 ? psiSampling : angularStep }

    /// Whether each image keeps a fixed orientation (its input one).
    public var fixedOrientation: Bool { dontAlign || dontRotate || onlyAverage }
    /// Whether generated starting references use the input orientations (and, when they form a K-class
    /// partition, the input classes) instead of random ones (spec §4.6, §9.5).
    public var startsFromInputPoses: Bool { keepAngles || fixedOrientation }

    /// Whether the ML target is used (otherwise the maxCC machinery, spec §7).
    public var usesMaximumLikelihood: Bool { !maxCC && !onlyAverage }

    /// Whether E- and M-steps run resolution-limited with the MAP (Wiener) reference update: the
    /// default for maximum likelihood, off with `--classic`.
    public var usesResolutionLimit: Bool { !classic && usesMaximumLikelihood }

    /// Whether this run searches in two passes: the resolution-limited mode's exhaustive grid, and its
    /// local searches (`--ang_search`: pass 1 on the coarse orientations near each particle's pose) with
    /// `twoPassLocalSearch`. The classic computation keeps the original's one-pass search: with it the two-pass search sent the
    /// seed's external-reference line (`--ref`, one iteration at 15°, a reference on another grey scale)
    /// to a median error of 54° instead of < 15°, not yet understood. Fixed orientations and maxCC keep
    /// their one-pass search too.
    public var usesAdaptiveSearch: Bool {
        adaptiveSearch && usesResolutionLimit && !fixedOrientation && (angSearch <= 0 || twoPassLocalSearch)
    }

    /// Whether the reported orientations are refined between grid samples (`PosePeak`): the
    /// resolution-limited mode's searches; the classic computation, maxCC and fixed orientations report
    /// grid samples as the original, and so does a restricted tilt range (`--tilt0`/`--tiltF`), whose
    /// limits a peak between samples could cross.
    public var refinesPosesBetweenSamples: Bool {
        subGridPoses && usesResolutionLimit && !fixedOrientation && tilt0 <= 0 && tiltF >= 180
    }

    /// Whether the M-step imputes unmeasured Fourier components from the current reference.
    public var imputes: Bool { !dontImpute && usesMaximumLikelihood && !usesResolutionLimit }

    /// Whether the K classes start from one set of poses shared by all of them (instead of the original's
    /// random subsets in random orientations): the start is one reference, and the split into K classes
    /// happens at iteration `istart + effectiveConsensusIterations`, along the main directions of
    /// variation of the poses then known (the previous iteration's or the input's), else as a seeded
    /// random class per image (the default at the first iteration of a run without input poses).
    public var splitsConsensus: Bool { usesResolutionLimit && nref > 1 && !(startsFromInputPoses && inputHasClasses) }
    /// The input metadata puts every image in one of the K classes (set by the caller from the input
    /// doc): a run that starts from input poses then starts from those classes. Without classes it
    /// splits the consensus of the input poses at once (`splitsConsensus`).
    public var inputHasClasses = false

    /// The consensus iterations in force (see `consensusIterations`).
    public var effectiveConsensusIterations: Int {
        // Without poses the classes start as random halves at the first iteration: each class then finds
        // its own frame at the low starting resolution, where a particle's own noise in its class average
        // is worth few nats (a consensus first aligned one state and left the other unaligned: N 400,
        // SNR 0.01, DEVIATIONS.md). Input poses are already a consensus: split it at once.
        consensusIterations ?? 0
    }

    /// Regularisation strength at iteration `it` (spec §8.7).
    public func regularisation(at it: Int) -> Double {
        let steps = Double(max(regSteps, 1))
        return max(regF, reg0 - Double(it) * (reg0 - regF) / steps)
    }

    /// Every rule on the values of the options (spec §2.2 and the rules this program adds), in one place:
    /// the command line calls this once it has built the options, so a rule written here fires from the
    /// CLI and from any other caller alike. The message names the option(s) as the user spells them.
    /// Rules about files (which of `--nref`/`--ref` is given, `--restart`, `--mask`) are the CLI's.
    public func validate() throws {
        func bad(_ message: String) -> EngineError { EngineError(message) }
        if nref < 1 { throw bad("--nref must be at least 1 (got \(nref))") }
        if istart < 1 { throw bad("--istart must be at least 1 (got \(istart))") }
        if iterations < istart { throw bad("--iter (\(iterations)) must not be smaller than --istart (\(istart))") }
        if !(maxres > 0 && maxres <= 0.5) { throw bad("--maxres must lie in (0, 0.5] cycles/pixel (got \(maxres))") }
        if dim != -1 && dim < 4 { throw bad("--dim must be at least 4 (got \(dim)), or -1 for the original size") }
        if threads < 1 { throw bad("--thr must be at least 1 (got \(threads))") }
        if !(angularStep > 0) { throw bad("--ang must be positive (got \(angularStep))") }
        if angularStep > 42.3 { throw bad("--ang \(angularStep) is too coarse: the direction grid needs --ang <= 42.3 degrees") }
        if psiSampling > 360 { throw bad("--psi_sampling must be at most 360 degrees (got \(psiSampling))") }
        if angSearch > 180 { throw bad("--ang_search must not exceed 180 degrees (got \(angSearch))") }
        if !(0 <= tilt0 && tilt0 <= tiltF && tiltF <= 180) {
            throw bad("--tilt0 and --tiltF must satisfy 0 <= tilt0 <= tiltF <= 180 (got \(tilt0), \(tiltF))")
        }
        if reg0 < 0 || regF < 0 { throw bad("--reg0 and --regF must not be negative") }
        if regF > reg0 { throw bad("--regF (\(regF)) must not be larger than --reg0 (\(reg0))") }
        if regSteps < 1 { throw bad("--reg_steps must be at least 1 (got \(regSteps))") }
        if imputeIterations < 1 { throw bad("--impute_iter must be at least 1 (got \(imputeIterations))") }
        if noimpThreshold < 0 { throw bad("--noimp_threshold must not be negative (got \(noimpThreshold))") }
        if !(noise > 0) || !noise.isFinite { throw bad("--noise must be positive (got \(noise))") }
        if !(offset >= 0) || !offset.isFinite { throw bad("--offset must not be negative (got \(offset))") }
        if !(pixelSize > 0) { throw bad("--pixel_size must be positive (got \(pixelSize))") }
        if !(tau2Fudge > 0) || !tau2Fudge.isFinite { throw bad("--tau2_fudge must be positive (got \(tau2Fudge))") }
        if !(initialHighResolution >= 0) || !initialHighResolution.isFinite {
            throw bad("--ini_high must not be negative (got \(initialHighResolution))")
        }
        if !(autoLocalFraction >= 0 && autoLocalFraction <= 1) {
            throw bad("--auto_local must be in [0, 1] (got \(autoLocalFraction))")
        }
        if !(adaptiveFraction > 0 && adaptiveFraction <= 1) {
            throw bad("--adaptive_fraction must be in (0, 1] (got \(adaptiveFraction))")
        }
        if resolutionIncrement < 0 { throw bad("--incr_size must not be negative (got \(resolutionIncrement))") }
        if let n = consensusIterations, n < 0 { throw bad("--consensus_iter must not be negative (got \(n))") }
        if !(eps >= 0) { throw bad("--eps must not be negative (got \(eps))") }
        if let starts, starts < 1 { throw bad("--starts must be at least 1 (got \(starts))") }
        if realignSeeds < 0 { throw bad("--realign_classes must not be negative (got \(realignSeeds))") }
        if realignIterations < 1 { throw bad("--realign_iter must be at least 1 (got \(realignIterations))") }
        if let after = realignAfter {
            if !usesResolutionLimit { throw bad("--realign_classes needs the default computation, not --classic") }
            if fixedOrientation || angSearch > 0 {
                throw bad("--realign_classes searches every orientation: it cannot be combined with --dont_align, --dont_rotate, --only_average or --ang_search")
            }
            // The classes exist from the iteration that splits the consensus (the first without K > 1).
            let split = istart + effectiveConsensusIterations
            if after < split {
                throw bad("--realign_classes realigns after iteration --iter − \(Self.realignTail) = \(after), before the classes exist (the consensus splits in iteration \(split)): give --iter \(split + Self.realignTail) or more, or a smaller --consensus_iter")
            }
        }
        let fixedModes = [dontAlign ? "--dont_align" : nil, dontRotate ? "--dont_rotate" : nil,
                          onlyAverage ? "--only_average" : nil].compactMap { $0 }
        if fixedModes.count > 1 { throw bad("\(fixedModes.joined(separator: " and ")) cannot be combined: choose one") }
        if dontAlign && angSearch > 0 { throw bad("--dont_align keeps every orientation fixed: --ang_search makes no sense with it") }
        if dontRotate && angSearch > 0 { throw bad("--dont_rotate keeps every orientation fixed: --ang_search makes no sense with it") }
        if !limitPsi && angSearch > 0 && symmetry.lowercased() != "c1" {
            throw bad("--dont_limit_psirange cannot be combined with symmetry \(symmetry) and --ang_search")
        }
        do { _ = try SymmetryGroup(name: symmetry) } catch { throw bad("\(error)") }
        if rotationPadding < 1 || rotationPadding > 4 {
            throw bad("the Fourier rotation padding must be 1…4 (got \(rotationPadding))")
        }
    }
}
