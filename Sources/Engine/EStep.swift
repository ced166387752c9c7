import Foundation
import Numerics
import Volumes

/// What one E-step produces on one process: partial sums (to be reduced across processes) and the
/// per-image results of the local images (in the order of the `particles` argument).
public struct EStepOutput: Sendable {
    public var sums: Sums
    public var results: [ParticleResult]
    /// (image, orientation, class) triples evaluated, and how many of them were significant.
    public var triples: Int
    public var significantTriples: Int
    /// Pass 1's c2r FFTs as they ran inside this E-step: summed wall time (all threads) and count.
    public var c2rSeconds: Double = 0
    public var c2rCalls: Int = 0
}

/// The maximum-likelihood E-step (spec §6), restructured for speed with the same target.
///
/// Orientation-major: for every orientation a and class k the reference is rotated once, in Fourier
/// space (`FourierRotator`), and shared by every image visiting a. Per (image, a, k) one product and
/// one inverse FFT give the correlation C(s) for all cyclic shifts; the log-weight of each shift is
///   ℓ(s) = ln α_k − ln n_i + ln P_φ(s) − D(s)/σ²,  D(s) = ½(A2 + Ξ²) − C(s),
/// with A2 = ‖M_I^m ⊙ R̂‖² from Parseval on the half grid. Pass 1 keeps, per triple, max ℓ, the exact
/// log-sum-exp and the posterior means of D and |s|² (no trymindiff/redo machinery, no overflow).
/// Per image the log of Σ weights and the significance of every triple relative to the image's final
/// maximum weight follow (independent of loop order). Pass 2 recomputes C for the significant triples
/// only, forms the weighted image Σ_s w(s)·X̃(r + s) in Fourier space, sums it per (a, k, half-set)
/// over images, and once per orientation moves the sum into the reference frame (real-space rotation
/// by A_a, as the original) and adds the exactly rotated region masks to the wedge sums.
///
/// Threads: orientations are cut into fixed blocks that go to a fixed number of accumulation slots
/// (`slotCount`); each slot works sequentially in ascending orientation order and slot outputs are
/// merged in slot order, so results are identical for any thread count.
public enum EStep {
    /// Number of accumulation slots (independent of the thread count, see above).
    public static let slotCount = 8
    /// Pass 2 moves an orientation's weighted sum into the reference frame once per block of this many
    /// consecutive global image indices, so that what it adds depends on the block's images only, not
    /// on which rank holds which images (ranks hold whole blocks: `Distributed.partition`). Measured on
    /// 200 × 32³, K = 2: see bench/README.md.
    public static let particleBlock = 8
    /// Significance threshold of a triple's maximum weight relative to the image's maximum weight.
    public static let significance = 1e-8

    struct Candidate {
        var image: Int32
        var orientation: Int32
        var klass: Int32
        /// Physical index of the best shift in the correlation volume.
        var bestShift: Int32
        var maxLog: Double
        var logSum: Double
        var meanD: Double
        var meanS2: Double
    }

    /// What one slot's pass-1 (or maxCC) search returns.
    struct SlotSearch {
        var candidates: [Candidate]
        var triples: Int
        var c2rSeconds: Double
        var c2rCalls: Int

        init(_ candidates: [Candidate], triples: Int, workspace ws: Workspace) {
            self.candidates = candidates
            self.triples = triples
            c2rSeconds = ws.c2rSeconds
            c2rCalls = ws.c2rCalls
        }
    }

    /// One pass-2 job: add image `image`'s posterior (or a delta weight) for class `klass`.
    struct WeightJob {
        var image: Int32
        var klass: Int32
        /// Subtract from ℓ(s) to get the normalised weight (ln Σ weights of the image).
        var logNorm: Double
        /// ≥ 0: hard assignment with weight 1 at this physical shift index (maxCC / only_average).
        var deltaShift: Int32
        /// Class of the sums the weighted image goes to (= klass unless a partition is imposed).
        var outClass: Int32
    }

    /// Per-iteration tables shared read-only by all slots.
    struct Tables: @unchecked Sendable {
        let setup: RefinementSetup
        let model: Model
        let particles: [Particle]
        let plan: SearchPlan
        let window: ShiftWindow
        let rotators: [FourierRotator?]
        let logAlpha: [Double]
        let sigma2: Double
        let blockSize: Int
        /// The quanta that make the image and wedge sums exact (the same on every rank); nil in tables
        /// that only search (the adaptive search's coarse pass accumulates nothing).
        let scale: SumScale?
        /// Per image, the number of best (orientation, class) samples kept however small their weight
        /// (pass 1 of the adaptive search, whose posterior at high SNR is sharper than its grid: see
        /// `SearchRestriction.minimumCoarseSamples`); 0 keeps only the significant ones.
        var keepBest = 0
        /// Where the slots count the visits they finished (nil: nobody watches).
        let progress: EStepProgress?
        var phase: EStepProgress.Phase
        /// Times the search's c2r FFTs (nil: not timed).
        var clock: (any TimeSource)? = nil

        /// Visits (image, orientation) of the whole plan: the units of `progress`.
        var plannedVisits: Int {
            guard let visitors = plan.visitors else { return plan.count * particles.count }
            return visitors.reduce(0) { $0 + $1.count }
        }

