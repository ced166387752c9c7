import Foundation

/// The life cycle of an MPI subcommand: initialise MPI, run the body on every rank, agree on its
/// outcome, finalise, and exit with a status that is the same on every rank.
///
/// The body must wrap every local phase that can fail in `comm.agree { … }` *before* the next
/// collective operation. Error paths:
/// - a phase fails on some ranks → its `agree` throws the same `CollectiveFailure` on every
///   rank; rank 0 prints its report once to stderr; all ranks finalise and exit with the agreed
///   status (the largest `ExitStatus` among the failing ranks: `.failure` unless an error says
///   otherwise through `ExitStatusProviding`);
/// - an error escapes the body without agreement → the other ranks may already wait in a
///   collective that this rank will never enter, so agreeing now could hang or mismatch
///   collectives: the rank prints the error and calls `MPI_Abort`, which ends every rank;
/// - MPI itself fails (an `MPIError`) → likewise printed and aborted;
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
            try body(comm)
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

    /// `error` is what escaped the body: nothing, an agreed `CollectiveFailure`, or an error
    /// only this rank knows about.
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
            if comm.rank != 0 { LaunchEnvironment.yieldToFirstRankMessage() }
            exit(failure.status.rawValue)
        case let error?:
            StandardStreams.writeError(
                "\(programName): error (rank \(comm.rank)): \(Communicator.message(of: error)) [not agreed between ranks: aborting the job]\n")
            comm.abort(status: Communicator.exitStatus(of: error).rawValue)
        }
    }

    private static func worldRankIfInitialized() -> Int? {
        guard Communicator.isInitialized, !Communicator.isFinalized else { return nil }
        return Communicator.worldRank()
    }
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

    /// Called by a rank other than 0 just before it exits with an error that rank 0 reports: a non-zero
    /// exit makes mpirun print its "job aborted" banner, which it interleaved with rank 0's forwarded
    /// message (once splitting it mid-word, seen in CI); 0.3 s lets the message pass first.
    public static func yieldToFirstRankMessage() { usleep(300_000) }
}
