import Foundation
import Testing

/// The MPI layer end to end: `ml_tomo _mpi-selftest` and `ml_tomo doctor` under mpirun with
/// 1, 2 and 3 ranks. Serialized: each case already runs several processes on a small machine.
@Suite(.serialized) struct MPITests {
    /// The ranks that printed `<prefix> rank r/R: OK`, or nil if some line says FAIL.
    private func ranksReportingOK(_ output: String, prefix: String, size: Int) -> Set<Int>? {
        var ranks = Set<Int>()
        for line in output.split(separator: "\n") where line.hasPrefix(prefix + " rank ") {
            guard line.hasSuffix(": OK") else { return nil }
            let field = line.dropFirst(prefix.count + " rank ".count).prefix { $0 != ":" }
            let parts = field.split(separator: "/")
            guard parts.count == 2, let rank = Int(parts[0]), Int(parts[1]) == size else { return nil }
            ranks.insert(rank)
        }
        return ranks
    }

    private func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    @Test(arguments: [1, 2, 3], [1, 1_000_000, 20_000_000])
    func allreduceSumsAreExact(ranks: Int, count: Int) async throws {
        let result = try await ProcessRunner.mpirun(ranks: ranks, ["_mpi-selftest", "allreduce", "\(count)"], timeout: 300)
        #expect(result.status == 0, "\(result)")
        #expect(ranksReportingOK(result.stdout, prefix: "allreduce \(count)", size: ranks) == Set(0 ..< ranks), "\(result)")
    }

    /// Chunk boundaries that do not divide the buffer: every chunk must land in the right place.
    @Test func allreduceInChunks() async throws {
        let count = 1_000_003
        let result = try await ProcessRunner.mpirun(
            ranks: 3, ["_mpi-selftest", "allreduce", "\(count)", "--max-chunk", "65537"], timeout: 300)
        #expect(result.status == 0, "\(result)")
        #expect(ranksReportingOK(result.stdout, prefix: "allreduce \(count)", size: 3) == Set(0 ..< 3), "\(result)")
    }

    @Test(arguments: [1, 2, 3])
    func broadcastDeliversRootData(ranks: Int) async throws {
        let result = try await ProcessRunner.mpirun(ranks: ranks, ["_mpi-selftest", "broadcast"])
        #expect(result.status == 0, "\(result)")
        #expect(ranksReportingOK(result.stdout, prefix: "broadcast", size: ranks) == Set(0 ..< ranks), "\(result)")
    }

