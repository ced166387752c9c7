import Foundation
import Formats
import Testing

/// Metadata written by Swift and read by Python (starfile, xmipp_metadata), and the reverse.
///
/// Reals are written as the shortest text that round-trips. pandas' default (fast) float parser, used by
/// starfile, can be 1 ulp off for 17-significant-digit texts such as 0.30000000000000004, so the values
/// used here have at most 16 significant digits; for those the comparison is exact.
@Suite struct StarInteropTests {
    func imagesTable(rows: Int) -> MetaDataTable {
        var t = MetaDataTable(name: "images", labels: ["image", "enabled", "missingRegionNumber", "angleRot", "shiftX", "ref",
                                                     "logLikelihood", "myNote"])
        for i in 0..<rows {
            t.appendRow([.string(i == 1 ? "sub dir/vol \(i).mrc" : "\(i + 1)@stack.mrcs"), .int(i % 3 == 2 ? -1 : 1), .int(i % 2 + 1),
                         .real(i == 0 ? 1e-17 : Double(i) / 10), .real(-Double(i) / 3), .int(i % 4 + 1), .real(-1e5 * Double(i) - 0.123456789012345),
                         .string(i % 2 == 0 ? "even" : "odd")])
        }
        return t
    }

    /// Prints every cell as repr() so values (not just their rounding) are compared.
    static let dumpScript = """
    import sys, starfile
    d = starfile.read(sys.argv[1], always_dict=True)
    for name, t in d.items():
        if isinstance(t, dict):
            print('block', repr(name), 'list')
            for k, v in t.items(): print(k, repr(v))
        else:
            print('block', repr(name), 'loop', list(t.columns))
            for row in t.itertuples(index=False):
                print(' '.join(repr(x.item() if hasattr(x, 'item') else x) for x in row))
    """

    static func swiftDump(_ f: MetaDataFile) -> [String] {
        var out: [String] = []
        for t in f.blocks {
            if t.layout == .list {
                out.append("block '\(t.name)' list")
                for (c, l) in t.labels.enumerated() { out.append("\(l) \(pyRepr(t.rows[0][c]))") }
            } else {
                out.append("block '\(t.name)' loop [\(t.labels.map { "'\($0)'" }.joined(separator: ", "))]")
                for row in t.rows { out.append(row.map(pyRepr).joined(separator: " ")) }
            }
        }
        return out
    }

    /// Python's repr of the value (floats via Swift's shortest round-trip text, which agrees with repr).
    static func pyRepr(_ v: MetaDataValue) -> String {
        switch v {
        case .int(let i): return String(i)
        case .real(let d):
            // Python repr: '1e-17' vs Swift '1e-17'; '100000.0' both; large exponents: Python '1e+16', Swift '1e+16'.
            return d.description
        case .string(let s): return "'\(s)'"
        }
    }

    @Test func starfileReadsSwiftMetadataExactly() throws {
        let s = Scratch()
        defer { s.cleanup() }
        var log = MetaDataTable(name: "log", labels: ["logLikelihood", "iterationNumber", "imageMetaData"], layout: .list,
                                comment: "ml_tomo -i images.sel --iter 3")
        log.appendRow([.real(-98765.4321), .int(3), .string("run/x_img.xmd")])
        let f = MetaDataFile(blocks: [log, imagesTable(rows: 7)])
        let p = s.path("out.xmd")
        try f.write(to: p)
        let py = try Python.lines(Self.dumpScript, [p])
        #expect(py == Self.swiftDump(f))
    }

    @Test func xmippMetadataReadsSwiftDoc() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let t = imagesTable(rows: 5)
        let p = s.path("images.xmd")
        try MetaDataFile(t).write(to: p)
        let py = try Python.lines("""
        import sys
        from xmipp_metadata.metadata import XmippMetaData
        md = XmippMetaData(sys.argv[1])
        for i in range(len(md)):
            print(repr(md[i, 'image']), int(md[i, 'enabled']), int(md[i, 'ref']), repr(float(md[i, 'angleRot'])), repr(float(md[i, 'logLikelihood'])))
        """, [p])
        let expected = try (0..<t.rowCount).map { r in
            "'\(try t.string("image", row: r))' \(try t.int("enabled", row: r)) \(try t.int("ref", row: r)) \(try t.double("angleRot", row: r)) \(try t.double("logLikelihood", row: r))"
        }
        #expect(py == expected)
    }

    @Test func swiftReadsPythonWrittenMetadata() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p1 = s.path("xmipp.xmd")
        let p2 = s.path("multi.star")
        let py = try Python.lines("""
        import sys, pandas as pd, starfile
        from xmipp_metadata.metadata import XmippMetaData
        df = pd.DataFrame({'image': ['x y.mrc', '2@s.mrcs', "it's.vol"], 'enabled': [1, -1, 1],
                           'angleRot': [0.1, 2.5, -1e-300], 'ref': [1, 2, 3], 'missingRegionNumber': [1, 1, 2]})
        XmippMetaData(rows=df).write(sys.argv[1])
        starfile.write({'general': {'iterationNumber': 4, 'comment': 'two words'},
                        'classes': pd.DataFrame({'image': ['a.mrc', 'b.mrc'], 'weight': [0.25, 0.75]})}, sys.argv[2])
        print(len(df))
        """, [p1, p2])
        #expect(py == ["3"])
        let t = try MetaDataFile.readTable(p1)
        #expect(try t.string("image", row: 0) == "x y.mrc")
        #expect(try t.string("image", row: 2) == "it's.vol")
        #expect(try t.int("enabled", row: 1) == -1)
        #expect(try t.int("ref", row: 2) == 3)
        #expect(try t.double("angleRot", row: 0) == 0.1)
        #expect(try t.enabledRowIndices() == [0, 2])
        #expect(t.has("ctfVoltage"))   // xmipp_metadata's default columns survive as unknown labels
        let f = try MetaDataFile.read(p2)
        #expect(f.blocks.map(\.name) == ["general", "classes"])
        #expect(try f.blocks[0].int("iterationNumber", row: 0) == 4)
        #expect(try f.blocks[0].string("comment", row: 0) == "two words")
        #expect(try f.blocks[1].double("weight", row: 1) == 0.75)
        // And it round-trips through our writer unchanged.
        let q = s.path("again.star")
        try f.write(to: q)
        #expect(try MetaDataFile.read(q).blocks == f.blocks)
    }
}

