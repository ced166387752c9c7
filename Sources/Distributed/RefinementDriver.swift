import Engine
import Foundation

/// One finished iteration as rank 0 reports it: the model (the same on every rank), every particle's
/// result in global order, the statistics with the work of all ranks, and the timing over all ranks.
public struct IterationReport: Sendable {
    public let iteration: Int
    public let model: Model
    public let results: [ParticleResult]
    public let statistics: IterationStatistics
    public let timing: RankTiming
}

/// What the refinement's files and progress need from the driver; the CLI implements it.
public protocol IterationSink: Sendable {
    /// Rank 0, on the writer thread while the ranks compute the next iteration: this iteration's files.
    func write(_ report: IterationReport) throws
    /// Rank 0, on the calling thread, after each iteration: the progress line and the JSON event.
    func progress(_ report: IterationReport, last: Int, secondsSoFar: [Double])
}

/// How a distributed refinement ended.
public enum RefinementEnd: Equatable, Sendable {
    /// The last iteration (`--iter`) is done, or there was nothing to do.
    case completed
    /// The optimisation converged at this iteration.
    case converged(iteration: Int)
    /// A rank was asked to stop (SIGTERM, SIGUSR1); this was the last complete iteration.
    case stopped(afterIteration: Int)
}

/// The EM iterations of one refinement across the ranks of a communicator: each rank runs the E-step on
/// its own particles, every rank reduces and runs the same M-step, and rank 0 gathers the results and
/// writes the files in the background while the next iteration runs.
///
/// Collective calls per iteration in the steady state: two. The `MPI_Allreduce` of the sums (inside
/// `Refinement.runIteration`), which also carries the agreement on failures and on stop requests
/// (`AgreeingReducer`); and one `MPI_Gatherv` of every rank's results and figures (its E-step time,
/// memory and work counts) to rank 0, which alone reports them. The split iteration of the consensus
/// phase adds the consensus split's reductions; a failure adds the agreement's gather and broadcasts.
///
/// Failure discipline: a rank whose E-step fails still joins the reduction and reports its error there;
/// rank 0's write of iteration n is waited for just before its reduction in iteration n + 1 (the write
/// overlaps its E-step) and a write error is reported in that same reduction. The M-step and the gather
/// cannot fail on one rank only (they compute the same thing everywhere, or only move memory).
public struct RefinementDriver {
    /// The ranks' collectives (`AgreeingReducer` over MPI, or `SingleProcessCollectives`); it also reads
    /// this rank's stop request at each reduction.
    public let collectives: any IterationCollectives
    public let refinement: Refinement
    /// This rank's particles (a contiguous block of global indices, `partition(count:ranks:rank:)`).
    public let particles: [Particle]
    /// The number of particles over all ranks.
    public let totalImages: Int
    /// Applied to every new model on every rank (the focus mask of focussed classification).
    public var adjustModel: @Sendable (Model) -> Model = { $0 }
    /// Called on every rank after each iteration but the last (and, in a resumed run, before its first, with
    /// the restart's model), with that iteration's model and this rank's results: a model and local results
    /// to continue from instead, or nil (the class realignment of `--realign_classes`). It may run
    /// collectives; every rank calls it at the same point.
    public var betweenIterations: ((_ iteration: Int, _ model: Model, _ results: [ParticleResult]) throws -> (model: Model, results: [ParticleResult])?)?
    /// This rank's resident memory before it loaded any image, and its data budget (MiB): reported with
    /// the peak of the rank that has the largest one.
    public var baselineRSSMiB: Double = 0
    public var budgetMiB: Double = 0
    /// One d³ complex-to-real FFT on one thread (rank 0's measurement), copied into the timing.
    public var fftSeconds: Double = 0

    public init(collectives: any IterationCollectives, refinement: Refinement, particles: [Particle], totalImages: Int) {
        self.collectives = collectives
        self.refinement = refinement
        self.particles = particles
        self.totalImages = totalImages
    }

