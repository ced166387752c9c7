import ArgumentParser
import Distributed
import Foundation

/// `ml_tomo refine` (also the default command): the ML refinement of the seed document.
struct RefineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refine",
        abstract: "Align and classify subtomograms with missing regions by maximum likelihood (the default command)."
    )

    @OptionGroup var options: RefineOptions

    func run() throws {
        let options = self.options
        MPIJob.run { communicator in
            let log = ConsoleLog.make(rank: communicator.rank, verbosity: options.verbose)
            try RefineRun(options: options, communicator: communicator, log: log).execute()
        }
    }
}
