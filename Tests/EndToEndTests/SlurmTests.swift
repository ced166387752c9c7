import Foundation
import Testing

/// End-to-end tests of slurm/: a real single-node Slurm (slurm/local-cluster.sh) runs jobs submitted
/// through slurm/ml_tomo.sbatch. If the cluster cannot start on this machine the tests fail with the
/// script's diagnostics; they are never skipped. Serialized: they share one cluster directory and ports.
@Suite(.serialized) struct SlurmTests {
    /// The 2-rank job the template runs, and what its output must contain. `doctor` prints, from rank 0,
    /// "ml_tomo doctor: 2 ranks" and one "rank r of 2" line per rank: proof of ONE MPI world of two
    /// ranks (two singleton worlds, as a broken PMIx would give, print "1 rank" twice).
    /// To run a small refinement instead, replace both lists, e.g. arguments ["-i", "<data>/images.sel",
    /// "--oroot", "<dir>/ml", "--nref", "2", "--missing", "<data>/wedges.doc", "--iter", "2", "--ang",
    /// "30"] (the template appends --thr) and the lines its rank 0 prints about 2 ranks.
    static let job = TwoRankJob(
        arguments: ["doctor"],
        mustPrint: ["ml_tomo doctor: 2 ranks", "rank 0 of 2", "rank 1 of 2"])
    /// Used only while the ml_tomo under test has no `doctor` subcommand (before the branches meet):
    /// `--version` on every task proves that srun started ml_tomo twice, not that MPI joined them.
    /// Delete once doctor exists everywhere.
    static let fallbackJob = TwoRankJob(arguments: ["--version"], mustPrint: ["0: ml_tomo", "1: ml_tomo"])

    struct TwoRankJob {
        let arguments: [String]
        let mustPrint: [String]
    }

    let cluster = LocalSlurmCluster()

