import ArgumentParser
import Engine

/// Every option of Xmipp's ml_tomo v3.0 (spec §2.1, including the expert and hidden ones), plus the
/// options this program adds (`--doc`, `--seed`, `--dry-run`). Spellings follow the original, so the
/// seed's command lines run verbatim; single-dash spellings are rewritten by ArgumentNormalisation.
struct RefineOptions: ParsableArguments {
    // MARK: Input and output
    @Option(name: .customShort("i"), help: ArgumentHelp("Input images: Xmipp metadata (sel/doc/xmd), RELION STAR, or a volume/stack file.", valueName: "metadata"))
    var input: String

    @Option(name: [.customLong("oroot"), .customShort("o")], help: ArgumentHelp("Output root name.", valueName: "rootname"))
    var oroot: String = "mltomo"

    @Option(name: .customLong("nref"), help: "Number of references to generate from random subsets (exclusive with --ref).")
    var nref: Int?

    @Option(name: .customLong("ref"), help: ArgumentHelp("Initial reference volume, or metadata listing reference volumes (optional `weight` column); scaled to the particles' grey scale unless --classic.", valueName: "file"))
    var ref: String?

    @Option(name: .customLong("doc"), help: ArgumentHelp("Metadata with input angles, shifts, classes and missing-region numbers, matched to -i by _image.", valueName: "metadata"))
    var doc: String?

    @Option(name: .customLong("missing"), help: ArgumentHelp("Metadata file with missing data region definitions.", valueName: "metadata"))
    var missing: String?

    @Option(name: .customLong("sym"), help: ArgumentHelp("Point-group symmetry (c1, cN, dN, t, o, i).", valueName: "symgroup"))
    var sym: String = "c1"

    // MARK: Angular sampling
    @Option(name: .customLong("ang"), help: "Angular sampling rate (degrees).")
    var ang: Double = 10

    @Option(name: .customLong("ang_search"), help: "Angular search range around each particle's current orientation (degrees); <= 0: exhaustive.")
    var angSearch: Double = -1

    @Flag(name: .customLong("dont_limit_psirange"), help: "With --ang_search: do not limit the psi range.")
    var dontLimitPsiRange = false

    @Option(name: .customLong("limit_trans"), help: "Maximum translation (working-box pixels); < 0: no limit.")
    var limitTrans: Double = -1

    @Option(name: .customLong("tilt0"), help: "Lower tilt limit of the sampled directions (degrees).")
    var tilt0: Double = 0

    @Option(name: .customLong("tiltF"), help: "Upper tilt limit of the sampled directions (degrees).")
    var tiltF: Double = 180

    @Option(name: .customLong("psi_sampling"), help: "Angular sampling rate for the in-plane rotations (degrees); < 0: same as --ang.")
    var psiSampling: Double = -1

    // MARK: Regularization
    @Option(name: .customLong("reg0"), help: "Initial regularization parameters (in N/K^2).")
    var reg0: Double = 0

    @Option(name: .customLong("regF"), help: "Final regularization parameters (in N/K^2).")
    var regF: Double = 0

    @Option(name: .customLong("reg_steps"), help: "Number of iterations in which the regularization is changed from reg0 to regF.")
    var regSteps: Int = 5

    // MARK: Others
    @Flag(name: .customLong("dont_rotate"), help: "Keep orientations from the input; search translations and classes.")
    var dontRotate = false

    @Flag(name: .customLong("dont_align"), help: "Keep orientations and translations from the input; only classify.")
    var dontAlign = false

    @Flag(name: .customLong("only_average"), help: "Keep orientations, translations and classes from the input; average once.")
    var onlyAverage = false

    @Flag(name: .customLong("perturb"), help: "Apply a different random perturbation to the angular sampling in each iteration.")
    var perturb = false

    @Option(name: .customLong("dim"), help: "Use downscaled (in Fourier space) images of this size.")
    var dim: Int = -1

    @Option(name: .customLong("maxres"), help: "Maximum resolution (in pixel^-1) to use, in (0, 0.5].")
    var maxres: Double = 0.5

