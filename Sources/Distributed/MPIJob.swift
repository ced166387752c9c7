import Foundation

/// The life cycle of an MPI subcommand: initialise MPI, run the body on every rank, agree on its
/// outcome, finalise, and exit with a status that is the same on every rank.
///
/// Error paths:
/// - the body (or a nested `agree`) fails on some ranks → every rank gets the same
///   `CollectiveFailure`; rank 0 prints its report once to stderr; all ranks finalise and exit
///   with the agreed status;
/// - MPI itself fails (an `MPIError`) → the failing rank prints it and calls `MPI_Abort`, which
///   ends all ranks;
/// - a rank dies (signal, `exit` without finalising) → mpirun notices and kills the other ranks.
///   Blocking MPI offers no timeout on a collective, so this is the only guard against a dead
///   peer, and it is verified by the `crash-rank` end-to-end test.
public enum MPIJob {
    public static func run(
        programName: String = "ml_tomo",
        requiring threadLevel: ThreadLevel = .multiple,
        _ body: (Communicator) throws -> Void
    ) -> Never {
        let comm: Communicator
        do {
            comm = try Communicator.world(requiring: threadLevel)
        } catch let error as DistributedError {
            // Every rank sees the same granted level, so every rank takes this path; print once.
            if worldRankIfInitialized() == 0 { StandardStreams.writeError("\(programName): error: \(error)\n") }
            try? Communicator.finalize()
            exit(ExitStatus.failure.rawValue)
        } catch {
            StandardStreams.writeError("\(programName): error: cannot initialise MPI: \(error)\n")
            exit(ExitStatus.failure.rawValue)
        }

        do {
            try comm.agree { try body(comm) }
            StandardStreams.flushAll()
            try Communicator.finalize()
            exit(ExitStatus.success.rawValue)
        } catch let failure as CollectiveFailure {
            StandardStreams.flushAll()
            if comm.rank == 0 { StandardStreams.writeError(failure.report(programName: programName) + "\n") }
            try? Communicator.finalize()
            exit(failure.status.rawValue)
        } catch {
            // Only MPI errors of the agreement itself or of finalisation get here.
            StandardStreams.writeError("\(programName): fatal error (rank \(comm.rank)): \(error)\n")
            comm.abort(status: ExitStatus.failure.rawValue)
        }
    }

    private static func worldRankIfInitialized() -> Int? {
        guard Communicator.isInitialized, !Communicator.isFinalized else { return nil }
        return Communicator.worldRank()
    }
}
