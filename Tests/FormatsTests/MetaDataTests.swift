import Foundation
import Formats
import Testing

/// The two example tables of the seed document (ml_tomo-v3.0-seed.txt), verbatim.
let seedImagesExample = """
 # XMIPP_STAR_1 *
 #             
 data_          
 loop_          
  _image        
  _missingRegionNumber  
  _angleRot     
  _angleTilt    
  _anglePsi     
  _shiftX       
  _shiftY       
  _shiftZ       
  _ref          
  _logLikelihood        
   32_000001.scl  1.00 0.000000 0.000  0.000  0.000000     0.000000  0    0.000000 1
   32_000002.scl  1.00 0.000000 0.000  0.000  0.000000     0.000000  0    0.000000 1

"""

let seedWedgesExample = """
 # XMIPP_STAR_1 *
 # Wedgeinfo
 data_
 loop_          
  _missingRegionNumber 
  _missingRegionType   
  _missingRegionThetaY0
  _missingRegionThetaYF
   1  wedge_y  -64  64

"""

@Suite struct MetaDataSeedExamples {
    @Test func imagesExampleParsesAsWritten() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.write(seedImagesExample, to: "images.doc")
        let t = try MetaDataFile.readTable(p)
        #expect(t.name == "")
        #expect(t.labels == ["image", "missingRegionNumber", "angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY",
                             "shiftZ", "ref", "logLikelihood"])
        #expect(t.rowCount == 2)
        #expect(try t.string("image", row: 0) == "32_000001.scl")
        #expect(try t.string("image", row: 1) == "32_000002.scl")
        // "1.00" in an integer column is accepted as 1.
        #expect(try t.int("missingRegionNumber", row: 0) == 1)
        #expect(try t.int("ref", row: 1) == 0)
        #expect(try t.double("logLikelihood", row: 0) == 1)
        #expect(try t.double("angleRot", row: 0) == 0)
        #expect(t.line(ofRow: 0) == 15)
        #expect(t.line(ofRow: 1) == 16)
    }

    @Test func wedgesExampleParsesAsWritten() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.write(seedWedgesExample, to: "wedges.doc")
        let t = try MetaDataFile.readTable(p)
        #expect(t.comment == "Wedgeinfo")
        #expect(t.rowCount == 1)
        #expect(try t.int("missingRegionNumber", row: 0) == 1)
        #expect(try t.string("missingRegionType", row: 0) == "wedge_y")
        #expect(try t.double("missingRegionThetaY0", row: 0) == -64)
        #expect(try t.double("missingRegionThetaYF", row: 0) == 64)
    }
}

@Suite struct MetaDataSyntax {
    let multi = """
    # XMIPP_STAR_1 *
    # command line: ml_tomo -i images.sel
    data_log
     _logLikelihood   -1234.5
     _pMax            0.25
     _iterationNumber 3
     _imageMetaData   'run 1/x_img.xmd'

    data_classes
    loop_
     _image
     _enabled
     _ref
     _weight
     _someUnknownLabel
     _unknownText
     ref1.mrc 1 1 0.5 7 hello
     "my ref2.mrc" -1 2 0.5 8 "it's"

    data_
    loop_
     _image
     a.vol

    """

    @Test func blocksListsLoopsQuotesAndUnknownLabels() throws {
        let f = try MetaDataFile.parse(text: multi, path: "multi.xmd")
        #expect(f.blocks.map(\.name) == ["log", "classes", ""])
        let log = try #require(f.block(named: "log"))
        #expect(log.layout == .list)
        #expect(log.comment == "command line: ml_tomo -i images.sel")
        #expect(try log.double("logLikelihood", row: 0) == -1234.5)
        #expect(try log.int("iterationNumber", row: 0) == 3)
        #expect(try log.string("imageMetaData", row: 0) == "run 1/x_img.xmd")
        let c = try #require(f.block(named: "classes"))
        #expect(c.layout == .loop)
        #expect(try c.string("image", row: 1) == "my ref2.mrc")
        #expect(try c.value("someUnknownLabel", row: 0) == .int(7))
        #expect(try c.value("unknownText", row: 1) == .string("it's"))
        #expect(try c.enabledRowIndices() == [0])
        #expect(try c.removingDisabledRows().rowCount == 1)
        #expect(try f.blocks[2].string("image", row: 0) == "a.vol")
    }

