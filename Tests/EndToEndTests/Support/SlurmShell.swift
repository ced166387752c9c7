import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one finished (or killed) command produced.
struct SlurmShellResult: Sendable {
    let command: String
    let status: Int32
    let stdout: String
    let stderr: String
    let timedOut: Bool

    var succeeded: Bool { status == 0 && !timedOut }

    /// Everything a failing test should show about this command.
    var report: String {
        """
        $ \(command)
        exit status \(status)\(timedOut ? " (killed by the watchdog)" : "")
        --- stdout ---
        \(stdout)
        --- stderr ---
        \(stderr)
        """
    }
}

enum SlurmShellError: Error, CustomStringConvertible {
    case launchFailed(command: String, reason: String)
    case missing(String)

    var description: String {
        switch self {
        case let .launchFailed(command, reason): "could not launch `\(command)`: \(reason)"
        case let .missing(what): what
        }
    }
}

/// Runs commands for the Slurm tests: stdin from /dev/null, output to temporary files (not pipes, so a
/// daemon that inherits them can never block the test), and a watchdog that ends a command that runs
/// too long (SIGTERM, then SIGKILL 5 s later). Waiting polls with `Task.sleep`, so no test thread blocks.
struct SlurmShell: Sendable {
    /// Variables added to (or replacing) the test process's environment.
    var environment: [String: String] = [:]

    func run(
        _ executable: String, _ arguments: [String], timeout: Duration = .seconds(60),
        workingDirectory: URL? = nil
    ) async throws -> SlurmShellResult {
        let command = ([executable] + arguments).joined(separator: " ")
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("slurm-shell-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout")
        let errURL = scratch.appendingPathComponent("stderr")
        guard FileManager.default.createFile(atPath: outURL.path, contents: nil),
              FileManager.default.createFile(atPath: errURL.path, contents: nil)
        else { throw SlurmShellError.launchFailed(command: command, reason: "cannot create \(scratch.path)") }
        // posix_spawn + waitpid rather than Foundation's Process: Process learns of a child's exit from a
        // SIGCHLD source, and in a test process that also spawns and reaps children elsewhere that
        // notification was seen to go missing (a zombie `bash`, `isRunning` true for ever). Output goes
        // to files, so daemons the script leaves behind cannot hold a pipe open.
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outURL.path, O_WRONLY | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errURL.path, O_WRONLY | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var emptySet = sigset_t()
        sigemptyset(&emptySet)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGCHLD, SIGUSR1] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var launch = executable.hasPrefix("/") ? [executable] : ["/usr/bin/env", executable]
        if let workingDirectory { launch = ["/usr/bin/env", "-C", workingDirectory.path] + launch.filter { $0 != "/usr/bin/env" } }
        let argv: [UnsafeMutablePointer<CChar>?] = (launch + arguments).map { strdup($0) } + [nil]
        let merged = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let envp: [UnsafeMutablePointer<CChar>?] = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawnError = posix_spawn(&pid, launch[0], &actions, &attributes, argv, envp)
        guard spawnError == 0 else {
            throw SlurmShellError.launchFailed(command: command, reason: String(cString: strerror(spawnError)))
        }

        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var timedOut = false
        var status: Int32 = 0
        var killDeadline: ContinuousClock.Instant?
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid || (reaped < 0 && errno != EINTR) { break }
            if !timedOut && clock.now >= deadline {
                timedOut = true
                kill(pid, SIGTERM)
                killDeadline = clock.now + .seconds(5)
            } else if let k = killDeadline, clock.now >= k {
                kill(pid, SIGKILL)
                killDeadline = nil
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        // Exit status, or 128 + signal like a shell.
        let exited = (status & 0x7f) == 0
        let terminationStatus: Int32 = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return SlurmShellResult(
            command: command, status: terminationStatus, stdout: stdout, stderr: stderr,
            timedOut: timedOut)
    }
}

/// Paths the Slurm tests need, found from this file's location and the environment.
enum SlurmTestPaths {
    /// The package root (this file is Tests/EndToEndTests/Support/SlurmShell.swift).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static var slurmDirectory: URL { packageRoot.appendingPathComponent("slurm") }
    static var localClusterScript: String { slurmDirectory.appendingPathComponent("local-cluster.sh").path }
    static var batchTemplate: String { slurmDirectory.appendingPathComponent("ml_tomo.sbatch").path }

    /// The ml_tomo executable: $ML_TOMO_BIN (set by `make test`), else the newest of
    /// .build/release/ml_tomo and .build/debug/ml_tomo.
    static func mlTomoBinary() throws -> String {
        let fm = FileManager.default
        if let bin = ProcessInfo.processInfo.environment["ML_TOMO_BIN"], !bin.isEmpty {
            guard fm.isExecutableFile(atPath: bin) else {
                throw SlurmShellError.missing("ML_TOMO_BIN=\(bin) is not an executable file")
            }
            return bin
        }
        let candidates = ["release", "debug"]
            .map { packageRoot.appendingPathComponent(".build/\($0)/ml_tomo").path }
            .filter { fm.isExecutableFile(atPath: $0) }
        let newest = candidates.max { a, b in
            let da = (try? fm.attributesOfItem(atPath: a)[.modificationDate] as? Date) ?? .distantPast
            let db = (try? fm.attributesOfItem(atPath: b)[.modificationDate] as? Date) ?? .distantPast
            return da < db
        }
        guard let newest else {
            throw SlurmShellError.missing(
                "no ml_tomo executable: set ML_TOMO_BIN or build it (swift build --product ml_tomo)")
        }
        return newest
    }
}

/// A bare child process for a test to kill (it stands for a test run that dies): spawned with
/// posix_spawn like `SlurmShell`'s commands, ended with SIGKILL and reaped.
enum ChildProcess {
    static func spawn(_ arguments: [String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0) }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let error = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard error == 0 else {
            throw SlurmShellError.launchFailed(command: arguments.joined(separator: " "), reason: String(cString: strerror(error)))
        }
        return pid
    }

    static func kill(_ pid: pid_t) {
        _ = Glibc.kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }
}
