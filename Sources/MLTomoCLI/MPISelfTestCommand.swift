import ArgumentParser
import Distributed
import Engine
import Foundation
import Formats

/// `ml_tomo _mpi-selftest <case> [value]`: exercises the MPI layer under mpirun, for the
/// end-to-end tests and for checking a cluster installation. Hidden from `--help`.
///
/// Every case prints `OK` or `FAIL` lines; a failed check also makes the job exit non-zero
/// through the normal collective error agreement.
struct MPISelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_mpi-selftest",
        abstract: "Self-tests of the MPI layer (for the test suite).",
        discussion: """
            Cases: allreduce N | broadcast | gather | errors | fail-rank R | unagreed-fail-rank R | crash-rank R |
            allreduce-timing MB | stall-rank R | busy-rank R | write-during-stall R (these three run the watchdog             with --watchdog-seconds; the last writes into --directory)
            """,
        shouldDisplay: false
    )

    enum Case: String, CaseIterable, ExpressibleByArgument {
        case allreduce, broadcast, gather, errors
        case failRank = "fail-rank"
        case unagreedFailRank = "unagreed-fail-rank"
        case crashRank = "crash-rank"
        case allreduceTiming = "allreduce-timing"
        case stallRank = "stall-rank"
        case busyRank = "busy-rank"
        case writeDuringStall = "write-during-stall"

        var needsValue: Bool {
            switch self {
            case .allreduce, .failRank, .unagreedFailRank, .crashRank, .allreduceTiming, .stallRank, .busyRank, .writeDuringStall: true
            case .broadcast, .gather, .errors: false
            }
        }
    }

    @Argument(help: "The self-test to run.")
    var selfTest: Case

    @Argument(help: "Element count (allreduce), rank (fail-rank, crash-rank) or megabytes (allreduce-timing).")
    var value: Int?

    @Option(help: "Split MPI calls into at most this many elements (exercises chunking of large buffers).")
    var maxChunk: Int?

    @Option(help: "Repetitions averaged by allreduce-timing.")
    var repetitions: Int = 5

    @Option(help: "The watchdog's bound for stall-rank, busy-rank and write-during-stall (seconds).")
    var watchdogSeconds: Double = 2

    @Option(help: "Where write-during-stall writes its file.")
    var directory: String = "."

    func validate() throws {
        if selfTest.needsValue, value == nil {
            throw ValidationError("'\(selfTest.rawValue)' needs a value (see --help)")
        }
        if let value, value < 0 { throw ValidationError("the value must not be negative, got \(value)") }
        if let maxChunk, maxChunk < 1 || maxChunk > Int(Int32.max) {
            throw ValidationError("--max-chunk must be in 1...\(Int32.max), got \(maxChunk)")
        }
        if repetitions < 1 { throw ValidationError("--repetitions must be at least 1, got \(repetitions)") }
    }

    func run() throws {
        MPIJob.run { world in
            let comm = maxChunk.map { world.chunking(atMost: $0) } ?? world
            let tests = MPISelfTests(comm: comm)
            switch selfTest {
            case .allreduce: try tests.allreduce(count: value ?? 0)
            case .broadcast: try tests.broadcast()
            case .gather: try tests.gather()
            case .errors: try tests.errors()
            case .failRank: try tests.failRank(value ?? 0)
            case .unagreedFailRank: try tests.unagreedFailRank(value ?? 0)
            case .crashRank: try tests.crashRank(value ?? 0)
            case .allreduceTiming: try tests.allreduceTiming(megabytes: value ?? 0, repetitions: repetitions)
            case .stallRank: try tests.stallRank(value ?? 0, watchdogSeconds: watchdogSeconds)
            case .busyRank: try tests.busyRank(value ?? 0, watchdogSeconds: watchdogSeconds)
            case .writeDuringStall:
                try tests.writeDuringStall(value ?? 0, watchdogSeconds: watchdogSeconds, directory: directory)
            }
        }
    }
}