        func slot(of a: Int) -> Int { (a / blockSize) % EStep.slotCount }
        func orientations(ofSlot s: Int) -> [Int] {
            (0 ..< plan.count).filter { slot(of: $0) == s }
        }
    }

    /// Runs the E-step over the local `particles` in its four stages: plan (which orientations each
    /// image visits: `SearchPlan`, and the tables of the search), search (pass 1: per visited triple the
    /// maximum and log-sum of the shift weights), posterior (per image: normalisation, significant
    /// triples, log-likelihood, statistics) and weighted sums (pass 2: the images' posterior-weighted sums
    /// in the reference frame, and the wedge sums).
    /// - Parameters:
    ///   - previous: the previous iteration's results for the same particles (centre of local searches).
    ///   - iteration: the iteration number (keys the grid perturbation).
    ///   - partition: when given, the model must have one class; every image is aligned to it and its
    ///     posterior goes to the sums of class `classOf[i]` among `classes` (used once, to split a
    ///     consensus into classes that share its frame).
    ///   - restriction: pass 2 of the adaptive search: the triples its pass 1 kept.
    ///   - clock: times the search's c2r FFTs (nil: not timed).
    static func run(setup: RefinementSetup, model: Model, particles: [Particle],
                    previous: [ParticleResult]?, iteration: Int,
                    partition: (classes: Int, classOf: [Int])? = nil,
                    restriction: SearchRestriction? = nil, progress: EStepProgress? = nil,
                    clock: (any TimeSource)? = nil, scale: SumScale? = nil) throws -> EStepOutput {
        let d = setup.dim
        let k = model.classCount
        if let partition {
            guard k == 1, partition.classOf.count == particles.count,
                  partition.classOf.allSatisfy({ $0 >= 0 && $0 < partition.classes }) else {
                throw EngineError("a class partition needs a one-class model and a class for every image")
            }
        }
        guard k >= 1, model.references.allSatisfy({ $0.nx == d && $0.isCubic }) else {
            throw EngineError("the model's references must be \(d)³ (working box)")
        }
        // Plan.
        let plan = SearchPlan.make(setup: setup, particles: particles, previous: previous, iteration: iteration,
                                   restriction: restriction)
        var tables = try makeTables(setup: setup, model: model, particles: particles, plan: plan,
                                    progress: progress, phase: .search, scale: scale ?? .local(particles))
        tables.clock = clock
        // The samples around each image's best one must outlive the significance cut for its pose peak.
        if setup.options.refinesPosesBetweenSamples { tables.keepBest = PosePeak.keptSamples * k }
        // Search and posterior.
        let outputClasses = OutputClasses(partition: partition, modelClasses: k)
        let posterior: Posterior
        var search = Search(perImage: [], triples: 0, c2rSeconds: 0, c2rCalls: 0)
        if setup.options.onlyAverage {
            posterior = inputPosterior(particles: particles, orientations: plan.count, dim: d, classes: outputClasses.count)
        } else {
            search = self.search(tables)
            posterior = self.posterior(search.perImage, tables: tables, previous: previous, classes: outputClasses)
        }
        // Weighted sums.
        let sums = weightedSums(tables, jobs: posterior.jobsByOrientation, startingFrom: posterior.sums,
                                classes: outputClasses)
        return EStepOutput(sums: sums, results: posterior.results, triples: search.triples,
                           significantTriples: posterior.significant,
                           c2rSeconds: search.c2rSeconds, c2rCalls: search.c2rCalls)
    }

    /// The classes the sums are kept for: the model's, or those of an imposed partition.
    struct OutputClasses {
        let partition: (classes: Int, classOf: [Int])?
        let modelClasses: Int
        var count: Int { partition?.classes ?? modelClasses }
        /// The output class of image `i`'s posterior in model class `c`.
        func of(image i: Int, modelClass c: Int) -> Int { partition?.classOf[i] ?? c }
    }

    /// The search stage's output: per image its visited triples' candidates (in no particular order).
    struct Search {
        var perImage: [[Candidate]]
        var triples: Int
        var c2rSeconds: Double
        var c2rCalls: Int
    }

    /// The posterior stage's output: the per-image results, the pass-2 jobs per orientation, the
    /// scalar sums (class weights, σ sums, log-likelihood, counts) and the number of significant triples.
    struct Posterior {
        var jobsByOrientation: [[WeightJob]]
        var results: [ParticleResult]
        var sums: Sums
        var significant: Int
    }

    /// Search: pass 1 (ML) or the maxCC search over every slot (the fine search, or the adaptive
    /// search's coarse pass, as `tables.phase` says), candidates grouped by image as the slots finish
    /// (in slot order), so that each slot's list is freed once grouped.
    static func search(_ tables: Tables) -> Search {
        let grouping = OrderedFold<Search, SlotSearch>(
            Search(perImage: [[Candidate]](repeating: [], count: tables.particles.count), triples: 0,
                   c2rSeconds: 0, c2rCalls: 0)) { acc, part in
            acc.triples += part.triples
            acc.c2rSeconds += part.c2rSeconds
            acc.c2rCalls += part.c2rCalls
            for c in part.candidates { acc.perImage[Int(c.image)].append(c) }
        }
        tables.progress?.start(tables.phase, units: tables.plannedVisits)
        let maxCC = tables.setup.options.maxCC
        forEachSlot(slotCount, threads: tables.setup.options.threads) { s in
            grouping.deliver(s, maxCC ? searchMaxCC(tables, slot: s) : searchML(tables, slot: s))
        }
        return grouping.result
    }

