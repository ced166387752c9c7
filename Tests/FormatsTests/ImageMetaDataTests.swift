import Foundation
import Formats
import Testing
import Volumes

/// The one reader of a refinement's image metadata (`-i`, `--doc`) and of its missing regions
/// (`--missing`), as `refine`, `convert` and `normalize` use them.
@Suite struct ImageMetaDataTests {
    @Test func seedImagesAndWedges() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let ip = s.write(seedImagesExample, to: "images.doc")
        let wp = s.write(seedWedgesExample, to: "wedges.doc")
        let images = try ImageMetaData.read(ip)
        #expect(images.entries.count == 2)
        #expect(images.entries[1].image == "32_000002.scl")
        #expect(images.entries[1].locator == ImageLocator(path: "32_000002.scl"))
        #expect(images.entries[0].missingRegion == 1)
        #expect(images.entries[0].classNumber == 0)
        #expect(images.hasPoses && images.path == ip)
        let missing = try MissingRegionFile.read(wp)
        #expect(missing.regions == [try MissingRegion(kind: .wedgeY, thetaY0: -64, thetaYF: 64)])
        #expect(missing.indexOfNumber == [1: 0])
        // The images of the seed example do not exist: resolution lists both places searched.
        let e = try #require(formatError { _ = try images.resolvedImage(0) })
        #expect(e.kind == .notFound)
        #expect(e.description.hasPrefix("\(ip):15: image '32_000001.scl' not found; searched: "))
        #expect(e.message.contains("\(s.dir)/32_000001.scl"))
    }

    @Test func disabledRowsAliasesAndAbsentPoses() throws {
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
        #expect(m.entries.map(\.image) == ["a.vol", "d.vol"])
        #expect(m.entries.map(\.missingRegion) == [1, 2])
        // Without all six pose columns every pose is zero, and the table is left as written.
        #expect(!m.hasPoses && m.entries.allSatisfy { $0.angles == .zero && $0.shift == .zero })
        #expect(m.entries[1].classNumber == nil)
        #expect(m.table.labels == ["image", "enabled", "missingRegionNumber", "angleRot", "extra"])
    }

    @Test func docColumnsAreMergedByImage() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let sel = s.write("data_\nloop_\n _image\n _enabled\n b.vol 1\n a.vol 1\n", to: "images.sel")
        let doc = s.write("data_\nloop_\n _image\n _angleRot\n _angleTilt\n _anglePsi\n _shiftX\n _shiftY\n _shiftZ\n _ref\n"
                          + " a.vol 1 2 3 4 5 6 2\n b.vol 7 8 9 10 11 12 1\n", to: "images.doc")
        let m = try ImageMetaData.read(sel, doc: doc)
        #expect(m.entries.map(\.image) == ["b.vol", "a.vol"])
        #expect(m.entries[1].angles == EulerAngles(rot: 1, tilt: 2, psi: 3) && m.entries[1].shift == SIMD3(4, 5, 6))
        #expect(m.entries.map(\.classNumber) == [1, 2])
        #expect(m.hasPoses)
        let short = s.write("data_\nloop_\n _image\n _angleRot\n a.vol 1\n", to: "short.doc")
        let e = try #require(formatError { _ = try ImageMetaData.read(sel, doc: short) })
        #expect(e.description.hasPrefix("\(short): the doc has no row for image 'b.vol' (\(sel):5)"))
    }

    @Test func aVolumeOrStackIsOneRowPerVolume() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let stack = s.dir + "/three.mrcs"
        try MRCFile.write([Volume(dim: 4), Volume(dim: 4), Volume(dim: 4)], to: stack)
        #expect(!ImageMetaData.isMetadata(stack))
        let m = try ImageMetaData.read(stack)
        #expect(m.entries.map(\.image) == ["1@\(stack)", "2@\(stack)", "3@\(stack)"])
        #expect(m.path == nil && !m.hasPoses)
    }

    @Test func missingRegionNumbersOfTheFileAreHonoured() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.write("data_\nloop_\n _missingRegionNumber\n _missingRegionType\n _missingRegionThetaY0\n _missingRegionThetaYF\n"
                        + " 7 wedge_y -60 60\n 3 cone 30 0\n", to: "w.doc")
        let m = try MissingRegionFile.read(p)
        #expect(m.indexOfNumber == [7: 0, 3: 1])
        #expect(m.regions[1] == (try MissingRegion(kind: .cone, thetaY0: 30)))
        let twice = s.write("data_\nloop_\n _missingRegionNumber\n _missingRegionType\n _missingRegionThetaY0\n 1 cone 30\n 1 cone 40\n", to: "t.doc")
        #expect(formatError { _ = try MissingRegionFile.read(twice) }?.description == "\(twice):7: _missingRegionNumber 1 is defined twice")
    }

    @Test func errorsNameTheFileAndLine() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let noImage = s.write("data_\nloop_\n _angleRot\n 1\n", to: "a.doc")
        let e1 = try #require(formatError { _ = try ImageMetaData.read(noImage) })
        #expect(e1.kind == .missingLabel && e1.message.contains("_image"))
        let nanAngle = s.write("data_\nloop_\n _image\n _angleRot\n _angleTilt\n _anglePsi\n _shiftX\n _shiftY\n _shiftZ\n"
                               + " a.vol 1 1 1 0 0 0\n b.vol 1 nan 1 0 0 0\n", to: "n.doc")
        let e2 = try #require(formatError { _ = try ImageMetaData.read(nanAngle) })
        #expect(e2.description == "\(nanAngle):11: _angleTilt = nan is not a finite number")
        let badType = s.write("data_\nloop_\n _missingRegionType\n _missingRegionThetaY0\n _missingRegionThetaYF\n wedge_z 1 2\n", to: "w.doc")
        let e3 = try #require(formatError { _ = try MissingRegionFile.read(badType) })
        #expect(e3.description == "\(badType):6: unknown _missingRegionType 'wedge_z'; expected wedge_y, wedge_x, pyramid or cone")
        let lacks = s.write("data_\nloop_\n _missingRegionType\n _missingRegionThetaY0\n cone 60\n pyramid 60\n", to: "p.doc")
        let e4 = try #require(formatError { _ = try MissingRegionFile.read(lacks) })
        #expect(e4.description == "\(lacks):6: missing region type 'pyramid' needs column _missingRegionThetaYF")
        let outOfRange = s.write("data_\nloop_\n _missingRegionType\n _missingRegionThetaY0\n cone 120\n", to: "r.doc")
        #expect(formatError { _ = try MissingRegionFile.read(outOfRange) }?.line == 5)
        let empty = s.write("data_\nloop_\n _missingRegionType\n", to: "e.doc")
        #expect(formatError { _ = try MissingRegionFile.read(empty) }?.message == "no missing-region definitions")
    }
}
