import Foundation
import Testing

/// End-to-end tests of slurm/: a real single-node Slurm (slurm/local-cluster.sh) runs jobs submitted
/// through slurm/ml_tomo.sbatch. If the cluster cannot start on this machine the tests fail with the
/// script's diagnostics; they are never skipped. Serialized: they share one cluster directory and ports.
@Suite(.serialized) struct SlurmTests {
    /// The ml_tomo command line of the 2-rank job. To run a small refinement instead, replace this
    /// list (e.g. ["-i", "<data>/images.sel", "--oroot", "<dir>/ml", "--nref", "2", "--missing",
    /// "<data>/wedges.doc", "--iter", "2", "--ang", "30"]); the template appends --thr itself.
    static let jobArguments = ["doctor"]
    /// Used only while the ml_tomo being tested has no `doctor` subcommand yet (it prints the version
    /// from every rank, which still proves that srun started ml_tomo twice). Delete once doctor exists.
    static let fallbackArguments = ["--version"]

    let cluster = LocalSlurmCluster()

    /// A fresh directory for a job's files (the job's working directory).
    private func jobDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Task ids that produced output: from `srun --label` prefixes ("1: …") and from lines such as
    /// "rank 1 …" that a program printing for all ranks from rank 0 would write.
    static func ranksSeen(in output: String) -> Set<Int> {
        var ranks = Set<Int>()
        for line in output.split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            if let colon = trimmed.firstIndex(of: ":"), let id = Int(trimmed[..<colon]) { ranks.insert(id) }
        }
        let mentions = try! Regex(#"(?i)\brank[ :=#]*(\d+)"#)
        for match in output.matches(of: mentions) {
            if let text = match.output[1].substring, let id = Int(text) { ranks.insert(id) }
        }
        return ranks
    }

    @Test func mlTomoJobRunsTwoRanksThroughTheTemplate() async throws {
        let binary = try SlurmTestPaths.mlTomoBinary()
        // `ml_tomo doctor --help` would succeed even without the subcommand (--help wins): read the list.
        let help = try await SlurmShell().run(binary, ["--help"], timeout: .seconds(30))
        let hasDoctor = help.stdout.range(of: #"(?m)^\s+doctor\b"#, options: .regularExpression) != nil
        let arguments = hasDoctor ? Self.jobArguments : Self.fallbackArguments
        let work = try jobDirectory("ml_tomo")
        defer { try? FileManager.default.removeItem(at: work) }

        try await cluster.withRunningCluster {
            let jobID = try await cluster.submit(
                sbatchOptions: ["--job-name=ml_tomo-test", "--ntasks=2", "--cpus-per-task=1", "--time=5",
                                "--mem=1G", "--output=\(work.path)/job-%j.out"],
                programArguments: arguments,
                environment: ["ML_TOMO_BIN": binary, "ML_TOMO_SRUN_ARGS": "--label"],
                workingDirectory: work)
            let final = try await cluster.waitForJob(jobID, timeout: .seconds(120))
            let output = (try? String(contentsOfFile: "\(work.path)/job-\(jobID).out", encoding: .utf8)) ?? ""
            #expect(final.state == "COMPLETED", "\(final)\n\(output)")
            #expect(final.exitCode == "0:0", "\(final)\n\(output)")
            #expect(output.contains("ntasks=2"), "template header missing:\n\(output)")
            #expect(output.contains("srun --mpi=pmix \(binary) \(arguments.joined(separator: " "))"), "\(output)")
            #expect(Self.ranksSeen(in: output).isSuperset(of: [0, 1]), "expected output from ranks 0 and 1:\n\(output)")
            #expect(output.contains("srun exited with status 0"), "\(output)")
        }
    }

    /// The template's `#SBATCH --signal=USR1@120` must reach every rank (that is how ml_tomo learns
    /// that the time limit is near and checkpoints). A 2-minute job gets the signal at once.
    @Test func timeLimitWarningSignalReachesEveryRank() async throws {
        let work = try jobDirectory("signal")
        defer { try? FileManager.default.removeItem(at: work) }
        // Stand-in for ml_tomo: waits, and on SIGUSR1 says so and exits 0 (as a clean checkpoint would).
        let standIn = work.appendingPathComponent("stand-in.sh")
        try """
        #!/bin/bash
        trap 'echo "task $SLURM_PROCID checkpointed on USR1"; exit 0' USR1
        echo "task $SLURM_PROCID waiting"
        for i in $(seq 1200); do sleep 0.25 || true; done
        echo "task $SLURM_PROCID never got USR1"
        exit 3
        """.write(to: standIn, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: standIn.path)

        try await cluster.withRunningCluster {
            let jobID = try await cluster.submit(
                sbatchOptions: ["--ntasks=2", "--cpus-per-task=1", "--time=2", "--mem=256M",
                                "--output=\(work.path)/job-%j.out"],
                programArguments: ["refine-stand-in"],
                environment: ["ML_TOMO_BIN": standIn.path],
                workingDirectory: work)
            let final = try await cluster.waitForJob(jobID, timeout: .seconds(150))
            let output = (try? String(contentsOfFile: "\(work.path)/job-\(jobID).out", encoding: .utf8)) ?? ""
            #expect(final.state == "COMPLETED", "\(final)\n\(output)")
            #expect(output.contains("task 0 checkpointed on USR1"), "\(output)")
            #expect(output.contains("task 1 checkpointed on USR1"), "\(output)")
        }
    }

    /// A wrong ML_TOMO_BIN fails the job at once with a message naming the path (not a hung srun).
    @Test func missingExecutableFailsTheJobWithAMessage() async throws {
        let work = try jobDirectory("missing")
        defer { try? FileManager.default.removeItem(at: work) }
        try await cluster.withRunningCluster {
            let jobID = try await cluster.submit(
                sbatchOptions: ["--ntasks=1", "--time=1", "--mem=128M", "--output=\(work.path)/job-%j.out"],
                programArguments: ["doctor"],
                environment: ["ML_TOMO_BIN": "/nonexistent/ml_tomo"],
                workingDirectory: work)
            let final = try await cluster.waitForJob(jobID, timeout: .seconds(60))
            let output = (try? String(contentsOfFile: "\(work.path)/job-\(jobID).out", encoding: .utf8)) ?? ""
            #expect(final.state == "FAILED")
            #expect(final.exitCode == "2:0")
            #expect(output.contains("cannot find the ml_tomo executable '/nonexistent/ml_tomo'"), "\(output)")
        }
    }

    /// start → status → stop → status: the script reports what is running, and stop really stops it.
    @Test func clusterStatusFollowsStartAndStop() async throws {
        let start = try await cluster.script("start")
        try #require(start.succeeded, "the local Slurm cluster did not start:\n\(start.report)")
        let running = try await cluster.script("status", timeout: .seconds(60))
        #expect(running.succeeded, "\(running.report)")
        #expect(running.stdout.contains("idle"), "\(running.report)")
        #expect(running.stdout.contains("pmix"), "the pmix MPI plugin is missing:\n\(running.report)")
        let stop = try await cluster.script("stop", timeout: .seconds(120))
        #expect(stop.succeeded, "\(stop.report)")
        let stopped = try await cluster.script("status", timeout: .seconds(60))
        #expect(!stopped.succeeded, "status after stop should report not running:\n\(stopped.report)")
        #expect(stopped.stdout.contains("slurmctld: not running"), "\(stopped.report)")
    }
}
