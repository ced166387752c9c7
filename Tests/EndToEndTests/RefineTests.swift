import Foundation
import Formats
import Testing

/// `ml_tomo refine` end to end under mpirun: the files of ARCHITECTURE.md, the readers users have,
/// the seed's chaining through `_itNNNNNN.doc`, and results that do not depend on ranks or threads.
@Suite(.serialized) struct RefineTests {
    /// The common small problem: 12 particles of 24³, two classes, ±60° wedge.
    private func refineArguments(oroot: String, iterations: Int = 2, threads: Int = 1) -> [String] {
        ["-i", "images.sel", "--oroot", oroot, "--nref", "2", "--doc", "images.doc", "--missing", "wedges.doc",
         "--iter", "\(iterations)", "--ang", "30", "--thr", "\(threads)"]
    }

    @Test func writesEveryFileAndTheReadersOpenThem() async throws {
        let ws = try Workspace("files")
        try await ws.simulate("data", particles: 12, size: 24, classes: 2, snr: 1)
        let run = try await ProcessRunner.mpirun(ranks: 2, refineArguments(oroot: "run/x"), currentDirectory: ws.file("data"),
                                                 timeout: 600)
        try #require(run.status == 0, "\(run)")
        for it in ["it000000", "it000001", "it000002"] {
            for suffix in [".doc", "_ref.doc", ".h5", "_ref000001.mrc", "_ref000002.mrc"] {
                #expect(ws.exists("data/run/x_\(it)\(suffix)"), "missing x_\(it)\(suffix)")
            }
        }
        for suffix in ["_it000001_log.doc", "_it000002_log.doc", ".doc", "_ref.doc", ".h5", "_ref000001.mrc", "_ref000002.mrc"] {
            #expect(ws.exists("data/run/x\(suffix)"), "missing x\(suffix)")
        }
        // A JSON line per iteration for scripts.
        #expect(run.stdout.split(separator: "\n").filter { $0.hasPrefix("{\"event\":\"iteration\"") }.count == 2, "\(run.stdout)")

        let check = try await Python.run("""
            import glob, mrcfile, starfile, h5py, sys
            for f in sorted(glob.glob('run/x*.mrc')):
                assert mrcfile.validate(f, print_file=open('/dev/null', 'w')), f
                with mrcfile.open(f) as m:
                    assert m.data.shape == (24, 24, 24), (f, m.data.shape)
            doc = starfile.read('run/x.doc')
            assert len(doc) == 12, len(doc)
            for col in ['image', 'angleRot', 'angleTilt', 'anglePsi', 'shiftX', 'shiftY', 'shiftZ', 'ref', 'logLikelihood', 'missingRegionNumber']:
                assert col in doc.columns, (col, list(doc.columns))
            assert set(doc['ref']) <= {1, 2}
            refs = starfile.read('run/x_ref.doc')
            assert len(refs) == 2 and abs(refs['weight'].sum() - 1) < 1e-6, refs
            # The default (resolution-limited) computation logs its per-shell curves in block `shells`
            # and the HDF5 file holds them too (issue 15, item 2).
            log = starfile.read('run/x_it000002_log.doc', always_dict=True)
            assert log['']['currentRadius'] > 0, log['']
            shells = log['shells']
            assert list(shells.columns) == ['ref', 'shell', 'resolution', 'fsc', 'ssnr', 'tau2OverSigma2'], list(shells.columns)
            assert len(shells) == 2 * 12 and sorted(set(shells['ref'])) == [1, 2], shells
            prior = shells['tau2OverSigma2']
            assert (prior >= 0).all() and (prior <= 1).all() and prior.max() > 0, prior
            with h5py.File('run/x.h5', 'r') as h:
                assert h['model/tau2_over_sigma2'].shape == (2, 13), h['model/tau2_over_sigma2'].shape
                assert h['model/ssnr'].shape == (2, 13)
                assert h.attrs['current_radius'] > 0
                assert h['references'].shape == (2, 24, 24, 24), h['references'].shape
                assert h['references'].dtype == 'float32'
                assert abs(sum(h.attrs['class_fractions']) - 1) < 1e-9
                assert h.attrs['iteration'] == 2
            print('READERS OK')
            """, currentDirectory: ws.file("data"))
        #expect(check.status == 0 && check.stdout.contains("READERS OK"), "\(check)")

        // The seed chains runs through the iteration docs: --doc <previous>_itNNNNNN.doc --keep_angles.
        let chained = try await ProcessRunner.mpirun(
            ranks: 2, ["-i", "images.sel", "--oroot", "run/y", "--nref", "1", "--doc", "run/x_it000002.doc", "--keep_angles",
                       "--missing", "wedges.doc", "--iter", "1", "--ang", "30", "--ang_search", "40"],
            currentDirectory: ws.file("data"), timeout: 600)
        #expect(chained.status == 0, "\(chained)")
        #expect(ws.exists("data/run/y.doc"))
    }