    /// `--only_average`: every image with weight 1 in its input class, pose and shift (its plan has one
    /// orientation per image, the image's own).
    static func inputPosterior(particles: [Particle], orientations: Int, dim d: Int, classes: Int) -> Posterior {
        var out = Posterior(jobsByOrientation: [[WeightJob]](repeating: [], count: orientations), results: [],
                            sums: Sums(dim: d, classCount: classes), significant: particles.count)
        for (i, p) in particles.enumerated() {
            let c = p.inputClass ?? 0
            out.jobsByOrientation[i].append(WeightJob(image: Int32(i), klass: Int32(c), logNorm: 0,
                                                      deltaShift: 0, outClass: Int32(c)))
            out.results.append(ParticleResult(globalIndex: p.globalIndex, angles: p.inputAngles, shift: p.inputShift,
                                              classNumber: c + 1, logLikelihood: 0, maxProbability: 1,
                                              regionNumber: p.regionNumber, halfSet: p.halfSet))
            out.sums.addClassWeight(1, to: c)
            out.sums.addImage(maxProbability: 1)
        }
        return out
    }

    /// Posterior: per image, from its candidates, the normalisation ln Σ weights, the significant
    /// triples (maximum weight within `significance` of the image's best), their pass-2 jobs, the
    /// image's log-likelihood, max-probability and best pose, and its share of the scalar sums. maxCC:
    /// a hard assignment to the best triple (spec §7), CC reported as the max-probability.
    static func posterior(_ perImage: [[Candidate]], tables: Tables, previous: [ParticleResult]?,
                          classes: OutputClasses) -> Posterior {
        let setup = tables.setup, model = tables.model, plan = tables.plan
        let o = setup.options
        var out = Posterior(jobsByOrientation: [[WeightJob]](repeating: [], count: plan.count), results: [],
                            sums: Sums(dim: setup.dim, classCount: classes.count), significant: 0)
        for (i, p) in tables.particles.enumerated() {
            let cands = perImage[i].sorted { ($0.orientation, $0.klass) < ($1.orientation, $1.klass) }
            guard let best = cands.max(by: { $0.maxLog < $1.maxLog || ($0.maxLog == $1.maxLog && ($0.orientation, $0.klass) > ($1.orientation, $1.klass)) }) else {
                // Nothing visited (no live class): keep the input values, contribute nothing.
                out.results.append(ParticleResult(globalIndex: p.globalIndex, angles: previous?[i].angles ?? p.inputAngles,
                                                  shift: previous?[i].shift ?? p.inputShift,
                                                  classNumber: (p.inputClass ?? 0) + 1, logLikelihood: 0,
                                                  maxProbability: 0, regionNumber: p.regionNumber, halfSet: p.halfSet))
                continue
            }
            let bestShift = o.dontAlign ? p.inputShift
                : -SIMD3<Double>(tables.window.shiftBox[Int(best.bestShift)]) / setup.scaleFactor
            let bestClass = classes.of(image: i, modelClass: Int(best.klass))
            if o.maxCC {
                out.jobsByOrientation[Int(best.orientation)].append(
                    WeightJob(image: Int32(i), klass: best.klass, logNorm: 0, deltaShift: best.bestShift,
                              outClass: Int32(bestClass)))
                out.sums.addClassWeight(1, to: bestClass)
                out.sums.addImage(maxProbability: best.maxLog)
                out.significant += 1
                out.results.append(ParticleResult(globalIndex: p.globalIndex, angles: plan.angles[Int(best.orientation)],
                                                  shift: bestShift, classNumber: bestClass + 1,
                                                  logLikelihood: 0, maxProbability: best.maxLog,
                                                  regionNumber: p.regionNumber, halfSet: p.halfSet))
                continue
            }
            let threshold = best.maxLog + Foundation.log(significance)
            let sig = cands.filter { $0.maxLog > threshold || ($0.orientation == best.orientation && $0.klass == best.klass) }
            let top = sig.map(\.logSum).max()!
            var total = 0.0
            for c in sig { total += Foundation.exp(c.logSum - top) }
            let logNorm = top + Foundation.log(total)
            var sumD = 0.0, sumS2 = 0.0
            for c in sig {
                let w = Foundation.exp(c.logSum - logNorm)
                let outClass = classes.of(image: i, modelClass: Int(c.klass))
                out.sums.addClassWeight(w, to: outClass)
                sumD += w * c.meanD
                sumS2 += w * c.meanS2
                out.jobsByOrientation[Int(c.orientation)].append(
                    WeightJob(image: Int32(i), klass: c.klass, logNorm: logNorm, deltaShift: -1, outClass: Int32(outClass)))
            }
            out.significant += sig.count
            let nObs = Double(setup.observedCounts[p.region])
            let ll = logNorm - nObs * Foundation.log((2 * Double.pi).squareRoot() * model.sigmaNoise)
            let pMax = Foundation.exp(best.maxLog - logNorm)
            out.sums.addImage(maxProbability: pMax, logLikelihood: ll, sigmaNoise: 2 * sumD, sigmaOffset: sumS2)
            var angles = plan.angles[Int(best.orientation)]
            if o.refinesPosesBetweenSamples {
                let around = cands.filter { $0.klass == best.klass && $0.orientation != best.orientation }
                    .map { (matrix: plan.matrices[Int($0.orientation)], logWeight: $0.logSum) }
                if let peak = PosePeak.refined(best: plan.matrices[Int(best.orientation)], bestLogWeight: best.logSum,
                                               samples: around, step: setup.options.angularStep * Double.pi / 180) {
                    angles = EulerAngles(matrix: peak)
                }
            }
            out.results.append(ParticleResult(globalIndex: p.globalIndex, angles: angles,
                                              shift: bestShift, classNumber: bestClass + 1,
                                              logLikelihood: ll, maxProbability: pMax,
                                              regionNumber: p.regionNumber, halfSet: p.halfSet))
        }
        return out
    }