    @Test func broadcastInChunks() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 3, ["_mpi-selftest", "broadcast", "--max-chunk", "1000"])
        #expect(result.status == 0, "\(result)")
        #expect(ranksReportingOK(result.stdout, prefix: "broadcast", size: 3) == Set(0 ..< 3), "\(result)")
    }

    @Test(arguments: [1, 2, 3])
    func gatherCollectsVariableLengths(ranks: Int) async throws {
        let result = try await ProcessRunner.mpirun(ranks: ranks, ["_mpi-selftest", "gather"])
        #expect(result.status == 0, "\(result)")
        #expect(occurrences(of: "gather: OK (\(ranks) ranks)", in: result.stdout) == 1, "\(result)")
        #expect(!result.stdout.contains("FAIL"), "\(result)")
    }

    @Test func misuseBecomesSwiftErrors() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 2, ["_mpi-selftest", "errors"])
        #expect(result.status == 0, "\(result)")
        #expect(ranksReportingOK(result.stdout, prefix: "errors", size: 2) == Set(0 ..< 2), "\(result)")
    }

    /// One rank fails inside an agreement point: every rank exits non-zero, promptly, and the
    /// message is printed exactly once, by rank 0, naming the failing rank.
    @Test func failureOnOneRankEndsEveryRankWithOneMessage() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 3, ["_mpi-selftest", "fail-rank", "1"], timeout: 60)
        #expect(!result.timedOut)
        #expect(result.signal == nil, "\(result)")
        #expect(result.status == 1, "\(result)")
        #expect(result.seconds < 10, "\(result)")
        let message = "deliberate self-test failure injected on rank 1"
        #expect(occurrences(of: message, in: result.combinedOutput) == 1, "\(result)")
        #expect(result.stderr.contains("ml_tomo: error (rank 1): \(message)"), "\(result)")
        // No rank got past the agreement point.
        #expect(!result.combinedOutput.contains("agreement did not report"), "\(result)")
    }

    /// The agreed status is the largest one: a usage error seen by every rank gives status 64 (EX_USAGE).
    @Test func usageErrorOnEveryRankGivesTheUsageStatus() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 2, ["_mpi-selftest", "fail-rank", "5"], timeout: 60)
        #expect(result.status == 64, "\(result)")
        #expect(occurrences(of: "no such rank in a job of 2", in: result.combinedOutput) == 1, "\(result)")
        #expect(result.stderr.contains("rank 1 also failed"), "\(result)")
    }

    /// An error that escapes without agreement while the peers wait in a collective: the job is
    /// aborted promptly, and the message still appears once.
    @Test func unagreedFailureAbortsTheJob() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 3, ["_mpi-selftest", "unagreed-fail-rank", "2"], timeout: 60)
        #expect(!result.timedOut)
        #expect(result.status != 0, "\(result)")
        #expect(result.seconds < 10, "\(result)")
        let message = "ml_tomo: error (rank 2): deliberate unagreed self-test failure on rank 2"
        #expect(occurrences(of: message, in: result.stderr) == 1, "\(result)")
        #expect(!result.stdout.contains("barrier completed"), "\(result)")
    }

    /// A rank killed by SIGKILL while its peers wait in a barrier: mpirun ends the whole job.
    @Test func killedRankEndsTheJob() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 3, ["_mpi-selftest", "crash-rank", "1"], timeout: 60)
        #expect(!result.timedOut, "\(result)")
        #expect(result.status != 0, "\(result)")
        #expect(result.seconds < 30, "\(result)")
        #expect(!result.stdout.contains("barrier completed"), "\(result)")
    }

    @Test func doctorListsEveryRankInOrder() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 2, ["doctor"])
        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let rank0 = lines.firstIndex { $0.hasPrefix("rank 0 of 2:") }
        let rank1 = lines.firstIndex { $0.hasPrefix("rank 1 of 2:") }
        #expect(rank0 != nil && rank1 != nil, "\(result)")
        if let rank0, let rank1 { #expect(rank0 < rank1) }
        #expect(lines.filter { $0.hasPrefix("rank ") }.count == 2, "\(result)")
        #expect(occurrences(of: "thread level MPI_THREAD_MULTIPLE", in: result.stdout) == 2, "\(result)")
        for library in ["MPI:", "FFTW:", "HDF5:"] {
            #expect(occurrences(of: library, in: result.stdout) == 2, "\(library) \(result)")
        }
    }

    @Test func doctorWithoutMpirunIsOneRank() async throws {
        let result = try await ProcessRunner.mlTomo(["doctor"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("rank 0 of 1:"), "\(result)")
    }

    @Test func allreduceTimingReportsSeconds() async throws {
        let result = try await ProcessRunner.mpirun(ranks: 2, ["_mpi-selftest", "allreduce-timing", "4", "--repetitions", "2"])
        #expect(result.status == 0, "\(result)")
        #expect(occurrences(of: "allreduce-timing: 4 MB of doubles (524288 values) on 2 ranks: mean ", in: result.stdout) == 1,
                "\(result)")
    }

    @Test func versionAndHelpWorkWithoutMpirun() async throws {
        let version = try await ProcessRunner.mlTomo(["--version"])
        #expect(version.status == 0, "\(version)")
        #expect(version.stdout.hasPrefix("ml_tomo "), "\(version)")
        let help = try await ProcessRunner.mlTomo(["--help"])
        #expect(help.status == 0, "\(help)")
        #expect(help.stdout.contains("doctor"), "\(help)")
        #expect(!help.stdout.contains("_mpi-selftest"), "hidden command shown: \(help)")
    }
}
