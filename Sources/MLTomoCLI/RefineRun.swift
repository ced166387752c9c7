import Distributed
import Engine
import Formats
import Foundation
import Logging
import Volumes

/// One `ml_tomo refine` on every rank: read and check the inputs, load this rank's images, build or
/// load the starting references, iterate (E-step → one Allreduce → M-step on every rank), and write
/// the files on rank 0.
///
/// Failure discipline: every rank-local phase runs inside `communicator.agree`, and every reduction
/// goes through `AgreeingReducer`, which agrees before it sums. A rank that fails therefore meets the
/// others at an agreement, never inside a mismatched collective, and all ranks exit with the same
/// status and one message (printed by rank 0).
struct RefineRun {
    let options: RefineOptions
    let communicator: Communicator
    let log: Logger

    private var rank: Int { communicator.rank }

    func execute() throws {
        StopRequest.install()
        let o = options
        // Before the first collective of the run, so that a rank hanging anywhere after it is noticed.
        try Watchdog.start(communicator, floorSeconds: o.watchdogSeconds)
        let inputs = try communicator.agree { try ValidationFailure.reading { try RefineInputs.load(o) } }
        let engineOptions = try communicator.agree { try ValidationFailure.reading { try makeEngineOptions(inputs) } }
        let setup = try communicator.agree { try ValidationFailure.reading { try makeSetup(engineOptions, inputs) } }
        let focus = try communicator.agree {
            try ValidationFailure.reading { try inputs.focusMask.map { try FocusMask($0, setup: setup, name: "--mask \(o.mask ?? "")") } }
        }
        let refinement = Refinement(setup: setup, residualScale: focus?.residualScale ?? 1)
        let outputs = RefineOutputs(oroot: o.oroot, commandLine: CommandLine.arguments.joined(separator: " "),
                                    pixelSize: o.pixelSize, originalDim: inputs.originalDim, workingDim: setup.dim,
                                    hasMissingData: !inputs.regions.isEmpty, regions: inputs.regions)
        try communicator.agree { if rank == 0 { try outputs.checkDirectory() } }
        logSummary(inputs, setup)
        let total = inputs.images.count
        let mine = partition(count: total, ranks: communicator.size, rank: rank)
        // The runtime's own footprint (Swift, Open MPI, HDF5, FFTW), before any image is loaded: peak RSS
        // is judged against this plus the data's budget.
        let baselineRSS = Self.peakRSSMiB()
        let budget = MemoryBudget(dim: setup.dim, classes: engineOptions.nref, localImages: mine.count, threads: o.thr,
                                  rotationPadding: engineOptions.rotationPadding)
        // Before loading (and in a dry run): refuse a run that cannot fit, with the figures and the fix.
        let memory = try communicator.agree {
            try MemoryCheck.judge(MemoryCheck(runtimeBytes: Int(baselineRSS * 1_048_576), budget: budget),
                                  communicator: communicator, dim: setup.dim) { d in
                guard d / 2 >= 4 else { return nil }
                let largest = (total + communicator.size - 1) / communicator.size
                return Int(baselineRSS * 1_048_576) + MemoryBudget(dim: d / 2, classes: engineOptions.nref, localImages: largest,
                                                                   threads: o.thr, rotationPadding: engineOptions.rotationPadding).total
            }
        }
        if let memory { log.info("\(memory)") }
        if o.dryRun {
            // Only rank 0 reports, so only rank 0 times the kernels.
            if rank == 0 {
                reportPrediction(CostPrediction.predict(setup: setup, inputAngles: inputs.images.map(\.angles),
                                                        ranks: communicator.size))
            }
            log.info("dry run: inputs are consistent; nothing computed")
            return
        }

        var clock = Stopwatch()
        let particles = try communicator.agree {
            try ValidationFailure.reading { try loadParticles(mine, inputs: inputs, refinement: refinement, focus: focus) }
        }
        log.info("loaded \(total) subtomograms over \(communicator.size) rank(s) in \(formatDuration(clock.restart()))")

        let reducer = AgreeingReducer(communicator)
        var model: Model
        var previous: [ParticleResult]?
        var allResults: [ParticleResult]
        if let restart = o.restart {
            let (m, results) = try communicator.agree {
                try ValidationFailure.reading { try RestartState.read(prefix: restart, imageCount: total) }
            }
            guard m.classCount == engineOptions.nref || o.nref == nil else {
                throw ValidationFailure("--restart \(restart) has \(m.classCount) classes, --nref asks for \(engineOptions.nref)")
            }
            model = m
            allResults = results
            previous = Array(results[mine])
            log.info("resuming after iteration \(m.iteration) from \(restart).h5")
        } else {
            model = try startingModel(inputs, refinement: refinement, particles: particles, reducer: reducer)
            if let focus { model = focus.apply(to: model) }
            try communicator.agree { if rank == 0 { try outputs.prepareDirectory() } }
            allResults = inputs.images.enumerated().map { i, image in
                ParticleResult(globalIndex: i, angles: image.angles, shift: image.shift,
                               classNumber: (image.classIndex ?? 0) + 1, logLikelihood: 0, maxProbability: 0,
                               regionNumber: image.region.map { $0 + 1 } ?? 0, halfSet: Particle.halfSet(seed: o.seed, globalIndex: i))
            }
            try communicator.agree {
                if rank == 0 {
                    try outputs.write(iteration: model.iteration, model: model, results: allResults, images: inputs.imageTable,
                                      statistics: nil, timing: nil, state: RestartState())
                }
            }
            log.info("starting references ready (\(model.classCount) class(es), \(setup.dim)³) in \(formatDuration(clock.restart()))")
        }

        // The unit of the cost model (one d³ c2r FFT on one thread), measured here so that the floor in the
        // JSON lines comes from the same run as the timings.
        let fftSeconds = rank == 0 ? EngineBenchmark.fftSeconds(dim: setup.dim, repetitions: 100) : 0
        let first = model.iteration + 1
        let last = o.onlyAverage ? first : o.iter
        var iterationSeconds: [Double] = []
        var lastStatistics: IterationStatistics?
        let writer = BackgroundWriter()
        if first > last { log.info("nothing to do: iteration \(model.iteration) is already the last (--iter \(o.iter))") }
        for it in first ... max(first, last) where it <= last {
            let iterationClock = Stopwatch()
            Watchdog.setIteration(it)
            // Inside an agreement: a rank whose E-step fails meets the others at the agreement that
            // AgreeingReducer holds before the sums, and every rank stops with its message.
            let (computed, local, computedStatistics) = try communicator.agree {
                try refinement.runIteration(it, model: model, particles: particles, previous: previous, reducer: reducer)
            }
            var next = computed
            var corrected = computedStatistics
            if let focus { next = focus.apply(to: next) }
            // Work counts and FFT time of the whole iteration (each rank counted only its own images), in
            // one reduction; Double holds the counts exactly (below 2⁵³).
            var work = [Double(corrected.triples), Double(corrected.significantTriples), Double(corrected.c2rCalls),
                        corrected.c2rSeconds]
            try communicator.allreduceInPlace(&work, .sum)
            corrected.triples = Int(work[0])
            corrected.significantTriples = Int(work[1])
            corrected.c2rCalls = Int(work[2])
            corrected.c2rSeconds = work[3]
            let statistics = corrected
            model = next
            previous = local
            // Memory figures of the rank with the largest peak: its peak, baseline and budget.
            let peak = Self.peakRSSMiB()
            var eStep = [statistics.timing.eStep, -statistics.timing.eStep, peak]
            try communicator.allreduceInPlace(&eStep, .max)
            var memory = peak == eStep[2] ? [baselineRSS, Double(budget.total) / 1_048_576] : [0, 0]
            try communicator.allreduceInPlace(&memory, .max)
            let gathered = try communicator.gatherBytes(ResultCodec.encode(local), root: 0)
            if let gathered { allResults = gathered.flatMap(ResultCodec.decode).sorted { $0.globalIndex < $1.globalIndex } }
            var timing = RankTiming(eStepMax: eStep[0], eStepMin: -eStep[1], reduce: statistics.timing.reduce,
                                    mStep: statistics.timing.mStep, write: 0, total: 0, ranks: communicator.size,
                                    threads: o.thr, peakRSSMiB: eStep[2], baselineRSSMiB: memory[0], budgetMiB: memory[1],
                                    fftSeconds: fftSeconds)
            // Rank 0 writes this iteration's files on a background thread while every rank goes on with the
            // next E-step; only the wait for the previous iteration's files is serial (it is `write` in the
            // timing). A write error surfaces here, one iteration later, and stops every rank.
            let waitClock = Stopwatch()
            try communicator.agree { if rank == 0 { try writer.wait() } }
            timing.write = waitClock.seconds
            timing.total = iterationClock.seconds
            if rank == 0 {
                let snapshot = (model: model, results: allResults, timing: timing)
                let images = inputs.imageTable
                writer.start {
                    let clock = Stopwatch()
                    try outputs.write(iteration: it, model: snapshot.model, results: snapshot.results, images: images,
                                      statistics: statistics, timing: nil, state: RestartState())
                    var logged = snapshot.timing
                    logged.write = clock.seconds
                    // Written last: the log doc names the other files and carries the time it took to write them.
                    try outputs.logDoc(iteration: it, statistics: statistics, timing: logged).write(to: outputs.base(it) + "_log.doc")
                    StopRequest.noteComplete("--restart \(outputs.base(it))")
                }
            }
            iterationSeconds.append(iterationClock.seconds)
            Watchdog.noteIterationSeconds(iterationClock.seconds)
            lastStatistics = statistics
            reportProgress(it, last: last, statistics: statistics, timing: timing, seconds: iterationSeconds)
            if statistics.converged {
                log.info("optimization converged at iteration \(it)")
                break
            }
            if try stopRequestedOnAnyRank(), it < last {
                try communicator.agree {
                    if rank == 0 {
                        try writer.wait()
                        try writeFinal(outputs, model: model, results: allResults, inputs: inputs, statistics: lastStatistics)
                    }
                }
                // Every rank stops here (the request was agreed above); the agreement turns it into one
                // message from rank 0 and exit status 75 on every rank.
                let stop = InterruptedRun(message: "stopped by a signal after iteration \(it) (files of iteration \(it) "
                    + "are complete); resume with the same command plus --restart \(outputs.base(it))")
                try communicator.agree { () throws -> Void in throw stop }
            }
        }
        try communicator.agree {
            if rank == 0 {
                try writer.wait()
                try writeFinal(outputs, model: model, results: allResults, inputs: inputs, statistics: lastStatistics)
            }
        }
        let root = outputs.base(nil)
        log.info("done: \(root).doc, \(root)_ref.doc, \(root).h5, \(root)_ref000001.mrc …")
    }