    /// Weighted sums: pass 2 per slot, merged in slot order into `scalars` (the posterior stage's sums).
    static func weightedSums(_ tables: Tables, jobs: [[WeightJob]], startingFrom scalars: Sums,
                             classes: OutputClasses) -> Sums {
        tables.progress?.start(.accumulate, units: jobs.reduce(0) { $0 + $1.count })
        var accumulation = tables
        accumulation.phase = .accumulate
        let pass2 = accumulation
        let merge = OrderedFold<Sums, Sums>(scalars) { total, part in total.add(imagesAndWedgesOf: part) }
        forEachSlot(slotCount, threads: tables.setup.options.threads) { s in
            merge.deliver(s, accumulate(pass2, jobs: jobs, slot: s, outputClasses: classes.count))
        }
        return merge.result
    }

    /// The per-iteration tables of a search over `plan`.
    static func makeTables(setup: RefinementSetup, model: Model, particles: [Particle], plan: SearchPlan,
                           progress: EStepProgress? = nil, phase: EStepProgress.Phase = .search,
                           scale: SumScale? = nil) throws -> Tables {
        let o = setup.options
        let d = setup.dim
        // maxCC searches every shift of the box (spec §7), ML the σ_offset window (§6.2).
        let window = o.maxCC
            ? ShiftWindow.make(dim: d, sigmaOffset: Double(d), limitTrans: -1, onlyZero: o.dontAlign || o.onlyAverage)
            : ShiftWindow.make(dim: d, sigmaOffset: model.sigmaOffset, limitTrans: o.limitTrans,
                               onlyZero: o.dontAlign || o.onlyAverage)
        let rotators: [FourierRotator?] = o.onlyAverage ? [FourierRotator?](repeating: nil, count: model.classCount)
            : model.references.enumerated().map { (c, ref) in
                model.fractions[c] > 0 ? FourierRotator(reference: ref, padding: o.rotationPadding) : nil
            }
        let sigma2 = model.sigmaNoise * model.sigmaNoise
        guard sigma2 > 0 || !o.usesMaximumLikelihood else {
            throw EngineError("the noise σ is zero; use a positive --noise or do not fix it at 0")
        }
        return Tables(setup: setup, model: model, particles: particles, plan: plan, window: window,
                      rotators: rotators,
                      logAlpha: model.fractions.map { $0 > 0 ? Foundation.log($0) : -Double.infinity },
                      sigma2: sigma2,
                      blockSize: max(1, plan.count / (slotCount * 4)), scale: scale,
                      progress: progress, phase: phase)
    }

    // MARK: - Adaptive search, pass 1

    /// Pass 1 of the adaptive search: every image against every orientation of `setup`'s (coarse) grid
    /// and every live class. Returns, per image, the (orientation, class) samples within the
    /// significance threshold of its best one with their log-weight (log Σ over shifts), and the
    /// number of triples evaluated.
    /// With `centres`, image i visits only the orientations within `reach` degrees of `centres[i]` (all
    /// of them where that is nil).
    static func coarsePosteriors(setup: RefinementSetup, model: Model, particles: [Particle], iteration: Int,
                                 centres: [Matrix3?]? = nil, reach: Double = 0, neighbourhoods: [[Int]]? = nil,
                                 progress: EStepProgress? = nil) throws
        -> (posteriors: [[(orientation: Int32, klass: Int32, logWeight: Double)]], triples: Int) {
        var plan = SearchPlan.make(setup: setup, particles: particles, previous: nil, iteration: iteration)
        if let neighbourhoods {
            plan = plan.visiting(neighbourhoods)
        } else if let centres, reach > 0 {
            plan = plan.local(around: centres, reach: reach)
        }
        var coarseTables = try makeTables(setup: setup, model: model, particles: particles, plan: plan,
                                          progress: progress, phase: .coarse)
        // Every kept orientation may hold its samples in all classes: keeping M × K samples guarantees
        // M distinct orientations.
        coarseTables.keepBest = SearchRestriction.minimumCoarseSamples * model.classCount
        let tables = coarseTables
        let found = search(tables)
        let posteriors = found.perImage.map { cands -> [(orientation: Int32, klass: Int32, logWeight: Double)] in
            let byWeight = cands.sorted { ($0.maxLog, $1.orientation, $1.klass) > ($1.maxLog, $0.orientation, $0.klass) }
            guard let best = byWeight.first?.maxLog else { return [] }
            let threshold = best + Foundation.log(significance)
            return byWeight.enumerated().filter { $0.offset < tables.keepBest || $0.element.maxLog > threshold }
                .map(\.element)
                .sorted { ($0.orientation, $0.klass) < ($1.orientation, $1.klass) }
                .map { ($0.orientation, $0.klass, $0.logSum) }
        }
        return (posteriors, found.triples)
    }

