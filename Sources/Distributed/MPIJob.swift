import Foundation

/// The life cycle of an MPI subcommand: initialise MPI, run the body on every rank, agree on its
/// outcome, finalise, and exit with a status that is the same on every rank.
///
/// Error paths:
/// - the body (or a nested `agree`) fails on some ranks → every rank gets the same
///   `CollectiveFailure`; rank 0 prints its report once to stderr; all ranks finalise and exit
///   with the agreed status (`ExitStatus.failure`, or `.usage` if a failing rank threw an
///   `ExitStatusProviding` error such as `UsageError`);
/// - MPI itself fails (an `MPIError`) → the failing rank prints it and calls `MPI_Abort`, which
///   ends all ranks;
/// - a rank dies (signal, `exit` without finalising) → mpirun notices and kills the other ranks.
///   Blocking MPI offers no timeout on a collective, so this is the only guard against a dead
///   peer; the `crash-rank` end-to-end test checks that the job then ends promptly.
///
/// MPI is initialised only here, so subcommands that do not call this (and `--help`,
/// `--version`) never touch MPI.
public enum MPIJob {
    public static func run(
        programName: String = "ml_tomo",
        requiring threadLevel: ThreadLevel = .multiple,
        _ body: (Communicator) throws -> Void
    ) -> Never {
        let comm = start(programName: programName, requiring: threadLevel)
        do {
            try comm.agree { try body(comm) }
            finish(comm, programName: programName, error: nil)
        } catch {
            finish(comm, programName: programName, error: error)
        }
    }

    /// The `async` form of `run`, for `AsyncParsableCommand`s. MPI is initialised with
    /// `MPI_THREAD_MULTIPLE` by default, so MPI calls may come from whatever thread a task runs on.
    public static func run(
        programName: String = "ml_tomo",
        requiring threadLevel: ThreadLevel = .multiple,
        _ body: (Communicator) async throws -> Void
    ) async -> Never {
        let comm = start(programName: programName, requiring: threadLevel)
        do {
            try await comm.agree { try await body(comm) }
            finish(comm, programName: programName, error: nil)
        } catch {
            finish(comm, programName: programName, error: error)
        }
    }

    private static func start(programName: String, requiring threadLevel: ThreadLevel) -> Communicator {
        do {
            return try Communicator.world(requiring: threadLevel)
        } catch let error as DistributedError {
            // Every rank sees the same granted level, so every rank takes this path; print once.
            if worldRankIfInitialized() == 0 { StandardStreams.writeError("\(programName): error: \(error)\n") }
            try? Communicator.finalize()
            exit(ExitStatus.failure.rawValue)
        } catch {
            StandardStreams.writeError("\(programName): error: cannot initialise MPI: \(error)\n")
            exit(ExitStatus.failure.rawValue)
        }
    }

    /// `error` is what escaped the outer agreement: nothing, an agreed `CollectiveFailure`, or an
    /// MPI error of the agreement itself.
    private static func finish(_ comm: Communicator, programName: String, error: (any Error)?) -> Never {
        StandardStreams.flushAll()
        switch error {
        case nil:
            do {
                try Communicator.finalize()
            } catch {
                StandardStreams.writeError("\(programName): fatal error (rank \(comm.rank)): \(error)\n")
                comm.abort(status: ExitStatus.failure.rawValue)
            }
            exit(ExitStatus.success.rawValue)
        case let failure as CollectiveFailure:
            if comm.rank == 0 { StandardStreams.writeError(failure.report(programName: programName) + "\n") }
            try? Communicator.finalize()
            exit(failure.status.rawValue)
        case let error?:
            StandardStreams.writeError("\(programName): fatal error (rank \(comm.rank)): \(error)\n")
            comm.abort(status: ExitStatus.failure.rawValue)
        }
    }

    private static func worldRankIfInitialized() -> Int? {
        guard Communicator.isInitialized, !Communicator.isFinalized else { return nil }
        return Communicator.worldRank()
    }
}

/// A problem with the command line or the files it names, found while running (e.g. a file
/// only one rank tried to open). Agreement turns it into exit status 2 on every rank.
public struct UsageError: Error, ExitStatusProviding, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var exitStatus: ExitStatus { .usage }
}

/// What the MPI launcher tells a process before `MPI_Init`: used to print errors that happen
/// before MPI starts (command-line parsing) from one rank only.
public enum LaunchEnvironment {
    /// The rank the launcher assigned (Open MPI, PMIx, MPICH/PMI or Slurm), or nil when the
    /// process was started without a launcher.
    public static var rank: Int? {
        let environment = ProcessInfo.processInfo.environment
        for key in ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"] {
            if let value = environment[key], let rank = Int(value) { return rank }
        }
        return nil
    }

    /// True on the rank that should print job-wide messages before MPI is initialised.
    public static var isFirstRank: Bool { (rank ?? 0) == 0 }
}
