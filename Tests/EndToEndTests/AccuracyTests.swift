import Foundation
import Testing

/// The whole program's accuracy on simulated data with known truth (issue 8), scored by
/// `ml_tomo evaluate`. Thresholds are fixed here: class accuracy ≥ 95 % and median angular error after
/// fitting one frame per class ≤ 0.6 × the angular step.
///
/// The run is what a user does without knowing the answer: a reference-free consensus (`--nref 1`) to
/// bring every particle into one frame, then a two-class refinement started from that alignment
/// (`--keep_angles`: each class begins as the average of a random half in the consensus orientations).
/// Nothing of the truth enters the refinement.
@Suite(.serialized) struct AccuracyTests {
    static let step = 20.0

    /// Both computations. Under `--map` the split of the consensus poses at the first iteration once
    /// left one particle in class 2 on this set (K-means with mean centres), which emptied at the
    /// second; re-seeded as a noisy copy of the other class it emptied again every third iteration
    /// (0.57 at the end); re-seeded by bisecting the other class, 0.98 (classic: 0.98, 111 s against
    /// 16 s). With median centres the split is 53/47 (accuracy 0.58) at the first iteration, 1.00 from the third.
    @Test(arguments: [["--classic"], []]) func consensusThenClassificationRecoversClassesAndOrientations(mode: [String]) async throws {
        let ws = try Workspace("accuracy" + mode.joined())
        try await ws.simulate("data", particles: AccuracyTests.particles, size: AccuracyTests.size, classes: 2,
                              snr: AccuracyTests.snr, seed: AccuracyTests.seed)
        let data = ws.file("data")
        let common = ["-i", "images.sel", "--missing", "wedges.doc", "--ang", "\(Int(Self.step))"] + mode
        let consensus = try await ProcessRunner.mpirun(
            ranks: 2, common + ["--doc", "images.doc", "--oroot", "consensus/x", "--nref", "1", "--iter", "4"],
            currentDirectory: data, timeout: 1200)
        try #require(consensus.status == 0, "consensus run: \(consensus)")
        let classes = try await ProcessRunner.mpirun(
            ranks: 2, common + ["--doc", "consensus/x.doc", "--oroot", "classes/x", "--nref", "2", "--keep_angles",
                                "--iter", "6"],
            currentDirectory: data, timeout: 1800)
        try #require(classes.status == 0, "classification run: \(classes)")

        let report = try await RunFiles.evaluate(truth: ".", doc: "classes/x.doc", currentDirectory: data)
        let accuracy = RunFiles.accuracy(report)
        let angular = RunFiles.median(report, "angularErrorFitted")
        #expect(accuracy >= 0.95, "\(mode): class accuracy \(accuracy)")
        #expect(angular <= 0.6 * Self.step, "median fitted angular error \(angular)° (step \(Self.step)°)")
    }
}

extension AccuracyTests {
    /// The data set: two classes (one domain present or absent), ±60° wedge, Gaussian shifts of 2 px.
    static let particles = 100
    static let size = 24
    static let snr = 1.0
    static let seed = 8
}
