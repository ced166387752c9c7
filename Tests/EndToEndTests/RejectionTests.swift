import Foundation
import Formats
import Testing
import Volumes

/// Bad option combinations and inconsistent inputs (spec §2.2 and the checks added by this program):
/// rejected under `mpirun -np 2` before any work, with one clear message (printed once), a non-zero
/// status on every rank, and nothing written (the --oroot directory is not created).
@Suite(.serialized) struct RejectionTests {
    /// One shared small data set (8 particles of 24³) plus the extra files the cases need.
    private static func dataset() async throws -> Workspace {
        let ws = try Workspace("reject")
        try await ws.simulate("data", particles: 8, size: 24, classes: 2, snr: 1)
        let dir = ws.file("data")
        try RunFiles.writeTruthDoc(in: dir)
        // A wedges file with an unknown type, one lacking a column its type needs.
        try "# XMIPP_STAR_1 *\ndata_\nloop_\n _missingRegionNumber\n _missingRegionType\n _missingRegionThetaY0\n _missingRegionThetaYF\n 1 wedge_z -60 60\n"
            .write(toFile: dir + "/badtype.doc", atomically: true, encoding: .utf8)
        try "# XMIPP_STAR_1 *\ndata_\nloop_\n _missingRegionNumber\n _missingRegionType\n _missingRegionThetaY0\n 1 wedge_y -60\n"
            .write(toFile: dir + "/badcolumn.doc", atomically: true, encoding: .utf8)
        // An images doc whose first particle refers to region 7 (wedges.doc defines 1 only).
        var doc = try MetaDataFile.readTable(dir + "/images.doc")
        doc.set("missingRegionNumber", row: 0, .int(7))
        try MetaDataFile(doc).write(to: dir + "/region7.doc")
        // A doc lacking the third image; a doc without the region column.
        var short = try MetaDataFile.readTable(dir + "/images.doc")
        short.selectRows([0, 1] + Array(3 ..< short.rowCount))
        try MetaDataFile(short).write(to: dir + "/short.doc")
        var noRegion = try MetaDataFile.readTable(dir + "/images.doc")
        noRegion.removeColumn("missingRegionNumber")
        try MetaDataFile(noRegion).write(to: dir + "/noregion.doc")
        // Volumes: a mask with values above 1, a reference of another size, a non-cubic particle.
        var mask = Volume(dim: 24)
        for i in 0 ..< mask.data.count { mask.data[i] = 2 }
        try MRCFile.write(mask, to: dir + "/mask2.mrc")
        try MRCFile.write(Volume(dim: 20), to: dir + "/ref20.mrc")
        try MRCFile.write(Volume(nx: 24, ny: 24, nz: 20), to: dir + "/flat.mrc")
        var flatSel = MetaDataTable(name: "", labels: ["image", "enabled"])
        flatSel.appendRow([.string("flat.mrc"), .int(1)])
        try MetaDataFile(flatSel).write(to: dir + "/flat.sel")
        return ws
    }

    private static let base = ["-i", "images.sel", "--oroot", "out/x", "--doc", "images.doc", "--missing", "wedges.doc",
                               "--iter", "1", "--ang", "30"]

