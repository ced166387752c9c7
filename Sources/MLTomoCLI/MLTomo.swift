import ArgumentParser

@main
struct MLTomo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ml_tomo",
        abstract: "Maximum-likelihood alignment and classification of subtomograms (MPI).",
        version: "ml_tomo 0.1.0 (re-implementation of Xmipp ml_tomo v3.0)",
        subcommands: [DoctorCommand.self, MPISelfTestCommand.self]
    )
}
