import Foundation

/// How far this process's E-step of the current iteration has come, in particles, for a progress
/// display (read from another thread while the E-step runs; it never changes what is computed).
///
/// The E-step is orientation-major: every image is compared with every orientation before any image is
/// finished, so "images finished" would stay at 0 until the very end. What is counted instead is the
/// work done: each phase (the coarse pass of the adaptive search, the search, the weighted sums) counts
/// its (image, orientation) visits as the slots finish each orientation, and the phases are weighted by
/// their share of the previous iteration's E-step time (`Phase.priorShare` before one was measured). The
/// particles done are that fraction of this process's particles: monotone within an iteration, equal
/// to the particle count exactly when the E-step has finished.
public final class EStepProgress: @unchecked Sendable {
    /// The parts of one E-step, in the order they run.
    public enum Phase: Int, CaseIterable, Sendable {
        case coarse, search, accumulate

        /// The phase's relative time before one was measured (the first iteration). The search
        /// dominates: about 95 % of the E-step with the weighted sums the rest (read from the progress
        /// lines of 2-rank runs of 24 particles of 24³, `--ang 15` and `--ang 30`); the coarse pass's
        /// share is a guess. A wrong prior only makes the first iteration's count uneven.
        var priorShare: Double {
            switch self {
            case .coarse: 0.3
            case .search: 1
            case .accumulate: 0.06
            }
        }
    }

    /// What a display reads.
    public struct Snapshot: Sendable, Equatable {
        /// The iteration whose E-step this is (0 before the first one started).
        public var iteration: Int
        /// Particles' worth of work done (0 … `particles`).
        public var done: Int
        /// This process's particles.
        public var particles: Int
        /// Whether this iteration's E-step has finished (then `done == particles`).
        public var finished: Bool
    }

    private struct PhaseState {
        var weight: Double
        var planned = 0
        var done = 0
        var startedAt: Double?
        var seconds = 0.0
    }

    private let lock = NSLock()
    private var iteration = 0
    private var particles = 0
    private var finished = false
    private var phases: [Phase: PhaseState] = [:]
    private var order: [Phase] = []
    /// Each phase's seconds in the last finished E-step that ran it.
    private var measured: [Phase: Double] = [:]

    /// Times the phases, to weight them by their measured share in the next E-step.
    private let clock: any TimeSource

    public init(clock: any TimeSource) { self.clock = clock }

    public func snapshot() -> Snapshot {
        lock.lock()
        defer { lock.unlock() }
        let done = finished ? particles : min(particles, Int((fraction * Double(particles)).rounded(.down)))
        return Snapshot(iteration: iteration, done: done, particles: particles, finished: finished)
    }

    /// The fraction of the E-step's work done (lock held).
    private var fraction: Double {
        var f = 0.0
        for phase in order {
            guard let p = phases[phase], p.startedAt != nil else { continue }
            f += p.weight * (p.planned > 0 ? min(1, Double(p.done) / Double(p.planned)) : 1)
        }
        return f
    }

    /// A new E-step of `particles` particles that runs `steps` (in order).
    func begin(iteration: Int, particles: Int, steps: [Phase]) {
        lock.lock()
        defer { lock.unlock() }
        self.iteration = iteration
        self.particles = particles
        finished = false
        order = steps
        let known = steps.compactMap { measured[$0] }
        let timed = known.count == steps.count && known.reduce(0, +) > 0
        let shares = steps.map { timed ? measured[$0]! : $0.priorShare }
        let total = shares.reduce(0, +)
        phases = [:]
        for (step, share) in zip(steps, shares) { phases[step] = PhaseState(weight: share / total) }
    }

    /// Phase `phase` starts with `units` visits to do; the phases before it are complete.
    func start(_ phase: Phase, units: Int) {
        lock.lock()
        defer { lock.unlock() }
        let now = clock.seconds()
        for earlier in order.prefix(while: { $0 != phase }) { close(earlier, at: now) }
        phases[phase]?.planned = units
        phases[phase]?.done = 0
        phases[phase]?.startedAt = now
    }

    /// `units` more visits of the running phase are done (called by the slots as they finish an orientation).
    func advance(_ phase: Phase, by units: Int) {
        guard units > 0 else { return }
        lock.lock()
        defer { lock.unlock() }
        phases[phase]?.done += units
    }

    /// The E-step has ended (successfully or not): every particle counts as done.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        let now = clock.seconds()
        for phase in order { close(phase, at: now) }
        finished = true
    }

    /// Marks a phase complete and records how long it ran (lock held).
    private func close(_ phase: Phase, at now: Double) {
        guard var p = phases[phase] else { return }
        if p.startedAt == nil { p.startedAt = now }
        if p.done < p.planned || p.planned == 0 {
            p.done = p.planned
        }
        if p.seconds == 0, let started = p.startedAt {
            p.seconds = now - started
            measured[phase] = p.seconds
        }
        phases[phase] = p
    }
}
