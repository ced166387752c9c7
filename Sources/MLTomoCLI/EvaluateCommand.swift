import ArgumentParser
import Foundation
import Formats
import Simulation
import Volumes

/// `ml_tomo evaluate`: scores a refinement result against the truth written by `ml_tomo simulate`.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Score a result (classes, angles, shifts, references) against simulated ground truth.",
        discussion: """
            Classes: accuracy under the best one-to-one matching of labels, and the adjusted Rand index.
            Angles: geodesic error in degrees, raw and after fitting one frame rotation G per estimated \
            class. A reference-free run lives in its own frame Ref'(y) = Ref(G·y + g); from \
            X(x) = Ref(A(x + t)) it follows that A_true = G·A_est and t_est = t_true − A_trueᵀ·g. G is a \
            robust chordal-L2 fit (candidate with the least median error, refitted on inliers); g is the \
            component-wise median of A_true·(t_true − t_est). Shifts: |t_est − t_true| raw and after g.
            References (--refs, in class order): rotated by G onto the true reference, shifted by the \
            cross-correlation peak, then FSC; resolution where it falls below 0.5 and 0.143.
            """
    )

    @Option(name: .customLong("truth"), help: ArgumentHelp("The simulate output directory (or its truth.star).", valueName: "dir"))
    var truth: String

    @Option(name: .customLong("doc"), help: ArgumentHelp("The result metadata (e.g. <oroot>_it000010.doc or _img.xmd).", valueName: "file"))
    var doc: String

    @Option(name: .customLong("refs"), parsing: .upToNextOption, help: ArgumentHelp("Estimated references, class 1 first.", valueName: "ref.mrc"))
    var refs: [String] = []

    @Option(name: .customLong("pixel-size"), help: "Pixel size (Å) for resolutions in Å (default: the one recorded by simulate).")
    var pixelSize: Double?

    @Flag(name: .customLong("json"), help: "Print the scores as JSON.")
    var json = false

    func run() throws {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: truth, isDirectory: &isDirectory)
        guard exists else { throw ValidationError("--truth \(truth) does not exist") }
        let truthFile = isDirectory.boolValue ? truth + "/" + DatasetLayout.truthFile : truth
        let truthDir = isDirectory.boolValue ? truth : (truth as NSString).deletingLastPathComponent
        let truthRecords = try RecordReader.read(truthFile, block: DatasetLayout.truthBlock)
        let estimates = try RecordReader.read(doc)
        let (initialReport, frames) = try Evaluation.evaluate(truth: truthRecords, estimates: estimates)
        var report = initialReport

        let pixel = pixelSize ?? recordedPixelSize(truthFile)
        for (i, file) in refs.enumerated() {
            guard i < report.matching.count, report.matching[i] > 0 else {
                FileHandle.standardError.write(Data("note: reference \(i + 1) (\(file)) has no matched true class; skipped\n".utf8))
                continue
            }
            let k = report.matching[i]
            let truePath = (truthDir.isEmpty ? "" : truthDir + "/") + DatasetLayout.truthReferenceName(k - 1)
            let trueRef = try VolumeIO.read(truePath)
            var estimate = try VolumeIO.read(file)
            guard estimate.isCubic else { throw ValidationError("--refs \(file) is not a cube") }
            if estimate.nx != trueRef.nx { estimate = estimate.fourierResized(to: trueRef.nx) }
            report.references.append(try Evaluation.scoreReference(estimate, truth: trueRef, frame: frames[i],
                                                                   estimatedClass: i + 1, trueClass: k, file: file,
                                                                   pixelSize: pixel))
        }
        print(json ? try report.jsonText() : report.formattedText())
    }

    /// The pixel size recorded in truth.star's `simulation` block, if any.
    private func recordedPixelSize(_ truthFile: String) -> Double? {
        guard let file = try? MetaDataFile.read(truthFile),
              let block = file.block(named: DatasetLayout.settingsBlock),
              let v = try? block.double("pixelSize", row: 0) else { return nil }
        return v
    }
}
