import Foundation
import Formats
import Testing
import Volumes

/// A header that claims 10⁹ voxels (4 GB of float32) in a small file is refused from the header and the
/// file size, before anything is allocated (issue 20; the fuzz targets enforce the "before allocating"
/// part with libFuzzer's -malloc_limit_mb, these tests pin the message and the error kind).
@Suite struct HugeHeaderTests {
    static func littleEndian(_ v: Int32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    static func littleEndian(_ v: Float) -> [UInt8] { withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }

    @Test func mrcClaimingABillionVoxels() throws {
        let s = Scratch()
        defer { s.cleanup() }
        try MRCFile.write(randomVolume(nx: 4, ny: 4, nz: 4, seed: 1), to: s.path("a.mrc"))
        var b = s.bytes("a.mrc")
        for (offset, n) in [(0, 1000), (4, 1000), (8, 1000)] { b.replaceSubrange(offset ..< offset + 4, with: Self.littleEndian(Int32(n))) }
        let p = s.write(b, to: "huge.mrc")
        let e = try #require(formatError { _ = try VolumeIO.read(p) })
        #expect(e.kind == .truncated)
        #expect(e.message == "file is truncated: header says 1000x1000x1000 mode 2 (+0 bytes extended header) = 4000001024 bytes, file has 1280")
        #expect(formatError { _ = try VolumeIO.dimensions(p) }?.kind == .truncated)
    }

    @Test func spiderClaimingABillionVoxels() throws {
        let s = Scratch()
        defer { s.cleanup() }
        try SpiderFile.write(randomVolume(nx: 4, ny: 4, nz: 4, seed: 2), to: s.path("a.vol"))
        var b = s.bytes("a.vol")
        let native = UInt32(1).bigEndian != 1   // the writer's byte order is the machine's (little-endian here)
        try #require(native, "this test patches a little-endian Spider header")
        // NSLICE (word 1), NROW (word 2), NSAM (word 12).
        for word in [1, 2, 12] { b.replaceSubrange((word - 1) * 4 ..< word * 4, with: Self.littleEndian(Float(1000))) }
        let p = s.write(b, to: "huge.vol")
        let e = try #require(formatError { _ = try VolumeIO.read(p) })
        // Either not recognised as Spider at all (the data cannot fit) or refused as truncated: never read.
        #expect(e.kind == .truncated || e.kind == .badMagic, "\(e)")
        let h = try #require(formatError { _ = try SpiderFile.readHeader(p) })
        #expect(h.kind == .truncated)
        #expect(h.message.hasPrefix("file is truncated: header says 1 volume(s) of 1000x1000x1000 = "), "\(h)")
    }

    /// A 5 MB restart file whose `references` is a chunked dataset of 1 × 1000³ floats with no chunk
    /// written (valid HDF5: unwritten chunks read as the fill value, so libhdf5 itself would hand over
    /// 4 GB). It holds no bytes of it and has no filter, so it is refused; the former bound (256 bytes per
    /// byte of file) would have let the 4 GB allocation through.
    @Test func hdf5DatasetClaimingABillionValues() throws {
        let s = Scratch()
        defer { s.cleanup() }
        var stack = ReferenceStackFile(references: [randomVolume(nx: 6, ny: 6, nz: 6, seed: 3)], iteration: 1, voxelSize: 1,
                                       classFractions: [1], sigmaNoise: 1, sigmaOffset: 1, logLikelihood: 0)
        stack.extraDatasets["padding"] = .init(shape: [640_000], values: [Double](repeating: 0.5, count: 640_000))
        let p = s.path("huge.h5")
        try stack.write(to: p)
        #expect(try ReferenceStackFile.read(p, extraDatasetNames: ["padding"]).references == stack.references)
        let py = try Python.run("""
        import sys, os, h5py
        with h5py.File(sys.argv[1], 'r+') as f:
            attrs = dict(f['references'].attrs)
            del f['references']
            d = f.create_dataset('references', shape=(1, 1000, 1000, 1000), dtype='<f4', chunks=(1, 16, 16, 16))
            for k, v in attrs.items(): d.attrs[k] = v
        print(os.path.getsize(sys.argv[1]))
        """, [p])
        try #require(py.status == 0, "\(py.stderr)")
        let size = Int(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        #expect(size > 5_000_000 && size < 6_000_000, "file size \(size)")
        let e = try #require(formatError { _ = try ReferenceStackFile.read(p) })
        #expect(e.kind == .truncated, "\(e)")
        #expect(e.message == "dataset 'references' claims shape [1, 1000, 1000, 1000] (4000000000 bytes), but the file holds 0 bytes of it", "\(e)")
    }
}
