import ArgumentParser
import Foundation
import Formats
import Volumes

/// `ml_tomo report OROOT`: one self-contained HTML page to look at a run.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write <oroot>_report.html: plots of a run per iteration, FSC curves and central sections of the references.",
        discussion: """
            Reads the files a refinement wrote (<oroot>_itNNNNNN.h5, _ref.doc and _refNNNNNN.mrc for every \
            iteration, the last iteration's .doc, the final <oroot>_refNNNNNN.mrc) and writes one HTML file \
            with everything embedded (SVG plots, PNG images): log-likelihood, class fractions, σ (noise), \
            σ_offset and resolution per iteration, the FSC curves and the angular distribution per class of \
            the last iteration, and the central x, y and z sections of every class reference per iteration.

            Example:
              ml_tomo report run/demo        # → run/demo_report.html
            """
    )

    @Argument(help: ArgumentHelp("The --oroot of the run.", valueName: "oroot"))
    var oroot: String

    @Option(name: .customShort("o"), help: ArgumentHelp("Output file (default: <oroot>_report.html).", valueName: "file.html"))
    var output: String?

    func run() throws {
        let (path, history) = try ReportPage.write(oroot: oroot, to: output)
        FileHandle.standardError.write(Data("report: \(history.iterations.count) iterations, \(history.classCount) class(es): \(path)\n".utf8))
    }
}
