import Foundation
import Formats
import Testing
import Volumes

@Suite(.serialized) struct HDF5Tests {
    func sampleStack(K: Int = 2, d: Int = 6) -> ReferenceStackFile {
        let refs = (0..<K).map { randomVolume(nx: d, ny: d, nz: d, seed: UInt64(40 + $0)) }
        let wedges = (0..<K).map { k in (0..<(d * d * (d / 2 + 1))).map { Float(($0 + k) % 7) } }
        let fsc = (0..<K).map { k in (0..<(d / 2)).map { 1 / (1 + Double($0 + k)) } }
        return ReferenceStackFile(references: refs, wedgeSums: wedges, fsc: fsc, iteration: 7, voxelSize: 4.4,
                                  classFractions: K == 2 ? [0.25, 0.75] : [Double](repeating: 1 / Double(K), count: K),
                                  sigmaNoise: 1.125, sigmaOffset: 2.5, logLikelihood: -12345.678,
                                  extraAttributes: ["pmax": 0.5])
    }

    @Test func referenceStackRoundTripAndNAddressing() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let f = sampleStack()
        let p = s.path("run_it000007.h5")
        try f.write(to: p)
        #expect(s.contents == ["run_it000007.h5"])
        let g = try ReferenceStackFile.read(p)
        #expect(g == f)
        #expect(try VolumeIO.format(of: p) == .hdf5)
        #expect(try VolumeIO.read("2@" + p) == f.references[1])
        #expect(try VolumeIO.readStack(p) == f.references)
        #expect(try VolumeIO.dimensions(p) == VolumeInfo(format: .hdf5, nx: 6, ny: 6, nz: 6, count: 2, voxelSize: 4.4))
        #expect(formatError { _ = try VolumeIO.read("3@" + p) }?.kind == .indexOutOfRange)
    }

    @Test func h5pyReadsTheDocumentedLayout() throws {
        let s = Scratch()
        defer { s.cleanup() }
        var f = sampleStack(K: 2, d: 4)
        // Make voxel (x=1, y=2, z=3) of class 2 recognisable: h5py must see it at [1, 3, 2, 1].
        f.references[1][1, 2, 3] = 42.5
        let p = s.path("m.h5")
        try f.write(to: p)
        let out = try Python.lines("""
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], 'r') as h:
            r = h['references']
            print(r.dtype, r.shape, h['wedge_sums'].dtype, h['wedge_sums'].shape, h['fsc'].dtype, h['fsc'].shape)
            print(float(r[1, 3, 2, 1]))
            a = h.attrs
            print(int(a['iteration']), float(a['voxel_size']), list(map(float, a['class_fractions'])),
                  float(a['sigma_noise']), float(a['sigma_offset']), float(a['log_likelihood']), float(a['pmax']),
                  a['format'], int(a['format_version']), int(a['class_count']), int(a['box_size']))
            print(type(r.attrs['axes']).__name__, r.attrs['axes'])
            np.save(sys.argv[1] + '.npy', r[...])
        """, [p])
        #expect(out[0] == "float32 (2, 4, 4, 4) float32 (2, 4, 4, 3) float64 (2, 2)")
        #expect(out[1] == "42.5")
        #expect(out[2] == "7 4.4 [0.25, 0.75] 1.125 2.5 -12345.678 0.5 ml_tomo reference stack 1 2 4")
        #expect(out[3] == "str class, z, y, x")
        let npy = s.bytes("m.h5.npy")
        let all = npy.suffix(2 * 64 * 4).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(all == f.references.flatMap(\.data))
    }

    @Test func swiftReadsH5pyFiles() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.path("py.h5")
        _ = try Python.lines("""
        import sys, h5py, numpy as np
        with h5py.File(sys.argv[1], 'w') as h:
            r = (np.arange(3*5*5*5, dtype=np.float64).reshape(3, 5, 5, 5) / 9 - 4)   # float64 on disk
            h['references'] = r
            h['fsc'] = np.array([[1, .5], [.25, .125], [.0625, 0]])
            h.attrs['iteration'] = np.int32(2)
            h.attrs['voxel_size'] = np.float32(1.5)
            h.attrs['class_fractions'] = [0.2, 0.3, 0.5]
            h.attrs['sigma_noise'] = 1.0
            h.attrs['sigma_offset'] = 3.0
            h.attrs['log_likelihood'] = -5.0
            h.attrs['note'] = 'from python'
            h.attrs['fixed'] = np.bytes_(b'fixed-len')
            g = h.create_group('extra')
            g.create_dataset('counts', data=np.array([1, 2, 3], dtype=np.int64))
        """, [p])
        let f = try ReferenceStackFile.read(p)
        #expect(f.classCount == 3 && f.box == 5)
        #expect(f.references[2][4, 3, 2] == Float(Double(2 * 125 + 2 * 25 + 3 * 5 + 4) / 9 - 4))
        #expect(f.iteration == 2 && f.voxelSize == 1.5 && f.classFractions == [0.2, 0.3, 0.5])
        #expect(f.fsc?[2] == [0.0625, 0.0])
        let h = try HDF5File.open(p)
        defer { h.close() }
        #expect(try h.attributeString("note") == "from python")
        #expect(try h.attributeString("fixed") == "fixed-len")
        #expect(try h.readInt64s("extra/counts").values == [1, 2, 3])
        #expect(try h.shape("/extra/counts") == [3])
        #expect(h.exists("extra") && !h.exists("nothing/here"))
    }

    @Test func generalWriterGroupsAndAttributes() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let p = s.path("g.h5")
        try HDF5File.write(p) { h in
            try h.createGroup("/grp")
            try h.writeDataset("/grp/d", shape: [2, 3], doubles: [1, 2, 3, 4, 5, 6])
            try h.writeDataset("/grp/i", shape: [4], int64s: [1, -2, 3, Int64.max])
            try h.setAttribute("label", string: "héllo wörld", on: "/grp/d")
            try h.setAttribute("n", int64: -9, on: "/grp")
            try h.setAttribute("v", doubles: [0.5, 1.5])
            try h.setAttribute("v", doubles: [2.5])   // replacing an attribute is allowed
            try h.setAttribute("iv", int64s: [3, 4])
        }
        let h = try HDF5File.open(p)
        defer { h.close() }
        #expect(try h.readDoubles("/grp/d").shape == [2, 3])
        #expect(try h.readDoubles("/grp/d").values == [1, 2, 3, 4, 5, 6])
        #expect(try h.readInt64s("/grp/i").values == [1, -2, 3, Int64.max])
        #expect(try h.attributeString("label", of: "/grp/d") == "héllo wörld")
        #expect(try h.attributeInt64("n", of: "/grp") == -9)
        #expect(try h.attributeDoubles("v") == [2.5])
        #expect(try h.attributeInt64s("iv") == [3, 4])
        #expect(try h.attributeNames() == ["iv", "v"])
        let out = try Python.lines("""
        import sys, h5py
        with h5py.File(sys.argv[1], 'r') as h:
            print(h['grp/d'][...].tolist(), h['grp/d'].attrs['label'], int(h['grp'].attrs['n']), list(map(int, h.attrs['iv'])))
        """, [p])
        #expect(out == ["[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]] héllo wörld -9 [3, 4]"])
    }

    @Test func errorsLeaveNothingBehind() throws {
        let s = Scratch()
        defer { s.cleanup() }
        // Shape/count mismatch inside the writer: the temporary file is removed, no destination appears.
        let e = try #require(formatError {
            try HDF5File.write(s.path("x.h5")) { h in try h.writeDataset("a", shape: [2, 2], floats: [1, 2, 3]) }
        })
        #expect(e.kind == .hdf5)
        #expect(e.description == "\(s.path("x.h5")): dataset 'a': shape [2, 2] does not hold 3 values")
        // Same name twice.
        let e2 = try #require(formatError {
            try HDF5File.write(s.path("y.h5")) { h in
                try h.writeDataset("a", shape: [1], floats: [1])
                try h.writeDataset("a", shape: [1], floats: [1])
            }
        })
        #expect(e2.kind == .hdf5)
        // Reference stacks that are not cubic, mismatched or non-finite.
        var f = sampleStack()
        f.references[1] = Volume(nx: 6, ny: 6, nz: 5)
        let e3 = try #require(formatError { try f.write(to: s.path("z.h5")) })
        #expect(e3.kind == .boxMismatch)
        #expect(e3.message == "volume 2 is 6x6x5; subtomograms must be cubic")
        f = sampleStack()
        f.references[0].data[5] = .nan
        #expect(formatError { try f.write(to: s.path("z.h5")) }?.kind == .nonFinite)
        f = sampleStack()
        f.classFractions = [1]
        #expect(formatError { try f.write(to: s.path("z.h5")) }?.kind == .boxMismatch)
        #expect(s.contents.isEmpty)
        // Reading errors.
        let notH5 = s.write([UInt8](repeating: 7, count: 100), to: "no.h5")
        #expect(formatError { _ = try HDF5File.open(notH5) }?.kind == .badMagic)
        try sampleStack().write(to: s.path("ok.h5"))
        let h = try HDF5File.open(s.path("ok.h5"))
        defer { h.close() }
        let e4 = try #require(formatError { _ = try h.readFloats("nope") })
        #expect(e4.description == "\(s.path("ok.h5")): no dataset 'nope'")
        #expect(formatError { _ = try h.attributeDouble("nope") }?.kind == .missingLabel)
        #expect(formatError { _ = try h.attributeString("iteration") }?.kind == .wrongType)
    }
}

