import Foundation

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
        let out = try FileHandle(forWritingTo: outURL)
        let err = try FileHandle(forWritingTo: errURL)
        defer {
            try? out.close()
            try? err.close()
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : "/usr/bin/env")
        process.arguments = executable.hasPrefix("/") ? arguments : [executable] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        if let workingDirectory { process.currentDirectoryURL = workingDirectory }
        do {
            try process.run()
        } catch {
            throw SlurmShellError.launchFailed(command: command, reason: "\(error)")
        }

        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var timedOut = false
        while process.isRunning {
            if clock.now >= deadline {
                timedOut = true
                process.terminate()
                let grace = clock.now + .seconds(5)
                while process.isRunning && clock.now < grace { try await Task.sleep(for: .milliseconds(100)) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        process.waitUntilExit()
        let stdout = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
        return SlurmShellResult(
            command: command, status: process.terminationStatus, stdout: stdout, stderr: stderr,
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
