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
            Reads the files a refinement wrote (<oroot>_itNNNNNN.h5 and _ref.doc for every iteration, the \
            final <oroot>_refNNNNNN.mrc) and writes one HTML file with everything embedded (SVG plots, PNG \
            images): log-likelihood, class fractions, σ (noise), σ_offset and resolution per iteration, the \
            FSC curves of the last iteration, and the central x, y and z sections of every final reference.

            Example:
              ml_tomo report run/demo        # → run/demo_report.html
            """
    )

    @Argument(help: ArgumentHelp("The --oroot of the run.", valueName: "oroot"))
    var oroot: String

    @Option(name: .customShort("o"), help: ArgumentHelp("Output file (default: <oroot>_report.html).", valueName: "file.html"))
    var output: String?

    func run() throws {
        let history = try RunHistory.read(oroot: oroot)
        let path = output ?? oroot + "_report.html"
        try AtomicFile.write(ReportPage.html(history), to: path)
        FileHandle.standardError.write(Data("report: \(history.iterations.count) iterations, \(history.classCount) class(es): \(path)\n".utf8))
    }
}

/// What the report shows, gathered from a run's files.
struct RunHistory {
    struct Iteration {
        var number: Int
        var logLikelihood: Double
        var sigmaNoise: Double
        var sigmaOffset: Double
        var fractions: [Double]
        /// Å⁻¹ per class (FSC 0.5 between half-sets), 0 when not reached.
        var resolutions: [Double]
    }

    var oroot: String
    var iterations: [Iteration]
    /// FSC of the last iteration per class, shell q = 1 … d/2 at frequency q / (d · voxelSize).
    var lastFSC: [[Double]]
    var workingBox: Int
    /// Å per voxel at the working size.
    var voxelSize: Double
    /// Final references at the input size, class 1 first.
    var references: [Volume]

    var classCount: Int { references.count }

    static func read(oroot: String) throws -> RunHistory {
        let dir = RefineOutputs.parent(of: oroot)
        let stem = (oroot as NSString).lastPathComponent
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        let prefix = stem + "_it"
        let numbers = listing.compactMap { name -> Int? in
            guard name.hasPrefix(prefix), name.hasSuffix(".h5") else { return nil }
            let digits = name.dropFirst(prefix.count).dropLast(3)
            return digits.count == 6 ? Int(digits) : nil
        }.sorted()
        guard !numbers.isEmpty else {
            throw ValidationFailure("\(oroot): no \(stem)_itNNNNNN.h5 in \(dir.isEmpty ? "." : dir); give the --oroot of a run")
        }
        var iterations: [Iteration] = []
        var last: ReferenceStackFile?
        for n in numbers {
            let base = oroot + "_it" + String(format: "%06d", n)
            let stack = try ReferenceStackFile.read(base + ".h5")
            var resolutions = [Double](repeating: 0, count: stack.classCount)
            if let doc = try? MetaDataFile.readTable(base + "_ref.doc"), doc.has("resolution") {
                for r in 0 ..< min(doc.rowCount, stack.classCount) { resolutions[r] = (try? doc.double("resolution", row: r)) ?? 0 }
            }
            iterations.append(Iteration(number: n, logLikelihood: stack.logLikelihood, sigmaNoise: stack.sigmaNoise,
                                        sigmaOffset: stack.sigmaOffset, fractions: stack.classFractions, resolutions: resolutions))
            last = stack
        }
        guard let last else { throw ValidationFailure("\(oroot): no iteration could be read") }
        var references: [Volume] = []
        for k in 0 ..< last.classCount {
            let mrc = oroot + "_ref" + String(format: "%06d", k + 1) + ".mrc"
            let fallback = oroot + "_it" + String(format: "%06d", numbers.last!) + "_ref" + String(format: "%06d", k + 1) + ".mrc"
            if FileManager.default.fileExists(atPath: mrc) {
                references.append(try VolumeIO.read(mrc))
            } else if FileManager.default.fileExists(atPath: fallback) {
                references.append(try VolumeIO.read(fallback))
            } else {
                references.append(last.references[k])
            }
        }
        return RunHistory(oroot: oroot, iterations: iterations, lastFSC: last.fsc ?? [], workingBox: last.box,
                          voxelSize: last.voxelSize, references: references)
    }
}
