import Diagnostics
import Distributed
import Engine
import Formats
import Foundation
import Logging
import Volumes

/// One `ml_tomo refine` on every rank: read and check the inputs, load this rank's images, build or
/// load the starting references, hand the iterations to `RefinementDriver` (Distributed), and write the
/// files of the start and the end on rank 0.
///
/// Failure discipline: every rank-local phase runs inside `communicator.agree`, and every reduction
/// goes through `AgreeingReducer`, which carries the agreement on failures in the reduction itself. A
/// rank that fails therefore meets the others at an agreement, never inside a mismatched collective, and
/// all ranks exit with the same status and one message (printed by rank 0).
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
        var refinement = Refinement(setup: setup, residualScale: focus?.residualScale ?? 1)
        refinement.clock = MonotonicClock()
        let outputs = RefineOutputs(oroot: o.oroot, commandLine: CommandLine.arguments.joined(separator: " "),
                                    pixelSize: o.pixelSize, originalDim: inputs.originalDim, workingDim: setup.dim,
                                    hasMissingData: !inputs.regions.isEmpty, regions: inputs.regions)
        try communicator.agree { if rank == 0 { try outputs.checkDirectory() } }
        logSummary(inputs, setup)
        if !engineOptions.classic && (o.dontImpute || o.imputeIter != 1 || o.noimpThreshold != 1) {
            log.warning("--dont_impute, --impute_iter and --noimp_threshold only change the classic computation (--classic); the default MAP computation replaces imputation by its Wiener update and ignores them")
        }
        let total = inputs.images.count
        let mine = partition(count: total, ranks: communicator.size, rank: rank)
        // The runtime's own footprint (Swift, Open MPI, HDF5, FFTW), before any image is loaded: peak RSS
        // is judged against this plus the data's budget.
        let baselineRSS = ProcessMemory.peakRSSMiB()
        let budget = MemoryBudget(dim: setup.dim, classes: engineOptions.nref, localImages: mine.count, threads: o.thr,
                                  rotationPadding: engineOptions.rotationPadding)
        // Before loading (and in a dry run): refuse a run that cannot fit, with the figures and the fix.
        let memory = try communicator.agree {
            try MemoryCheck.judge(MemoryCheck(runtimeBytes: Int(baselineRSS * 1_048_576), budget: budget),
                                  communicator: communicator, dim: setup.dim) { d in
                guard d / 2 >= 4 else { return nil }
                let largest = partition(count: total, ranks: communicator.size).map(\.count).max() ?? 0
                return Int(baselineRSS * 1_048_576) + MemoryBudget(dim: d / 2, classes: engineOptions.nref, localImages: largest,
                                                                   threads: o.thr, rotationPadding: engineOptions.rotationPadding).total
            }
        }
        if let memory { log.info("\(memory)") }
        if o.dryRun {
            // Only rank 0 reports, so only rank 0 times the kernels: the best of 50 batches of 10 c2r
            // (with 5 batches, three dry runs of W2 read its 24³ c2r as 91, 104 and 116 µs and predicted
            // 11–23 s for the same iteration).
            if rank == 0 {
                reportPrediction(CostPrediction.predict(
                    setup: setup, inputAngles: inputs.images.map(\.angles), ranks: communicator.size,
                    givenReferences: o.ref != nil,
                    kernels: { (KernelTiming.c2rSeconds(dim: $0, repetitions: 500), KernelTiming.rotationSeconds(dim: $0, padding: $1)) }))
            }
            log.info("dry run: inputs are consistent; nothing computed")
            return
        }

        if rank == 0 {
            let removed = outputs.removeAbandonedTemporaries()
            if !removed.isEmpty {
                log.warning("removed \(removed.count) temporary file(s) that an earlier run, ended mid-write, left: \(removed.prefix(5).joined(separator: ", "))\(removed.count > 5 ? ", …" : "")")
            }
        }
        var clock = Stopwatch()
        let particles = try communicator.agree {
            try ValidationFailure.reading { try loadParticles(mine, inputs: inputs, refinement: refinement, focus: focus) }
        }
        log.info("loaded \(total) subtomograms over \(communicator.size) rank(s) in \(formatDuration(clock.restart()))")

        // The starting model's reductions agree on failures like the iterations' (a stop waits for those).
        let reducer = AgreeingReducer(communicator)
        // The quanta of the exact sums, once for the run (the same on every rank: one maximum).
        refinement.sumScale = try SumScale.agreed(particles, totalImages: total, reducer: reducer)
        let model: Model
        let previous: [ParticleResult]?
        let allResults: [ParticleResult]
        if let restart = o.restart {
            let (m, results) = try communicator.agree {
                try ValidationFailure.reading { try RestartState.read(prefix: restart, imageCount: total) }
            }
            guard m.classCount == engineOptions.nref || o.nref == nil else {
                throw ValidationFailure("--restart \(restart) has \(m.classCount) classes, --nref asks for \(engineOptions.nref)")
            }
            // A resumed run may write under a new --oroot.
            try communicator.agree { if rank == 0 { try outputs.prepareDirectory() } }
            model = m
            allResults = results
            previous = Array(results[mine])
            log.info("resuming after iteration \(m.iteration) from \(restart).h5")
        } else {
            let generated = try startingModel(inputs, refinement: refinement, particles: particles, reducer: reducer)
            model = focus?.apply(to: generated) ?? generated
            previous = nil
            try communicator.agree { if rank == 0 { try outputs.prepareDirectory() } }
            allResults = inputs.images.enumerated().map { i, image in
                ParticleResult(globalIndex: i, angles: image.angles, shift: image.shift,
                               classNumber: (image.classIndex ?? 0) + 1, logLikelihood: 0, maxProbability: 0,
                               regionNumber: inputs.regionIndex(ofImage: i).map { $0 + 1 } ?? 0, halfSet: Particle.halfSet(seed: o.seed, globalIndex: i))
            }
            try communicator.agree {
                if rank == 0 {
                    try outputs.write(iteration: model.iteration, model: model, results: allResults, images: inputs.imageTable,
                                      statistics: nil)
                }
            }
            log.info("starting references ready (\(model.classCount) class(es), \(setup.dim)³) in \(formatDuration(clock.restart()))")
        }

        let first = model.iteration + 1
        let last = o.onlyAverage ? first : o.iter
        // Progress within the iterations: every rank counts its E-step's work, the heartbeats carry the
        // counts to rank 0, which shows them (a bar on a terminal, a line now and then in a log).
        let counter = EStepProgress(clock: MonotonicClock())
        refinement.progress = counter
        let cluster = ClusterProgress(local: counter, rank: rank, ranks: communicator.size, totalImages: total)
        var display: ProgressDisplay?
        let (mode, warnings) = ProgressDisplay.mode()
        if rank == 0 && o.verbose >= 1 {
            for warning in warnings { log.warning("\(warning)") }
            display = mode.map { ProgressDisplay(source: cluster, last: last, mode: $0) }
            display?.start()
        } else if rank != 0 && o.verbose >= 1 && mode == .bar {
            StatusLineConsole.shared.setOthersShowStatus()
        }
        defer { display?.stop() }

        // The unit of the cost model (one d³ c2r FFT on one thread), measured here so that the floor in the
        // JSON lines comes from the same run as the timings.
        var driver = RefinementDriver(collectives: AgreeingReducer(communicator, localStop: { StopRequest.isSet }),
                                      refinement: refinement, particles: particles, totalImages: total)
        driver.fftSeconds = rank == 0 ? KernelTiming.c2rSeconds(dim: setup.dim, repetitions: 100) : 0
        if let focus { driver.adjustModel = { focus.apply(to: $0) } }
        // Several starts of a run from generated references (StartSelection): after its first
        // iterations the run's own start is scored against the others' and the best goes on.
        var selectStart: ((Int, Model) throws -> (model: Model, results: [ParticleResult])?)?
        // A resumed run is the same command plus --restart, so it tells from its own options whether the
        // run's references were generated, and it selects at the same iteration as the uninterrupted run.
        let startIterations = RefinementOptions.startIterations
        let selectAfter = engineOptions.istart - 1 + startIterations
        if engineOptions.effectiveStarts > 1 && inputs.referenceLocators.isEmpty && !o.onlyAverage
            && !engineOptions.startsFromInputPoses && selectAfter < last {
            var selection = StartSelection(refinement: refinement, starts: engineOptions.effectiveStarts,
                                           iterations: startIterations)
            if let focus { selection.adjustModel = { focus.apply(to: $0) } }
            let reducer = driver.collectives
            var startClock = Stopwatch()
            selection.startFinished = { [log, rank] seed, model in
                let seconds = startClock.restart()
                if rank == 0 {
                    log.info("start selection: the start of seed \(seed) reached \(model.currentRadius) shells in \(formatDuration(seconds))")
                }
            }
            selection.shouldStop = { reducer.stopRequested }
            // The estimate: S − 1 more times the run's first iterations, plus S E-steps at the pace of its
            // last iteration scaled to the box of the scoring radius (∝ box³: the scoring searches at the
            // radius the run reached, one step beyond its last iteration's). Not in a run resumed at this
            // point: nothing is timed yet then.
            var sinceLastIteration = Stopwatch()
            var timed: [Double] = []
            var radii: [Int] = [setup.startingRadius(givenReferences: false)]
            selectStart = { [log, rank, total] it, model in
                timed.append(sinceLastIteration.restart())
                radii.append(model.currentRadius)
                guard it == selectAfter else { return nil }
                if rank == 0 {
                    var estimate = ""
                    if timed.count == startIterations {
                        let box = { Double(setup.croppedDim(radius: $0)) }
                        let scale = pow(box(model.currentRadius) / box(radii[radii.count - 2]), 3)
                        let seconds = Double(selection.starts - 1) * timed.reduce(0, +) + Double(selection.starts) * timed.last! * scale
                        estimate = "; about \(formatDuration(seconds))"
                    }
                    log.info("iteration \(it): scoring this start against \(selection.starts - 1) more from other seeds (\(startIterations) iterations each, then one E-step per start at one common resolution)\(estimate)")
                }
                var watch = Stopwatch()
                startClock = Stopwatch()
                guard let r = try selection.run(model: model, particles: particles, totalImages: total, reducer: reducer) else { return nil }
                if rank == 0 {
                    log.info("\(Self.describe(r, images: total))")
                    log.info("start selection done in \(formatDuration(watch.restart()))")
                }
                return r.results.map { (r.model, $0) }
            }
        }
        var realign: ((Int, Model, [ParticleResult]) throws -> (model: Model, results: [ParticleResult])?)?
        if let after = engineOptions.realignAfter {
            var realignment = ClassRealignment(refinement: refinement, seeds: engineOptions.realignSeeds,
                                               iterations: engineOptions.realignIterations)
            let reducer = driver.collectives
            var runClock = Stopwatch()
            realignment.runFinished = { [log, rank] klass, seed, model in
                let seconds = runClock.restart()
                if rank == 0 {
                    log.info("realignment: class \(klass + 1), seed \(seed): \(model.currentRadius) shells after its iterations, \(formatDuration(seconds))")
                }
            }
            realignment.shouldStop = { reducer.stopRequested }
            // The estimate: the runs of all classes together cover every particle S × n times, plus S + 1
            // scoring E-steps, all with a global search but over one class where an iteration searches K:
            // (S × (n + 1) + 1) / K iterations at the pace of the slowest so far (the last one may have
            // searched locally: 11 s against 1 min 36 s per run at N 200, SNR 0.01). Still high, as the
            // runs start at a low resolution (the N 400, S = 3 run of bench/results/accuracy-2026-12-07.md).
            // A resumed run calls the hook before its first iteration: nothing is timed yet then.
            var sinceLastIteration = Stopwatch()
            var slowest = 0.0
            let resumedAt = o.restart == nil ? nil : model.iteration
            realign = { [log, rank] it, model, results in
                let seconds = sinceLastIteration.restart()
                if it != resumedAt { slowest = max(slowest, seconds) }
                guard it == after else { return nil }
                if rank == 0 {
                    let passes = Double(realignment.seeds * (realignment.iterations + 1) + 1) / Double(model.classCount)
                    let estimate = slowest > 0 ? "; at most about \(formatDuration(slowest * passes)) at the slowest iteration's pace" : ""
                    log.info("iteration \(it): realigning each of the \(model.classCount) class(es) alone: \(realignment.seeds) run(s) from nothing of \(realignment.iterations) iterations, then one scoring E-step per candidate\(estimate)")
                }
                var watch = Stopwatch()
                runClock = Stopwatch()
                let r = try realignment.run(model: model, particles: particles, results: results, reducer: reducer)
                if rank == 0 {
                    for line in Self.describe(r.outcomes) { log.info("\(line)") }
                    log.info("realignment done in \(formatDuration(watch.restart())); iterations \(it + 1)–\(last) refine all classes from it")
                }
                return (r.model, r.results)
            }
        }
        if selectStart != nil || realign != nil {
            driver.betweenIterations = { it, model, results in
                var current: (model: Model, results: [ParticleResult])? = nil
                if let chosen = try selectStart?(it, model) { current = chosen }
                if let realigned = try realign?(it, current?.model ?? model, current?.results ?? results) { current = realigned }
                return current
            }
        }
        driver.baselineRSSMiB = baselineRSS
        driver.budgetMiB = Double(budget.total) / 1_048_576
        if first > last { log.info("nothing to do: iteration \(model.iteration) is already the last (--iter \(o.iter))") }
        let sink = RefineProgress(outputs: outputs, images: inputs.imageTable, log: log, display: display)
        let outcome = try driver.run(from: .init(model: model, previous: previous, results: allResults), first: first, last: last,
                                     sink: sink) { end in
            try outputs.write(iteration: nil, model: end.model, results: end.results, images: inputs.imageTable,
                              statistics: end.lastStatistics)
        }
        switch outcome.end {
        case .completed: break
        case .converged(let it): log.info("optimization converged at iteration \(it)")
        case .stopped(let it):
            // Every rank stops here (the request was agreed in the reduction); the agreement turns it into
            // one message from rank 0 and exit status 75 on every rank.
            let stop = InterruptedRun(message: "stopped by a signal after iteration \(it) (files of iteration \(it) "
                + "are complete); resume with the same command plus --restart \(outputs.base(it))")
            try communicator.agree { () throws -> Void in throw stop }
        }
        let root = outputs.base(nil)
        // The report (issue 19): cheap, read back from the files just written; a failure to draw it does
        // not fail a finished refinement, it is only reported.
        var report = ""
        if rank == 0 {
            do { report = ", " + (try ReportPage.write(oroot: root)).path } catch {
                log.info("the report could not be written (\(error)); run `ml_tomo report \(root)` to retry")
            }
        }
        log.info("done: \(root).doc, \(root)_ref.doc, \(root).h5, \(root)_ref000001.mrc …\(report)")
    }

    /// The start selection's log line: every start's score, and which was kept.
    static func describe(_ r: StartSelection.Outcome, images: Int) -> String {
        let scores = r.candidates.enumerated().map { j, c in
            "\(j == 0 ? "this start" : "seed \(c.seed)") \(String(format: "%.1f", c.logLikelihood))\(j == r.chosen ? " (kept)" : "")"
        }
        let rule = r.chosen == 0 && r.candidates.count > 1
            ? String(format: " (another start replaces this one only if it scores %.0f higher)",
                     StartSelection.requiredGain(radius: r.scoringRadius, images: images))
            : ""
        return "start selection at \(r.scoringRadius) shells: log-likelihood " + scores.joined(separator: ", ") + rule
    }

    /// One log line per class of a class realignment: every candidate's score, and which was kept.
    static func describe(_ outcomes: [ClassRealignment.ClassOutcome]) -> [String] {
        outcomes.map { o in
            guard o.scoringRadius > 0 else {
                return "class \(o.klass + 1) (\(o.members) particles): too few to realign, kept as it was"
            }
            let scores = o.candidates.enumerated().map { i, c in
                let name = c.seed.map { "seed \($0)" } ?? "as it was"
                return "\(name) \(String(format: "%.1f", c.logLikelihood))\(i == o.chosen ? " (kept)" : "")"
            }
            return "class \(o.klass + 1) (\(o.members) particles), log-likelihood at \(o.scoringRadius) shells: "
                + scores.joined(separator: ", ")
        }
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
        e.inputHasClasses = InitialReferences.inputPartition(inputs.images.map(\.classIndex), classes: e.nref) != nil
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
                let volume = try VolumeIO.readCubic(try inputs.metadata.resolvedImage(i).description, box: inputs.originalDim)
                let input = ParticleInput(globalIndex: i, volume: volume, region: inputs.regionIndex(ofImage: i), angles: entry.angles,
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
            var references = prepared.references
            // The original compares particles with the references as given (`--classic` keeps that); a
            // map on another grey scale would spoil the first iteration (see ReferenceScale).
            if !setup.options.classic {
                let radius = setup.startingRadius(givenReferences: true)
                let scales = try communicator.agree {
                    try ReferenceScale.fit(references: references, particles: particles, radius: radius, setup: setup,
                                           reducer: reducer)
                }
                for (k, a) in scales.enumerated() { references[k].data = references[k].data.map { $0 * Float(a) } }
                log.info("--ref: \(Self.describeScales(scales, radius: radius))")
            }
            return try communicator.agree { try refinement.initialModel(references: references, fractions: inputs.referenceWeights, given: true) }
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

    /// The log line of the given references' scale fit; an inverted contrast is named.
    static func describeScales(_ scales: [Double], radius: Int) -> String {
        let factors = scales.enumerated().map { k, a in
            "reference \(k + 1) × \(String(format: "%.4g", a))" + (a < 0 ? " (its contrast is the particles' opposite: inverted)" : "")
        }
        return "scaled to the particles' grey scale (least-squares fit of its spherical average to the particles, shells 1–\(radius)): "
            + factors.joined(separator: ", ")
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
        if p.coarseTriples > 0 {
            log.info("predicted for the first iteration (box \(p.dim)³, \(p.classes) class(es) searched): two-pass search, \(p.coarseTriples) coarse triples (box \(p.coarseDim)³: c2r \(String(format: "%.0f", p.coarseC2RSeconds * 1e6)) µs, rotation \(String(format: "%.0f", p.coarseRotationSeconds * 1e6)) µs), then ≈ \(p.triplesExpected - p.coarseTriples) fine ones with sharp posteriors (\(p.triplesAtLeast - p.coarseTriples)–\(p.triples - p.coarseTriples): broad posteriors keep more; \(kernels))")
            log.info("predicted time for the first iteration ≈ \(formatDuration(p.secondsPerIterationExpected)) (E-step \(formatDuration(p.eStepSecondsExpected)), reduce \(formatDuration(p.reduceSeconds)), M-step \(formatDuration(p.mStepSeconds))); at most \(formatDuration(p.secondsPerIteration)); later iterations grow with the resolution towards the full box")
            if p.localCoarseTriples > 0 {
                log.info("once the poses settle (automatic local refinement, --auto_local) the coarse pass falls to ≈ \(p.localCoarseTriples) triples: ≈ \(formatDuration(p.secondsPerLocalIteration)) per iteration in this box")
            }
        } else if p.dim < p.fullDim {
            log.info("predicted for the first iteration (box \(p.dim)³ of \(p.fullDim)³, \(p.classes) class(es) searched): \(p.triples) (image, orientation, class) triples (\(perImage) orientations per image; \(kernels))")
            log.info("predicted time for the first iteration ≈ \(formatDuration(p.secondsPerIteration)) (E-step \(formatDuration(p.eStepSeconds)), reduce \(formatDuration(p.reduceSeconds)), M-step \(formatDuration(p.mStepSeconds))); later iterations grow with the resolution towards the full box")
        } else {
            log.info("predicted: \(p.triples) (image, orientation, class) triples per iteration (\(perImage) orientations per image; \(kernels))")
            log.info("predicted time per iteration ≈ \(formatDuration(p.secondsPerIteration)) (E-step \(formatDuration(p.eStepSeconds)), reduce \(formatDuration(p.reduceSeconds)), M-step \(formatDuration(p.mStepSeconds))); \(iterations) iteration(s) ≈ \(formatDuration(p.secondsPerIteration * Double(iterations)))")
        }
        FileHandle.standardOutput.write(Data((RunEvents.line(PredictionEvent(p)) + "\n").utf8))
    }
}

/// Rank 0's side of each iteration: the files (on the driver's writer thread) and the progress.
struct RefineProgress: IterationSink {
    let outputs: RefineOutputs
    let images: MetaDataTable
    let log: Logger
    /// The live progress of the iterations (rank 0, `--verbose` ≥ 1).
    let display: ProgressDisplay?

    func write(_ report: IterationReport) throws {
        let clock = Stopwatch()
        let it = report.iteration
        try outputs.write(iteration: it, model: report.model, results: report.results, images: images,
                          statistics: report.statistics)
        var logged = report.timing
        logged.write = clock.seconds
        // Written last: the log doc names the other files and carries the time it took to write them.
        try outputs.logDoc(iteration: it, statistics: report.statistics, model: report.model, timing: logged).write(to: outputs.base(it) + "_log.doc")
        StopRequest.noteComplete("--restart \(outputs.base(it))")
    }

    func progress(_ report: IterationReport, last: Int, secondsSoFar seconds: [Double]) {
        let (it, s, t) = (report.iteration, report.statistics, report.timing)
        let mean = seconds.reduce(0, +) / Double(seconds.count)
        let remaining = Double(last - it) * mean
        let fractions = s.fractions.map { String(format: "%.3f", $0) }.joined(separator: " ")
        let ll = String(format: "%.6g", s.logLikelihood)
        let pmax = String(format: "%.3f", s.averageMaxProbability)
        let sigma = String(format: "%.4g", s.sigmaNoise)
        let sigmaOffset = String(format: "%.3g", s.sigmaOffset)
        let local = s.localSearchReach > 0 ? String(format: ", coarse pass local (±%.0f°)", s.localSearchReach) : ""
        let band = (s.radius > 0 ? ", radius \(s.radius) shells (box \(s.workingDim)³)" : "") + local
        let model = "LL \(ll), pMax \(pmax), σ \(sigma), σ_off \(sigmaOffset), fractions [\(fractions)]\(band)"
        let parts = "E-step \(formatDuration(t.eStepMax)), reduce \(formatDuration(t.reduce)), "
            + "M-step \(formatDuration(t.mStep)), write \(formatDuration(t.write))"
        let eta = it < last ? "; about \(formatDuration(remaining)) left" : ""
        display?.iterationEnded(it, secondsSoFar: seconds)
        log.info("iteration \(it)/\(last): \(model); \(formatDuration(t.total)) (\(parts))\(eta)")
        if s.localSearchReach == 0 && s.nextLocalSearchReach > 0, let moved = s.movedFraction {
            let line = String(format: "iteration %d: orientations are stable (%.1f %% of the particles moved by more than one step or changed class); from the next iteration the coarse pass searches only within ±%.0f° of each particle's orientation (--auto_local)",
                              it, 100 * moved, s.nextLocalSearchReach)
            log.info("\(line)")
        } else if s.localSearchReach > 0 && s.nextLocalSearchReach == 0 {
            log.info("iteration \(it): a class was re-seeded; the next coarse pass searches every orientation again")
        }
        if !s.reseededClasses.isEmpty {
            let classes = s.reseededClasses.map { String($0 + 1) }.joined(separator: ", ")
            // The default computation (radius > 0) re-seeds below 1/(8K) of the images, the classic one an empty class.
            let why = s.radius > 0
                ? "held fewer than 1/(\(Int((1 / MStep.minimumClassFraction).rounded()))K) of the images (MStep.minimumClassFraction)"
                : "lost all their images"
            let how = s.radius > 0 ? "by splitting the largest class in two along the main variation of its images" : "as a perturbed copy of the largest class"
            log.info("iteration \(it): class(es) \(classes) \(why) and were re-seeded \(how)")
        }
        FileHandle.standardOutput.write(Data((RunEvents.line(IterationEvent(iteration: it, timing: t, statistics: s)) + "\n").utf8))
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