/// A failed self-test check, or a deliberately injected failure.
struct SelfTestError: Error, CustomStringConvertible, ExitStatusProviding {
    let description: String
    var exitStatus: ExitStatus = .failure
}

/// The self-test cases. Values are small integers or dyadic fractions, so every expected sum is
/// exact in floating point whatever order MPI adds the contributions in.
struct MPISelfTests {
    let comm: Communicator

    private var rank: Int { comm.rank }
    private var size: Int { comm.size }
    private var who: String { "rank \(rank)/\(size)" }

    /// Prints one result line immediately (the job may be torn down before a normal exit).
    private func report(_ line: String) {
        print(line)
        fflush(nil)
    }

    /// Turns the failed checks of this rank into an agreed, job-wide failure.
    private func agreeOnChecks(_ name: String, _ failures: [String]) throws {
        try comm.agree {
            if !failures.isEmpty {
                throw SelfTestError(description: "\(name) failed on \(who): " + failures.joined(separator: "; "))
            }
        }
    }

    // MARK: allreduce

    func allreduce(count n: Int) throws {
        var failures: [String] = []
        let r = rank
        let sumOfRankPlusOne = Double(size * (size + 1) / 2)
        let sumOfRank = Double(size * (size - 1) / 2)
        // f(i) is a small positive integer; contribution of rank r is (r+1)·f(i) + r/4.
        @inline(__always) func f(_ i: Int) -> Double { Double(i % 1021 + 1) }

        // Sum over all n elements (chunked if --max-chunk is set).
        var values = [Double](unsafeUninitializedCapacity: n) { buffer, initialised in
            for i in 0 ..< n { buffer[i] = Double(r + 1) * f(i) + 0.25 * Double(r) }
            initialised = n
        }
        try comm.allreduceInPlace(&values, .sum)
        if let bad = values.indices.first(where: { values[$0] != sumOfRankPlusOne * f($0) + 0.25 * sumOfRank }) {
            failures.append("Double sum wrong at \(bad): \(values[bad])")
        }
        values = []

        // Max and min, and the other element types, on at most 65536 elements.
        let m = min(n, 65_536)
        var maxima = (0 ..< m).map { Double(r + 1) * f($0) + 0.25 * Double(r) }
        var minima = maxima
        try comm.allreduceInPlace(&maxima, .max)
        try comm.allreduceInPlace(&minima, .min)
        if let bad = (0 ..< m).first(where: { maxima[$0] != Double(size) * f($0) + 0.25 * Double(size - 1) }) {
            failures.append("Double max wrong at \(bad)")
        }
        if let bad = (0 ..< m).first(where: { minima[$0] != f($0) }) { failures.append("Double min wrong at \(bad)") }

        // Engine's view of the same reductions.
        let reducer: any Reducer = AgreeingReducer(comm)
        var viaReducer = [Double](repeating: 0, count: m)
        for i in 0 ..< m { viaReducer[i] = Double(r + 1) * f(i) + 0.25 * Double(r) }
        var reducerMax = viaReducer
        var reducerMin = viaReducer
        try reducer.sumInPlace(&viaReducer)
        try reducer.maxInPlace(&reducerMax)
        try reducer.minInPlace(&reducerMin)
        if reducer.rank != rank || reducer.size != size { failures.append("AgreeingReducer rank/size") }
        if let bad = (0 ..< m).first(where: {
            viaReducer[$0] != sumOfRankPlusOne * f($0) + 0.25 * sumOfRank || reducerMax[$0] != maxima[$0] || reducerMin[$0] != minima[$0]
        }) {
            failures.append("AgreeingReducer wrong at \(bad)")
        }

        let g = { (i: Int) in Float(i % 97 + 1) }
        var floats = (0 ..< m).map { Float(r + 1) * g($0) }
        var floatMax = floats
        var floatMin = floats
        try comm.allreduceInPlace(&floats, .sum)
        try comm.allreduceInPlace(&floatMax, .max)
        try comm.allreduceInPlace(&floatMin, .min)
        if let bad = (0 ..< m).first(where: {
            floats[$0] != Float(sumOfRankPlusOne) * g($0) || floatMax[$0] != Float(size) * g($0) || floatMin[$0] != g($0)
        }) {
            failures.append("Float reduction wrong at \(bad)")
        }

        // Values beyond 2^32, so a 32-bit reduction would show.
        let big: Int64 = 1 << 33
        var ints = (0 ..< m).map { Int64(r + 1) * big + Int64($0) }
        var intMax = ints
        var intMin = ints
        try comm.allreduceInPlace(&ints, .sum)
        try comm.allreduceInPlace(&intMax, .max)
        try comm.allreduceInPlace(&intMin, .min)
        if let bad = (0 ..< m).first(where: {
            ints[$0] != Int64(size * (size + 1) / 2) * big + Int64(size) * Int64($0)
                || intMax[$0] != Int64(size) * big + Int64($0) || intMin[$0] != big + Int64($0)
        }) {
            failures.append("Int64 reduction wrong at \(bad)")
        }

        let scalar = try comm.allreduce(Double(r + 1), .sum)
        if scalar != sumOfRankPlusOne { failures.append("scalar sum \(scalar) != \(sumOfRankPlusOne)") }

        report("allreduce \(n) \(who): " + (failures.isEmpty ? "OK" : "FAIL " + failures.joined(separator: "; ")))
        try agreeOnChecks("allreduce", failures)
    }