    /// The state the iterations continue from.
    public struct Start: Sendable {
        public var model: Model
        /// Last iteration's results of this rank's particles (centres of local searches), if any.
        public var previous: [ParticleResult]?
        /// Every particle's current result (rank 0's copy is what the files show).
        public var results: [ParticleResult]
        public init(model: Model, previous: [ParticleResult]?, results: [ParticleResult]) {
            self.model = model
            self.previous = previous
            self.results = results
        }
    }

    /// What the iterations ended with: the model (every rank), all results (rank 0; the others keep the
    /// start's), the last iteration's statistics.
    public struct Outcome: Sendable {
        public var model: Model
        public var results: [ParticleResult]
        public var lastStatistics: IterationStatistics?
        public var end: RefinementEnd
    }

    /// Runs iterations `first ... last` (none when `first > last`), then waits on rank 0 for the last
    /// files and calls `final` there (the final files), inside one agreement.
    /// A stop request is read at each reduction: one that arrives during an E-step ends the run after
    /// that iteration, one that arrives later after the next.
    public func run(from start: Start, first: Int, last: Int, sink: some IterationSink,
                    final: (Outcome) throws -> Void) throws -> Outcome {
        let reducer = collectives
        let rank = reducer.rank
        let writer = BackgroundWriter()
        var outcome = Outcome(model: start.model, results: start.results, lastStatistics: nil, end: .completed)
        var previous = start.previous
        var secondsSoFar: [Double] = []
        var pendingWriteSeconds = 0.0
        let counts = (0 ..< reducer.size).map { r in
            RankFigures.count + ResultCodec.doublesPerResult * partition(count: totalImages, ranks: reducer.size, rank: r).count
        }
        // The hook between iteration `done` and the next, on every rank at the same point.
        func between(_ done: Int) throws {
            guard let hook = betweenIterations, let local = previous else { return }
            do {
                if let replaced = try hook(done, outcome.model, local) {
                    outcome.model = adjustModel(replaced.model)
                    previous = replaced.results
                }
            } catch let agreed as CollectiveFailure {
                throw agreed
            } catch {
                try reducer.agreeOnError(error)
                throw error
            }
        }
        // A run resumed after iteration first − 1 has not passed that point yet: a run stopped right
        // before its class realignment does it when resumed, as an uninterrupted run would have.
        if first > 1 && first <= last { try between(first - 1) }
        var it = first
        while it <= last {
            let clock = DispatchTime.now().uptimeNanoseconds
            Watchdog.setIteration(it)
            if rank == 0 {
                reducer.runBeforeNextReduction {
                    let waited = DispatchTime.now().uptimeNanoseconds
                    defer { pendingWriteSeconds = Double(DispatchTime.now().uptimeNanoseconds - waited) * 1e-9 }
                    do { try writer.wait() } catch { return error }
                    return nil
                }
            }
            let computed: (model: Model, results: [ParticleResult], statistics: IterationStatistics)
            do {
                computed = try refinement.runIteration(it, model: outcome.model, particles: particles,
                                                       previous: previous, reducer: reducer)
            } catch let agreed as CollectiveFailure {
                throw agreed
            } catch {
                // Only a failure that every rank meets here (one that depends on the model alone) gets
                // this far: a rank-local one is agreed inside the reduction.
                try reducer.agreeOnError(error)
                throw error
            }
            outcome.model = adjustModel(computed.model)
            previous = computed.results
            let figures = RankFigures(eStepSeconds: computed.statistics.timing.eStep, peakRSSMiB: ProcessMemory.peakRSSMiB(),
                                      baselineRSSMiB: baselineRSSMiB, budgetMiB: budgetMiB,
                                      statistics: computed.statistics)
            let gathered = try reducer.gather(figures.values + ResultCodec.values(computed.results), counts: counts)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - clock) * 1e-9
            secondsSoFar.append(seconds)
            Watchdog.noteIterationSeconds(seconds)
            var statistics = computed.statistics
            if let gathered {
                let all = gathered.map { RankFigures(values: $0[0 ..< RankFigures.count]) }
                statistics.triples = all.reduce(0) { $0 + $1.triples }
                statistics.coarseTriples = all.reduce(0) { $0 + $1.coarseTriples }
                statistics.significantTriples = all.reduce(0) { $0 + $1.significantTriples }
                statistics.c2rCalls = all.reduce(0) { $0 + $1.c2rCalls }
                statistics.c2rSeconds = all.reduce(0) { $0 + $1.c2rSeconds }
                outcome.results = gathered.flatMap { ResultCodec.results(from: $0[RankFigures.count...]) }
                    .sorted { $0.globalIndex < $1.globalIndex }
                let largest = all.max { $0.peakRSSMiB < $1.peakRSSMiB }!
                let timing = RankTiming(eStepMax: all.map(\.eStepSeconds).max()!, eStepMin: all.map(\.eStepSeconds).min()!,
                                        reduce: statistics.timing.reduce, mStep: statistics.timing.mStep,
                                        write: pendingWriteSeconds, total: seconds, ranks: reducer.size,
                                        threads: refinement.setup.options.threads, peakRSSMiB: largest.peakRSSMiB,
                                        baselineRSSMiB: largest.baselineRSSMiB, budgetMiB: largest.budgetMiB,
                                        fftSeconds: fftSeconds)
                let report = IterationReport(iteration: it, model: outcome.model, results: outcome.results,
                                             statistics: statistics, timing: timing)
                // The writer is idle: it was waited for before this iteration's reduction.
                writer.start { try sink.write(report) }
                sink.progress(report, last: last, secondsSoFar: secondsSoFar)
            }
            outcome.lastStatistics = statistics
            if statistics.converged {
                outcome.end = .converged(iteration: it)
                break
            }
            if reducer.stopRequested && it < last {
                outcome.end = .stopped(afterIteration: it)
                break
            }
            if it < last { try between(it) }
            it += 1
        }
        let finished = outcome
        try reducer.agree {
            if rank == 0 {
                try writer.wait()
                try final(finished)
            }
        }
        return outcome
    }
}

