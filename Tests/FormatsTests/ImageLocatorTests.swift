import Foundation
import Formats
import Testing
import Volumes

@Suite struct ImageLocatorTests {
    @Test func parsing() throws {
        #expect(try ImageLocator(parsing: "sub/a.vol") == ImageLocator(path: "sub/a.vol"))
        #expect(try ImageLocator(parsing: "000012@stack.mrcs") == ImageLocator(path: "stack.mrcs", index: 12))
        #expect(try ImageLocator(parsing: "3@/abs/s.stk").description == "3@/abs/s.stk")
        let e = try #require(formatError { _ = try ImageLocator(parsing: "x@stack.mrcs", context: "images.doc:7") })
        #expect(e.description == "images.doc:7: image 'x@stack.mrcs': the part before '@' must be a 1-based stack index")
        #expect(formatError { _ = try ImageLocator(parsing: "0@s.mrcs") }?.kind == .indexOutOfRange)
        #expect(formatError { _ = try ImageLocator(parsing: "2@") }?.kind == .syntax)
    }

    @Test func resolvesAgainstCwdThenMetadataDirectory() throws {
        let s = Scratch()
        defer { s.cleanup() }
        try FileManager.default.createDirectory(atPath: s.path("run/sub"), withIntermediateDirectories: true)
        let v = randomVolume(nx: 4, ny: 4, nz: 4, seed: 50)
        try MRCFile.write([v, v], to: s.path("run/sub/st.mrcs"))
        let doc = s.path("run/images.doc")
        var t = MetaDataTable(labels: ["image"])
        t.appendRow([.string("2@sub/st.mrcs")])
        try MetaDataFile(t).write(to: doc)
        let table = try MetaDataFile.readTable(doc)
        let loc = try ImageLocator(parsing: try table.string("image", row: 0), context: table.location(row: 0))
        let r = try loc.resolved(metadataFile: doc)
        #expect(r == ImageLocator(path: s.path("run/sub/st.mrcs"), index: 2))
        #expect(try VolumeIO.read(r) == v)

        let missing = try ImageLocator(parsing: "nothere.mrc")
        let e = try #require(formatError { _ = try missing.resolved(metadataFile: doc, context: "\(doc):4") })
        #expect(e.kind == .notFound)
        let cwd = FileManager.default.currentDirectoryPath
        #expect(e.description == "\(doc):4: image 'nothere.mrc' not found; searched: \(cwd)/nothere.mrc, \(s.path("run"))/nothere.mrc")
        let abs = ImageLocator(path: s.path("gone.mrc"))
        #expect(formatError { _ = try abs.resolved(metadataFile: nil) }?.message.contains("searched: \(s.path("gone.mrc"))") == true)
    }

    @Test func missingFileThroughVolumeIO() throws {
        let e = try #require(formatError { _ = try VolumeIO.read("5@/no/such/stack.mrcs") })
        #expect(e.description == "/no/such/stack.mrcs: no such file")
        #expect(formatError { _ = try VolumeIO.dimensions("/no/such.vol") }?.kind == .notFound)
    }
}
