import Foundation
import Formats
import Testing
import Volumes

@Suite struct MRCTests {
    @Test func swiftRoundTrip() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 6, ny: 5, nz: 4, seed: 1)
        let p = s.path("a.mrc")
        try MRCFile.write(v, to: p, voxelSize: 2.5, origin: (1, 2, 3))
        #expect(try VolumeIO.read(p) == v)
        let h = try MRCFile.readHeader(p)
        #expect(h.nx == 6 && h.ny == 5 && h.nz == 4 && h.mode == 2 && h.ispg == 1 && h.nversion == 20140)
        #expect(h.voxelSize == 2.5)
        #expect(h.origin == (1, 2, 3))
        #expect(h.dmin == v.data.min()! && h.dmax == v.data.max()!)
        let info = try VolumeIO.dimensions(p)
        #expect(info == VolumeInfo(format: .mrc, nx: 6, ny: 5, nz: 4, count: 1, voxelSize: 2.5))
        #expect(s.contents == ["a.mrc"])
    }

    @Test func stackRoundTripAndIndexing() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let vs = (0..<3).map { randomVolume(nx: 4, ny: 4, nz: 4, seed: UInt64(10 + $0)) }
        let p = s.path("stack.mrcs")
        try MRCFile.write(vs, to: p, voxelSize: 1.5)
        #expect(try VolumeIO.readStack(p) == vs)
        #expect(try VolumeIO.read("2@" + p) == vs[1])
        #expect(try VolumeIO.dimensions("3@" + p).count == 3)
        let e = try #require(formatError { _ = try VolumeIO.read("4@" + p) })
        #expect(e.kind == .indexOutOfRange)
        #expect(e.description == "\(p): volume 4 requested but the file holds 3")
        let e2 = try #require(formatError { _ = try VolumeIO.read(p) })
        #expect(e2.kind == .indexOutOfRange)
    }

    @Test func pythonReadsAndValidatesSwiftFiles() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 8, ny: 7, nz: 6, seed: 2)
        let p = s.path("v.mrc")
        try MRCFile.write(v, to: p, voxelSize: 3.25, origin: (-1.5, 0, 2))
        let stack = (0..<2).map { randomVolume(nx: 5, ny: 5, nz: 5, seed: UInt64(20 + $0)) }
        let ps = s.path("s.mrcs")
        try MRCFile.write(stack, to: ps, voxelSize: 1)
        let out = try Python.lines("""
        import sys, mrcfile, numpy as np
        for p in sys.argv[1:]:
            ok = mrcfile.validate(p, print_file=open('/dev/null', 'w'))
            with mrcfile.open(p) as m:
                d = m.data
                print(ok, d.dtype, d.shape, float(m.voxel_size.x), m.header.origin.x, m.header.origin.y, m.header.origin.z,
                      int(m.header.nversion), m.is_volume_stack())
                np.save(p + '.npy', d)
        """, [p, ps])
        #expect(out[0] == "True float32 (6, 7, 8) 3.25 -1.5 0.0 2.0 20140 False")
        #expect(out[1] == "True float32 (2, 5, 5, 5) 1.0 0.0 0.0 0.0 20140 True")
        // Values compared exactly: numpy's .npy of the data equals our floats.
        let npy = s.bytes("v.mrc.npy")
        let floats = npy.suffix(v.count * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(floats == v.data)
    }

    @Test func swiftReadsPythonFilesInEveryModeAndByteOrder() throws {
        let s = Scratch()
        defer { s.cleanup() }
        // mrcfile writes modes 0, 1, 2, 6, 12; a big-endian copy and one with an extended header are made by hand.
        _ = try Python.lines("""
        import sys, mrcfile, numpy as np
        d = sys.argv[1]
        base = (np.arange(4*5*6).reshape(4, 5, 6) % 97 - 40)
        for name, arr in [('m0', base.astype(np.int8)), ('m1', (base * 300).astype(np.int16)),
                          ('m2', (base / 7).astype(np.float32)), ('m6', (base + 40).astype(np.uint16) * 600),
                          ('m12', (base / 4).astype(np.float16))]:
            with mrcfile.new(f'{d}/{name}.mrc', overwrite=True) as m:
                m.set_data(arr)
                m.voxel_size = 1.75
            np.save(f'{d}/{name}.npy', arr.astype(np.float32))
        # Big-endian float32
        with mrcfile.new(f'{d}/be.mrc', overwrite=True) as m:
            m.set_data((base / 3).astype('>f4'))
        np.save(f'{d}/be.npy', (base / 3).astype(np.float32))
        # Extended header of 160 bytes
        with mrcfile.new(f'{d}/ext.mrc', overwrite=True) as m:
            m.set_data((base / 5).astype(np.float32))
            m.set_extended_header(np.arange(40, dtype=np.int32))
        np.save(f'{d}/ext.npy', (base / 5).astype(np.float32))
        """, [s.dir])
        for name in ["m0", "m1", "m2", "m6", "m12", "be", "ext"] {
            let v = try VolumeIO.read(s.path(name + ".mrc"))
            #expect(v.nx == 6 && v.ny == 5 && v.nz == 4, "\(name)")
            let npy = s.bytes(name + ".npy")
            let expected = npy.suffix(v.count * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            #expect(v.data == expected, "\(name)")
        }
        #expect(try MRCFile.readHeader(s.path("be.mrc")).bigEndian)
        #expect(try MRCFile.readHeader(s.path("ext.mrc")).nsymbt == 160)
        #expect(try VolumeIO.dimensions(s.path("m12.mrc")).voxelSize == 1.75)
    }

    @Test func byteOrderFallsBackToDimensionSanity() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 3, ny: 3, nz: 3, seed: 3)
        let p = s.path("a.mrc")
        try MRCFile.write(v, to: p)
        var b = s.bytes("a.mrc")
        b[212] = 0; b[213] = 0   // no machine stamp
        let q = s.write(b, to: "nostamp.mrc")
        #expect(try VolumeIO.read(q) == v)
    }

    @Test func errors() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let v = randomVolume(nx: 4, ny: 4, nz: 4, seed: 4)
        let p = s.path("a.mrc")
        try MRCFile.write(v, to: p)
        let good = s.bytes("a.mrc")

        let trunc = s.write(Array(good.prefix(good.count - 1)), to: "trunc.mrc")
        let e1 = try #require(formatError { _ = try VolumeIO.read(trunc) })
        #expect(e1.kind == .truncated)
        #expect(e1.description.hasPrefix("\(trunc): file is truncated"))

        let short = s.write(Array(good.prefix(500)), to: "short.mrc")
        #expect(formatError { _ = try VolumeIO.read(short) }?.kind == .truncated)

        var garbage = [UInt8](repeating: 0xAB, count: 2000)
        garbage[0] = 0xFF
        let bad = s.write(garbage, to: "bad.mrc")
        let e2 = try #require(formatError { _ = try VolumeIO.read(bad) })
        #expect(e2.kind == .badMagic)
        #expect(e2.file == bad)

        var nan = v
        nan[1, 2, 3] = .nan
        var nanFile = good
        let off = 1024 + 4 * (3 * 16 + 2 * 4 + 1)
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { for k in 0..<4 { nanFile[off + k] = $0[k] } }
        let np = s.write(nanFile, to: "nan.mrc")
        let e3 = try #require(formatError { _ = try VolumeIO.read(np) })
        #expect(e3.kind == .nonFinite)
        #expect(e3.description == "\(np): voxel (x=1, y=2, z=3) is nan (NaN/Inf voxels are not accepted)")

        // Writing NaN or mismatched stacks fails and leaves nothing behind.
        let before = s.contents
        let e4 = try #require(formatError { try MRCFile.write(nan, to: s.path("out.mrc")) })
        #expect(e4.kind == .nonFinite)
        let e5 = try #require(formatError { try MRCFile.write([v, Volume(dim: 5)], to: s.path("out2.mrc")) })
        #expect(e5.kind == .boxMismatch)
        #expect(e5.message == "volume 2 is 5x5x5 but volume 1 is 4x4x4")
        #expect(s.contents == before)

        let nc = s.path("nc.mrc")
        try MRCFile.write(Volume(nx: 4, ny: 4, nz: 3), to: nc)
        let e6 = try #require(formatError { _ = try VolumeIO.readCubic(nc) })
        #expect(e6.kind == .boxMismatch)
        #expect(e6.description == "\(nc): volume is 4x4x3; subtomograms must be cubic")
        let e7 = try #require(formatError { _ = try VolumeIO.readCubic(p, box: 32) })
        #expect(e7.message == "volume is 4^3 but the others are 32^3")
    }

    @Test func axisOrderIsApplied() throws {
        let s = Scratch()
        defer { s.cleanup() }
        // Volume V is 3x4x5. The file stores columns along y and rows along x (MAPC=2, MAPR=1, MAPS=3).
        let v = randomVolume(nx: 3, ny: 4, nz: 5, seed: 11)
        var w = Volume(nx: 4, ny: 3, nz: 5)
        for z in 0..<5 { for y in 0..<4 { for x in 0..<3 { w[y, x, z] = v[x, y, z] } } }
        try MRCFile.write(w, to: s.path("w.mrc"))
        var b = s.bytes("w.mrc")
        b[64] = 2; b[68] = 1
        let p = s.write(b, to: "perm.mrc")
        #expect(try VolumeIO.read(p) == v)
        let info = try VolumeIO.dimensions(p)
        #expect(info.nx == 3 && info.ny == 4 && info.nz == 5)
        b[72] = 2   // MAPS = 2 as well: not a permutation
        let bad = s.write(b, to: "bad.mrc")
        let e = try #require(formatError { _ = try VolumeIO.read(bad) })
        #expect(e.kind == .badHeader)
        #expect(e.message == "MRC axis order MAPC/MAPR/MAPS = [2, 1, 2] is not a permutation of 1,2,3")
    }
}
