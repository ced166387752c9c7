import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a finished child process left behind.
struct ProcessResult: Sendable, CustomStringConvertible {
    /// The exit code, or 128 + signal number if a signal ended it (the shell convention).
    let status: Int32
    /// The signal that ended the process, if any.
    let signal: Int32?
    let stdout: String
    let stderr: String
    /// Wall-clock time from spawn to exit.
    let seconds: Double
    /// Whether the watchdog had to kill the process group.
    let timedOut: Bool

    var combinedOutput: String { stdout + stderr }

    var description: String {
        "status \(status)\(signal.map { " (signal \($0))" } ?? "") after \(String(format: "%.2f", seconds)) s"
            + (timedOut ? " [TIMED OUT]" : "") + "\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }
}

/// Runs child processes for end-to-end tests without ever hanging the test suite.
///
/// - stdin is `/dev/null`, so a child waiting for input sees end-of-file;
/// - stdout and stderr are drained continuously (poll) while the child runs, so large output
///   cannot fill a pipe and deadlock;
/// - the child leads its own process group; on timeout the watchdog sends SIGTERM to the group
///   (mpirun forwards it to its ranks), then SIGKILL, and records a test failure;
/// - the blocking work runs on its own thread, not on Swift concurrency's small pool.
enum ProcessRunner {
    struct LaunchError: Error, CustomStringConvertible {
        let description: String
    }