    @Option(name: .customLong("thr"), help: "Number of shared-memory threads per MPI rank.")
    var thr: Int = 1

    // MARK: Additional options
    @Option(name: .customLong("impute_iter"), help: "Number of inner imputation iterations in the M-step.")
    var imputeIter: Int = 1

    @Option(name: .customLong("iter"), help: "Maximum number of iterations (last iteration number).")
    var iter: Int = 25

    @Option(name: .customLong("istart"), help: "Number of the first iteration.")
    var istart: Int = 1

    @Option(name: .customLong("noise"), help: "Expected standard deviation of the pixel noise.")
    var noise: Double = 1

    @Option(name: .customLong("offset"), help: "Expected standard deviation of the origin offsets (original pixels).")
    var offset: Double = 3

    @Option(name: .customLong("frac"), help: ArgumentHelp("Metadata with expected model fractions (a `weight` column), one row per reference.", valueName: "metadata"))
    var frac: String?

    @Option(name: .customLong("restart"), help: ArgumentHelp("Resume from the state written at <oroot>_itNNNNNN (its .h5 and .doc).", valueName: "oroot_itNNNNNN"))
    var restart: String?

    @Flag(name: .customLong("fix_sigma_noise"), help: "Do not re-estimate the standard deviation of the noise.")
    var fixSigmaNoise = false

    @Flag(name: .customLong("fix_sigma_offset"), help: "Do not re-estimate the standard deviation of the offsets.")
    var fixSigmaOffset = false

    @Flag(name: .customLong("fix_fractions"), help: "Do not re-estimate the model fractions.")
    var fixFractions = false

    @Option(name: .customLong("eps"), help: "Stopping criterion: relative change of the references.")
    var eps: Double = 5e-5

    @Option(name: .customLong("pixel_size"), help: "Pixel size (Angstrom) of the input images, for resolution figures and file headers.")
    var pixelSize: Double = 1

    @Option(name: .customLong("mask"), help: ArgumentHelp("Mask for focussed classification (1 = classify, 0 = ignore); requires --dont_align.", valueName: "maskfile"))
    var mask: String?

    @Flag(name: .customLong("maxCC"), help: "Use constrained cross-correlation and weighted averaging instead of ML.")
    var maxCC = false

    @Flag(name: .customLong("dont_impute"), help: "Use weighted averaging (division by the wedge sums) instead of imputation.")
    var dontImpute = false

    @Option(name: .customLong("noimp_threshold"), help: "Threshold to avoid division by zero for weighted averaging.")
    var noimpThreshold: Double = 1

    @Option(name: .customLong("trymindiff_factor"), help: ArgumentHelp("First-iteration guess of the exponent offset (kept for compatibility; the log-sum-exp E-step does not need it).", visibility: .hidden))
    var trymindiffFactor: Double = 0.9

    @Flag(name: .customLong("no_SMALLANGLE"), help: ArgumentHelp("Do not add 2.75 degrees to every sampled psi.", visibility: .hidden))
    var noSmallAngle = false

    @Flag(name: .customLong("keep_angles"), help: ArgumentHelp("Use the input angles and shifts to generate the initial references.", visibility: .hidden))
    var keepAngles = false

    @Flag(name: .customLong("filter"), help: ArgumentHelp("Low-pass filter every reference at its FSC = 0.5 resolution in each iteration.", visibility: .hidden))
    var filter = false

    @Flag(name: .customLong("ini_filter"), help: ArgumentHelp("Low-pass filter the generated initial references at their FSC = 0.5 resolution.", visibility: .hidden))
    var iniFilter = false

    // MARK: Added by this program
    @Flag(name: .customLong("classic"), help: "The original's computation: full resolution, imputation of the missing region, references from random subsets in random orientations, one-pass search (see DEVIATIONS.md).")
    var classic = false
    @Flag(name: .customLong("map"), help: "Resolution-limited MAP refinement (the default; the flag is kept for scripts that give it): the likelihood starts at --ini_high and grows with the half-set FSC, the Wiener update replaces imputation, and --nref K classes start at the first iteration as averages of random halves in one frame (see DEVIATIONS.md).")
    var map = false

