import Foundation
import Testing

/// RELION as a client of our `_data.star`: Debian's relion 3.1 (`make deps` installs it) reconstructs
/// from our angles, origins and wedge masks, and must find our reference; the same STAR file given
/// back to us as `-i` must give the same average; and relion_refine continued from our particles and
/// references (`_references.star`) must keep our classes.
@Suite(.serialized) struct RelionClientTests {
    static let reconstruct = "/usr/bin/relion_reconstruct"
    static let refine = "/usr/bin/relion_refine"
    static var relionInstalled: Bool { FileManager.default.isExecutableFile(atPath: reconstruct) }
    static var relionRefineInstalled: Bool { FileManager.default.isExecutableFile(atPath: refine) }

    /// `run/uninverted.star`: `run/r_data.star` with our angles written as if they were RELION's (the
    /// rotation not inverted), the control that every check of RELION's result must fail.
    static func writeUninverted(in data: String) async throws {
        let control = try await Python.run("""
        import starfile
        d = starfile.read('run/r_data.star', always_dict=True)
        p = d['particles']
        p['rlnAngleRot'], p['rlnAnglePsi'], p['rlnAngleTilt'] = -p['rlnAnglePsi'], -p['rlnAngleRot'], -p['rlnAngleTilt']
        starfile.write(d, 'run/uninverted.star')
        """, currentDirectory: data)
        try #require(control.status == 0, "\(control)")
    }

    /// FSC per shell (1 … d/2 − 1) of two MRC maps, and the shell of the run's resolution (`_resolution`
    /// of the `_ref.doc`, Å⁻¹) for box d and pixel size p: shell = resolution · d · p.
    static let fscScript = """
    import sys, mrcfile, numpy as np, starfile
    def fsc(a, b):
        A, B = np.fft.fftn(a), np.fft.fftn(b)
        n = a.shape[0]
        f = np.fft.fftfreq(n)
        shell = np.round(np.sqrt(f[:, None, None]**2 + f[None, :, None]**2 + f[None, None, :]**2) * n).astype(int)
        return [float(np.sum(A[shell == q] * np.conj(B[shell == q])).real
                      / np.sqrt(np.sum(abs(A[shell == q])**2) * np.sum(abs(B[shell == q])**2))) for q in range(1, n // 2)]
    ours = mrcfile.read(sys.argv[1]).astype(np.float64)
    res = float(list(starfile.read(sys.argv[2], always_dict=True).values())[0]['resolution'][0])
    print('shell', int(round(res * ours.shape[0] * float(sys.argv[3]))))
    for path in sys.argv[4:]:
        print(path, ' '.join('%.4f' % x for x in fsc(mrcfile.read(path).astype(np.float64), ours)))
    """

