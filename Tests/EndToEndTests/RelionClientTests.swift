import Foundation
import Testing

/// RELION as a client of our `_data.star`: Debian's relion 3.1 (`make deps` installs it) reconstructs
/// from our angles, origins and wedge masks, and must find our reference; and the same STAR file given
/// back to us as `-i` must give the same average.
@Suite(.serialized) struct RelionClientTests {
    static let reconstruct = "/usr/bin/relion_reconstruct"
    static var relionInstalled: Bool { FileManager.default.isExecutableFile(atPath: reconstruct) }

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
        let control = try await Python.run("""
        import starfile
        d = starfile.read('run/r_data.star', always_dict=True)
        p = d['particles']
        p['rlnAngleRot'], p['rlnAnglePsi'], p['rlnAngleTilt'] = -p['rlnAnglePsi'], -p['rlnAngleRot'], -p['rlnAngleTilt']
        starfile.write(d, 'run/uninverted.star')
        """, currentDirectory: data)
        try #require(control.status == 0, "\(control)")
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
}