/// One rank's figures of one iteration, gathered to rank 0 with its results (Doubles hold the counts
/// exactly, below 2⁵³).
struct RankFigures {
    static let count = 9
    var eStepSeconds: Double
    var peakRSSMiB: Double
    var baselineRSSMiB: Double
    var budgetMiB: Double
    var triples: Int
    var coarseTriples: Int
    var significantTriples: Int
    var c2rCalls: Int
    var c2rSeconds: Double

    init(eStepSeconds: Double, peakRSSMiB: Double, baselineRSSMiB: Double, budgetMiB: Double,
         statistics s: IterationStatistics) {
        self.eStepSeconds = eStepSeconds
        self.peakRSSMiB = peakRSSMiB
        self.baselineRSSMiB = baselineRSSMiB
        self.budgetMiB = budgetMiB
        triples = s.triples
        coarseTriples = s.coarseTriples
        significantTriples = s.significantTriples
        c2rCalls = s.c2rCalls
        c2rSeconds = s.c2rSeconds
    }

    init(values v: ArraySlice<Double>) {
        let b = v.startIndex
        eStepSeconds = v[b]
        peakRSSMiB = v[b + 1]
        baselineRSSMiB = v[b + 2]
        budgetMiB = v[b + 3]
        triples = Int(v[b + 4])
        significantTriples = Int(v[b + 5])
        c2rCalls = Int(v[b + 6])
        c2rSeconds = v[b + 7]
        coarseTriples = Int(v[b + 8])
    }

    var values: [Double] {
        [eStepSeconds, peakRSSMiB, baselineRSSMiB, budgetMiB, Double(triples), Double(significantTriples),
         Double(c2rCalls), c2rSeconds, Double(coarseTriples)]
    }
}

/// This process's memory as the operating system counts it.
public enum ProcessMemory {
    /// Peak resident set size (MiB), from getrusage.
    public static func peakRSSMiB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}