    private func writeFinal(_ outputs: RefineOutputs, model: Model, results: [ParticleResult], inputs: RefineInputs,
                            statistics: IterationStatistics?) throws {
        try outputs.write(iteration: nil, model: model, results: results, images: inputs.imageTable,
                          statistics: statistics, timing: nil, state: RestartState())
    }

    /// The Engine's options of this run: the command line's, with K from `--nref`, the `--ref` volumes or
    /// (`--only_average`) the input classes, which are known only now.
    private func makeEngineOptions(_ inputs: RefineInputs) throws -> RefinementOptions {
        var e = options.refinement
        if options.onlyAverage {
            e.nref = max(1, (inputs.images.compactMap(\.classIndex).max() ?? 0) + 1)
        } else {
            e.nref = options.nref ?? inputs.referenceLocators.count
        }
        try e.validate()
        return e
    }

    private func makeSetup(_ e: RefinementOptions, _ inputs: RefineInputs) throws -> RefinementSetup {
        let symmetry = try SymmetryGroup(name: e.symmetry)
        var sampling: AngularSampling?
        var local: (any OrientationCandidateSource)?
        if !e.fixedOrientation {
            let grid = try AngularSampling(angularStep: e.angularStep, psiStep: e.psiSampling, symmetry: symmetry,
                                           tilt0: e.tilt0, tiltF: e.tiltF, smallAngle: !e.noSmallAngle)
            sampling = grid
            if e.angSearch > 0 { local = try LocalSearch(sampling: grid, radius: e.angSearch, limitPsi: e.limitPsi) }
        }
        return try RefinementSetup(options: e, originalDim: inputs.originalDim, regions: inputs.regions,
                                   symmetry: symmetry, sampling: sampling, localSearch: local)
    }