    /// (arguments, a fragment the one message must contain).
    private static let cases: [(String, [String], String)] = [
        ("dont_align with ang_search", base + ["--nref", "2", "--dont_align", "--ang_search", "10"], "--ang_search makes no sense"),
        ("dont_rotate with ang_search", base + ["--nref", "2", "--dont_rotate", "--ang_search", "10"], "--ang_search makes no sense"),
        ("mask without dont_align", base + ["--nref", "2", "--mask", "mask2.mrc"], "only valid together with --dont_align"),
        ("nref with ref", base + ["--nref", "2", "--ref", "truth_ref000001.mrc"], "mutually exclusive"),
        ("one- and two-pass local", base + ["--nref", "2", "--ang_search", "20", "--one_pass_local", "--two_pass_local"],
         "--one_pass_local and --two_pass_local are mutually exclusive"),
        ("neither nref nor ref", base, "give --nref"),
        ("nref 0", base + ["--nref", "0"], "--nref must be at least 1"),
        ("dim above the box", base + ["--nref", "2", "--dim", "32"], "--dim 32 is larger than the input subtomograms"),
        ("maxres 0", base + ["--nref", "2", "--maxres", "0"], "--maxres must lie in (0, 0.5]"),
        ("maxres 0.6", base + ["--nref", "2", "--maxres", "0.6"], "--maxres must lie in (0, 0.5]"),
        ("unknown sym", base + ["--nref", "2", "--sym", "x7"], "--sym 'x7'"),
        ("unknown missing type", ["-i", "images.sel", "--oroot", "out/x", "--doc", "images.doc", "--missing", "badtype.doc",
                                  "--nref", "2", "--iter", "1"], "unknown _missingRegionType 'wedge_z'"),
        ("missing column for the type", ["-i", "images.sel", "--oroot", "out/x", "--doc", "images.doc", "--missing", "badcolumn.doc",
                                         "--nref", "2", "--iter", "1"], "needs column _missingRegionThetaYF"),
        ("region number without definition", ["-i", "images.sel", "--oroot", "out/x", "--doc", "region7.doc", "--missing", "wedges.doc",
                                              "--nref", "2", "--iter", "1"], "_missingRegionNumber 7"),
        ("missing without region column", ["-i", "images.sel", "--oroot", "out/x", "--doc", "noregion.doc", "--missing", "wedges.doc",
                                           "--nref", "2", "--iter", "1"], "column _missingRegionNumber is required"),
        ("doc lacking an image", ["-i", "images.sel", "--oroot", "out/x", "--doc", "short.doc", "--missing", "wedges.doc",
                                  "--nref", "2", "--iter", "1"], "has no row for image 'particles/"),
        ("dont_align without angles", ["-i", "images.sel", "--oroot", "out/x", "--nref", "2", "--dont_align", "--iter", "1"],
         "lacks some of the columns"),
        ("dont_limit_psirange with sym and ang_search", base + ["--nref", "2", "--sym", "c2", "--ang_search", "20", "--dont_limit_psirange"],
         "--dont_limit_psirange cannot be combined"),
        ("regF above reg0", base + ["--nref", "2", "--reg0", "1", "--regF", "2"], "must not be larger than --reg0"),
        ("two fixed modes", base + ["--nref", "2", "--dont_align", "--dont_rotate"], "cannot be combined: choose one"),
        ("ang too coarse", base + ["--nref", "2", "--ang", "50"], "too coarse"),
        ("tilt range", base + ["--nref", "2", "--tilt0", "100", "--tiltF", "50"], "--tilt0 and --tiltF"),
        ("iter below istart", base + ["--nref", "2", "--istart", "3", "--iter", "2"], "must not be smaller than --istart"),
        ("reference of another size", base + ["--ref", "ref20.mrc"], "references must have the size of the images"),
        ("mask values above 1", base + ["--nref", "2", "--dont_align", "--mask", "mask2.mrc"].map { $0 == "images.doc" ? "truth.doc" : $0 },
         "values must lie in [0, 1]"),
        ("non-cubic images", ["-i", "flat.sel", "--oroot", "out/x", "--nref", "1", "--iter", "1"], "must be cubic"),
        ("restart with istart", ["-i", "images.sel", "--oroot", "out/x", "--doc", "images.doc", "--missing", "wedges.doc",
                                 "--nref", "2", "--iter", "3", "--restart", "x_it000001", "--istart", "2"], "do not combine it with --istart"),
        ("realign before the split", base.map { $0 == "1" ? "6" : $0 } + ["--nref", "2", "--realign_classes", "2", "--consensus_iter", "3"],
         "before the classes exist (the consensus splits in iteration 4): give --iter 8 or more"),
        ("realign with classic", base.map { $0 == "1" ? "12" : $0 } + ["--nref", "2", "--realign_classes", "2", "--classic"],
         "--realign_classes needs the default computation"),
        ("realign with ang_search", base.map { $0 == "1" ? "12" : $0 } + ["--nref", "2", "--realign_classes", "2", "--ang_search", "20"],
         "--realign_classes searches every orientation"),
        ("realign_iter 0", base + ["--nref", "2", "--realign_iter", "0"], "--realign_iter must be at least 1"),
        ("unknown option", base + ["--nref", "2", "--no_such_option"], "no_such_option"),
        ("single-dash spelling of a bad value", base + ["-nref", "2", "-maxres", "0.9"], "--maxres must lie in (0, 0.5]"),
    ]

    @Test func everyBadCombinationIsRejectedOnceBeforeAnyWork() async throws {
        let ws = try await Self.dataset()
        for (name, arguments, fragment) in Self.cases {
            let run = try await ProcessRunner.mpirun(ranks: 2, arguments, currentDirectory: ws.file("data"), timeout: 120)
            #expect(run.status != 0, "\(name): accepted\n\(run)")
            #expect(RunFiles.count(fragment, in: run.combinedOutput) == 1,
                    "\(name): the message containing '\(fragment)' must appear exactly once\n\(run)")
            #expect(!ws.exists("data/out"), "\(name): the output directory was created")
            #expect(!run.combinedOutput.contains("[not agreed between ranks"), "\(name): not agreed\n\(run)")
            #expect(!run.timedOut)
            try? FileManager.default.removeItem(atPath: ws.file("data/out"))
        }
    }
}