    // MARK: broadcast

    func broadcast() throws {
        var failures: [String] = []
        for root in Set([0, size - 1]).sorted() {
            let isRoot = rank == root
            // Variable-length bytes: other ranks start from an empty array.
            let byteCount = 100_003 + root
            let expectedBytes = (0 ..< byteCount).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ root) }
            var bytes: [UInt8] = isRoot ? expectedBytes : []
            try comm.broadcast(&bytes, root: root)
            if bytes != expectedBytes { failures.append("bytes from root \(root)") }

            let expectedDoubles = (0 ..< 1000).map { Double($0) * 0.5 - Double(root) }
            var doubles: [Double] = isRoot ? expectedDoubles : [1, 2, 3]
            try comm.broadcast(&doubles, root: root)
            if doubles != expectedDoubles { failures.append("doubles from root \(root)") }

            let expectedFloats = (0 ..< 333).map { Float($0) / 4 }
            var floats: [Float] = isRoot ? expectedFloats : []
            try comm.broadcast(&floats, root: root)
            if floats != expectedFloats { failures.append("floats from root \(root)") }

            let expectedInts = (0 ..< 77).map { (Int64(1) << 40) + Int64($0 * root) }
            var ints: [Int64] = isRoot ? expectedInts : []
            try comm.broadcast(&ints, root: root)
            if ints != expectedInts { failures.append("Int64s from root \(root)") }

            // A buffer whose length every rank knows.
            var fixed = [Double](repeating: isRoot ? Double(root) + 0.125 : -1, count: 4096)
            try fixed.withUnsafeMutableBufferPointer { try comm.broadcast($0, root: root) }
            if fixed.contains(where: { $0 != Double(root) + 0.125 }) { failures.append("fixed buffer from root \(root)") }