    /// Runs `executable` (an absolute path) with `arguments`; `environment` entries are added to
    /// (or replace) the test process's environment.
    static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String] = [:],
        currentDirectory: String? = nil,
        timeout: Double = 120,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ProcessResult {
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let env = merged
        let result: ProcessResult = try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    try runBlocking(executable, arguments, environment: env, currentDirectory: currentDirectory, timeout: timeout)
                })
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        if result.timedOut {
            let command = ([executable] + arguments).joined(separator: " ")
            Issue.record("watchdog: `\(command)` did not finish within \(timeout) s and was killed\n\(result)",
                         sourceLocation: sourceLocation)
        }
        return result
    }

    // MARK: ml_tomo and mpirun

    /// The `ml_tomo` binary under test: `$ML_TOMO_BIN`, else the package's release build, else
    /// its debug build.
    static func mlTomoBinary() throws -> String {
        let fileManager = FileManager.default
        if let fromEnvironment = ProcessInfo.processInfo.environment["ML_TOMO_BIN"], !fromEnvironment.isEmpty {
            guard fileManager.isExecutableFile(atPath: fromEnvironment) else {
                throw LaunchError(description: "ML_TOMO_BIN=\(fromEnvironment) is not an executable file")
            }
            return fromEnvironment
        }
        let candidates = ["release", "debug"].map { packageRoot.appendingPathComponent(".build/\($0)/ml_tomo").path }
        if let found = candidates.first(where: { fileManager.isExecutableFile(atPath: $0) }) { return found }
        throw LaunchError(description: """
            no ml_tomo binary to test: set ML_TOMO_BIN, or build it first \
            (`swift build -c release --product ml_tomo` or `swift build --product ml_tomo`); looked at \
            \(candidates.joined(separator: ", "))
            """)
    }

    /// `<package root>`, derived from this file's location `<root>/Tests/EndToEndTests/Support/`.
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // Support
            .deletingLastPathComponent()  // EndToEndTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()
    }

    static let mpirunPath = "/usr/bin/mpirun"

    /// Runs `ml_tomo arguments` on `ranks` MPI processes of this machine.
    /// `environment` entries are added to mpirun's environment, which the ranks of this machine inherit.
    static func mpirun(
        ranks: Int,
        _ arguments: [String],
        environment: [String: String] = [:],
        currentDirectory: String? = nil,
        timeout: Double = 120,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ProcessResult {
        let binary = try mlTomoBinary()
        let launcher = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "\(ranks)", binary]
        return try await run(
            mpirunPath, launcher + arguments,
            environment: environment.merging(["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"]) { _, b in b },
            currentDirectory: currentDirectory, timeout: timeout, sourceLocation: sourceLocation)
    }

    /// Runs `ml_tomo arguments` directly, without mpirun.
    static func mlTomo(
        _ arguments: [String],
        currentDirectory: String? = nil,
        timeout: Double = 60,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> ProcessResult {
        try await run(try mlTomoBinary(), arguments, currentDirectory: currentDirectory, timeout: timeout,
                      sourceLocation: sourceLocation)
    }

    // MARK: The blocking part

    private static let spawnLock = NSLock()

    private static func runBlocking(
        _ executable: String, _ arguments: [String], environment: [String: String], currentDirectory: String?,
        timeout: Double
    ) throws -> ProcessResult {
        // Close-on-exec pipes: a child spawned concurrently by another test must not inherit
        // (and keep open) our write ends; dup2 onto 1 and 2 clears the flag for our own child.
        // (`pipe2` is not exported to Swift; the lock closes the window between `pipe` and
        // `fcntl` for spawns made through this runner.)
        spawnLock.lock()
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else {
            spawnLock.unlock()
            throw LaunchError(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group (so the watchdog can signal the whole tree), an empty signal mask and
        // default SIGPIPE/SIGTERM/SIGINT dispositions, whatever the test runner uses.
        var emptySet = sigset_t()
        sigemptyset(&emptySet)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigmask(&attributes, &emptySet)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        // A working directory is set through coreutils' `env -C` (glibc's posix_spawn chdir action is
        // not visible to Swift).
        let command = currentDirectory.map { ["/usr/bin/env", "-C", $0, executable] } ?? [executable]
        let argv: [UnsafeMutablePointer<CChar>?] = (command + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }

        let start = DispatchTime.now().uptimeNanoseconds
        func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }

        var pid: pid_t = 0
        let spawnError = posix_spawn(&pid, command[0], &actions, &attributes, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        spawnLock.unlock()
        guard spawnError == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw LaunchError(description: "cannot start \(executable): \(String(cString: strerror(spawnError)))")
        }

        var output: [[UInt8]] = [[], []]
        var readFDs = [outPipe[0], errPipe[0]]
        var isOpen = [true, true]
        var waitStatus: Int32?
        var exitedAt = 0.0
        var timedOut = false
        var termSentAt = 0.0
        var killSent = false
        var chunk = [UInt8](repeating: 0, count: 1 << 16)

        while true {
            let now = elapsed()
            if waitStatus == nil {
                var status: Int32 = 0
                if waitpid(pid, &status, WNOHANG) == pid {
                    waitStatus = status
                    exitedAt = now
                }
            }
            if waitStatus != nil {
                // Done once both pipes hit EOF; if a stray descendant still holds them, stop
                // waiting for more output after a grace period.
                if !isOpen[0] && !isOpen[1] { break }
                if now - exitedAt > 5 { break }
            } else if !timedOut, now > timeout {
                timedOut = true
                termSentAt = now
                kill(-pid, SIGTERM)
            } else if timedOut, !killSent, now - termSentAt > 3 {
                killSent = true
                kill(-pid, SIGKILL)
            }

            var polled = (0 ..< 2).filter { isOpen[$0] }.map { pollfd(fd: readFDs[$0], events: Int16(POLLIN), revents: 0) }
            let ready = poll(&polled, nfds_t(polled.count), 20)
            guard ready > 0 else { continue }
            for entry in polled where entry.revents != 0 {
                guard let stream = readFDs.firstIndex(of: entry.fd) else { continue }
                let count = chunk.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    output[stream].append(contentsOf: chunk[0 ..< count])
                } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                    close(entry.fd)
                    isOpen[stream] = false
                    readFDs[stream] = -1
                }
            }
        }
        for stream in 0 ..< 2 where isOpen[stream] { close(readFDs[stream]) }
        if timedOut { kill(-pid, SIGKILL) }  // whatever of the group survived the leader

        let raw = waitStatus ?? 0
        let signal: Int32? = (raw & 0x7f) != 0 ? raw & 0x7f : nil
        let status = signal.map { 128 + $0 } ?? ((raw >> 8) & 0xff)
        return ProcessResult(
            status: status, signal: signal,
            stdout: String(decoding: output[0], as: UTF8.self),
            stderr: String(decoding: output[1], as: UTF8.self),
            seconds: waitStatus != nil ? exitedAt : elapsed(), timedOut: timedOut)
    }
}
