import Foundation
import Formats
import Testing
import Volumes

/// Every command line of the seed document's "Examples and notes", in order, under `mpirun -np 2`,
/// verbatim except `--iter` (lowered, and the `_it0000NN.doc` each run consumes renamed to match; the
/// `--dont_align` line keeps its 20 iterations, which cost 0.1 s each; the reference-free 3-class line
/// keeps its 25 under the default computation (≈ 4 s each) and gets 10 under `--classic` (≈ 24 s each)).
/// Each run consumes the previous one's `_itNNNNNN.doc` exactly as the seed writes it. Run twice: with
/// the default (MAP) computation, and with `--classic` appended to every line (the original's).
///
/// Data: 36 particles of 32³ (the smallest box `--dim 32` allows) in Spider format, 3 classes, SNR 5,
/// ±60° wedge (simulate --classes 3); `myreference.vol` is the true class-2 reference (the body every
/// class shares, without the variable domain), `interesting.msk` a ball of radius 14.
@Suite(.serialized) struct SeedCommandLineTests {
    static let size = 32
    static let particles = 36

    /// The seed's command lines (after `ml_tomo`), with `--iter` lowered.
    static let commandLines: [String] = [
        "-i images.sel --oroot run1_align/nref1_15deg --nref 1 --doc images.doc --missing wedges.doc --iter 6 --ang 15 --dim 32 --perturb",
        "-i images.sel --oroot run1_align/nref1_10deg --nref 1 --doc run1_align/nref1_15deg_it000006.doc --keep_angles --missing wedges.doc --iter 2 --ang 10 --ang_search 50 --maxres 0.35 --perturb",
        "-i images.sel --oroot run1_align/nref1_5deg --nref 1 --doc run1_align/nref1_10deg_it000002.doc --keep_angles -missing wedges.doc --iter 2 --ang 5 --ang_search 25 --maxres 0.35 -perturb",
        "-i images.sel --oroot run2_3classes/nref3_10deg  --nref 3 --doc run1_align/nref1_5deg_it000002.doc --keep_angles --missing wedges.doc --iter 6 --ang 10 --ang_search 50 --maxres 0.35 --perturb --reg0 5 --regF 0 --reg_steps 5",
        "-i images.sel --oroot run2_3classes/nref3_5deg --nref 3 --doc run2_3classes/nref3_10deg_it000006.doc --keep_angles --missing wedges.doc --iter 2 --ang 5 --ang_search 25 --maxres 0.35 --perturb",
        "-i images.sel --oroot run2_3classes/nref3_noalign  --nref 3 --doc run1_align/nref1_5deg_it000002.doc --keep_angles --missing wedges.doc --iter 20 --dont_align --maxres 0.35 --reg0 5 --regF 0 --reg_steps 5 --mask interesting.msk ",
        "-i images.sel --oroot run3_3classes/nref3_15deg --nref 3 --doc images.doc --missing wedges.doc --iter 25 --ang 15 --dim 32 --perturb --reg0 5 --regF 0 --reg_steps 5",
        "-i images.sel --oroot run4_extref/15deg --ref myreference.vol --doc images.doc --missing wedges.doc --iter 1 --ang 15 ",
        "-i images.sel --oroot run4_extref/7deg --ref myreference.vol --doc run4_extref/15deg_it000001.doc --missing wedges.doc --iter 1 --ang 7 --ang_search 20",
        "-i images.sel --oroot run4_extref/3deg --ref myreference.vol --doc run4_extref/7deg_it000001.doc --missing wedges.doc --iter 1 --ang 3 --ang_search 10",
    ]

    /// Splits a seed line the way a shell does (the seed's lines contain no quoting).
    private static func words(_ line: String) -> [String] { line.split(separator: " ").map(String.init) }

    private static func option(_ name: String, in line: String) -> String? {
        let w = words(line)
        guard let i = w.firstIndex(of: name), i + 1 < w.count else { return nil }
        return w[i + 1]
    }

    /// The reference-free 3-class line's iterations under `--classic`: 10 of its 25 (≈ 24 s each).
    static let classicReferenceFreeIterations = 10

    /// A seed line as run: `--classic` appended, and under it the reference-free line's `--iter` lowered.
    static func line(_ line: String, classic: Bool) -> String {
        guard classic else { return line }
        let lowered = line.contains("run3_3classes") ? line.replacingOccurrences(of: "--iter 25", with: "--iter \(classicReferenceFreeIterations)") : line
        return lowered + " --classic"
    }

