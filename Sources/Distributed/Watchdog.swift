import CMPI
import Foundation

/// Where this rank's main thread is in the sequence of collective operations, for the watchdog.
///
/// Every public collective of `Communicator` runs inside `tracked`; nested calls (a broadcast of an
/// array is two broadcasts) count once, so the sequence numbers agree between ranks, which call the
/// same collectives in the same order. The state is read by the watchdog thread, hence the lock (one
/// uncontended lock per collective: nothing next to the collective itself).
enum CollectiveProgress {
    struct State {
        /// Outermost collectives entered so far.
        var sequence: Int64 = 0
        var inCollective = false
        /// Monotonic seconds when the current collective was entered.
        var enteredAt = 0.0
        /// Monotonic seconds when the previous collective was left.
        var leftAt = Watchdog.now()
        /// The longest stretch this rank spent between two collectives (its own work: E-step, loading).
        var longestGap = 0.0
        /// The longest whole iteration so far, as told by the program.
        var longestIteration = 0.0
        /// The program's iteration number, for messages (0 before the first).
        var iteration: Int64 = 0
        var depth = 0
    }

    private static let lock = NSLock()
    nonisolated(unsafe) private static var state = State()

    static func tracked<R>(_ body: () throws -> R) rethrows -> R {
        enter()
        defer { leave() }
        return try body()
    }

    private static func enter() {
        lock.lock()
        defer { lock.unlock() }
        state.depth += 1
        guard state.depth == 1 else { return }
        let now = Watchdog.now()
        state.sequence += 1
        state.inCollective = true
        state.enteredAt = now
        state.longestGap = max(state.longestGap, now - state.leftAt)
    }

    private static func leave() {
        lock.lock()
        defer { lock.unlock() }
        state.depth -= 1
        guard state.depth == 0 else { return }
        state.inCollective = false
        state.leftAt = Watchdog.now()
    }

    static func snapshot() -> State {
        lock.lock()
        defer { lock.unlock() }
        return state
    }

    static func update(_ change: (inout State) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        change(&state)
    }
}

/// Detects a rank that stopped progressing (a stopped process, a dead node or network, a file system
/// that never returns) and aborts the whole job with a message naming it, instead of letting the other
/// ranks wait in a collective forever: blocking MPI collectives have no timeout of their own.
///
/// A thread on every rank sends a small heartbeat to every other rank (point-to-point, on a duplicate of
/// the communicator, so it never mixes with the program's own messages) carrying where the sender's main
/// thread is: the number of collectives it entered, whether it waits in one, its iteration, its CPU time
/// and the longest phase it measured; and its E-step progress (`ClusterProgress`), which rank 0 shows.
/// Each rank then checks, several times per second:
///
/// - **silence**: no heartbeat from a peer for `floorSeconds` → the peer is stopped (SIGSTOP, a node
///   that hangs) or unreachable. Heartbeats come from their own thread, so a rank that computes for
///   hours still sends them: this bound does not depend on the length of an iteration.
/// - **stall**: this rank has waited in one collective longer than the bound
///   `max(floorSeconds, factor × longest phase measured on any rank)` (a phase: the time between two
///   collectives or a whole iteration), and a peer that has not reached that collective has made no
///   progress for as long: neither entered a new collective nor used CPU time (at least 5 % of one core).
///   A peer that computes is never blamed, however long it takes (a rank with far more work, a slow
///   node); one stuck in I/O or a lock is. If every rank entered the collective and it still does not
///   complete, the communication layer itself is stuck: that is reported too.
///
/// Either way the detecting rank prints one line naming the rank and calls `MPI_Abort`, which ends every
/// process of the job with a non-zero status. The cost: one 80-byte message per peer per period.
public final class Watchdog: @unchecked Sendable {
    /// How many times the longest phase a collective may last before the stall check applies.
    public static let phaseFactor = 5.0
    /// The status every rank exits with when the watchdog aborts the job.
    public static let abortStatus: Int32 = ExitStatus.failure.rawValue

    private static let tag: Int32 = 7301
    private static let fields = 10

    private let floorSeconds: Double
    /// False with `--watchdog_seconds 0`: the heartbeats still carry the progress counts, nothing is checked.
    private let checking: Bool
    private let period: Double
    private let rank: Int
    private let size: Int
    private let comm: MPI_Comm
    private let hosts: [String]
    private let programName: String

    private let stopLock = NSLock()
    private var stopRequested = false
    private let finished = DispatchSemaphore(value: 0)

    private static let currentLock = NSLock()
    nonisolated(unsafe) private static var current: Watchdog?

    /// What this rank knows of a peer.
    private struct Peer {
        var lastHeard: Double
        var sequence: Int64 = 0
        var inCollective = false
        var iteration: Int64 = 0
        var pid: Int64 = 0
        var cpu = 0.0
        var longestPhase = 0.0
        var finished = false
        /// When the peer last showed progress (a new collective, or CPU time used), and its CPU then.
        var progressAt: Double
        var progressCPU = 0.0
    }

