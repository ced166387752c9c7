import Foundation

/// A job's state as `scontrol show job -o` reports it (there is no accounting database on the local
/// cluster, so `sacct` is not available; finished jobs stay visible for MinJobAge = 1 h).
struct SlurmJobState: Sendable, CustomStringConvertible {
    let jobID: String
    let state: String       // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, …
    let exitCode: String    // "status:signal", e.g. "0:0"
    let stdoutPath: String?
    let raw: String

    static let terminalStates: Set<String> = [
        "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
        "BOOT_FAIL", "DEADLINE",
    ]
    var isFinished: Bool { Self.terminalStates.contains(state) }
    var description: String { "job \(jobID): \(state), exit \(exitCode)" }

    /// Parses the one-line `scontrol show job -o` form ("JobId=5 JobName=x … JobState=COMPLETED …").
    init?(scontrolLine line: String) {
        func value(_ key: String) -> String? {
            for token in line.split(separator: " ") where token.hasPrefix(key + "=") {
                return String(token.dropFirst(key.count + 1))
            }
            return nil
        }
        guard let id = value("JobId"), let state = value("JobState") else { return nil }
        jobID = id
        self.state = state
        exitCode = value("ExitCode") ?? "?"
        stdoutPath = value("StdOut")
        raw = line
    }
}

enum SlurmClusterError: Error, CustomStringConvertible {
    case commandFailed(String)
    case jobTimedOut(jobID: String, last: String)

    var description: String {
        switch self {
        case let .commandFailed(report): report
        case let .jobTimedOut(id, last): "job \(id) did not finish in time; last state: \(last)"
        }
    }
}

/// The single-node Slurm of slurm/local-cluster.sh, driven from tests. The tests use their own
/// directory and ports, so they neither disturb nor depend on a local cluster a user is running.
///
/// The cluster belongs to this test process (`ML_TOMO_SLURM_OWNER_PID`): the script's guard stops it
/// when the process is gone, however it ended (a test killed by a time limit never reaches its `stop`),
/// so a failed or killed run cannot leave daemons that hold the ports of the next one.
struct LocalSlurmCluster: Sendable {
    let directory: String
    let controllerPort: Int
    let slurmdPort: Int
    /// The process whose end stops the cluster (this test process unless a test says otherwise).
    var owner: Int32 = getpid()

    init(directory: String = "/tmp/ml_tomo-slurm-tests", controllerPort: Int = 6827, slurmdPort: Int = 6828) {
        self.directory = directory
        self.controllerPort = controllerPort
        self.slurmdPort = slurmdPort
    }

    var configPath: String { directory + "/etc/slurm.conf" }

    /// Environment for the script and for every client command (sbatch passes it on to the job).
    var shell: SlurmShell {
        SlurmShell(environment: [
            "ML_TOMO_SLURM_DIR": directory,
            "ML_TOMO_SLURM_CTLD_PORT": String(controllerPort),
            "ML_TOMO_SLURM_SLURMD_PORT": String(slurmdPort),
            "ML_TOMO_SLURM_OWNER_PID": String(owner),
            "SLURM_CONF": configPath,
        ])
    }

    /// Runs `local-cluster.sh <action>`. `start` may install slurm-wlm and munge first: allow minutes.
    func script(_ action: String, timeout: Duration = .seconds(600)) async throws -> SlurmShellResult {
        try await shell.run("/bin/bash", [SlurmTestPaths.localClusterScript, action], timeout: timeout)
    }

    /// Starts the cluster, runs `body`, and stops the cluster whatever `body` did.
    func withRunningCluster<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        let start = try await script("start")
        guard start.succeeded else {
            _ = try? await script("stop", timeout: .seconds(120))
            throw SlurmClusterError.commandFailed("the local Slurm cluster did not start:\n" + start.report)
        }
        let result: T
        do {
            result = try await body()
        } catch {
            _ = try? await script("stop", timeout: .seconds(120))
            throw error
        }
        let stop = try await script("stop", timeout: .seconds(120))
        guard stop.succeeded else {
            throw SlurmClusterError.commandFailed("the local Slurm cluster did not stop cleanly:\n" + stop.report)
        }
        return result
    }

    /// Submits the batch template; returns the job id.
    func submit(
        sbatchOptions: [String], template: String = SlurmTestPaths.batchTemplate,
        programArguments: [String], environment: [String: String], workingDirectory: URL
    ) async throws -> String {
        var shell = self.shell
        shell.environment.merge(environment) { _, new in new }
        let result = try await shell.run(
            "sbatch", ["--parsable"] + sbatchOptions + [template] + programArguments,
            timeout: .seconds(30), workingDirectory: workingDirectory)
        let id = result.stdout.split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        } ?? ""
        guard result.succeeded, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw SlurmClusterError.commandFailed("sbatch failed:\n" + result.report)
        }
        return id
    }

    func jobState(_ jobID: String) async throws -> SlurmJobState? {
        let result = try await shell.run("scontrol", ["show", "job", "-o", jobID], timeout: .seconds(20))
        guard result.succeeded else { return nil }
        return SlurmJobState(scontrolLine: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Polls until the job reaches a terminal state, or fails after `timeout` (and cancels the job).
    func waitForJob(_ jobID: String, timeout: Duration = .seconds(120)) async throws -> SlurmJobState {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last: SlurmJobState?
        while clock.now < deadline {
            if let state = try await jobState(jobID) {
                last = state
                if state.isFinished { return state }
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        _ = try? await shell.run("scancel", [jobID], timeout: .seconds(20))
        throw SlurmClusterError.jobTimedOut(jobID: jobID, last: last?.raw ?? "never seen by scontrol")
    }

    /// Sends a signal to every task of the job's steps (as Slurm does at `--signal=SIG@time`).
    func signalSteps(_ jobID: String, signal: String) async throws {
        let result = try await shell.run("scancel", ["--signal=\(signal)", jobID], timeout: .seconds(20))
        guard result.succeeded else { throw SlurmClusterError.commandFailed(result.report) }
    }
}
