import Foundation
import Formats
import Testing
import Volumes

/// `ml_tomo normalize` and `ml_tomo convert` as a user runs them.
@Suite struct EcosystemCommandTests {
    /// Three volumes with their own offsets and scales (one in a subdirectory next to the sel file), a
    /// ball mask; normalising must give mean 0 / std 1 (over the mask with --mask), keep the other
    /// columns, and leave every input byte as it was.
    @Test func normalizeWritesNewFilesAndNeverTouchesTheInputs() async throws {
        let ws = try Workspace("normalize")
        let make = try await Python.run("""
        import numpy as np, mrcfile, os
        os.makedirs('in/sub', exist_ok=True)
        rng = np.random.default_rng(5)
        for i, (off, scale) in enumerate([(3.0, 0.5), (-40.0, 7.0), (0.25, 2.0)]):
            v = (rng.standard_normal((12, 12, 12)) * scale + off).astype(np.float32)
            v[4:8, 4:8, 4:8] += 10 * scale          # a 'protein' that differs from the solvent
            mrcfile.write('in/sub/v%d.mrc' % i if i == 1 else 'in/v%d.mrc' % i, v, overwrite=True, voxel_size=3.5)
        z, y, x = np.mgrid[:12, :12, :12]
        mrcfile.write('mask.mrc', (((x - 6)**2 + (y - 6)**2 + (z - 6)**2) <= 9).astype(np.float32), overwrite=True)
        open('in/images.sel', 'w').write('# XMIPP_STAR_1 *\\ndata_\\nloop_\\n _image\\n _ref\\n v0.mrc 2\\n sub/v1.mrc 1\\n v2.mrc 3\\n')
        """, currentDirectory: ws.path)
        try #require(make.status == 0, "\(make)")
        let inputFiles = ws.files(under: "in")
        let before = try inputFiles.map { try ws.read("in/" + $0) }

        let plain = try await ProcessRunner.mlTomo(["normalize", "-i", "in/images.sel", "--odir", "out"], currentDirectory: ws.path)
        try #require(plain.status == 0, "\(plain)")
        let masked = try await ProcessRunner.mlTomo(["normalize", "-i", "in/images.sel", "--odir", "outm/vols", "-o", "outm/images.doc",
                                                     "--mask", "mask.mrc"], currentDirectory: ws.path)
        try #require(masked.status == 0, "\(masked)")
        let refused = try await ProcessRunner.mlTomo(["normalize", "-i", "in/images.sel", "--odir", "in"], currentDirectory: ws.path)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("is an input"), "\(refused)")

        #expect(ws.files(under: "in") == inputFiles, "normalize must not add files next to the inputs")
        #expect(try inputFiles.map { try ws.read("in/" + $0) } == before, "an input changed")

        let check = try await Python.run("""
        import numpy as np, mrcfile, starfile, os
        mask = mrcfile.read('mask.mrc') > 0.5
        for meta, masked in [('out/images.sel', False), ('outm/images.doc', True)]:
            t = list(starfile.read(meta, always_dict=True).values())[0]
            for name, ref in zip(t['image'], t['ref']):
                path = os.path.join(os.path.dirname(meta), name)
                with mrcfile.open(path) as m:
                    v = m.data.astype(np.float64); vs = float(m.voxel_size.x)
                w = v[mask] if masked else v
                print(meta, name, ref, '%.6f %.6f %.6f %.3f' % (w.mean(), w.std(), v.std(), vs))
        """, currentDirectory: ws.path)
        try #require(check.status == 0, "\(check)")
        let lines = check.stdout.split(separator: "\n").map { $0.split(separator: " ") }
        #expect(lines.count == 6, "\(check.stdout)")
        for f in lines where f.count == 7 {
            let mean = Double(f[3])!, std = Double(f[4])!, wholeStd = Double(f[5])!
            #expect(abs(mean) < 1e-4 && abs(std - 1) < 1e-4, "\(f.joined(separator: " "))")
            if f[0] == "outm/images.doc" { #expect(abs(wholeStd - 1) > 0.05, "masked statistics should differ from whole-volume ones") }
            #expect(f[6] == "3.500", "voxel size kept: \(f[6])")
        }
        #expect(lines.map { $0.count > 2 ? String($0[2]) : "" } == ["2", "1", "3", "2", "1", "3"], "the _ref column is kept in order")
    }