    /// A fresh directory for a job's files (the job's working directory).
    private func jobDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("slurm-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func mlTomoJobRunsTwoRanksThroughTheTemplate() async throws {
        let binary = try SlurmTestPaths.mlTomoBinary()
        // `ml_tomo doctor --help` would succeed even without the subcommand (--help wins): read the list.
        let help = try await SlurmShell().run(binary, ["--help"], timeout: .seconds(30))
        let hasDoctor = help.stdout.range(of: #"(?m)^\s+doctor\b"#, options: .regularExpression) != nil
        let job = hasDoctor ? Self.job : Self.fallbackJob
        let work = try jobDirectory("ml_tomo")
        defer { try? FileManager.default.removeItem(at: work) }

        try await cluster.withRunningCluster {
            let jobID = try await cluster.submit(
                sbatchOptions: ["--job-name=ml_tomo-test", "--ntasks=2", "--cpus-per-task=1", "--time=5",
                                "--mem=1G", "--output=\(work.path)/job-%j.out"],
                programArguments: job.arguments,
                environment: ["ML_TOMO_BIN": binary, "ML_TOMO_SRUN_ARGS": "--label"],
                workingDirectory: work)
            let final = try await cluster.waitForJob(jobID, timeout: .seconds(120))
            let output = (try? String(contentsOfFile: "\(work.path)/job-\(jobID).out", encoding: .utf8)) ?? ""
            #expect(final.state == "COMPLETED", "\(final)\n\(output)")
            #expect(final.exitCode == "0:0", "\(final)\n\(output)")
            #expect(output.contains("ntasks=2"), "template header missing:\n\(output)")
            #expect(output.contains("srun --mpi=pmix \(binary) \(job.arguments.joined(separator: " "))"), "\(output)")
            for line in job.mustPrint {
                #expect(output.contains(line), "expected \"\(line)\" in the job output:\n\(output)")
            }
            #expect(output.contains("srun exited with status 0"), "\(output)")
        }
    }

    /// A small synthetic data set for refinement jobs, written by `ml_tomo simulate`.
    private func simulatedData(in work: URL, binary: String) async throws -> URL {
        let data = work.appendingPathComponent("data")
        let sim = try await SlurmShell().run(
            binary, ["simulate", data.path, "--particles", "8", "--size", "16", "--classes", "2", "--snr", "1", "--seed", "5"],
            timeout: .seconds(120))
        try #require(sim.succeeded, "simulate failed:\n\(sim.report)")
        return data
    }

    private static let refineArguments = ["-i", "images.sel", "--doc", "images.doc", "--missing", "wedges.doc",
                                          "--oroot", "run/x", "--nref", "2", "--ang", "30"]

    /// The issue's test: a 2-task refinement of a small synthetic set through the template.
    @Test func refinementJobRunsThroughTheTemplate() async throws {
        let binary = try SlurmTestPaths.mlTomoBinary()
        let work = try jobDirectory("refine")
        defer { try? FileManager.default.removeItem(at: work) }
        let data = try await simulatedData(in: work, binary: binary)
        try await cluster.withRunningCluster {
            let jobID = try await cluster.submit(
                sbatchOptions: ["--job-name=ml_tomo-refine", "--ntasks=2", "--cpus-per-task=1", "--time=10",
                                "--mem=1G", "--output=\(work.path)/job-%j.out"],
                programArguments: Self.refineArguments + ["--iter", "2"],
                environment: ["ML_TOMO_BIN": binary], workingDirectory: data)
            let final = try await cluster.waitForJob(jobID, timeout: .seconds(600))
            let output = (try? String(contentsOfFile: "\(work.path)/job-\(jobID).out", encoding: .utf8)) ?? ""
            #expect(final.state == "COMPLETED", "\(final)\n\(output)")
            #expect(final.exitCode == "0:0", "\(final)\n\(output)")
            #expect(output.contains("2 rank(s) × 1 thread(s)"), "one MPI world of two ranks expected:\n\(output)")
            for file in ["run/x.doc", "run/x_ref.doc", "run/x.h5", "run/x_ref000001.mrc", "run/x_ref000002.mrc",
                         "run/x_it000002_log.doc"] {
                #expect(FileManager.default.fileExists(atPath: data.appendingPathComponent(file).path), "missing \(file)")
            }
        }
    }

    /// SIGUSR1 (what `--signal=USR1@…` sends before the time limit) during a run under srun: the job stops
    /// cleanly after an iteration with status 75 and a --restart hint; resuming gives the same final
    /// files as a run that was never stopped.
    @Test func checkpointSignalStopsCleanlyAndTheRunResumes() async throws {
        let binary = try SlurmTestPaths.mlTomoBinary()
        let work = try jobDirectory("checkpoint")
        defer { try? FileManager.default.removeItem(at: work) }
        let data = try await simulatedData(in: work, binary: binary)
        // Long enough that the signal, sent once iteration 1 is on disk, arrives before the run ends: at
        // --ang 30 the whole run took under 3 s and a run finished first; at --ang 10, 12 iterations take
        // about 5 s (0.4 s each) under the default computation.
        let iterations = ["--iter", "12"]
        let arguments = Self.refineArguments.map { $0 == "30" ? "10" : $0 }
        try await cluster.withRunningCluster {
            // Uninterrupted reference run.
            let full = try await cluster.submit(
                sbatchOptions: ["--ntasks=2", "--cpus-per-task=1", "--time=10", "--mem=1G", "--output=\(work.path)/full-%j.out"],
                programArguments: arguments.map { $0 == "run/x" ? "full/x" : $0 } + iterations,
                environment: ["ML_TOMO_BIN": binary], workingDirectory: data)
            let fullState = try await cluster.waitForJob(full, timeout: .seconds(600))
            try #require(fullState.state == "COMPLETED", "\(fullState)")

            let jobID = try await cluster.submit(
                sbatchOptions: ["--ntasks=2", "--cpus-per-task=1", "--time=10", "--mem=1G", "--output=\(work.path)/job-%j.out"],
                programArguments: arguments + iterations,
                environment: ["ML_TOMO_BIN": binary], workingDirectory: data)
            // Signal once the first iteration is on disk (the run is then inside a later one).
            let first = data.appendingPathComponent("run/x_it000001.h5").path
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(300)
            while !FileManager.default.fileExists(atPath: first) && clock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            try #require(FileManager.default.fileExists(atPath: first), "iteration 1 never finished")
            try await cluster.signalSteps(jobID, signal: "USR1")
            let stopped = try await cluster.waitForJob(jobID, timeout: .seconds(600))
            let output = (try? String(contentsOfFile: "\(work.path)/job-\(jobID).out", encoding: .utf8)) ?? ""
            // Stopped on request (75), not completed: otherwise nothing below would show a restart.
            try #require(stopped.exitCode.hasPrefix("75:"), "\(stopped)\n\(output)")
            // Find the iteration it stopped after, from the hint it printed.
            let hint = try #require(output.range(of: #"--restart run/x_it\d{6}"#, options: .regularExpression),
                                    "no --restart hint:\n\(output)")
            let prefix = String(output[hint].dropFirst("--restart ".count))
            let resumed = try await cluster.submit(
                sbatchOptions: ["--ntasks=2", "--cpus-per-task=1", "--time=10", "--mem=1G", "--output=\(work.path)/resume-%j.out"],
                programArguments: arguments + iterations + ["--restart", prefix],
                environment: ["ML_TOMO_BIN": binary], workingDirectory: data)
            let resumedState = try await cluster.waitForJob(resumed, timeout: .seconds(600))
            #expect(resumedState.state == "COMPLETED", "\(resumedState)")
            // The final references and per-particle results equal the uninterrupted run's.
            for file in ["x_ref000001.mrc", "x_ref000002.mrc"] {
                let a = try Data(contentsOf: data.appendingPathComponent("full/" + file))
                let b = try Data(contentsOf: data.appendingPathComponent("run/" + file))
                #expect(a == b, "\(file) differs after the restart")
            }
            let docA = try String(contentsOf: data.appendingPathComponent("full/x.doc"), encoding: .utf8)
            let docB = try String(contentsOf: data.appendingPathComponent("run/x.doc"), encoding: .utf8)
            let rows = { (text: String) in text.split(separator: "\n").filter { !$0.hasPrefix("#") } }
            #expect(rows(docA) == rows(docB), "final docs differ after the restart")
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
        var stopped: SlurmShellResult?
        var stop: SlurmShellResult?
        try await cluster.withRunningCluster {
            let running = try await cluster.script("status", timeout: .seconds(60))
            #expect(running.succeeded, "\(running.report)")
            #expect(running.stdout.contains("idle"), "\(running.report)")
            #expect(running.stdout.contains("pmix"), "the pmix MPI plugin is missing:\n\(running.report)")
            stop = try await cluster.script("stop", timeout: .seconds(120))
            stopped = try await cluster.script("status", timeout: .seconds(60))
        }
        let stopResult = try #require(stop)
        #expect(stopResult.succeeded, "\(stopResult.report)")
        let status = try #require(stopped)
        #expect(!status.succeeded, "status after stop should report not running:\n\(status.report)")
        #expect(status.stdout.contains("slurmctld: not running"), "\(status.report)")
    }

    /// A test run killed before it could stop its cluster (a time limit, kill -9): the cluster's guard
    /// stops it once its owner is gone, and the next start on the same ports works.
    @Test func clusterStopsWhenItsOwnerIsKilled() async throws {
        var orphan = LocalSlurmCluster(directory: "/tmp/ml_tomo-slurm-tests-owner", controllerPort: 6829, slurmdPort: 6830)
        let owner = try ChildProcess.spawn(["/bin/sleep", "600"])
        orphan.owner = owner
        let start = try await orphan.script("start")
        guard start.succeeded else {
            ChildProcess.kill(owner)
            _ = try? await orphan.script("stop", timeout: .seconds(120))
            Issue.record("the local Slurm cluster did not start:\n\(start.report)")
            return
        }
        let running = try await orphan.script("status", timeout: .seconds(60))
        #expect(running.succeeded, "\(running.report)")
        ChildProcess.kill(owner)
        // The guard looks once per second; stopping takes a few seconds more.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        var status = running
        while clock.now < deadline {
            status = try await orphan.script("status", timeout: .seconds(60))
            if status.stdout.contains("slurmctld: not running") && status.stdout.contains("slurmd:    not running") { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(status.stdout.contains("slurmctld: not running"), "the cluster outlived its owner:\n\(status.report)")
        #expect(status.stdout.contains("slurmd:    not running"), "\(status.report)")
        let log = (try? String(contentsOfFile: orphan.directory + "/log/guard.log", encoding: .utf8)) ?? ""
        #expect(log.contains("owner \(owner) is gone: stopping the cluster"), "guard log:\n\(log)")
        // The ports are free again: a cluster of this process starts and stops on them.
        var next = orphan
        next.owner = getpid()
        try await next.withRunningCluster {
            let status = try await next.script("status", timeout: .seconds(60))
            #expect(status.succeeded, "\(status.report)")
        }
    }

    /// A port held by another cluster: start fails at once, naming the process and how to stop it.
    @Test func startRefusesATakenPortAtOnce() async throws {
        try await cluster.withRunningCluster {
            let other = LocalSlurmCluster(directory: "/tmp/ml_tomo-slurm-tests-other", controllerPort: cluster.controllerPort,
                                          slurmdPort: cluster.slurmdPort)
            let clock = ContinuousClock()
            let began = clock.now
            let refused = try await other.script("start", timeout: .seconds(60))
            let seconds = (clock.now - began) / .seconds(1)
            #expect(!refused.succeeded, "\(refused.report)")
            #expect(seconds < 10, "took \(seconds) s:\n\(refused.report)")
            #expect(refused.stderr.contains("port \(cluster.controllerPort) is already in use by slurmctld (pid "), "\(refused.report)")
            #expect(refused.stderr.contains("config \(cluster.configPath)"), "\(refused.report)")
            #expect(refused.stderr.contains("ML_TOMO_SLURM_DIR=\(cluster.directory)"), "\(refused.report)")
            // The running cluster was not disturbed.
            let status = try await cluster.script("status", timeout: .seconds(60))
            #expect(status.succeeded, "\(status.report)")
        }
    }
}

/// slurm/scaling-study.sh and slurm/scaling_report.py: the numbers in the table come from the files.
/// Nested in SlurmTests so that its `.serialized` covers these tests too: all of them share one
/// cluster directory and ports, and suites would otherwise run in parallel.
extension SlurmTests {
    @Suite struct ScalingStudy {
        let cluster = LocalSlurmCluster()

        /// Reads scaling.csv into one dictionary per row, keyed by column name.
        static func readCSV(_ path: String) throws -> [[String: String]] {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let lines = text.split(whereSeparator: \.isNewline).map(String.init)
            guard let header = lines.first?.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            else { return [] }
            return lines.dropFirst().map { line in
                // The report quotes no field except `source`, which comes last and may contain commas.
                let cells = line.split(separator: ",", maxSplits: header.count - 1, omittingEmptySubsequences: false)
                return Dictionary(uniqueKeysWithValues: zip(header, cells.map(String.init)))
            }
        }

        /// Log docs in both XMIPP_STAR_1 forms (loop and key-value) and `srun --label`-prefixed JSON lines.
        @Test func reportReadsTimingsFromLogDocsAndJsonLines() async throws {
            let study = FileManager.default.temporaryDirectory.appendingPathComponent("scaling-report-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: study, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: study) }
            let p = study.path
            // Rank 1: loop-form log docs; iteration 1 (warm-up) is left out, the rest are summed per phase
            // (EStepMin is not a phase of its own): it2 = 2.0+0.2+0.1+0.1 = 2.4, it3 = 2.6 -> median 2.5.
            for (it, estep) in [(1, 9.0), (2, 2.0), (3, 2.2)] {
                try """
                # XMIPP_STAR_1 *
                data_
                loop_
                 _iterationNumber
                 _logLikelihood
                 _timeEStepMax
                 _timeEStepMin
                 _timeReduce
                 _timeMStep
                 _timeWrite
                 \(it) -100.5 \(estep) 1.0 0.2 0.1 0.1
                """.write(toFile: String(format: "%@/r1_it%06d_log.doc", p, it), atomically: true, encoding: .utf8)
            }
            // Rank 2: key-value log docs, and wall-clock seconds from the JSON lines (1.5, 1.3 -> 1.4).
            for it in 1...3 {
                try """
                # XMIPP_STAR_1 *
                data_
                 _iterationNumber \(it)
                 _timeEStepMax 1.0
                 _timeReduce 0.25
                """.write(toFile: String(format: "%@/r2_it%06d_log.doc", p, it), atomically: true, encoding: .utf8)
            }
            try """
            ml_tomo.sbatch: job 8 on localhost
            0: {"event":"start","ranks":2}
            0: {"event":"iteration","iteration":1,"seconds":9.0,"logLikelihood":-3}
            0: {"event":"iteration","iteration":2,"seconds":1.5}
            0: {"event":"iteration","iteration":3,"seconds":1.3}
            0: not json {
            """.write(toFile: "\(p)/r2.out", atomically: true, encoding: .utf8)
            try """
            series\tranks\tthreads\tparticles\tjobid\tdir\toroot\tstdout
            strong\t1\t1\t64\t7\t\(p)\t\(p)/r1\t\(p)/r1.out
            strong\t2\t1\t64\t8\t\(p)\t\(p)/r2\t\(p)/r2.out

            """.write(toFile: "\(p)/jobs.tsv", atomically: true, encoding: .utf8)
            try "jobid\tstate\texit\telapsed\n7\tCOMPLETED\t0:0\t00:00:09\n8\tCOMPLETED\t0:0\t00:00:05\n"
                .write(toFile: "\(p)/states.tsv", atomically: true, encoding: .utf8)

            let script = SlurmTestPaths.slurmDirectory.appendingPathComponent("scaling_report.py").path
            let run = try await SlurmShell().run("python3", [script, p], timeout: .seconds(60))
            try #require(run.succeeded, "\(run.report)")
            let rows = try Self.readCSV("\(p)/scaling.csv")
            try #require(rows.count == 2, "\(rows)")
            #expect(rows[0]["time_per_iteration_s"].flatMap(Double.init) == 2.5)
            #expect(rows[0]["iterations"] == "3")
            #expect(rows[0]["timeEStepMin_s"].flatMap(Double.init) == 1.0)
            #expect(rows[1]["time_per_iteration_s"].flatMap(Double.init) == 1.4)
            #expect(rows[1]["source"] == "json wall time")
            #expect(rows[1]["timeReduce_s"].flatMap(Double.init) == 0.25)
            // Strong scaling: E = T(1)·1 / (T(2)·2) = 2.5 / 2.8.
            let efficiency = try #require(rows[1]["efficiency"].flatMap(Double.init))
            #expect(abs(efficiency - 2.5 / 2.8) < 1e-3)
            let svg = try String(contentsOfFile: "\(p)/scaling.svg", encoding: .utf8)
            #expect(svg.hasPrefix("<svg") && svg.contains("Parallel efficiency") && svg.contains("timeEStepMax"))
            #expect(FileManager.default.fileExists(atPath: "\(p)/scaling.md"))
        }

        /// The whole study on the local cluster, with slurm/testing/fake-ml_tomo.sh as the program.
        @Test func studyRunsStrongAndWeakSeriesOnTheLocalCluster() async throws {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("scaling-study-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: out) }
            let fake = SlurmTestPaths.slurmDirectory.appendingPathComponent("testing/fake-ml_tomo.sh").path
            let study = SlurmTestPaths.slurmDirectory.appendingPathComponent("scaling-study.sh").path

            try await cluster.withRunningCluster {
                var shell = cluster.shell
                shell.environment["ML_TOMO_BIN"] = fake
                shell.environment["FAKE_SECONDS_PER_IMAGE"] = "0.02"
                let run = try await shell.run(
                    "/bin/bash",
                    [study, "--out", out.path, "--ranks", "1 2", "--particles", "16", "--particles-per-rank", "8",
                     "--refine-cmd", "-i {data}/images.sel --oroot {oroot} --iter 2", "--timeout", "240"],
                    timeout: .seconds(300))
                try #require(run.succeeded, "\(run.report)")
                let rows = try Self.readCSV(out.appendingPathComponent("scaling.csv").path)
                #expect(rows.map { "\($0["series"] ?? "")/\($0["ranks"] ?? "")/\($0["particles"] ?? "")" }
                        == ["strong/1/16", "strong/2/16", "weak/1/8", "weak/2/16"], "\(rows)")
                for row in rows {
                    #expect(row["state"] == "COMPLETED", "\(row)")
                    #expect(row["iterations"] == "2", "\(row)")
                    let t = row["time_per_iteration_s"].flatMap(Double.init) ?? 0
                    #expect(t > 0 && t < 30, "\(row)")
                    #expect(row["timeEStepMax_s"].flatMap(Double.init) != nil, "\(row)")
                }
                #expect(rows.first?["efficiency"] == "1")
                // The fake E-step halves with 2 ranks (16 images × 0.02 s -> 8 × 0.02 s): a real speed-up.
                let speedup = rows.count > 1 ? rows[1]["speedup"].flatMap(Double.init) ?? 0 : 0
                #expect(speedup > 1.2, "\(rows)")
                let svg = try String(contentsOf: out.appendingPathComponent("scaling.svg"), encoding: .utf8)
                #expect(svg.contains("<polyline"))
            }
        }
    }
}