    @Option(name: .customLong("tau2_fudge"), help: "Regularisation T of the resolution-limited (MAP) reference update: larger trusts the data more.")
    var tau2Fudge: Double = 2

    @Option(name: .customLong("ini_high"), help: ArgumentHelp("Starting resolution (Angstrom, with --pixel_size) of the resolution-limited likelihood; default: box/8 Fourier shells.", valueName: "A"))
    var iniHigh: Double = 0

    @Option(name: .customLong("incr_size"), help: ArgumentHelp("Fourier shells added per iteration beyond the resolution the half-set FSC supports; default max(2, box/16).", valueName: "shells"))
    var incrSize: Int = 0

    @Option(name: .customLong("consensus_iter"), help: ArgumentHelp("Reference-free classes: iterations refined as one consensus before it is split along its main directions of variation; default 0: the classes start at the first iteration as averages of random halves.", valueName: "n"))
    var consensusIter: Int?

    @Option(name: .customLong("starts"), help: ArgumentHelp("Runs from generated references (no --ref, no input poses): after 3 iterations, S − 1 more starts from other seeds run their first 3 iterations, each start is scored by one E-step of all particles at one common resolution, and the run goes on from the highest log-likelihood if it beats this start's by more than 0.02 nats per particle and Fourier component (a start from the unaligned average can lock a pseudo-symmetric particle into a wrong frame). Costs about 3 × (S − 1) early iterations plus S E-steps. Default 3 (--classic: 1, off).", valueName: "S"))
    var starts: Int?

    @Option(name: .customLong("realign_classes"), help: ArgumentHelp("After iteration --iter − 4, refine each class alone from its unaligned average with S seeds (--realign_iter iterations each), score them and the class as it is by one E-step of the class's members at one common resolution, keep the highest log-likelihood, and run the last 4 iterations from there. For a class that the consensus left unaligned (large differences at SNR ≤ 0.01); costs about K × S × --realign_iter iterations on N/K particles. Default 0: off.", valueName: "S"))
    var realignClasses: Int = 0

    @Option(name: .customLong("realign_iter"), help: ArgumentHelp("Iterations of each run of --realign_classes.", valueName: "n"))
    var realignIter: Int = 10

    @Flag(name: .customLong("exhaustive"), help: "One pass over the whole orientation grid instead of the default two-pass search (coarse grid of twice --ang in a cropped box, then --ang only around the coarse orientations that hold --adaptive_fraction of each particle's posterior). --classic always searches in one pass.")
    var exhaustive = false

    @Flag(name: .customLong("one_pass_local"), help: "Local searches (--ang_search) in one pass over each particle's candidates, as the original, instead of the default two passes (the coarse orientations the candidates reach first, then the candidates near the coarse samples that hold --adaptive_fraction of the posterior).")
    var onePassLocal = false

    @Flag(name: .customLong("grid_poses"), help: "Report each particle's best orientation on the search grid, as the original, instead of the peak of its posterior between the grid samples (a quadratic fitted to the log-weights of the samples around the best one). --classic, --maxCC, fixed orientations and a --tilt0/--tiltF range always report grid samples.")
    var gridPoses = false

    @Flag(name: .customLong("two_pass_local"), help: ArgumentHelp("Two-pass local searches: the default now; accepted for scripts that give it.", visibility: .hidden))
    var twoPassLocal = false

    @Option(name: .customLong("adaptive_fraction"), help: ArgumentHelp("Two-pass search: posterior mass of the coarse pass whose neighbourhood the fine pass searches.", valueName: "f"))
    var adaptiveFraction: Double = 0.999

    @Option(name: .customLong("auto_local"), help: ArgumentHelp("Two-pass search: once fewer than this fraction of the particles move by more than one --ang step (or change class) between iterations, the coarse pass searches only within two coarse steps of each particle's orientation (automatic local refinement); 0 keeps it global.", valueName: "f"))
    var autoLocal: Double = 0.1

    @Option(name: .customLong("seed"), help: "Random seed: the same seed gives the same result on any number of ranks and threads.")
    var seed: UInt64 = 1