    @Test func roundTripKeepsEverything() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let f = try MetaDataFile.parse(text: multi, path: "multi.xmd")
        let p = s.path("out.xmd")
        try f.write(to: p)
        let g = try MetaDataFile.read(p)
        #expect(g.blocks == f.blocks)
        #expect(s.contents == ["out.xmd"])
        let text = String(decoding: s.bytes("out.xmd"), as: UTF8.self)
        #expect(text.hasPrefix("# XMIPP_STAR_1 *\n"))
    }

    @Test func blockAddressing() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.write(multi, to: "multi.xmd")
        let c = try MetaDataFile.readTable("classes@" + p)
        #expect(c.name == "classes")
        #expect(c.rowCount == 2)
        let l = try MetaDataFile.read(path: p, block: "log")
        #expect(l.rowCount == 1)
        let e = try #require(formatError { _ = try MetaDataFile.readTable("nosuch@" + p) })
        #expect(e.kind == .missingLabel)
        #expect(e.description.contains("data_nosuch"))
        #expect(e.description.contains(p))
    }

    @Test func replaceOrAppendBlocks() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.path("ref.xmd")
        var a = MetaDataTable(name: "classes", labels: ["image", "ref"])
        a.appendRow([.string("r1.mrc"), .int(1)])
        try MetaDataFile.writeBlock(a, to: p)
        var b = MetaDataTable(name: "class000001_images", labels: ["image"])
        b.appendRow([.string("x.mrc")])
        try MetaDataFile.writeBlock(b, to: p, mode: .replaceOrAppend)
        a.appendRow([.string("r2.mrc"), .int(2)])
        try MetaDataFile.writeBlock(a, to: p, mode: .replaceOrAppend)
        let f = try MetaDataFile.read(p)
        #expect(f.blocks.map(\.name) == ["classes", "class000001_images"])
        #expect(f.blocks[0].rowCount == 2)
        try MetaDataFile.writeBlock(b, to: p)
        #expect(try MetaDataFile.read(p).blocks.map(\.name) == ["class000001_images"])
    }

    @Test func aliasesAreCanonicalised() throws {
        let text = """
        # XMIPP_STAR_1 *
        data_
        loop_
         _image
         _Wedge
         _rot
         _tilt
         _psi
         _Xoff
         _Yoff
         _Zoff
         _Ref
         a.vol 2 10 20 30 1.5 -2 0 3
        """
        let t = try MetaDataFile.parse(text: text, path: "alias.doc").blocks[0]
        #expect(t.labels == ["image", "missingRegionNumber", "angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ", "ref"])
        #expect(try t.value("angleRot", row: 0) == .real(10))
        #expect(try t.int("missingRegionNumber", row: 0) == 2)
        #expect(try t.int("ref", row: 0) == 3)
        #expect(try t.double("shiftX", row: 0) == 1.5)
    }

    @Test func legacySelfile() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.write("sub/a.vol 1\nsub/b.vol -1\n\nc.vol 1\n", to: "images.sel")
        let t = try MetaDataFile.readTable(p)
        #expect(t.labels == ["image", "enabled"])
        #expect(t.rowCount == 3)
        #expect(try t.string("image", row: 1) == "sub/b.vol")
        #expect(try t.int("enabled", row: 1) == -1)
        #expect(try t.enabledRowIndices() == [0, 2])
        #expect(t.line(ofRow: 2) == 4)
    }

    @Test func stableColumnOrderAndValuesOnWrite() throws {
        var t = MetaDataTable(name: "images", labels: ["image", "angleRot", "ref"])
        t.appendRow([.string("a b.mrc"), .real(0.1), .int(1)])
        t.appendRow([.string(""), .real(-1e-300), .int(-7)])
        t.addColumn("logLikelihood", fill: .real(0))
        t.set("logLikelihood", row: 1, .real(Double.pi))
        let text = String(decoding: MetaDataFile(t).serialized(), as: UTF8.self)
        #expect(text.contains(" _image\n _angleRot\n _ref\n _logLikelihood\n"))
        let back = try MetaDataFile.parse(text: text, path: "x").blocks[0]
        #expect(back == t)
        #expect(try back.double("logLikelihood", row: 1) == Double.pi)
        #expect(try back.string("image", row: 1) == "")
    }
}