    // MARK: - Pass 1 (ML)

    /// Scratch buffers of one slot.
    final class Workspace {
        let d: Int
        let nh: Int
        let plan: FFTPlan
        let rotated: [AlignedBuffer<Complex<Float>>]
        let product: AlignedBuffer<Complex<Float>>
        let corr: AlignedBuffer<Float>
        /// Wall time spent in `correlate`'s c2r (when a clock is given) and the number of calls: the
        /// FFT floor as the E-step itself meets it (same caches, same machine state), next to the
        /// isolated benchmark's.
        var c2rSeconds: Double = 0
        var c2rCalls = 0
        let clock: (any TimeSource)?
        init(dim d: Int, classes: Int, clock: (any TimeSource)?) {
            self.d = d
            self.clock = clock
            nh = d * d * (d / 2 + 1)
            plan = FFTPlan.shared(dim: d)
            rotated = (0 ..< classes).map { _ in AlignedBuffer<Complex<Float>>(count: d * d * (d / 2 + 1)) }
            product = AlignedBuffer<Complex<Float>>(count: nh)
            corr = AlignedBuffer<Float>(count: d * d * d)
        }

        /// corr := IFFTu(F_X ⊙ conj(R̂_k)), i.e. C(s)/V at physical index s.
        @inline(__always)
        func correlate(_ spectrum: UnsafePointer<Complex<Float>>, klass: Int) {
            let r = UnsafeRawPointer(rotated[klass].pointer).assumingMemoryBound(to: Float.self)
            let x = UnsafeRawPointer(spectrum).assumingMemoryBound(to: Float.self)
            let out = UnsafeMutableRawPointer(product.pointer).assumingMemoryBound(to: Float.self)
            for j in 0 ..< nh {
                let xr = x[2 * j], xi = x[2 * j + 1]
                let rr = r[2 * j], ri = r[2 * j + 1]
                out[2 * j] = xr * rr + xi * ri
                out[2 * j + 1] = xi * rr - xr * ri
            }
            if let clock {
                let start = clock.seconds()
                plan.inverseDestroyingInput(product.pointer, corr.pointer)
                c2rSeconds += clock.seconds() - start
            } else {
                plan.inverseDestroyingInput(product.pointer, corr.pointer)
            }
            c2rCalls += 1
        }

        /// max over the window of ln P(s) + scale·corr(s) (Float, 8 lanes).
        @inline(__always)
        func windowMax(logPrior: UnsafePointer<Float>, segments: [(start: Int, count: Int)], scale: Float) -> Float {
            let c = UnsafeRawPointer(corr.pointer)
            let l = UnsafeRawPointer(logPrior)
            var m8 = SIMD8<Float>(repeating: -.infinity)
            var m1 = -Float.infinity
            let s8 = SIMD8<Float>(repeating: scale)
            for seg in segments {
                var j = seg.start
                let end = seg.start + seg.count
                while j + 8 <= end {
                    let lp = l.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
                    let cv = c.loadUnaligned(fromByteOffset: 4 * j, as: SIMD8<Float>.self)
                    let v = lp + s8 * cv
                    m8.replace(with: v, where: v .> m8)
                    j += 8
                }
                while j < end {
                    m1 = max(m1, logPrior[j] + scale * corr.pointer[j])
                    j += 1
                }
            }
            return max(m8.max(), m1)
        }

        /// V·Σ_half w·|R̂_k|² for the Parseval weights `w` of one region.
        func a2(klass: Int, weights: [Float]) -> Double {
            let r = UnsafeRawPointer(rotated[klass].pointer).assumingMemoryBound(to: Float.self)
            var acc = 0.0
            weights.withUnsafeBufferPointer { w in
                var partial: Float = 0
                for j in 0 ..< nh {
                    let re = r[2 * j], im = r[2 * j + 1]
                    partial += w[j] * (re * re + im * im)
                    if j & 1023 == 1023 {
                        acc += Double(partial)
                        partial = 0
                    }
                }
                acc += Double(partial)
            }
            return acc * Double(d * d * d)
        }
    }

    /// Rotates every live class for orientation `a` into the workspace.
    static func rotateReferences(_ t: Tables, _ ws: Workspace, orientation a: Int, classes: [Int]) {
        let radius = Double(t.setup.resolution.rMaxres)
        for c in classes {
            t.rotators[c]?.rotate(t.plan.matrices[a], maxRadius: radius, into: ws.rotated[c].pointer)
        }
    }

