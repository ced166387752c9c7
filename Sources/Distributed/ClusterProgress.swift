import Engine
import Foundation

/// The particles done in the current iteration over all ranks, as one rank (rank 0, which shows it)
/// knows them: its own count read directly, every other rank's as the last heartbeat carried it.
///
/// No collective is involved: the counts ride on the watchdog's heartbeats (point-to-point messages on
/// the watchdog's own duplicate of the communicator, once per second), so watching the progress costs
/// the iterations nothing and cannot change a result. A peer's count is at most one heartbeat old.
public final class ClusterProgress: @unchecked Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// The iteration of this rank's current (or last) E-step; 0 before the first.
        public var iteration: Int
        /// Particles' worth of work done in that iteration over all ranks (0 … `total`).
        public var done: Int
        /// Particles over all ranks.
        public var total: Int
        /// Whether every rank has finished that iteration's E-step (as far as this rank has heard).
        public var finished: Bool
    }

    private let local: EStepProgress
    private let rank: Int
    /// Each rank's particle count (`partition`).
    private let shares: [Int]

    /// `local` is this rank's counter (the one its `Refinement` updates); `totalImages` the particles
    /// over the `ranks` ranks.
    public init(local: EStepProgress, rank: Int, ranks: Int, totalImages: Int) {
        self.local = local
        self.rank = rank
        shares = (0 ..< ranks).map { partition(count: totalImages, ranks: ranks, rank: $0).count }
        HeartbeatProgress.setLocal(local)
    }

    public func snapshot() -> Snapshot {
        let mine = local.snapshot()
        var done = mine.done
        var finished = mine.finished
        let peers = HeartbeatProgress.peers()
        for (r, share) in shares.enumerated() where r != rank {
            // A peer ahead of this rank has finished this iteration's E-step; one behind has not begun it.
            let heard = peers[r] ?? HeartbeatProgress.Count(iteration: 0, done: 0, finished: false)
            if heard.iteration > mine.iteration || (heard.iteration == mine.iteration && heard.finished) {
                done += share
            } else if heard.iteration == mine.iteration {
                done += min(share, heard.done)
                finished = false
            } else {
                finished = false
            }
        }
        return Snapshot(iteration: mine.iteration, done: done, total: shares.reduce(0, +), finished: finished)
    }
}

/// What the heartbeats carry of the E-step progress: this rank's counter (sent) and the peers' last
/// counts (received), shared between the heartbeat thread and the display.
enum HeartbeatProgress {
    struct Count: Equatable {
        var iteration: Int
        var done: Int
        var finished: Bool
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var local: EStepProgress?
    nonisolated(unsafe) private static var received: [Int: Count] = [:]

    static func setLocal(_ counter: EStepProgress) {
        lock.lock()
        defer { lock.unlock() }
        local = counter
    }

    /// This rank's count for the next heartbeat (iteration 0: no E-step yet, or nobody counts).
    static func localCount() -> Count {
        lock.lock()
        let counter = local
        lock.unlock()
        guard let s = counter?.snapshot() else { return Count(iteration: 0, done: 0, finished: false) }
        return Count(iteration: s.iteration, done: s.done, finished: s.finished)
    }

    static func record(_ count: Count, from peer: Int) {
        lock.lock()
        defer { lock.unlock() }
        received[peer] = count
    }

    static func peers() -> [Int: Count] {
        lock.lock()
        defer { lock.unlock() }
        return received
    }
}
