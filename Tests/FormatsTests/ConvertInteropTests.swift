import Foundation
import Formats
import Testing
import Volumes

/// `ml_tomo convert`'s formats checked by the readers users have: starfile (Xmipp doc and RELION STAR),
/// dynamotable, emfile, and eulerangles for what the angles mean. The Python side turns every file back
/// into our rotation matrix E and shift s (README, "Converting particle metadata") using only those
/// packages' own conventions, so a sign or order mistake on our side shows up as a mismatch.
@Suite struct ConvertInteropTests {
    static let formats = ParticleMetadataFormat.allCases
    static let pixelSize = 2.25

    static func fileName(_ f: ParticleMetadataFormat, _ tag: String) -> String {
        switch f {
        case .xmipp: return "\(tag).doc"
        case .relion: return "\(tag).star"
        case .dynamo: return "\(tag).tbl"
        case .tom: return "\(tag).em"
        }
    }

    /// Random poses plus the degenerate tilts 0° and 180°, three classes, tomogram coordinates.
    static func truth() -> ParticleList {
        var rng = SeededRandom(seed: 1919)
        func u(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * (Double(rng.next() >> 11) / Double(1 << 53)) }
        var list = ParticleList(pixelSize: pixelSize, boxSize: 32)
        for i in 0..<14 {
            var angles = EulerAngles(rot: u(-180, 180), tilt: u(0, 180), psi: u(-180, 180))
            if i == 0 { angles = EulerAngles(rot: 35, tilt: 0, psi: -20) }
            if i == 1 { angles = EulerAngles(rot: -110, tilt: 180, psi: 60) }
            list.particles.append(ParticleRecord(
                image: String(format: "particle_%06d.em", i + 1),
                pose: ParticlePose(angles: angles, shift: SIMD3(u(-6, 6), u(-6, 6), u(-6, 6))),
                classNumber: i % 3 + 1, coordinate: SIMD3(u(0, 900).rounded(), u(0, 900).rounded(), u(0, 300).rounded()),
                tomogram: 1))
        }
        return list
    }

    /// For each `format path` pair: one line per particle, "E00 … E22 s0 s1 s2 class".
    static let oracle = """
    import sys
    import numpy as np, starfile, dynamotable, emfile
    from eulerangles import euler2matrix, convert_eulers

    def relion_E(angles):
        # eulerangles' matrix for RELION's angles is RELION's own matrix transposed, which is our E.
        return euler2matrix(angles, axes='zyz', intrinsic=True, right_handed_rotation=True)

    args = sys.argv[1:]
    for fmt, path in zip(args[0::2], args[1::2]):
        print('file', path)
        if fmt == 'xmipp':
            t = list(starfile.read(path, always_dict=True).values())[0]
            E = np.transpose(euler2matrix(t[['angleRot', 'angleTilt', 'anglePsi']].to_numpy(), axes='zyz',
                                          intrinsic=True, right_handed_rotation=True), (0, 2, 1))
            s = t[['shiftX', 'shiftY', 'shiftZ']].to_numpy()
            c = t['ref'].to_numpy()
        elif fmt == 'relion':
            d = starfile.read(path, always_dict=True)
            apix = float(d['optics']['rlnImagePixelSize'][0])
            assert int(d['optics']['rlnImageDimensionality'][0]) == 3
            p = d['particles']
            E = relion_E(p[['rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi']].to_numpy())
            s = p[['rlnOriginXAngst', 'rlnOriginYAngst', 'rlnOriginZAngst']].to_numpy() / apix
            c = p['rlnClassNumber'].to_numpy()
        elif fmt == 'dynamo':
            t = dynamotable.read(path)
            E = relion_E(convert_eulers(t[['tdrot', 'tilt', 'narot']].to_numpy(), source_meta='dynamo', target_meta='relion'))
            s = -t[['dx', 'dy', 'dz']].to_numpy()
            c = t['class'].to_numpy()
        else:
            header, data = emfile.read(path)
            m = data[0].astype(np.float64)   # (N, 20): particle p's 20 rows
            # tom_rotate's matrix for (phi, psi, theta) is Rz(psi) Rx(theta) Rz(phi): the reference onto the particle.
            T = euler2matrix(m[:, [16, 18, 17]], axes='zxz', intrinsic=False, right_handed_rotation=True)
            E = np.transpose(T, (0, 2, 1))
            s = -m[:, 10:13]
            c = m[:, 19]
        E = E.reshape(-1, 9)
        for i in range(len(s)):
            print(' '.join(repr(float(x)) for x in list(E[i]) + list(s[i]) + [c[i]]))
    """

