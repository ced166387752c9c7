import Foundation
import Formats
import Testing
import Volumes

@Suite struct SpiderTests {
    @Test func volumeRoundTripAndHeader() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 8, ny: 6, nz: 5, seed: 5)
        let p = s.path("a.vol")
        try SpiderFile.write(v, to: p, voxelSize: 4.5)
        #expect(try VolumeIO.read(p) == v)
        #expect(try VolumeIO.format(of: p) == .spider)
        let h = try SpiderFile.readHeader(p)
        #expect(h.nx == 8 && h.ny == 6 && h.nz == 5 && h.iform == 3 && !h.isStack)
        #expect(h.labbyt == h.labrec * h.lenbyt && h.lenbyt == 32 && h.labbyt >= 1024)
        #expect(try VolumeIO.dimensions(p) == VolumeInfo(format: .spider, nx: 8, ny: 6, nz: 5, count: 1, voxelSize: 4.5))
        #expect(s.bytes("a.vol").count == h.labbyt + v.count * 4)
    }

    @Test func formatIsToldFromTheHeaderNotTheExtension() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 4, ny: 4, nz: 4, seed: 6)
        try SpiderFile.write(v, to: s.path("x.vol"))
        try MRCFile.write(v, to: s.path("y.mrc"))
        try FileManager.default.moveItem(atPath: s.path("x.vol"), toPath: s.path("really_spider.mrc"))
        try FileManager.default.moveItem(atPath: s.path("y.mrc"), toPath: s.path("really_mrc.vol"))
        #expect(try VolumeIO.format(of: s.path("really_spider.mrc")) == .spider)
        #expect(try VolumeIO.format(of: s.path("really_mrc.vol")) == .mrc)
        #expect(try VolumeIO.read(s.path("really_spider.mrc")) == v)
        #expect(try VolumeIO.read(s.path("really_mrc.vol")) == v)
    }

    @Test func stackRoundTripAndIndexing() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let vs = (0..<3).map { randomVolume(nx: 5, ny: 5, nz: 5, seed: UInt64(30 + $0)) }
        let p = s.path("refs.stk")
        try SpiderFile.writeStack(vs, to: p, voxelSize: 2)
        #expect(try VolumeIO.readStack(p) == vs)
        #expect(try VolumeIO.read("3@" + p) == vs[2])
        #expect(try VolumeIO.dimensions(p).count == 3)
        let h = try SpiderFile.readHeader(p)
        #expect(h.isStack && h.maxim == 3)
        #expect(formatError { _ = try VolumeIO.read("0@" + p) }?.kind == .indexOutOfRange)
        #expect(formatError { _ = try VolumeIO.read("4@" + p) }?.kind == .indexOutOfRange)
    }

    @Test func bigEndianFilesAreRead() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 4, ny: 3, nz: 2, seed: 7)
        try SpiderFile.write(v, to: s.path("le.spi"))
        // Byte-swap every 32-bit word: header and data are all float32.
        var b = s.bytes("le.spi")
        for i in stride(from: 0, to: b.count, by: 4) { b[i..<(i + 4)].reverse() }
        let p = s.write(b, to: "be.spi")
        #expect(try SpiderFile.readHeader(p).bigEndian)
        #expect(try VolumeIO.read(p) == v)
    }

    @Test func xmippMetadataReadsSwiftSpiderAndSwiftReadsPython() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 6, ny: 6, nz: 6, seed: 8)
        let p = s.path("a.vol")
        try SpiderFile.write(v, to: p, voxelSize: 1)
        let out = try Python.lines("""
        import sys, numpy as np
        from xmipp_metadata.image_handler import ImageHandler
        ih = ImageHandler(sys.argv[1])
        d = np.asarray(ih[:], dtype=np.float32)
        print(d.shape, [int(x) for x in ih.getDimensions()])
        np.save(sys.argv[1] + '.npy', d)
        # And the other way: xmipp_metadata writes a Spider volume.
        w = (np.arange(5*5*5, dtype=np.float32).reshape(5, 5, 5) - 60) / 8
        ImageHandler().write(w, sys.argv[2], overwrite=True)
        np.save(sys.argv[2] + '.npy', w)
        """, [p, s.path("py.vol")])
        #expect(out == ["(6, 6, 6) [6, 6, 6]"])
        let npy = s.bytes("a.vol.npy")
        #expect(npy.suffix(v.count * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == v.data)
        let w = try VolumeIO.read(s.path("py.vol"))
        #expect(w.nx == 5 && w.ny == 5 && w.nz == 5)
        #expect(s.bytes("py.vol.npy").suffix(125 * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) } == w.data)
    }

    @Test func errors() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 4, ny: 4, nz: 4, seed: 9)
        try SpiderFile.write(v, to: s.path("a.vol"))
        let good = s.bytes("a.vol")
        let t = s.write(Array(good.dropLast(4)), to: "t.vol")
        let e = try #require(formatError { _ = try VolumeIO.read(t) })
        #expect(e.kind == .truncated)
        #expect(e.file == t)
        let z = s.write([UInt8](repeating: 0, count: 2048), to: "zeros.vol")
        #expect(formatError { _ = try VolumeIO.read(z) }?.kind == .badMagic)
        let tiny = s.write([1, 2, 3], to: "tiny.vol")
        #expect(formatError { _ = try VolumeIO.read(tiny) }?.kind == .truncated)
        var nan = v
        nan.data[0] = .infinity
        let before = s.contents
        let e2 = try #require(formatError { try SpiderFile.write(nan, to: s.path("n.vol")) })
        #expect(e2.kind == .nonFinite)
        let e3 = try #require(formatError { try SpiderFile.writeStack([v, Volume(nx: 4, ny: 4, nz: 5)], to: s.path("m.stk")) })
        #expect(e3.kind == .boxMismatch)
        #expect(s.contents == before)
    }
}