    /// Reads and prepares this rank's images only (contiguous block of global indices), in batches:
    /// a raw volume is dropped as soon as its spectrum exists, so the input files never sit in memory
    /// all at once next to the spectra (that doubled the images' share of the peak RSS: at 128
    /// particles of 32³ the raw volumes were 16 MiB of a 82 MiB peak).
    private func loadParticles(_ range: Range<Int>, inputs: RefineInputs, refinement: Refinement,
                               focus: FocusMask?) throws -> [Particle] {
        let batch = max(16, 4 * refinement.setup.options.threads)
        var particles: [Particle] = []
        particles.reserveCapacity(range.count)
        var start = range.lowerBound
        while start < range.upperBound {
            let end = min(start + batch, range.upperBound)
            var loaded: [ParticleInput] = []
            loaded.reserveCapacity(end - start)
            for i in start ..< end {
                let entry = inputs.images[i]
                let context = inputs.imageTable.location(row: i)
                let locator = try ImageLocator(parsing: entry.image, context: context)
                    .resolved(metadataFile: inputs.imageMetadataPath, context: context)
                let volume = try VolumeIO.readCubic(locator.description, box: inputs.originalDim)
                let input = ParticleInput(globalIndex: i, volume: volume, region: entry.region, angles: entry.angles,
                                          shift: entry.shift, classIndex: entry.classIndex)
                loaded.append(focus?.apply(to: input) ?? input)
            }
            particles.append(contentsOf: try refinement.prepare(loaded))
            start = end
        }
        return particles
    }