    /// Parses the oracle's output into (matrix, shift, class) per particle and file.
    static func parse(_ lines: [String]) -> [String: [(Matrix3, SIMD3<Double>, Int)]] {
        var out: [String: [(Matrix3, SIMD3<Double>, Int)]] = [:]
        var current = ""
        for line in lines {
            if line.hasPrefix("file ") { current = String(line.dropFirst(5)); out[current] = []; continue }
            let v = line.split(separator: " ").compactMap { Double($0) }
            guard v.count == 13 else { continue }
            out[current]!.append((Matrix3(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]), SIMD3(v[9], v[10], v[11]), Int(v[12].rounded())))
        }
        return out
    }

    static func maxAbs(_ v: SIMD3<Double>) -> Double { max(abs(v.x), abs(v.y), abs(v.z)) }

    /// Every ordered pair (A, B): the truth written as A, read back, written as B. The Python readers
    /// must find the true matrices, shifts and classes in every file, and B read back by us (then
    /// written as an Xmipp doc and read again) must give them too.
    @Test func everyPairRoundTripsThroughTheUsersReaders() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let truth = Self.truth()
        var files: [(ParticleMetadataFormat, String)] = []
        var backs: [(String, ParticleList)] = []
        for a in Self.formats {
            let pa = s.path(Self.fileName(a, "source_\(a.rawValue)"))
            try truth.write(to: pa, format: a)
            files.append((a, pa))
            for b in Self.formats where b != a {
                var la = try ParticleList.read(pa, format: a)
                // What `--angpix` does for a source without a pixel size (TOM).
                if la.pixelSize == nil { la.pixelSize = Self.pixelSize }
                let pb = s.path(Self.fileName(b, "\(a.rawValue)_to_\(b.rawValue)"))
                try la.write(to: pb, format: b)
                files.append((b, pb))
                // And back into this program's own format.
                var lb = try ParticleList.read(pb, format: b)
                if lb.pixelSize == nil { lb.pixelSize = Self.pixelSize }
                let px = s.path("\(a.rawValue)_to_\(b.rawValue)_back.doc")
                try lb.write(to: px, format: .xmipp)
                backs.append(("\(a.rawValue) → \(b.rawValue) → xmipp", try ParticleList.read(px, format: .xmipp)))
            }
        }
        let py = Self.parse(try Python.lines(Self.oracle, files.flatMap { [$0.0.rawValue, $0.1] }))
        #expect(py.count == files.count)
        for (format, path) in files {
            let got = try #require(py[path], "the oracle did not read \(path)")
            #expect(got.count == truth.particles.count, "\(path): \(got.count) particles")
            for (i, (m, shift, cls)) in got.enumerated() where i < truth.particles.count {
                let t = truth.particles[i]
                let dm = m.maxAbsDifference(t.pose.angles.matrix), ds = Self.maxAbs(shift - t.pose.shift)
                #expect(dm <= 1e-4, "\(format.rawValue) \(path) particle \(i + 1): matrix off by \(dm)")
                #expect(ds <= 1e-4, "\(format.rawValue) \(path) particle \(i + 1): shift off by \(ds)")
                #expect(cls == t.classNumber, "\(path) particle \(i + 1): class \(cls)")
            }
        }
        for (what, back) in backs {
            #expect(back.particles.count == truth.particles.count)
            for (b, t) in zip(back.particles, truth.particles) {
                #expect(b.pose.angles.matrix.maxAbsDifference(t.pose.angles.matrix) <= 1e-4, "\(what): \(b.pose) vs \(t.pose)")
                #expect(Self.maxAbs(b.pose.shift - t.pose.shift) <= 1e-4, "\(what): shift \(b.pose.shift) vs \(t.pose.shift)")
                #expect(b.classNumber == t.classNumber, "\(what)")
                #expect(Self.maxAbs((b.coordinate ?? .zero) - (t.coordinate ?? .zero)) <= 1e-3, "\(what): coordinates")
            }
        }
    }

    /// Files written by the users' own writers (dynamotable.write, emfile.write) are read by us with the
    /// values they hold.
    @Test func readsFilesWrittenByTheUsersWriters() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let tbl = s.path("py.tbl"), em = s.path("py.em")
        _ = try Python.lines("""
        import sys, numpy as np, pandas as pd, dynamotable, emfile
        df = pd.DataFrame({'tag': [7, 9], 'dx': [1.5, -2.0], 'dy': [0.25, 0.0], 'dz': [-3.0, 1.0],
                           'tdrot': [80.0, -95.0], 'tilt': [20.0, 45.0], 'narot': [-120.0, 10.0], 'class': [2, 1],
                           'x': [100, 200], 'y': [110, 210], 'z': [50, 60]})
        dynamotable.write(df, sys.argv[1])
        m = np.zeros((1, 2, 20), dtype=np.float32)
        m[0, :, 3] = [7, 9]; m[0, :, 10:13] = [[1.5, 0.25, -3.0], [-2.0, 0, 1.0]]
        m[0, :, 16] = [-60, 10]; m[0, :, 17] = [100, -40]; m[0, :, 18] = [20, 135]; m[0, :, 19] = [2, 1]
        emfile.write(sys.argv[2], m, overwrite=True)
        print('ok')
        """, [tbl, em])
        let d = try ParticleList.read(tbl, format: .dynamo, imagePattern: "sub/p%03d.mrc")
        #expect(d.particles.map(\.image) == ["sub/p007.mrc", "sub/p009.mrc"])
        #expect(d.particles.map(\.classNumber) == [2, 1])
        #expect(d.particles[0].pose.shift == SIMD3(-1.5, -0.25, 3.0))
        #expect(d.particles[1].coordinate == SIMD3(200, 210, 60))
        let e0 = DynamoConvention.toXmipp(tdrot: 80, tilt: 20, narot: -120, d: .zero).angles.matrix
        #expect(d.particles[0].pose.angles.matrix.maxAbsDifference(e0) < 1e-12)

        let t = try ParticleList.read(em, format: .tom)
        #expect(t.particles.map(\.image) == ["particle_000007.em", "particle_000009.em"])
        #expect(t.particles.map(\.classNumber) == [2, 1])
        #expect(t.particles[1].pose.shift == SIMD3(2, 0, -1))
        let e1 = TOMMotiveConvention.toXmipp(phi: 10, psi: -40, theta: 135, shift: .zero).angles.matrix
        #expect(t.particles[1].pose.angles.matrix.maxAbsDifference(e1) < 1e-6)
    }

    /// The TOM oracle above rests on our reading of tom_rotate, and the Dynamo one on `eulerangles`; under
    /// them a particle's Dynamo angles and TOM angles are inverse rotations of each other, although both
    /// packages describe theirs as turning the template onto the particle. This checks the TOM side
    /// against a third, independent rule from the TOM lineage: pytom-match-pick's RELION export
    /// (pytom_tm/extract.py), which turns a PyTom (phi, theta, psi) into RELION angles as scipy's
    /// intrinsic 'ZXZ' rotation of the negated angles read back as intrinsic 'ZYZ'. Our motive list
    /// and our RELION STAR of the same poses must agree under that rule; and, the rule applied to the
    /// Dynamo table's angles instead (as if the two conventions were equal), must disagree.
    @Test func tomAnglesAgreeWithPyTomsRelionExport() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let truth = Self.truth()
        let em = s.path("truth.em"), star = s.path("truth.star"), tbl = s.path("truth.tbl")
        try truth.write(to: em, format: .tom)
        try truth.write(to: star, format: .relion)
        try truth.write(to: tbl, format: .dynamo)
        let out = try Python.lines("""
        import sys, numpy as np, starfile, emfile, dynamotable
        from scipy.spatial.transform import Rotation
        from eulerangles import euler2matrix
        def relion_matrix(angles):
            return euler2matrix(np.asarray(angles), axes='zyz', intrinsic=True, right_handed_rotation=True)
        def pytom_to_relion(phi_theta_psi):
            return Rotation.from_euler('ZXZ', -np.asarray(phi_theta_psi), degrees=True).as_euler('ZYZ', degrees=True)
        _, data = emfile.read(sys.argv[1])
        m = data[0].astype(np.float64)
        ours = relion_matrix(starfile.read(sys.argv[2], always_dict=True)['particles'][['rlnAngleRot', 'rlnAngleTilt', 'rlnAnglePsi']].to_numpy())
        from_tom = relion_matrix(pytom_to_relion(m[:, [16, 18, 17]]))   # rows 17, 19, 18: phi, theta, psi
        t = dynamotable.read(sys.argv[3])
        from_dynamo_as_tom = relion_matrix(pytom_to_relion(t[['tdrot', 'tilt', 'narot']].to_numpy()))
        print('tom', float(np.abs(from_tom - ours).max()))
        print('dynamo_as_tom', float(np.abs(from_dynamo_as_tom - ours).max()))
        """, [em, star, tbl])
        func value(_ key: String) -> Double? {
            out.first { $0.hasPrefix(key + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        let tom = try #require(value("tom"), "oracle output: \(out)")
        let dynamoAsTom = try #require(value("dynamo_as_tom"), "oracle output: \(out)")
        #expect(tom <= 1e-4, "pytom-match-pick's rule reads our motive list as other rotations (max |ΔA| \(tom))")
        #expect(dynamoAsTom > 0.1, "Dynamo and TOM angles of the same poses coincide (max |ΔA| \(dynamoAsTom))")
    }

    @Test func badInputsNameFileAndLine() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let short = s.write("1 1 1 0 0 0 10 20 30\n2 1 1 0 0\n", to: "short.tbl")
        let e1 = formatError { _ = try ParticleList.read(short, format: .dynamo) }
        #expect(e1?.kind == .syntax && e1?.line == 2)
        let text = s.write("1 1 1 0 0 0 10 20 abc\n", to: "text.tbl")
        #expect(formatError { _ = try ParticleList.read(text, format: .dynamo) }?.line == 1)
        let em = s.write([UInt8](repeating: 6, count: 100), to: "short.em")
        #expect(formatError { _ = try ParticleList.read(em, format: .tom) }?.kind == .truncated)
        // RELION origins in Å without a pixel size.
        let star = s.write("""
        data_particles
        loop_
        _rlnImageName
        _rlnAngleRot
        _rlnAngleTilt
        _rlnAnglePsi
        _rlnOriginXAngst
        _rlnOriginYAngst
        _rlnOriginZAngst
        a.mrc 1 2 3 4 5 6

        """, to: "nopix.star")
        let e2 = formatError { _ = try ParticleList.read(star, format: .relion) }
        #expect(e2?.kind == .missingLabel && e2?.line == 10)
        // Writing RELION without a pixel size.
        var l = Self.truth()
        l.pixelSize = nil
        #expect(formatError { try l.write(to: s.path("x.star"), format: .relion) }?.message.contains("--angpix") == true)
        #expect(!FileManager.default.fileExists(atPath: s.path("x.star")))
    }
}
