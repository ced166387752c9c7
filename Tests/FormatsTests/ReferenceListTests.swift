import Foundation
import Formats
import Testing
import Volumes

/// The readers of `refine --ref` (a volume, a stack, or metadata listing volumes) and `--frac`.
@Suite struct ReferenceListTests {
    @Test("a single volume is one reference, a stack of n is n references; neither has weights")
    func volumeAndStack() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let single = s.path("one.mrc"), stack = s.path("three.mrc")
        try MRCFile.write(randomVolume(nx: 8, ny: 8, nz: 8, seed: 1), to: single, voxelSize: 1)
        try MRCFile.write((2 ... 4).map { randomVolume(nx: 8, ny: 8, nz: 8, seed: $0) }, to: stack, voxelSize: 1)
        #expect(try ReferenceList.read(single) == ReferenceList(locators: [ImageLocator(path: single)], weights: nil))
        let three = try ReferenceList.read(stack)
        #expect(three.locators == (1 ... 3).map { ImageLocator(path: stack, index: $0) })
        #expect(three.weights == nil)
    }

    @Test("metadata: disabled rows dropped, paths resolved next to the list, weights read")
    func metadataList() throws {
        let s = Scratch()
        defer { s.cleanup() }
        try FileManager.default.createDirectory(atPath: s.path("refs"), withIntermediateDirectories: true)
        for name in ["a.mrc", "b.mrc"] {
            try MRCFile.write(randomVolume(nx: 8, ny: 8, nz: 8, seed: 3), to: s.path("refs/" + name), voxelSize: 1)
        }
        let list = s.write("""
        # XMIPP_STAR_1 *
        data_
        loop_
         _image
         _enabled
         _weight
         a.mrc 1 0.25
         skipped.mrc -1 0.5
         b.mrc 1 0.75
        """, to: "refs/list.doc")
        let r = try ReferenceList.read(list)
        #expect(r.locators == [ImageLocator(path: s.path("refs/a.mrc")), ImageLocator(path: s.path("refs/b.mrc"))])
        #expect(r.weights == [0.25, 0.75])
    }

    @Test("metadata errors name the file: no _image column, no rows, a missing volume")
    func metadataErrors() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let noImage = s.write("# XMIPP_STAR_1 *\ndata_\nloop_\n _weight\n 1\n", to: "noimage.doc")
        #expect(formatError { _ = try ReferenceList.read(noImage) }?.kind == .missingLabel)
        let empty = s.write("# XMIPP_STAR_1 *\ndata_\nloop_\n _image\n _enabled\n x.mrc -1\n", to: "empty.doc")
        let e = try #require(formatError { _ = try ReferenceList.read(empty) })
        #expect(e.description == "\(empty): no references listed")
        let missing = s.write("# XMIPP_STAR_1 *\ndata_\nloop_\n _image\n nowhere.mrc\n", to: "missing.doc")
        let m = try #require(formatError { _ = try ReferenceList.read(missing) })
        #expect(m.kind == .notFound && m.description.hasPrefix("\(missing):"))
    }

    @Test("--frac: one weight per row, in order; the _weight column is required")
    func classFractions() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let good = s.write("# XMIPP_STAR_1 *\ndata_\nloop_\n _weight\n 0.3\n 0.7\n", to: "frac.doc")
        #expect(try ClassFractionsFile.read(good) == [0.3, 0.7])
        let bad = s.write("# XMIPP_STAR_1 *\ndata_\nloop_\n _image\n a.mrc\n", to: "bad.doc")
        let e = try #require(formatError { _ = try ClassFractionsFile.read(bad) })
        #expect(e.kind == .missingLabel && e.file == bad)
        let text = s.write("# XMIPP_STAR_1 *\ndata_\nloop_\n _weight\n heavy\n", to: "text.doc")
        #expect(formatError { _ = try ClassFractionsFile.read(text) }?.kind == .wrongType)
    }
}