    /// `--ref` volumes (read by every rank), or references generated from random subsets (`--nref`).
    private func startingModel(_ inputs: RefineInputs, refinement: Refinement, particles: [Particle],
                               reducer: AgreeingReducer) throws -> Model {
        let setup = refinement.setup
        if !inputs.referenceLocators.isEmpty {
            let prepared = try communicator.agree {
                try ValidationFailure.reading {
                    let volumes = try inputs.referenceLocators.map { try VolumeIO.readCubic($0.description, box: inputs.originalDim) }
                    return try InitialReferences.prepare(loaded: volumes, setup: setup)
                }
            }
            return try communicator.agree { try refinement.initialModel(references: prepared.references, fractions: inputs.referenceWeights, given: true) }
        }
        if options.onlyAverage {
            let zero = Volume(dim: setup.dim)
            return try refinement.initialModel(references: [Volume](repeating: zero, count: setup.options.nref))
        }
        let o = setup.options
        let inputClasses = o.startsFromInputPoses
            ? InitialReferences.inputPartition(inputs.images.map(\.classIndex), classes: o.nref) : nil
        if inputClasses != nil {
            log.info("starting references: averages of the \(o.nref) classes of the input metadata")
        }
        let generated = try communicator.agree {
            try InitialReferences.generate(particles: particles, totalImages: inputs.images.count, setup: setup,
                                           inputClasses: inputClasses, reducer: reducer)
        }
        return try communicator.agree { try refinement.initialModel(references: generated.references, fractions: inputs.referenceWeights) }
    }

    /// This process's peak resident set size (MiB), from getrusage.
    static func peakRSSMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }

    private func stopRequestedOnAnyRank() throws -> Bool {
        try communicator.allreduce(Int64(StopRequest.isSet ? 1 : 0), .max) != 0
    }

    private func logSummary(_ inputs: RefineInputs, _ setup: RefinementSetup) {
        let o = setup.options
        let orientations = setup.sampling?.count ?? 1
        let search = o.angSearch > 0 ? " (local search ±\(o.angSearch)°)" : ""
        let boxes = "\(inputs.images.count) subtomograms of \(inputs.originalDim)³ → working box \(setup.dim)³"
        let work = "\(o.nref) class(es); \(orientations) orientation(s)\(search); \(inputs.regions.count) missing region(s)"
        log.info("\(boxes); \(work); \(communicator.size) rank(s) × \(o.threads) thread(s)")
    }

    /// The dry run's time prediction (rank 0): a readable summary in the log and a JSON line on stdout.
    private func reportPrediction(_ p: CostPrediction) {
        let iterations = options.onlyAverage ? 1 : max(1, options.iter)
        let perImage = String(format: "%.0f", p.orientationsPerImage)
        let kernels = String(format: "one %d³ c2r FFT %.0f µs, one rotation %.0f µs here", p.dim, p.c2rSeconds * 1e6,
                             p.rotationSeconds * 1e6)
        log.info("predicted: \(p.triples) (image, orientation, class) triples per iteration (\(perImage) orientations per image; \(kernels))")
        log.info("predicted time per iteration ≈ \(formatDuration(p.secondsPerIteration)) (E-step \(formatDuration(p.eStepSeconds)), reduce \(formatDuration(p.reduceSeconds)), M-step \(formatDuration(p.mStepSeconds))); \(iterations) iteration(s) ≈ \(formatDuration(p.secondsPerIteration * Double(iterations)))")
        FileHandle.standardOutput.write(Data((p.jsonLine + "\n").utf8))
    }

    private func reportProgress(_ it: Int, last: Int, statistics s: IterationStatistics, timing t: RankTiming, seconds: [Double]) {
        let mean = seconds.reduce(0, +) / Double(seconds.count)
        let remaining = Double(last - it) * mean
        let fractions = s.fractions.map { String(format: "%.3f", $0) }.joined(separator: " ")
        let ll = String(format: "%.6g", s.logLikelihood)
        let pmax = String(format: "%.3f", s.averageMaxProbability)
        let sigma = String(format: "%.4g", s.sigmaNoise)
        let sigmaOffset = String(format: "%.3g", s.sigmaOffset)
        let band = s.radius > 0 ? ", radius \(s.radius) shells (box \(s.workingDim)³)" : ""
        let model = "LL \(ll), pMax \(pmax), σ \(sigma), σ_off \(sigmaOffset), fractions [\(fractions)]\(band)"
        let parts = "E-step \(formatDuration(t.eStepMax)), reduce \(formatDuration(t.reduce)), "
            + "M-step \(formatDuration(t.mStep)), write \(formatDuration(t.write))"
        let eta = it < last ? "; about \(formatDuration(remaining)) left" : ""
        log.info("iteration \(it)/\(last): \(model); \(formatDuration(t.total)) (\(parts))\(eta)")
        if rank == 0 {
            FileHandle.standardOutput.write(Data((t.jsonLine(iteration: it, statistics: s) + "\n").utf8))
        }
    }
}

