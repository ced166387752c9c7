import ArgumentParser
import Distributed
import Foundation

@main
struct MLTomo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ml_tomo",
        abstract: "Maximum-likelihood alignment and classification of subtomograms (MPI).",
        discussion: """
            Without a subcommand, ml_tomo runs `refine`, so every command line of Xmipp's ml_tomo v3.0 \
            documentation runs verbatim (single-dash long options such as -missing are accepted).
            Run under MPI with `mpirun -np R ml_tomo ...` or `srun --mpi=pmix ml_tomo ...`.
            """,
        version: MLTomoVersion.string,
        subcommands: [RefineCommand.self, SimulateCommand.self, EvaluateCommand.self, BenchCommand.self, DoctorCommand.self,
                      MPISelfTestCommand.self],
        defaultSubcommand: RefineCommand.self
    )

    /// Parses the normalised arguments, runs the command, and exits: ranks other than 0 stay quiet about
    /// argument errors that every rank finds identically.
    static func main() {
        let arguments = ArgumentNormalisation.normalise(Array(CommandLine.arguments.dropFirst()))
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            if !LaunchEnvironment.isFirstRank {
                Foundation.exit(exitCode(for: error).rawValue)
            }
            exit(withError: error)
        }
    }
}

enum MLTomoVersion {
    static let string = "ml_tomo 0.1.0 (Swift re-implementation of Xmipp ml_tomo v3.0)"
}