    /// 1, 2 and 3 ranks, and 1 or 2 threads, write the same bytes in every file (MRC, STAR/doc, HDF5,
    /// the report), in the default computation and in the classic one. Allowed to differ: the command
    /// line's `--thr` (it is written into the docs) and, in the `_log.doc` of each iteration, the
    /// timings (`_time…`) and the layout itself (`_ranks`, `_threads`). 20 particles: blocks of
    /// `EStep.particleBlock` = 8 split 16/4 over 2 ranks and 8/8/4 over 3.
    @Test(arguments: [[], ["--classic"]])
    func filesDoNotDependOnRanksOrThreads(mode: [String]) async throws {
        let ws = try Workspace("ranks" + mode.joined())
        try await ws.simulate("data", particles: 20, size: 24, classes: 2, snr: 1)
        let layouts: [(ranks: Int, threads: Int)] = [(1, 1), (2, 1), (3, 1), (1, 2)]
        var snapshots: [[String: Data]] = []
        for (ranks, threads) in layouts {
            // The same --oroot for every layout: it is part of the command line the docs record.
            let run = try await ProcessRunner.mpirun(ranks: ranks, refineArguments(oroot: "run/x", iterations: 3, threads: threads) + mode,
                                                     currentDirectory: ws.file("data"), timeout: 600)
            try #require(run.status == 0, "np \(ranks) thr \(threads): \(run)")
            var files: [String: Data] = [:]
            for name in ws.files(under: "data/run") {
                var text = try ws.read("data/run/" + name)
                if threads != 1 { text = Self.replacing("--thr \(threads)", with: "--thr 1", in: text) }
                if name.hasSuffix("_log.doc") { text = Self.withoutLayoutAndTimes(text) }
                files[name] = text
            }
            snapshots.append(files)
            try FileManager.default.moveItem(atPath: ws.file("data/run"), toPath: ws.file("data/r\(ranks)t\(threads)"))
        }
        #expect(snapshots[0].count > 30 && snapshots[0].keys.contains { $0.hasSuffix(".h5") })
        for (layout, files) in zip(layouts.dropFirst(), snapshots.dropFirst()) {
            #expect(files.keys.sorted() == snapshots[0].keys.sorted(), "np \(layout.ranks) thr \(layout.threads)")
            for (name, bytes) in snapshots[0].sorted(by: { $0.key < $1.key }) {
                #expect(files[name] == bytes, "\(mode) np \(layout.ranks) thr \(layout.threads): \(name) differs from 1 rank, 1 thread")
            }
        }
    }

    private static func replacing(_ old: String, with new: String, in data: Data) -> Data {
        var out = data
        let o = Data(old.utf8), n = Data(new.utf8)
        while let r = out.range(of: o) { out.replaceSubrange(r, with: n) }
        return out
    }

    /// A log doc without the lines that legitimately depend on the layout: timings, ranks, threads.
    private static func withoutLayoutAndTimes(_ data: Data) -> Data {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.filter { line in !["_time", "_ranks", "_threads"].contains { line.hasPrefix(" " + $0) } }
        return Data(kept.joined(separator: "\n").utf8)
    }

    @Test func twoRunsWithTheSameArgumentsWriteIdenticalBytes() async throws {
        let ws = try Workspace("bytes")
        try await ws.simulate("data", particles: 10, size: 24, classes: 2, snr: 1)
        var snapshots: [[String: Data]] = []
        for attempt in 0 ..< 2 {
            let run = try await ProcessRunner.mpirun(ranks: 2, refineArguments(oroot: "run/x"), currentDirectory: ws.file("data"),
                                                     timeout: 600)
            try #require(run.status == 0, "attempt \(attempt): \(run)")
            var files: [String: Data] = [:]
            // Everything but the log docs, which record how long each step took.
            for name in ws.files(under: "data/run") where !name.hasSuffix("_log.doc") { files[name] = try ws.read("data/run/" + name) }
            snapshots.append(files)
            try FileManager.default.removeItem(atPath: ws.file("data/run"))
        }
        #expect(snapshots[0].keys.sorted() == snapshots[1].keys.sorted())
        #expect(!snapshots[0].isEmpty)
        for (name, bytes) in snapshots[0] {
            #expect(snapshots[1][name] == bytes, "\(name) differs between two identical runs")
        }
    }

    @Test func aMissingImageStopsEveryRankWithOneMessageAndNoOutput() async throws {
        let ws = try Workspace("missing")
        try await ws.simulate("data", particles: 9, size: 24, classes: 2, snr: 1)
        // Remove a particle that rank 2 of 3 owns: only that rank can see the problem.
        let table = try MetaDataFile.readTable(ws.file("data/images.sel"))
        let lastImage = try table.string("image", row: table.rowCount - 1)
        try FileManager.default.removeItem(atPath: ws.file("data/" + lastImage))
        let run = try await ProcessRunner.mpirun(ranks: 3, refineArguments(oroot: "run/x"), currentDirectory: ws.file("data"),
                                                 timeout: 120)
        #expect(run.status != 0)
        let combined = run.stdout + run.stderr
        #expect(combined.components(separatedBy: lastImage).count - 1 >= 1, "\(run)")
        #expect(combined.components(separatedBy: "ml_tomo: error").count - 1 == 1, "the error should be printed once: \(run)")
        #expect(!ws.exists("data/run"), "nothing may be written after a failed start")
    }
}