    static func searchML(_ t: Tables, slot s: Int) -> SlotSearch {
        let d = t.setup.dim
        let k = t.model.classCount
        let ws = Workspace(dim: d, classes: k, clock: t.clock)
        let vol = Double(d * d * d)
        let live = (0 ..< k).filter { t.rotators[$0] != nil && t.logAlpha[$0] > -Double.infinity }
        let regionCount = t.setup.regionCount
        var runningMax = [Double](repeating: -Double.infinity, count: t.particles.count)
        var out: [Candidate] = []
        var count = 0
        let logSig = Foundation.log(significance)
        // The `keepBest` best maxLog values seen so far per image, descending (-∞ until filled).
        let keep = t.keepBest
        var topLogs = [Double](repeating: -Double.infinity, count: t.particles.count * keep)
        /// Below this a triple of image i is neither significant nor among its best `keep`.
        func cut(_ i: Int) -> Double {
            keep == 0 ? runningMax[i] + logSig : min(runningMax[i] + logSig, topLogs[i * keep + keep - 1])
        }
        let scale = vol / t.sigma2
        let w = t.window
        let everyone = (0 ..< t.particles.count).map { Int32($0) }
        var a2 = [Double](repeating: 0, count: k * regionCount)
        var a2Done = [Bool](repeating: false, count: k * regionCount)
        let scaleF = Float(scale)
        w.logPriorBox.withUnsafeBufferPointer { lnPBox in
        w.radius2Box.withUnsafeBufferPointer { r2Box in
            let lnP = lnPBox.baseAddress!
            for a in t.orientations(ofSlot: s) {
                let vis = t.plan.visitors?[a] ?? everyone
                if vis.isEmpty { continue }
                // Counted when the orientation is done, whichever way its loop ends.
                defer { t.progress?.advance(t.phase, by: vis.count) }
                rotateReferences(t, ws, orientation: a, classes: live)
                for j in a2Done.indices { a2Done[j] = false }
                let masks = t.plan.classMasks?[a]
                for (v, iv) in vis.enumerated() {
                    let i = Int(iv)
                    let p = t.particles[i]
                    let lnN = Foundation.log(Double(t.plan.visitCount[i]))
                    for c in live where masks.map({ $0[v] & (UInt64(1) << UInt64(c)) != 0 }) ?? true {
                        let key = c * regionCount + p.region
                        if !a2Done[key] {
                            a2[key] = ws.a2(klass: c, weights: t.setup.parsevalWeights[p.region])
                            a2Done[key] = true
                        }
                        p.spectrum.withUnsafeBufferPointer { ws.correlate($0.baseAddress!, klass: c) }
                        count += 1
                        let half = 0.5 * (a2[key] + p.xi2)
                        let cst = t.logAlpha[c] - lnN - half / t.sigma2
                        let maxTF = ws.windowMax(logPrior: lnP, segments: w.segments, scale: scaleF)
                        let maxT = Double(maxTF)
                        if cst + maxT < cut(i) - 1 { continue }
                        // Exact (Double) weights for shifts within e^-40 of the Float maximum.
                        let corr = ws.corr.pointer
                        var sumE = 0.0, sumED = 0.0, sumES2 = 0.0
                        var bestT = -Double.infinity
                        var arg = 0
                        for seg in w.segments {
                            for j in seg.start ..< seg.start + seg.count {
                                let uF = lnP[j] + scaleF * corr[j] - maxTF
                                if !(uF > -40) { continue }
                                let cj = Double(corr[j])
                                let tj = Double(lnP[j]) + scale * cj
                                if tj > bestT { bestT = tj; arg = j }
                                let e = Foundation.exp(tj - maxT)
                                sumE += e
                                sumED += e * (half - vol * cj)
                                sumES2 += e * r2Box[j]
                            }
                        }
                        guard sumE > 0 else { continue }
                        let maxLog = cst + bestT
                        if maxLog < cut(i) { continue }
                        if maxLog > runningMax[i] { runningMax[i] = maxLog }
                        if keep > 0 && maxLog > topLogs[i * keep + keep - 1] {
                            var j = i * keep + keep - 1
                            while j > i * keep && topLogs[j - 1] < maxLog { topLogs[j] = topLogs[j - 1]; j -= 1 }
                            topLogs[j] = maxLog
                        }
                        out.append(Candidate(image: iv, orientation: Int32(a), klass: Int32(c), bestShift: Int32(arg),
                                             maxLog: maxLog, logSum: cst + maxT + Foundation.log(sumE),
                                             meanD: sumED / sumE, meanS2: sumES2 / sumE))
                    }
                }
            }
        }
        }
        return SlotSearch(out, triples: count, workspace: ws)
    }

    // MARK: - maxCC search (spec §7)