@Suite struct ConcurrentReadTests {
    /// Engine threads read subtomograms concurrently; HDF5 access is serialised internally.
    @Test func concurrentReadsOfEveryFormat() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let vs = (0..<3).map { randomVolume(nx: 5, ny: 5, nz: 5, seed: UInt64(70 + $0)) }
        try MRCFile.write(vs, to: s.path("a.mrcs"))
        try SpiderFile.writeStack(vs, to: s.path("a.stk"))
        try ReferenceStackFile(references: vs, iteration: 0, voxelSize: 1, classFractions: [0.2, 0.3, 0.5],
                               sigmaNoise: 1, sigmaOffset: 1, logLikelihood: 0).write(to: s.path("a.h5"))
        let specs = ["a.mrcs", "a.stk", "a.h5"].flatMap { f in (1...3).map { "\($0)@" + s.path(f) } }
        let lock = NSLock()
        nonisolated(unsafe) var mismatches = 0
        DispatchQueue.concurrentPerform(iterations: 90) { i in
            let spec = specs[i % specs.count]
            let k = Int(spec.prefix(1))! - 1
            let ok = (try? VolumeIO.read(spec)) == vs[k]
            if !ok { lock.lock(); mismatches += 1; lock.unlock() }
        }
        #expect(mismatches == 0)
    }
}