    private init(comm: MPI_Comm, rank: Int, size: Int, hosts: [String], floorSeconds: Double, programName: String) {
        self.comm = comm
        self.rank = rank
        self.size = size
        self.hosts = hosts
        self.floorSeconds = floorSeconds
        self.programName = programName
        checking = floorSeconds > 0
        // N² messages per period in all: keep them below ~10⁴ per second on large jobs.
        self.period = max(checking ? min(1.0, floorSeconds / 10) : 1.0, Double(size * size) / 10_000)
    }

    /// Starts the watchdog on every rank of `communicator` (a collective: every rank calls it at the same
    /// point). `floorSeconds` is the shortest bound (`--watchdog_seconds`); 0: the heartbeats run (they
    /// carry the E-step progress, `ClusterProgress`) but nothing is checked; a single rank: no thread.
    /// Stopped by `Communicator.finalize()`.
    public static func start(_ communicator: Communicator, floorSeconds: Double, programName: String = "ml_tomo") throws {
        guard floorSeconds >= 0, communicator.size > 1 else { return }
        var duplicate: MPI_Comm? = nil
        try MPIError.check(MPI_Comm_dup(communicator.handle, &duplicate), "MPI_Comm_dup")
        let host = (try? communicator.processorName()) ?? "?"
        let joined = try communicator.gather(host, root: 0)?.joined(separator: "\n") ?? ""
        let hosts = try communicator.broadcast(joined, root: 0).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let watchdog = Watchdog(comm: duplicate!, rank: communicator.rank, size: communicator.size, hosts: hosts,
                                floorSeconds: floorSeconds, programName: programName)
        currentLock.lock()
        current = watchdog
        currentLock.unlock()
        let thread = Thread { watchdog.loop() }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// Tells the watchdog which iteration the program is in (for messages).
    public static func setIteration(_ iteration: Int) {
        CollectiveProgress.update { $0.iteration = Int64(iteration) }
    }

    /// Tells the watchdog how long a whole iteration took: the stall bound grows with the longest one.
    public static func noteIterationSeconds(_ seconds: Double) {
        CollectiveProgress.update { $0.longestIteration = max($0.longestIteration, seconds) }
    }

    /// Stops the watchdog thread (after telling the peers this rank is finishing, so they do not take
    /// its silence for a hang) and returns the bound it last used, or nil if none was running.
    static func stopCurrent() -> Double? {
        currentLock.lock()
        let watchdog = current
        current = nil
        currentLock.unlock()
        guard let watchdog else { return nil }
        watchdog.stopLock.lock()
        watchdog.stopRequested = true
        watchdog.stopLock.unlock()
        watchdog.finished.wait()
        guard watchdog.checking else { return nil }
        let s = CollectiveProgress.snapshot()
        return max(watchdog.floorSeconds, phaseFactor * max(s.longestGap, s.longestIteration))
    }

    /// Monotonic seconds.
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    private static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    // MARK: The thread

    private var isStopRequested: Bool {
        stopLock.lock()
        defer { stopLock.unlock() }
        return stopRequested
    }

    private func loop() {
        let start = Self.now()
        var peers = (0 ..< size).map { _ in Peer(lastHeard: start, progressAt: start) }
        // One send buffer and request per peer: a buffer is reused only once its previous send completed.
        let sendBuffers = UnsafeMutablePointer<Double>.allocate(capacity: size * Self.fields)
        var requests = [MPI_Request?](repeating: cmpi_request_null(), count: size)
        var receive = [Double](repeating: 0, count: Self.fields)
        defer { sendBuffers.deallocate() }

        func send(kind: Double) {
            let s = CollectiveProgress.snapshot()
            let progress = HeartbeatProgress.localCount()
            let message: [Double] = [kind, Double(s.sequence), s.inCollective ? 1 : 0, Double(s.iteration),
                                     Double(getpid()), Self.cpuSeconds(), max(s.longestGap, s.longestIteration),
                                     Double(progress.iteration), Double(progress.done), progress.finished ? 1 : 0]
            for peer in 0 ..< size where peer != rank {
                if requests[peer] != cmpi_request_null() {
                    var done: Int32 = 0
                    check(MPI_Test(&requests[peer], &done, cmpi_status_ignore()), "MPI_Test", peer: peer)
                    // A peer that does not take its messages: the silence check on its side, or ours, decides.
                    if done == 0 { continue }
                }
                let buffer = sendBuffers + peer * Self.fields
                for i in 0 ..< Self.fields { buffer[i] = message[i] }
                check(MPI_Isend(buffer, Int32(Self.fields), cmpi_double(), Int32(peer), Self.tag, comm, &requests[peer]),
                      "MPI_Isend", peer: peer)
            }
        }

        while !isStopRequested {
            send(kind: 1)
            let now = Self.now()
            for peer in 0 ..< size where peer != rank {
                while true {
                    var waiting: Int32 = 0
                    check(MPI_Iprobe(Int32(peer), Self.tag, comm, &waiting, cmpi_status_ignore()), "MPI_Iprobe", peer: peer)
                    guard waiting != 0 else { break }
                    check(MPI_Recv(&receive, Int32(Self.fields), cmpi_double(), Int32(peer), Self.tag, comm, cmpi_status_ignore()),
                          "MPI_Recv", peer: peer)
                    var p = peers[peer]
                    let sequence = Int64(receive[1])
                    let cpu = receive[5]
                    if sequence != p.sequence {
                        p.progressAt = now
                        p.progressCPU = cpu
                    } else if now - p.progressAt >= 1, cpu - p.progressCPU >= 0.05 * (now - p.progressAt) {
                        p.progressAt = now
                        p.progressCPU = cpu
                    }
                    p.lastHeard = now
                    p.sequence = sequence
                    p.inCollective = receive[2] != 0
                    p.iteration = Int64(receive[3])
                    p.pid = Int64(receive[4])
                    p.cpu = cpu
                    p.longestPhase = receive[6]
                    p.finished = receive[0] == 2
                    peers[peer] = p
                    HeartbeatProgress.record(.init(iteration: Int(receive[7]), done: Int(receive[8]), finished: receive[9] != 0),
                                             from: peer)
                }
            }
            if checking { inspect(peers, now: now, start: start) }
            Thread.sleep(forTimeInterval: period)
        }
        // Finishing: tell the peers, so that they stop watching this rank, and leave the requests to MPI.
        send(kind: 2)
        for peer in 0 ..< size where requests[peer] != cmpi_request_null() { MPI_Request_free(&requests[peer]) }
        finished.signal()
    }

    private func inspect(_ peers: [Peer], now: Double, start: Double) {
        let me = CollectiveProgress.snapshot()
        for (r, p) in peers.enumerated() where r != rank && !p.finished && now - p.lastHeard > silenceBound {
            let heard = p.pid == 0 ? "never heard from it since the watchdog started \(format(now - start)) ago"
                : "no heartbeat for \(format(now - p.lastHeard)) (bound \(format(silenceBound)))"
            fire("rank \(describe(r, p)) stopped progressing: \(heard); it was last \(activity(p)). "
                + "The process is stopped or hung, its node is down, or the network to it is broken")
        }
        guard me.inCollective else { return }
        let longest = peers.map(\.longestPhase).max() ?? 0
        let bound = max(floorSeconds, Self.phaseFactor * max(longest, me.longestGap, me.longestIteration))
        let waited = now - me.enteredAt
        guard waited > bound else { return }
        let behind = peers.enumerated().filter { r, p in r != rank && !p.finished && p.sequence < me.sequence }
        let stuck = behind.filter { _, p in now - p.progressAt > bound }
        if let (r, p) = stuck.first {
            fire("rank \(describe(r, p)) stopped progressing: rank \(rank) has waited \(format(waited)) for it in "
                + "collective #\(me.sequence) (bound \(format(bound)): \(Int(Self.phaseFactor)) × the longest phase so far, "
                + "at least --watchdog_seconds); it is alive but has neither reached a collective nor used CPU time "
                + "for \(format(now - p.progressAt)); it was last \(activity(p)) (stuck in I/O, e.g. a hung file system, or in a lock)")
        } else if behind.isEmpty {
            fire("collective #\(me.sequence) has not completed after \(format(waited)) (bound \(format(bound))) although "
                + "every rank entered it: the communication between the ranks is stuck")
        }
    }

    private var silenceBound: Double { max(floorSeconds, 5 * period) }

    private func describe(_ r: Int, _ p: Peer) -> String {
        let host = r < hosts.count ? hosts[r] : "?"
        return p.pid == 0 ? "\(r) (on \(host))" : "\(r) (pid \(p.pid) on \(host))"
    }

    private func activity(_ p: Peer) -> String {
        let iteration = p.iteration > 0 ? "in iteration \(p.iteration), " : "before the first iteration, "
        let place = p.inCollective ? "waiting in collective #\(p.sequence)" : "working after collective #\(p.sequence)"
        return iteration + place
    }

    private func format(_ seconds: Double) -> String { String(format: "%.1f s", seconds) }

    private func check(_ code: Int32, _ function: String, peer: Int) {
        guard code != cmpi_success() else { return }
        fire("\(function) to/from rank \(peer) failed: \(MPIError(function: function, code: code).message); rank \(peer) "
            + "is unreachable")
    }

    /// Prints why and ends every process of the job.
    private func fire(_ reason: String) -> Never {
        StandardStreams.flushAll()
        StandardStreams.writeError("\(programName): watchdog (rank \(rank)): \(reason); aborting the job\n")
        AbortCleanup.run()
        _ = cmpi_abort_world(Self.abortStatus)
        exit(Self.abortStatus)
    }
}