    /// Constrained cross-correlation: per triple the maximum over shifts of
    /// CC(s) = ⟨X̃, T_s R̃⟩ / (V σ_X σ_R), R̃ the reference filtered by the image's own region.
    /// Returned candidates carry CC in `maxLog`; only each image's best triple per slot is kept.
    static func searchMaxCC(_ t: Tables, slot s: Int) -> SlotSearch {
        let d = t.setup.dim
        let k = t.model.classCount
        let ws = Workspace(dim: d, classes: k, clock: t.clock)
        let vol = Double(d * d * d)
        let live = (0 ..< k).filter { t.rotators[$0] != nil }
        var best = [Candidate?](repeating: nil, count: t.particles.count)
        var count = 0
        let regionCount = t.setup.regionCount
        // σ of X̃ (zero mean, DC removed by the mask): ‖X̃‖²/V.
        let sigmaX = t.particles.map { ($0.xi2 / vol).squareRoot() }
        let everyone = (0 ..< t.particles.count).map { Int32($0) }
        var a2 = [Double](repeating: 0, count: k * regionCount)
        var a2Done = [Bool](repeating: false, count: k * regionCount)
        let w = t.window
        for a in t.orientations(ofSlot: s) {
            let vis = t.plan.visitors?[a] ?? everyone
            if vis.isEmpty { continue }
            defer { t.progress?.advance(t.phase, by: vis.count) }
            rotateReferences(t, ws, orientation: a, classes: live)
            for j in a2Done.indices { a2Done[j] = false }
            for iv in vis {
                let i = Int(iv)
                let p = t.particles[i]
                for c in live {
                    let key = c * regionCount + p.region
                    if !a2Done[key] {
                        a2[key] = ws.a2(klass: c, weights: t.setup.parsevalWeights[p.region])
                        a2Done[key] = true
                    }
                    p.spectrum.withUnsafeBufferPointer { ws.correlate($0.baseAddress!, klass: c) }
                    count += 1
                    let sigmaR = (a2[key] / vol).squareRoot()
                    let norm = sigmaX[i] * sigmaR
                    guard norm > 0 else { continue }
                    // Every shift of the box (spec §7: no σ window, no limit_trans) unless dont_align.
                    var maxC = -Double.infinity
                    var arg = 0
                    let corr = ws.corr.pointer
                    for seg in w.segments {
                        for j in seg.start ..< seg.start + seg.count {
                            let v = Double(corr[j])
                            if v > maxC { maxC = v; arg = j }
                        }
                    }
                    let cc = maxC / norm
                    if best[i] == nil || cc > best[i]!.maxLog {
                        best[i] = Candidate(image: iv, orientation: Int32(a), klass: Int32(c), bestShift: Int32(arg),
                                            maxLog: cc, logSum: cc, meanD: 0, meanS2: 0)
                    }
                }
            }
        }
        return SlotSearch(best.compactMap { $0 }, triples: count, workspace: ws)
    }

    // MARK: - Pass 2