@Suite struct MetaDataErrors {
    @Test func wrongTypeNamesFileAndLine() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.write("# XMIPP_STAR_1 *\ndata_\nloop_\n _image\n _ref\n a.vol 1\n b.vol 1.5\n", to: "bad.doc")
        let e = try #require(formatError { _ = try MetaDataFile.read(p) })
        #expect(e.kind == .wrongType)
        #expect(e.file == p)
        #expect(e.line == 7)
        #expect(e.description == "\(p):7: _ref = '1.5' is not an integer")
        let e2 = try #require(formatError {
            _ = try MetaDataFile.parse(text: "data_\nloop_\n _angleRot\n 1\n abc\n", path: "r.doc")
        })
        #expect(e2.description == "r.doc:5: _angleRot = 'abc' is not a number")
    }

    @Test func wrongValueCountNamesLine() throws {
        let e = try #require(formatError {
            _ = try MetaDataFile.parse(text: "# XMIPP_STAR_1 *\ndata_\nloop_\n _image\n _ref\n a.vol 1\n b.vol\n", path: "n.doc")
        })
        #expect(e.kind == .syntax)
        #expect(e.line == 7)
        #expect(e.message.contains("1 values"))
        #expect(e.message.contains("2 labels"))
    }

    @Test func missingAndUnknownLabels() throws {
        let t = try MetaDataFile.parse(text: seedWedgesExample, path: "wedges.doc").blocks[0]
        let e = try #require(formatError { try t.require(["missingRegionType", "missingRegionThetaX0"]) })
        #expect(e.kind == .missingLabel)
        #expect(e.description.hasPrefix("wedges.doc:3:"))
        #expect(e.message.contains("_missingRegionThetaX0"))
        let u = try #require(formatError { _ = try t.double("noSuchLabel", row: 0) })
        #expect(u.kind == .unknownLabel)
        #expect(u.message.contains("_noSuchLabel"))
        // Typed accessor on an unknown-label string column names the row's line.
        let t2 = try MetaDataFile.parse(text: "data_\nloop_\n _foo\n bar\n", path: "f.doc").blocks[0]
        let w = try #require(formatError { _ = try t2.int("foo", row: 0) })
        #expect(w.description == "f.doc:4: _foo = 'bar' is a string, expected an integer")
    }

    @Test func otherSyntaxErrors() throws {
        let cases: [(String, Int, String)] = [
            ("# XMIPP_STAR_1 *\nstray text\ndata_\n", 2, "before the first data_"),
            ("data_\nloop_\n _a\n 'open\n", 4, "unterminated"),
            ("data_\n _a\n", 2, "no value"),
            ("data_\nloop_\n _a\n _a\n", 4, "twice"),
            ("data_\n 1 2\n", 2, "outside a loop_"),
            ("data_\nloop_\n _a\n 1\n _b\n", 5, "after the rows"),
        ]
        for (text, line, fragment) in cases {
            let e = try #require(formatError { _ = try MetaDataFile.parse(text: text, path: "s.xmd") })
            #expect(e.line == line, "\(text)")
            #expect(e.message.contains(fragment), "\(e)")
        }
    }

    @Test func failedWriteLeavesNothing() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let e = try #require(formatError { try MetaDataFile().write(to: s.path("missing_dir/x.doc")) })
        #expect(e.kind == .io)
        #expect(e.file == s.path("missing_dir/x.doc"))
        #expect(s.contents.isEmpty)
        // A failing writer body removes its temporary file.
        struct Boom: Error {}
        #expect(throws: Boom.self) { try AtomicFile.write(to: s.path("y.doc")) { _ in throw Boom() } }
        #expect(s.contents.isEmpty)
    }

    /// Temporaries a killed run left (`.<name>.tmp.XXXXXX`) are removed for names of this output root only
    /// (`x.…`, `x_…`), and only when unmodified for the minimum age (another run may be writing).
    @Test func abandonedTemporariesOfThisOutputRootAreRemoved() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let old = Date(timeIntervalSinceNow: -3600)
        let files = [".x_it000003.doc.tmp.AbC123", ".x.h5.tmp.Zz9Yy8", ".x_it000004.doc.tmp.Fresh1", ".xy.doc.tmp.Qq1Ww2",
                     "x.doc", ".x.doc.tmp.short", "notes.tmp.AbC123"]
        for f in files { _ = s.write("partial", to: f) }
        for f in files where f != ".x_it000004.doc.tmp.Fresh1" {
            try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: s.path(f))
        }
        let removed = AtomicFile.removeAbandonedTemporaries(in: s.dir, forNamesStartingWith: "x")
        #expect(removed == [s.path(".x.h5.tmp.Zz9Yy8"), s.path(".x_it000003.doc.tmp.AbC123")])
        #expect(s.contents == [".x.doc.tmp.short", ".x_it000004.doc.tmp.Fresh1", ".xy.doc.tmp.Qq1Ww2", "notes.tmp.AbC123", "x.doc"])
        // The fresh one goes once it is old enough.
        #expect(AtomicFile.removeAbandonedTemporaries(in: s.dir, forNamesStartingWith: "x", now: Date(timeIntervalSinceNow: 400))
                == [s.path(".x_it000004.doc.tmp.Fresh1")])
    }

    @Test func notFoundFile() throws {
        let e = try #require(formatError { _ = try MetaDataFile.read("/nonexistent/dir/images.doc") })
        #expect(e.kind == .notFound)
        #expect(e.description == "/nonexistent/dir/images.doc: no such file")
    }
}

@Suite struct MetaDataTableEditing {
    @Test func appendByLabelAddsColumnsAndFills() throws {
        var t = MetaDataTable(name: "x", labels: ["image", "ref"])
        t.appendRow([("image", .string("a.mrc")), ("ref", .int(1))])
        t.appendRow([("ref", .int(2)), ("weight", .real(0.5))])
        #expect(t.labels == ["image", "ref", "weight"])
        #expect(t.rows[0] == [.string("a.mrc"), .int(1), .int(0)])
        #expect(t.rows[1] == [.string(""), .int(2), .real(0.5)])
        t.removeColumn("ref")
        #expect(t.labels == ["image", "weight"])
        try t.renameColumn("weight", to: "classFraction")
        #expect(try t.double("classFraction", row: 1) == 0.5)
        #expect(formatError { try t.renameColumn("nope", to: "x") }?.kind == .unknownLabel)
        t.selectRows([1])
        #expect(t.rowCount == 1)
        #expect(try t.string("image", row: 0) == "")
    }
}