    /// doc → STAR → tbl → em → doc through the binary gives back the same rotations and shifts.
    @Test func convertChainThroughEveryFormat() async throws {
        let ws = try Workspace("convert")
        var t = MetaDataTable(name: "", labels: ["image", "angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ", "ref"])
        let poses: [[Double]] = [[10, 20, 30, 1, -2, 0.5], [-70, 180, 15, 0, 0, 3], [123.4, 77.7, -45.6, -4.25, 2, -1]]
        for (i, p) in poses.enumerated() {
            t.appendRow([.string("p\(i + 1).mrc")] + p.map { .real($0) } + [.int(i + 1)])
        }
        try MetaDataFile(t).write(to: ws.file("a.doc"))
        for (from, to, extra) in [("a.doc", "b.star", ["--angpix", "3.1"]), ("b.star", "c.tbl", []), ("c.tbl", "d.em", []),
                                  ("d.em", "e.doc", ["--image-pattern", "p%d.mrc"])] {
            let r = try await ProcessRunner.mlTomo(["convert", from, to] + extra, currentDirectory: ws.path)
            try #require(r.status == 0, "\(from) → \(to): \(r)")
        }
        let back = try ParticleList.read(ws.file("e.doc"), format: .xmipp)
        #expect(back.particles.map(\.image) == ["p1.mrc", "p2.mrc", "p3.mrc"])
        #expect(back.particles.map(\.classNumber) == [1, 2, 3])
        let tbl = try ParticleList.read(ws.file("c.tbl"), format: .dynamo)
        #expect(abs((tbl.pixelSize ?? 0) - 3.1) < 1e-9, "the pixel size travels from the STAR optics table to Dynamo's column 36")
        for (b, p) in zip(back.particles, poses) {
            let e = EulerAngles(rot: p[0], tilt: p[1], psi: p[2]).matrix
            #expect(b.pose.angles.matrix.maxAbsDifference(e) < 1e-4)
            #expect(abs(b.pose.shift.x - p[3]) < 1e-4 && abs(b.pose.shift.y - p[4]) < 1e-4 && abs(b.pose.shift.z - p[5]) < 1e-4)
        }
        let same = try await ProcessRunner.mlTomo(["convert", "a.doc", "./a.doc"], currentDirectory: ws.path)
        #expect(same.status != 0 && same.stderr.contains("never overwrites"), "\(same)")
        let star = try await ProcessRunner.mlTomo(["convert", "d.em", "x.star"], currentDirectory: ws.path)
        #expect(star.status != 0 && star.stderr.contains("--angpix"), "\(star)")
        #expect(!ws.exists("x.star"))
    }

    /// `--class` keeps the particles of the classes asked for, in input order, with their poses, wedges
    /// and classes; a file without classes, a class no particle has and class 0 are refused by name.
    @Test func convertSelectsClasses() async throws {
        let ws = try Workspace("convert-class")
        var t = MetaDataTable(name: "", labels: ["image", "angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ",
                                                 "ref", "missingRegionNumber"])
        let classes = [2, 1, 3, 2, 1, 2]
        for (i, c) in classes.enumerated() {
            t.appendRow([.string("p\(i + 1).mrc"), .real(Double(10 * i)), .real(20), .real(-30), .real(1), .real(0), .real(-1),
                         .int(c), .int(i % 2 + 1)])
        }
        try MetaDataFile(t).write(to: ws.file("run.doc"))
        let two = try await ProcessRunner.mlTomo(["convert", "run.doc", "class2.doc", "--class", "2"], currentDirectory: ws.path)
        try #require(two.status == 0, "\(two)")
        #expect(two.stderr.contains("3 particles of class 2"), "\(two)")
        let kept = try ParticleList.read(ws.file("class2.doc"), format: .xmipp).particles
        #expect(kept.map(\.image) == ["p1.mrc", "p4.mrc", "p6.mrc"])
        #expect(kept.map(\.classNumber) == [2, 2, 2])
        #expect(kept.map(\.missingRegion) == [1, 2, 2])
        #expect(zip(kept.map { $0.pose.angles.rot }, [0.0, 30, 50]).allSatisfy { abs($0 - $1) < 1e-6 }, "\(kept.map(\.pose))")

        let both = try await ProcessRunner.mlTomo(["convert", "run.doc", "c13.star", "--class", "3", "--class", "1", "--angpix", "4"],
                                                  currentDirectory: ws.path)
        try #require(both.status == 0, "\(both)")
        #expect(both.stderr.contains("3 particles of classes 3, 1"), "\(both)")
        #expect(try ParticleList.read(ws.file("c13.star"), format: .relion).particles.map(\.image) == ["p2.mrc", "p3.mrc", "p5.mrc"])

        let none = try await ProcessRunner.mlTomo(["convert", "run.doc", "c4.doc", "--class", "4"], currentDirectory: ws.path)
        #expect(none.status != 0 && none.stderr.contains("no particle of run.doc") && none.stderr.contains("1, 2, 3"), "\(none)")
        #expect(!ws.exists("c4.doc"))
        let zero = try await ProcessRunner.mlTomo(["convert", "run.doc", "c0.doc", "--class", "0"], currentDirectory: ws.path)
        #expect(zero.status != 0 && zero.stderr.contains("numbered from 1"), "\(zero)")
        var plain = MetaDataTable(name: "", labels: ["image", "angleRot", "angleTilt", "anglePsi"])
        plain.appendRow([.string("p1.mrc"), .real(0), .real(0), .real(0)])
        try MetaDataFile(plain).write(to: ws.file("plain.doc"))
        let noClasses = try await ProcessRunner.mlTomo(["convert", "plain.doc", "x.doc", "--class", "1"], currentDirectory: ws.path)
        #expect(noClasses.status != 0 && noClasses.stderr.contains("plain.doc gives no particle a class"), "\(noClasses)")
    }
}