    @Option(name: [.customShort("v"), .customLong("verbose")], help: "Verbosity (0: quiet, 1: progress, 2: details).")
    var verbose: Int = 1

    @Flag(name: .customLong("dry-run"), help: "Check the inputs, print the predicted time per iteration, and stop.")
    var dryRun = false

    @Option(name: .customLong("watchdog_seconds"), help: "Abort the job when a rank stops progressing (no heartbeat, or a collective waited for it) for this long; the bound grows to 5 × the longest iteration. 0: no watchdog (the heartbeats that carry the progress counts still run).")
    var watchdogSeconds: Double = 120

    /// The Engine's options, built from the command line in this one place. `nref` is `--nref` (1 until
    /// the `--ref` list or, with `--only_average`, the input classes are read: `RefineRun` sets it then).
    var refinement: RefinementOptions {
        var e = RefinementOptions()
        e.nref = nref ?? 1
        e.istart = istart
        e.iterations = iter
        e.angularStep = ang
        e.psiSampling = psiSampling
        e.angSearch = angSearch
        e.limitPsi = !dontLimitPsiRange
        e.tilt0 = tilt0
        e.tiltF = tiltF
        e.symmetry = sym
        e.dim = dim
        e.maxres = maxres
        e.offset = offset
        e.noise = noise
        e.reg0 = reg0
        e.regF = regF
        e.regSteps = regSteps
        e.imputeIterations = imputeIter
        e.noimpThreshold = noimpThreshold
        e.dontImpute = dontImpute
        e.fixSigmaNoise = fixSigmaNoise
        e.fixSigmaOffset = fixSigmaOffset
        e.fixFractions = fixFractions
        e.eps = eps
        e.limitTrans = limitTrans
        e.maxCC = maxCC
        e.dontAlign = dontAlign
        e.dontRotate = dontRotate
        e.onlyAverage = onlyAverage
        e.perturb = perturb
        e.noSmallAngle = noSmallAngle
        e.seed = seed
        e.threads = thr
        e.pixelSize = pixelSize
        e.keepAngles = keepAngles
        e.filter = filter
        e.iniFilter = iniFilter
        e.classic = classic
        e.tau2Fudge = tau2Fudge
        e.initialHighResolution = iniHigh
        e.resolutionIncrement = incrSize
        e.consensusIterations = consensusIter
        e.starts = starts
        e.realignSeeds = realignClasses
        e.realignIterations = realignIter
        e.adaptiveSearch = !exhaustive
        e.twoPassLocalSearch = !onePassLocal && !exhaustive
        e.adaptiveFraction = adaptiveFraction
        e.autoLocalFraction = autoLocal
        e.subGridPoses = !gridPoses
        return e
    }

    /// Every rule of the command line, before any file is opened (a broken rule is a usage error, exit
    /// status 64): the rules on values are `RefinementOptions.validate()`'s; the ones here are about
    /// which files and run controls are given, which the Engine does not see.
    func validate() throws {
        func bad(_ message: String) -> ValidationError { ValidationError(message) }
        if classic && map { throw bad("--classic and --map are mutually exclusive: give one of them") }
        if onePassLocal && twoPassLocal { throw bad("--one_pass_local and --two_pass_local are mutually exclusive: give one of them") }
        switch (nref, ref) {
        case (nil, nil):
            if !onlyAverage { throw bad("give --nref <K> (references generated from random subsets) or --ref <file>") }
        case (.some, .some):
            throw bad("--nref and --ref are mutually exclusive: give one of them")
        default: break
        }
        if mask != nil && !dontAlign { throw bad("--mask (focussed classification) is only valid together with --dont_align") }
        if let r = restart, r.isEmpty { throw bad("--restart needs the <oroot>_itNNNNNN of a finished iteration") }
        if restart != nil && istart != 1 { throw bad("--restart sets the starting iteration itself: do not combine it with --istart") }
        if !(watchdogSeconds >= 0) { throw bad("--watchdog_seconds must be 0 (off) or a positive number of seconds (got \(watchdogSeconds))") }
        do { try refinement.validate() } catch let error as EngineError { throw bad(error.message) }
    }
}