    @Test(arguments: [false, true]) func everySeedCommandLineRunsInOrderAndChainsItsDocs(classic: Bool) async throws {
        let ws = try Workspace(classic ? "seed-classic" : "seed")
        try await ws.simulate("data", particles: Self.particles, size: Self.size, classes: 3, snr: 5, seed: 11, extra: ["--format", "spider"])
        let dir = ws.file("data")
        try SpiderFile.write(try VolumeIO.read(dir + "/truth_ref000002.mrc"), to: dir + "/myreference.vol")
        let d = Self.size, c = d / 2
        var mask = Volume(dim: d)
        for z in 0 ..< d { for y in 0 ..< d { for x in 0 ..< d {
            let r2 = (x - c) * (x - c) + (y - c) * (y - c) + (z - c) * (z - c)
            mask.data[(z * d + y) * d + x] = r2 <= 14 * 14 ? 1 : 0
        } } }
        try SpiderFile.write(mask, to: dir + "/interesting.msk")
        try FileManager.default.createDirectory(atPath: dir + "/run1_align", withIntermediateDirectories: true)  // the seed's mkdir

        var reports: [String: [String: Any]] = [:]
        for line in Self.commandLines.map({ Self.line($0, classic: classic) }) {
            let run = try await ProcessRunner.mpirun(ranks: 2, Self.words(line), currentDirectory: dir, timeout: 1800)
            try #require(run.status == 0, "ml_tomo \(line)\n\(run)")
            let oroot = try #require(Self.option("--oroot", in: line))
            let last = Int(Self.option("--iter", in: line)!)!
            for suffix in [".doc", "_ref.doc", ".h5", "_ref000001.mrc", String(format: "_it%06d.doc", last)] {
                #expect(FileManager.default.fileExists(atPath: dir + "/" + oroot + suffix), "\(oroot)\(suffix) missing")
            }
            let rows = try RunFiles.rows(dir + "/" + oroot + String(format: "_it%06d.doc", last))
            #expect(rows.count == Self.particles, "\(oroot): \(rows.count) rows")
            reports[oroot] = try await RunFiles.evaluate(truth: dir, doc: oroot + ".doc", currentDirectory: dir)
            let r = reports[oroot]!
            print("seed\(classic ? " --classic" : "") \(oroot): accuracy \(RunFiles.accuracy(r)), angular error raw \(RunFiles.median(r, "angularErrorRaw"))°, "
                  + "fitted \(RunFiles.median(r, "angularErrorFitted"))°, \(String(format: "%.1f", run.seconds)) s")
        }

        // What this data set supports (measured on it; see the report):
        // - the 3-class runs write 3 classes whose fractions sum to 1;
        for oroot in ["run2_3classes/nref3_10deg", "run2_3classes/nref3_5deg", "run2_3classes/nref3_noalign", "run3_3classes/nref3_15deg"] {
            let weights = try RunFiles.weights(dir + "/" + oroot + "_ref.doc")
            #expect(weights.count == 3 && abs(weights.reduce(0, +) - 1) < 1e-6, "\(oroot): class fractions \(weights)")
            #expect(FileManager.default.fileExists(atPath: dir + "/" + oroot + "_ref000003.mrc"))
        }
        // - the consensus of run1 aligns (median fitted angular error measured 6.4° classic, 5.0° default),
        //   and the classification that starts from it finds the 3 classes (accuracy measured 0.92 classic
        //   and 0.78 / 0.81 default in the two run2 lines — the default settles there: 12 iterations give
        //   the same;
        //   0.39 is what one class scores, ≈ 0.45 what random labels score). The second line starts from the
        //   classes of the first one's doc (`--keep_angles` with a K-class doc), so it must keep them.
        // - the reference-free 3-class run finds them too, given iterations: classic 0.81 after 5, 0.97
        //   after 10, 1.00 from 12 on (measured with --iter 25; 2 iterations gave 0.53); default 0.94 after
        //   its 25.
        //   Not asserted: the focussed `--dont_align --mask` run (classic 0.58 with this mask, 0.83 without
        //   it; default 0.69).
        #expect(RunFiles.median(reports["run1_align/nref1_5deg"]!, "angularErrorFitted") < 10)
        // Per computation: the default is weaker than the classic one on the two-step lines of this small
        // high-SNR set with this test's short iteration counts (0.78 and 0.81 with grid poses; 0.78 and
        // 0.67 with poses between samples, 4 particles of 36 apart; issue 15 notes) and as strong with the
        // seed's own counts (0.94 and 0.94, classic 0.97), and about as strong on the reference-free line
        // with its own 25 iterations: 0.94 (34 of 36, fitted 2.6°, 27 s) from random halves at iteration 1,
        // the default since 2026-12-07; 1.00 from the consensus split before, which sorts the ribosome at
        // SNR 0.01 far worse (DEVIATIONS.md).
        let needed: [String: Double] = classic
            ? ["run2_3classes/nref3_10deg": 0.8, "run2_3classes/nref3_5deg": 0.8, "run3_3classes/nref3_15deg": 0.8]
            : ["run2_3classes/nref3_10deg": 0.65, "run2_3classes/nref3_5deg": 0.65, "run3_3classes/nref3_15deg": 0.9]
        for (oroot, bound) in needed {
            #expect(RunFiles.accuracy(reports[oroot]!) >= bound, "\(oroot): class accuracy \(RunFiles.accuracy(reports[oroot]!))")
        }
        // - alignment to the external (true, domain-less) reference needs no frame fit. With the grid's
        //   samples as poses (classic) it gets better as the sampling gets finer (measured medians 11.4°,
        //   10.5°, 9.3°); the default's poses between samples reach that floor at 15° already (9.50°,
        //   8.35°, 9.57°), so the order is asserted for the classic computation only.
        for oroot in ["run4_extref/15deg", "run4_extref/7deg", "run4_extref/3deg"] {
            #expect(RunFiles.median(reports[oroot]!, "angularErrorRaw") < SeedThresholds.externalMedianDegrees[oroot]!,
                    "\(oroot): median raw angular error \(RunFiles.median(reports[oroot]!, "angularErrorRaw"))°")
        }
        if classic {
            #expect(RunFiles.median(reports["run4_extref/3deg"]!, "angularErrorRaw")
                    < RunFiles.median(reports["run4_extref/15deg"]!, "angularErrorRaw"))
        }
    }
}

/// What the small seed data set supports (see the test's comment and the report for measured values).
enum SeedThresholds {
    static let externalMedianDegrees: [String: Double] = [
        "run4_extref/15deg": 15, "run4_extref/7deg": 13, "run4_extref/3deg": 12,
    ]
}