    @Test(.enabled(if: relionInstalled, "relion_reconstruct is not installed (apt-get install relion; make deps does it)"))
    func relionReconstructFromOurStarFindsOurReference() async throws {
        let ws = try Workspace("relion")
        try await ws.simulate("data", particles: 40, size: 24, classes: 1, snr: 5,
                              extra: ["--missing", "wedge_y", "--tilt-range", "60", "--pixel-size", "4"])
        let data = ws.file("data")
        // Average in the true orientations: the reference is then known to be right, and the test is
        // about the conventions of the STAR file alone.
        let run = try await ProcessRunner.mlTomo(
            ["-i", "images.sel", "--doc", "particles@truth.star", "--missing", "wedges.doc", "--oroot", "run/r",
             "--nref", "1", "--iter", "1", "--only_average", "--pixel_size", "4", "--thr", "1"], currentDirectory: data)
        try #require(run.status == 0, "refine failed: \(run)")
        #expect(ws.exists("data/run/r_it000001_data.star") && ws.exists("data/run/r_it000000_data.star"))
        #expect(ws.exists("data/run/r_wedge000001.mrc"))

        let good = try await ProcessRunner.run(Self.reconstruct, ["--i", "run/r_data.star", "--o", "run/relion.mrc", "--3d_rot", "--ctf"],
                                               currentDirectory: data, timeout: 300)
        try #require(good.status == 0, "relion_reconstruct failed: \(good)")
        // Control: the same file with the rotations not inverted (our angles as if they were RELION's)
        // must not reconstruct our map, or the check above would prove nothing.
        try await Self.writeUninverted(in: data)
        let bad = try await ProcessRunner.run(Self.reconstruct, ["--i", "run/uninverted.star", "--o", "run/uninverted.mrc", "--3d_rot", "--ctf"],
                                              currentDirectory: data, timeout: 300)
        try #require(bad.status == 0, "relion_reconstruct failed: \(bad)")

        // Our STAR file as -i: the same orientations give the same average.
        let again = try await ProcessRunner.mlTomo(
            ["-i", "run/r_data.star", "--missing", "wedges.doc", "--oroot", "run2/s", "--nref", "1", "--iter", "1",
             "--only_average", "--pixel_size", "4", "--thr", "1"], currentDirectory: data)
        try #require(again.status == 0, "refine from the STAR file failed: \(again)")

        let fsc = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", Self.fscScript, "run/r_ref000001.mrc", "run/r_ref.doc", "4",
                                                               "run/relion.mrc", "run/uninverted.mrc", "run2/s_ref000001.mrc"],
                                              currentDirectory: data)
        try #require(fsc.status == 0, "\(fsc)")
        var curves: [String: [Double]] = [:]
        var shell = 0
        for line in fsc.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            if f.first == "shell" { shell = Int(f[1]) ?? 0 } else if let name = f.first { curves[String(name)] = f.dropFirst().compactMap { Double($0) } }
        }
        try #require(shell >= 3 && shell <= 11, "the run's resolution shell is \(shell): \(fsc.stdout)")
        let relion = try #require(curves["run/relion.mrc"]), uninverted = try #require(curves["run/uninverted.mrc"])
        let fromStar = try #require(curves["run2/s_ref000001.mrc"])
        #expect(relion.prefix(shell).allSatisfy { $0 >= 0.9 }, "FSC(relion_reconstruct, ours) up to shell \(shell): \(relion)")
        #expect(uninverted[1 ..< shell].reduce(0, +) / Double(shell - 1) < 0.5, "control: \(uninverted)")
        #expect(fromStar.allSatisfy { $0 >= 0.999 }, "-i run/r_data.star: \(fromStar)")
    }

    /// Compares RELION's `run_itNNN_data.star` with ours, particle by particle (by rlnImageName): the
    /// fraction with the same rlnClassNumber, and the median and maximum rotation between the two poses
    /// (both are RELION's A, so the same formula serves) and the median origin change in Å. Also prints our
    /// class sizes, so the test can see that our classes are not a trivial single class.
    static let compareScript = """
    import sys, numpy as np, starfile
    def E(r, t, p):
        a, b, g = np.radians([r, t, p]); ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
        return np.array([[cg*cb*ca - sg*sa, cg*cb*sa + sg*ca, -cg*sb], [-sg*cb*ca - cg*sa, -sg*cb*sa + cg*ca, sg*sb], [sb*ca, sb*sa, cb]])
    ours = starfile.read(sys.argv[1], always_dict=True)['particles'].set_index('rlnImageName')
    print('ours', ' '.join(str(int((ours['rlnClassNumber'] == k).sum())) for k in (1, 2)))
    for path in sys.argv[2:]:
        theirs = starfile.read(path, always_dict=True)['particles'].set_index('rlnImageName')
        assert len(theirs) == len(ours), (path, len(theirs), len(ours))
        same, angles, origins = 0, [], []
        for name, r in theirs.iterrows():
            o = ours.loc[name]
            same += int(r['rlnClassNumber'] == o['rlnClassNumber'])
            a, b = E(*o[['rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi']]), E(*r[['rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi']])
            angles.append(np.degrees(np.arccos(np.clip((np.trace(a.T @ b) - 1) / 2, -1, 1))))
            xyz = ['rlnOriginXAngst', 'rlnOriginYAngst', 'rlnOriginZAngst']
            origins.append(np.linalg.norm(r[xyz].to_numpy(float) - o[xyz].to_numpy(float)))
        print(path, '%.4f %.3f %.3f %.3f' % (same / len(theirs), np.median(angles), np.max(angles), np.median(origins)))
    """

    @Test(.enabled(if: relionRefineInstalled, "relion_refine is not installed (apt-get install relion; make deps does it)"))
    func relionRefineFromOurStarKeepsOurClasses() async throws {
        let ws = try Workspace("relion-refine")
        try await ws.simulate("data", particles: 40, size: 24, classes: 2, snr: 1,
                              extra: ["--missing", "wedge_y", "--tilt-range", "60", "--pixel-size", "4"])
        let data = ws.file("data")
        try Data("# XMIPP_STAR_1 *\ndata_\nloop_\n _image\n truth_ref000001.mrc\n truth_ref000002.mrc\n".utf8)
            .write(to: URL(fileURLWithPath: data + "/truth_refs.sel"))
        // A real (small) refinement: local search around the simulated poses from the true references. At
        // SNR 1 it puts a few particles in the other class than the simulation did: RELION must keep *our*
        // classes, not find the truth.
        let run = try await ProcessRunner.mlTomo(
            ["-i", "images.sel", "--doc", "particles@truth.star", "--missing", "wedges.doc", "--oroot", "run/r",
             "--ref", "truth_refs.sel", "--iter", "2", "--ang", "15", "--ang_search", "30", "--pixel_size", "4", "--thr", "2"],
            currentDirectory: data, timeout: 300)
        try #require(run.status == 0, "refine failed: \(run)")
        #expect(ws.exists("data/run/r_references.star") && ws.exists("data/run/r_it000002_references.star"))

        // relion_refine as a RELION user continues: our particles (angles, origins, wedge masks as
        // rlnCtfImage) and our references, K = 2, in the bench's RELION 3D-subtomogram settings.
        func relionRefine(_ star: String, _ out: String, _ extra: [String]) async throws {
            try FileManager.default.createDirectory(atPath: data + "/" + out, withIntermediateDirectories: true)
            let r = try await ProcessRunner.run(
                Self.refine, ["--i", star, "--o", out + "/run", "--ref", "run/r_references.star", "--K", "2", "--ctf",
                              "--tau2_fudge", "4", "--particle_diameter", "86", "--zero_mask", "--flatten_solvent", "--pad", "2",
                              "--j", "2", "--dont_combine_weights_via_disc", "--random_seed", "1"] + extra,
                currentDirectory: data, timeout: 300)
            try #require(r.status == 0, "relion_refine \(extra) failed: \(r)")
        }
        try await relionRefine("run/r_data.star", "skip", ["--iter", "2", "--skip_align"])
        try await relionRefine("run/r_data.star", "local", ["--iter", "1", "--healpix_order", "3", "--sigma_ang", "3",
                                                            "--offset_range", "2", "--offset_step", "2"])
        // Control: the same particles with the rotations not inverted (our angles as if they were RELION's)
        // must lose our classes, or agreement above would prove nothing.
        try await Self.writeUninverted(in: data)
        try await relionRefine("run/uninverted.star", "control", ["--iter", "1", "--skip_align"])

        let compare = try await ProcessRunner.run("/usr/bin/env", [
            "python3", "-c", Self.compareScript, "run/r_data.star", "skip/run_it001_data.star", "skip/run_it002_data.star",
            "local/run_it001_data.star", "control/run_it001_data.star"], currentDirectory: data)
        try #require(compare.status == 0, "\(compare)")
        var rows: [String: [Double]] = [:]
        for line in compare.stdout.split(separator: "\n") {
            let f = line.split(separator: " ")
            if let name = f.first { rows[String(name)] = f.dropFirst().compactMap { Double($0) } }
        }
        let sizes = try #require(rows["ours"], "\(compare.stdout)")
        #expect(sizes.count == 2 && sizes.allSatisfy { $0 >= 10 }, "our classes must both be populated: \(sizes)")
        for name in ["skip/run_it001_data.star", "skip/run_it002_data.star"] {
            let r = try #require(rows[name], "\(compare.stdout)")
            #expect(r[0] >= 0.95, "--skip_align: share of particles in our class \(r[0]) (\(name))")
            #expect(r[2] < 0.01 && r[3] < 0.01, "--skip_align must keep our poses: \(r) (\(name))")
        }
        let local = try #require(rows["local/run_it001_data.star"], "\(compare.stdout)")
        #expect(local[0] >= 0.9, "local search: share of particles in our class \(local[0])")
        #expect(local[1] <= 7.5, "local search (3.75° sampling, σ 3°) moved the median pose by \(local[1])°")
        let uninverted = try #require(rows["control/run_it001_data.star"], "\(compare.stdout)")
        #expect(uninverted[0] <= 0.8, "control: uninverted angles kept \(uninverted[0]) of our classes")
    }
}