    static func accumulate(_ t: Tables, jobs: [[WeightJob]], slot s: Int, outputClasses kOut: Int) -> Sums? {
        let d = t.setup.dim
        let k = t.model.classCount
        let nh = d * d * (d / 2 + 1)
        let vol = d * d * d
        let regionCount = t.setup.regionCount
        let orientations = t.orientations(ofSlot: s).filter { !jobs[$0].isEmpty }
        if orientations.isEmpty { return nil }
        let ws = Workspace(dim: d, classes: k, clock: t.clock)
        var sums = Sums(dim: d, classCount: kOut)
        // Image-frame accumulators per (half, output class), complex as interleaved Double.
        var accum = [[Double]](repeating: [Double](repeating: 0, count: 2 * nh), count: 2 * kOut)
        var used = [Bool](repeating: false, count: 2 * kOut)
        var regionWeight = [Double](repeating: 0, count: 2 * kOut * regionCount)
        let weights = AlignedBuffer<Float>(count: vol)
        let weightSpectrum = AlignedBuffer<Complex<Float>>(count: nh)
        let back = AlignedBuffer<Complex<Float>>(count: nh)
        let image = AlignedBuffer<Float>(count: vol)
        var maskBuffer = [Float](repeating: 0, count: nh)
        let w = t.window
        let scale = Double(vol) / max(t.sigma2, .leastNormalMagnitude)
        let scaleF = Float(scale)
        let lnNByImage = t.plan.visitCount.map { Foundation.log(Double($0)) }

        guard let sumScale = t.scale else { preconditionFailure("pass 2 needs the tables' sum scale (EStep.run sets it)") }
        let imageQuantum = sumScale.image, wedgeQuantum = sumScale.wedge

        /// Moves each (half, class) sum of one block at orientation `a` into the reference frame and adds
        /// it, quantised, to the slot's sums (exact additions: their order does not matter).
        func flush(orientation a: Int) {
            let rotation = t.plan.matrices[a]
            for slotIndex in 0 ..< 2 * kOut where used[slotIndex] {
                accum[slotIndex].withUnsafeMutableBufferPointer { acc in
                    let b = UnsafeMutableRawPointer(back.pointer).assumingMemoryBound(to: Float.self)
                    for j in 0 ..< 2 * nh {
                        b[j] = Float(acc[j])
                        acc[j] = 0
                    }
                }
                ws.plan.inverseDestroyingInput(back.pointer, image.pointer)
                var y = Volume(nx: d, ny: d, nz: d, data: image.toArray())
                t.setup.realMasks.maskSphericalAverageOutside(&y)
                let r = y.rotated(by: rotation, outside: y.cornerValue)
                sums.imageSums[slotIndex].withUnsafeMutableBufferPointer { dst in
                    r.data.withUnsafeBufferPointer { src in
                        for j in 0 ..< vol { dst[j] += imageQuantum(Double(src[j])) }
                    }
                }
                for m in 0 ..< regionCount {
                    let c = regionWeight[slotIndex * regionCount + m]
                    if c == 0 { continue }
                    regionWeight[slotIndex * regionCount + m] = 0
                    maskBuffer.withUnsafeMutableBufferPointer {
                        t.setup.fillReferenceFrameMask(region: m, rotation: rotation, into: $0)
                    }
                    sums.wedgeSums[slotIndex].withUnsafeMutableBufferPointer { dst in
                        for j in 0 ..< nh where maskBuffer[j] != 0 { dst[j] += wedgeQuantum(c * Double(maskBuffer[j])) }
                    }
                }
                used[slotIndex] = false
            }
        }

        for a in orientations {
            defer { t.progress?.advance(t.phase, by: jobs[a].count) }
            let classes = Array(Set(jobs[a].map { Int($0.klass) })).sorted()
            if jobs[a].contains(where: { $0.deltaShift < 0 }) {
                rotateReferences(t, ws, orientation: a, classes: classes.filter { t.rotators[$0] != nil })
            }
            // Jobs come in ascending image order, so each block's jobs are consecutive.
            var block = -1
            for job in jobs[a] {
                let i = Int(job.image)
                let c = Int(job.klass)
                let p = t.particles[i]
                let jobBlock = p.globalIndex / particleBlock
                if jobBlock != block {
                    flush(orientation: a)
                    block = jobBlock
                }
                var total = 0.0
                if job.deltaShift >= 0 {
                    weights[Int(job.deltaShift)] = 1
                    total = 1
                } else {
                    p.spectrum.withUnsafeBufferPointer { ws.correlate($0.baseAddress!, klass: c) }
                    let a2 = ws.a2(klass: c, weights: t.setup.parsevalWeights[p.region])
                    let cst = t.logAlpha[c] - lnNByImage[i] - 0.5 * (a2 + p.xi2) / t.sigma2 - job.logNorm
                    let corr = ws.corr.pointer
                    let cstF = Float(cst)
                    w.logPriorBox.withUnsafeBufferPointer { lnP in
                        for seg in w.segments {
                            for j in seg.start ..< seg.start + seg.count {
                                // Float pre-filter, exact Double weight for the survivors.
                                if !(cstF + lnP[j] + scaleF * corr[j] > -45) { continue }
                                let u = cst + Double(lnP[j]) + scale * Double(corr[j])
                                if u < -40 { continue }
                                let e = Foundation.exp(u)
                                weights[j] = Float(e)
                                total += e
                            }
                        }
                    }
                }
                // Σ_s w(s)·X̃(r + s) ⇔ F_X ⊙ conj(FFTu(w)).
                ws.plan.forwardUnnormalised(weights.pointer, weightSpectrum.pointer)
                if job.deltaShift >= 0 {
                    weights[Int(job.deltaShift)] = 0
                } else {
                    for seg in w.segments { (weights.pointer + seg.start).update(repeating: 0, count: seg.count) }
                }
                let slotIndex = p.halfSet * kOut + Int(job.outClass)
                used[slotIndex] = true
                regionWeight[slotIndex * regionCount + p.region] += total
                accum[slotIndex].withUnsafeMutableBufferPointer { acc in
                    p.spectrum.withUnsafeBufferPointer { xs in
                        let x = UnsafeRawPointer(xs.baseAddress!).assumingMemoryBound(to: Float.self)
                        let g = UnsafeRawPointer(weightSpectrum.pointer).assumingMemoryBound(to: Float.self)
                        for j in 0 ..< nh {
                            let xr = x[2 * j], xi = x[2 * j + 1]
                            let gr = g[2 * j], gi = g[2 * j + 1]
                            acc[2 * j] += Double(xr * gr + xi * gi)
                            acc[2 * j + 1] += Double(xi * gr - xr * gi)
                        }
                    }
                }
            }
            flush(orientation: a)
        }
        return sums
    }
}

extension Sums {
    /// Adds one image already in the reference frame (`Particle.aligned`) to half-set `halfSet` of class
    /// `klass`, its missing region's mask rotated by the same `rotation` to the wedge sum, and counts it
    /// once for the class: the hard-assignment sums of the starting references and of a class split.
    /// `mask` is scratch of the half-complex size; `scale` gives the quanta that make the sums exact.
    mutating func addAligned(_ image: Volume, rotation a: Matrix3, region: Int, halfSet: Int, klass: Int,
                             setup: RefinementSetup, scale: SumScale, mask: inout [Float]) {
        let slot = halfSet * classCount + klass
        let imageQuantum = scale.image, wedgeQuantum = scale.wedge
        imageSums[slot].withUnsafeMutableBufferPointer { dst in
            for j in 0 ..< image.data.count { dst[j] += imageQuantum(Double(image.data[j])) }
        }
        mask.withUnsafeMutableBufferPointer { setup.fillReferenceFrameMask(region: region, rotation: a, into: $0) }
        for j in mask.indices where mask[j] != 0 { wedgeSums[slot][j] += wedgeQuantum(Double(mask[j])) }
        addClassWeight(1, to: klass)
    }

    /// Adds only the image and wedge sums of `other` (the pass-2 slot outputs carry nothing else).
    mutating func add(imagesAndWedgesOf other: Sums) {
        for i in imageSums.indices {
            imageSums[i].withUnsafeMutableBufferPointer { a in
                other.imageSums[i].withUnsafeBufferPointer { b in
                    for j in 0 ..< a.count { a[j] += b[j] }
                }
            }
            wedgeSums[i].withUnsafeMutableBufferPointer { a in
                other.wedgeSums[i].withUnsafeBufferPointer { b in
                    for j in 0 ..< a.count { a[j] += b[j] }
                }
            }
        }
    }
}