@Suite struct RelionStarTests {
    let relion31 = """

    # version 30001

    data_optics

    loop_
    _rlnOpticsGroupName #1
    _rlnOpticsGroup #2
    _rlnImagePixelSize #3
    _rlnImageSize #4
    _rlnImageDimensionality #5
    opticsGroup1 1 2.200000 64 3
    opticsGroup2 2 4.400000 32 3


    # version 30001

    data_particles

    loop_
    _rlnImageName #1
    _rlnAngleRot #2
    _rlnAngleTilt #3
    _rlnAnglePsi #4
    _rlnOriginXAngst #5
    _rlnOpticsGroup #6
    _rlnClassNumber #7
    _rlnTomoName #8
    sub/p1.mrc 10.5 20 30 1.1 1 1 TS_01
    sub/p2.mrc -10.5 90 -30 0 2 2 TS_02

    """

    @Test func readsOpticsAndParticles() throws {
        let f = try RelionStarFile.parse(text: relion31, path: "run_data.star")
        let optics = try #require(f.optics)
        #expect(optics.rowCount == 2)
        #expect(try optics.double("rlnImagePixelSize", row: 1) == 4.4)
        #expect(f.particles.rowCount == 2)
        #expect(try f.particles.string("rlnImageName", row: 1) == "sub/p2.mrc")
        #expect(try f.particles.double("rlnAngleRot", row: 1) == -10.5)
        #expect(try f.particles.string("rlnTomoName", row: 0) == "TS_01")
        #expect(try f.opticsRow(ofParticle: 1) == 1)
    }

    @Test func roundTripThroughStarfile() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let f = try RelionStarFile.parse(text: relion31, path: "in.star")
        let p = s.path("out.star")
        try f.write(to: p)
        let text = String(decoding: s.bytes("out.star"), as: UTF8.self)
        #expect(text.contains("# version 30001\ndata_optics\nloop_\n _rlnOpticsGroupName #1\n"))
        let g = try RelionStarFile.read(p)
        #expect(g.optics == f.optics && g.particles == f.particles)
        let py = try Python.lines(StarInteropTests.dumpScript, [p])
        #expect(py == StarInteropTests.swiftDump(MetaDataFile(blocks: [f.optics!, f.particles])))
        // starfile writes a RELION 3.1 file; we read it.
        let q = s.path("py.star")
        _ = try Python.lines("""
        import sys, starfile, pandas as pd
        optics = pd.DataFrame({'rlnOpticsGroup': [1], 'rlnImagePixelSize': [1.35], 'rlnVoltage': [300.0]})
        parts = pd.DataFrame({'rlnImageName': ['1@a.mrcs', '2@a.mrcs'], 'rlnOpticsGroup': [1, 1], 'rlnAngleTilt': [12.5, 90.0]})
        starfile.write({'optics': optics, 'particles': parts}, sys.argv[1])
        """, [q])
        let h = try RelionStarFile.read(q)
        #expect(try h.optics?.double("rlnImagePixelSize", row: 0) == 1.35)
        #expect(try h.particles.string("rlnImageName", row: 1) == "2@a.mrcs")
        #expect(try h.particles.double("rlnAngleTilt", row: 0) == 12.5)
    }

    @Test func relion30SingleBlock() throws {
        let f = try RelionStarFile.parse(text: "data_\nloop_\n_rlnImageName\n_rlnAngleRot\na.mrc 1\n", path: "old.star")
        #expect(f.optics == nil)
        #expect(f.particles.rowCount == 1)
    }

    @Test func errors() throws {
        let e1 = try #require(formatError { _ = try RelionStarFile.parse(text: "data_foo\nloop_\n_image\na\n", path: "x.star") })
        #expect(e1.kind == .missingLabel)
        #expect(e1.description == "x.star: not a RELION particle file: no data_particles block (blocks: data_foo)")
        let bad = relion31.replacingOccurrences(of: "sub/p2.mrc -10.5 90 -30 0 2 2 TS_02", with: "sub/p2.mrc -10.5 90 -30 0 5 2 TS_02")
        let e2 = try #require(formatError { _ = try RelionStarFile.parse(text: bad, path: "y.star") })
        #expect(e2.line == 30)
        #expect(e2.message.contains("optics group 5"))
        let typo = relion31.replacingOccurrences(of: "sub/p1.mrc 10.5", with: "sub/p1.mrc ten")
        let e3 = try #require(formatError { _ = try RelionStarFile.parse(text: typo, path: "z.star") })
        #expect(e3.kind == .wrongType)
        #expect(e3.description == "z.star:29: _rlnAngleRot = 'ten' is not a number")
        let e4 = try #require(formatError { _ = try RelionStarFile.parse(text: "data_particles\nloop_\n_rlnImageName\n_angleRot\na 1\n", path: "w.star") })
        #expect(e4.kind == .unknownLabel)
    }
}