            let text = try comm.broadcast(isRoot ? "größe ✓ from \(root)" : "", root: root)
            if text != "größe ✓ from \(root)" { failures.append("string from root \(root)") }
        }
        report("broadcast \(who): " + (failures.isEmpty ? "OK" : "FAIL " + failures.joined(separator: "; ")))
        try agreeOnChecks("broadcast", failures)
    }

    // MARK: gather

    /// Rank r sends `length(r)` bytes (rank 1 sends none); rank 0 checks every buffer.
    func gather() throws {
        func length(_ r: Int) -> Int { r == 1 ? 0 : r * 37 + 5 }
        func content(_ r: Int) -> [UInt8] { (0 ..< length(r)).map { UInt8(truncatingIfNeeded: r * 31 + $0) } }
        var failures: [String] = []
        let gathered = try comm.gatherBytes(content(rank), root: 0)
        if rank == 0 {
            if let gathered, gathered.count == size {
                for r in 0 ..< size where gathered[r] != content(r) {
                    failures.append("buffer of rank \(r) (\(gathered[r].count) bytes, expected \(length(r)))")
                }
            } else {
                failures.append("root received \(gathered?.count ?? 0) buffers for \(size) ranks")
            }
            let strings = try comm.gather("rank-\(rank)", root: 0) ?? []
            if strings != (0 ..< size).map({ "rank-\($0)" }) { failures.append("strings \(strings)") }
            report("gather: " + (failures.isEmpty ? "OK (\(size) ranks)" : "FAIL " + failures.joined(separator: "; ")))
        } else {
            if gathered != nil { failures.append("non-root rank received data") }
            _ = try comm.gather("rank-\(rank)", root: 0)
            report("gather \(who): sent \(length(rank)) bytes")
        }
        try agreeOnChecks("gather", failures)
    }

    // MARK: errors

    /// Misuse becomes a Swift error on every rank (nobody enters MPI), and MPI error codes are
    /// described with the library's own text once MPI is running.
    func errors() throws {
        var failures: [String] = []
        do {
            var values = [Double](repeating: 1, count: 4)
            try comm.broadcast(&values, root: size)
            failures.append("broadcast to root \(size) did not throw")
        } catch let error as DistributedError {
            if !error.description.contains("root rank \(size) is outside") { failures.append("wrong error: \(error)") }
        }
        if (try? comm.gatherBytes([1], root: -1)) != nil { failures.append("gather to root -1 did not throw") }
        let text = MPIError(function: "MPI_Bcast", code: 1).message
        if !text.contains("MPI_ERR") { failures.append("no library text for MPI error 1: \(text)") }
        // The communicator still works after the refused calls.
        if try comm.allreduce(Int64(1), .sum) != Int64(size) { failures.append("allreduce after errors") }
        report("errors \(who): " + (failures.isEmpty ? "OK" : "FAIL " + failures.joined(separator: "; ")))
        try agreeOnChecks("errors", failures)
    }

    // MARK: failures

    /// Rank `failing` throws inside an agreement point; the others reach it normally.
    func failRank(_ failing: Int) throws {
        try comm.agree {
            guard failing < size else {
                throw SelfTestError(description: "fail-rank \(failing): no such rank in a job of \(size)",
                                    exitStatus: .usage)
            }
            if rank == failing {
                throw SelfTestError(description: "deliberate self-test failure injected on rank \(failing)")
            }
        }
        report("fail-rank \(failing) \(who): FAIL (agreement did not report the failure)")
    }

    /// Rank `failing` throws *outside* any agreement point while the others wait in a barrier:
    /// the job must be aborted (not hang), with the message printed once.
    func unagreedFailRank(_ failing: Int) throws {
        try comm.agree {
            guard failing < size else {
                throw SelfTestError(description: "unagreed-fail-rank \(failing): no such rank in a job of \(size)",
                                    exitStatus: .usage)
            }
        }
        if rank == failing {
            throw SelfTestError(description: "deliberate unagreed self-test failure on rank \(failing)")
        }
        try comm.barrier()
        report("unagreed-fail-rank \(who): FAIL (barrier completed without rank \(failing))")
    }

    /// Rank `victim` kills itself with SIGKILL; the others wait in a barrier that can never
    /// complete, so only mpirun's handling of the dead peer ends the job.
    func crashRank(_ victim: Int) throws {
        try comm.agree {
            guard victim < size else {
                throw SelfTestError(description: "crash-rank \(victim): no such rank in a job of \(size)",
                                    exitStatus: .usage)
            }
        }
        if rank == victim {
            report("crash-rank \(who): sending SIGKILL to myself")
            kill(getpid(), SIGKILL)
        }
        try comm.barrier()
        report("crash-rank \(who): FAIL (barrier completed without rank \(victim))")
    }

    // MARK: watchdog

    /// Rank `victim` stays alive but makes no progress (it sleeps, as in a read from a hung file system)
    /// while the others wait in a barrier: the watchdog must name it and abort the job.
    func stallRank(_ victim: Int, watchdogSeconds: Double) throws {
        try checkRank(victim, "stall-rank")
        try Watchdog.start(comm, floorSeconds: watchdogSeconds)
        if rank == victim {
            report("stall-rank \(who): sleeping")
            sleep(UInt32(min(3600, 20 * watchdogSeconds)))
        }
        try comm.barrier()
        report("stall-rank \(who): FAIL (the watchdog did not end the job)")
    }

    /// Rank `victim` computes (uses CPU) for 3 × the watchdog's bound while the others wait in a barrier:
    /// a working rank must not be taken for a hung one, so the job completes.
    func busyRank(_ victim: Int, watchdogSeconds: Double) throws {
        try checkRank(victim, "busy-rank")
        try Watchdog.start(comm, floorSeconds: watchdogSeconds)
        if rank == victim {
            let start = Date()
            var x = 1.0
            while Date().timeIntervalSince(start) < 3 * watchdogSeconds {
                for i in 0 ..< 100_000 { x = x * 1.000_000_1 + Double(i & 1) * 1e-9 }
            }
            if x == 0 { report("unreachable") }
        }
        try comm.barrier()
        report("busy-rank \(who): OK")
    }

    /// Rank `victim` stalls as in `stall-rank` while rank 0, on a second thread (as the background writer
    /// writes an iteration's files), is inside an atomic write that never finishes (a file system that
    /// stopped answering): when the watchdog ends the job, the temporary file must be gone as well.
    func writeDuringStall(_ victim: Int, watchdogSeconds: Double, directory: String) throws {
        try checkRank(victim, "write-during-stall")
        try comm.agree {
            if victim == 0 { throw SelfTestError(description: "write-during-stall: rank 0 writes; stall another", exitStatus: .usage) }
        }
        try Watchdog.start(comm, floorSeconds: watchdogSeconds)
        if rank == 0 {
            let started = DispatchSemaphore(value: 0)
            let writer = Thread {
                try? AtomicFile.write(to: directory + "/never-finished.bin") { fd in
                    let bytes = [UInt8](repeating: 7, count: 4096)
                    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    started.signal()
                    while true { sleep(3600) }
                }
            }
            writer.start()
            started.wait()
            report("write-during-stall \(who): a write is in progress")
        }
        if rank == victim {
            report("write-during-stall \(who): sleeping")
            sleep(UInt32(min(3600, 20 * watchdogSeconds)))
        }
        try comm.barrier()
        report("write-during-stall \(who): FAIL (the watchdog did not end the job)")
    }

    private func checkRank(_ r: Int, _ name: String) throws {
        try comm.agree {
            guard r < size else {
                throw SelfTestError(description: "\(name) \(r): no such rank in a job of \(size)", exitStatus: .usage)
            }
        }
    }

    // MARK: timing

    func allreduceTiming(megabytes: Int, repetitions: Int) throws {
        let n = megabytes * (1 << 20) / MemoryLayout<Double>.stride
        var values = [Double](repeating: 1, count: n)
        try comm.allreduceInPlace(&values, .sum)  // warm-up: connections, registration
        var seconds: [Double] = []
        let clock = ContinuousClock()
        for _ in 0 ..< repetitions {
            try comm.barrier()
            let elapsed = try clock.measure { try comm.allreduceInPlace(&values, .sum) }
            // The slowest rank defines the time of a collective.
            seconds.append(try comm.allreduce(elapsed.seconds, .max))
        }
        if rank == 0 {
            let mean = seconds.reduce(0, +) / Double(seconds.count)
            let best = seconds.min() ?? 0
            report(String(format: "allreduce-timing: %d MB of doubles (%d values) on %d ranks: mean %.4f s, best %.4f s over %d repetitions (%.2f GB/s per rank)",
                          megabytes, n, size, mean, best, repetitions,
                          mean > 0 ? Double(n * 8) / mean / 1e9 : 0))
        }
    }
}

extension Duration {
    fileprivate var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) * 1e-18
    }
}
