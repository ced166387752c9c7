import Foundation
import Formats
import Testing

@Suite struct MLTomoMetaDataTests {
    @Test func seedImagesAndWedges() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let ip = s.write(seedImagesExample, to: "images.doc")
        let wp = s.write(seedWedgesExample, to: "wedges.doc")
        let images = try ImageMetaData.read(ip, requireMissingRegion: true)
        #expect(images.entries.count == 2)
        #expect(images.entries[1].image == ImageLocator(path: "32_000002.scl"))
        #expect(images.entries[0].missingRegion == 1)
        #expect(images.entries[0].ref == 0)
        #expect(images.warnings.isEmpty)
        let regions = try MissingRegionMetaData.read(wp)
        #expect(regions == [MissingRegionEntry(kind: .wedgeY, thetaY0: -64, thetaYF: 64)])
        try images.validateMissingRegions(count: regions.count, missingFile: wp)
        // The images of the seed example do not exist: resolution lists both places searched.
        let e = try #require(formatError { _ = try images.resolvedImage(0) })
        #expect(e.kind == .notFound)
        #expect(e.description.hasPrefix("\(ip):15: image '32_000001.scl' not found; searched: "))
        #expect(e.message.contains("\(s.dir)/32_000001.scl"))
    }

    @Test func disabledRowsAliasesAndZeroFill() throws {
        let text = """
        # XMIPP_STAR_1 *
        data_
        loop_
         _image
         _enabled
         _Wedge
         _rot
         _extra
         a.vol 1 1 10 x
         b.vol -1 1 20 y
         c.vol 0 1 30 z
         d.vol 1 2 40 w
        """
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.write(text, to: "imgs.doc")
        let m = try ImageMetaData.read(p)
        #expect(m.entries.map(\.image.path) == ["a.vol", "d.vol"])
        #expect(m.entries.map(\.rot) == [10, 40])
        #expect(m.entries.map(\.missingRegion) == [1, 2])
        #expect(m.entries[1].tilt == 0 && m.entries[1].ref == nil)
        #expect(m.table.labels == ["image", "enabled", "missingRegionNumber", "angleRot", "extra", "angleTilt", "anglePsi",
                                   "shiftX", "shiftY", "shiftZ"])
        #expect(m.warnings.count == 5)
        let e = try #require(formatError { try m.validateMissingRegions(count: 1, missingFile: "wedges.doc") })
        #expect(e.description == "\(p):12: _missingRegionNumber = 2 but wedges.doc defines 1 region(s)")
        #expect(try ImageMetaData.read(p, requireMissingRegion: true).entries == m.entries)
    }

    @Test func errors() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let noImage = s.write("data_\nloop_\n _angleRot\n 1\n", to: "a.doc")
        let e1 = try #require(formatError { _ = try ImageMetaData.read(noImage) })
        #expect(e1.kind == .missingLabel && e1.message.contains("_image"))
        let noWedge = s.write("data_\nloop_\n _image\n a.vol\n", to: "b.doc")
        #expect(formatError { _ = try ImageMetaData.read(noWedge, requireMissingRegion: true) }?.kind == .missingLabel)
        let allOff = s.write("data_\nloop_\n _image\n _enabled\n a.vol -1\n", to: "c.doc")
        #expect(formatError { _ = try ImageMetaData.read(allOff) }?.message.contains("no enabled images") == true)
        let badType = s.write("data_\nloop_\n _missingRegionType\n _missingRegionThetaY0\n _missingRegionThetaYF\n wedge_z 1 2\n", to: "w.doc")
        let e2 = try #require(formatError { _ = try MissingRegionMetaData.read(badType) })
        #expect(e2.description == "\(badType):6: unknown _missingRegionType 'wedge_z' (expected wedge_y, wedge_x, pyramid, cone)")
        let lacks = s.write("data_\nloop_\n _missingRegionType\n _missingRegionThetaY0\n cone 60\n pyramid 60\n", to: "p.doc")
        let e3 = try #require(formatError { _ = try MissingRegionMetaData.read(lacks) })
        #expect(e3.description == "\(lacks):6: a pyramid region needs _missingRegionThetaYF, which the file lacks")
        let nanAngle = s.write("data_\nloop_\n _image\n _angleTilt\n a.vol 1\n b.vol nan\n", to: "n.doc")
        let e4 = try #require(formatError { _ = try ImageMetaData.read(nanAngle) })
        #expect(e4.description == "\(nanAngle):6: _angleTilt = nan is not a finite number")
        let empty = s.write("data_\nloop_\n _missingRegionType\n", to: "e.doc")
        #expect(formatError { _ = try MissingRegionMetaData.read(empty) }?.message == "no missing regions defined")
    }
}