/// Runs one job at a time on its own thread: rank 0's file writes overlap the next E-step. `wait()`
/// blocks until the job is done and rethrows its error.
final class BackgroundWriter: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var running = false
    private var failure: (any Error)?

    func start(_ job: @escaping @Sendable () throws -> Void) {
        precondition(!running, "BackgroundWriter: start() while a job is running")
        running = true
        let thread = Thread { [self] in
            do { try job() } catch { failure = error }
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    func wait() throws {
        guard running else { return }
        done.wait()
        running = false
        if let error = failure {
            failure = nil
            throw error
        }
    }
}

/// A reducer that agrees before every reduction, so a rank that failed earlier (and went to its
/// agreement) is met there instead of leaving the others inside a collective it will never enter.
struct AgreeingReducer: Reducer {
    let communicator: Communicator
    init(_ communicator: Communicator) { self.communicator = communicator }
    var rank: Int { communicator.rank }
    var size: Int { communicator.size }
    func sumInPlace(_ values: inout [Double]) throws {
        try communicator.agreeOnError(nil)
        try communicator.allreduceInPlace(&values, .sum)
    }
    func maxInPlace(_ values: inout [Double]) throws {
        try communicator.agreeOnError(nil)
        try communicator.allreduceInPlace(&values, .max)
    }
    func minInPlace(_ values: inout [Double]) throws {
        try communicator.agreeOnError(nil)
        try communicator.allreduceInPlace(&values, .min)
    }
}

/// SIGTERM / SIGUSR1 (Slurm's warning before a time limit, `scancel --signal`): finish the current
/// iteration, write it, and stop with a message saying how to resume.
///
/// mpirun also sends SIGTERM to the surviving ranks before it kills them when one rank died: rank 0's
/// handler therefore prints, at once, the `--restart` argument of the last iteration whose files are
/// complete, which is all a user needs if the job ends before the current iteration does.
enum StopRequest {
    nonisolated(unsafe) private static var flag: sig_atomic_t = 0
    /// Two preallocated message buffers: the writer fills the one the handler is not reading, then flips
    /// `active` (an async-signal-safe handoff; the handler only calls write(2)).
    nonisolated(unsafe) private static var buffers: [UnsafeMutablePointer<CChar>] = []
    nonisolated(unsafe) private static var lengths: [Int] = [0, 0]
    nonisolated(unsafe) private static var active: sig_atomic_t = -1
    private static let capacity = 8192

    static func install() {
        buffers = [UnsafeMutablePointer<CChar>.allocate(capacity: capacity), UnsafeMutablePointer<CChar>.allocate(capacity: capacity)]
        signal(SIGTERM) { _ in
            StopRequest.flag = 1
            let index = Int(StopRequest.active)
            if index >= 0 { _ = write(2, StopRequest.buffers[index], StopRequest.lengths[index]) }
        }
        signal(SIGUSR1) { _ in StopRequest.flag = 1 }
    }

    static var isSet: Bool { flag != 0 }

    /// Called (rank 0) once every file of an iteration is on disk; `restart` is its `--restart …` argument.
    static func noteComplete(_ restart: String) {
        guard buffers.count == 2 else { return }
        let text = Array(("ml_tomo: SIGTERM: the run stops after the current iteration; if the job ends before that, "
            + "the last complete iteration on disk resumes with the same command plus \(restart)\n").utf8.prefix(capacity))
        let next = active == 0 ? 1 : 0
        text.withUnsafeBufferPointer { bytes in
            UnsafeMutableRawPointer(buffers[next]).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
        }
        lengths[next] = text.count
        active = sig_atomic_t(next)
    }
}

/// The run stopped cleanly on request; the exit status says so (75, EX_TEMPFAIL: "try again").
struct InterruptedRun: Error, CustomStringConvertible, LocalizedError, ExitStatusProviding {
    let message: String
    var description: String { message }
    var errorDescription: String? { message }
    var exitStatus: ExitStatus { .interrupted }
}
