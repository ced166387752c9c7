import Foundation
import Volumes

/// The fields of an MRC2014 / CCP4 header that matter to us.
public struct MRCHeader: Equatable, Sendable {
    public var nx: Int, ny: Int, nz: Int
    public var mode: Int
    public var nxstart: Int, nystart: Int, nzstart: Int
    public var mx: Int, my: Int, mz: Int
    public var cella: (x: Float, y: Float, z: Float)
    public var mapc: Int, mapr: Int, maps: Int
    public var dmin: Float, dmax: Float, dmean: Float, rms: Float
    public var ispg: Int
    /// Bytes of extended header after the 1024-byte main header.
    public var nsymbt: Int
    public var exttyp: String
    public var nversion: Int
    public var origin: (x: Float, y: Float, z: Float)
    public var bigEndian: Bool
    public var labels: [String]

    public static func == (a: MRCHeader, b: MRCHeader) -> Bool {
        a.nx == b.nx && a.ny == b.ny && a.nz == b.nz && a.mode == b.mode && a.mx == b.mx && a.my == b.my && a.mz == b.mz
            && a.cella == b.cella && a.mapc == b.mapc && a.mapr == b.mapr && a.maps == b.maps && a.dmin == b.dmin
            && a.dmax == b.dmax && a.dmean == b.dmean && a.rms == b.rms && a.ispg == b.ispg && a.nsymbt == b.nsymbt
            && a.origin == b.origin && a.bigEndian == b.bigEndian && a.labels == b.labels && a.nversion == b.nversion
    }

    /// Voxel size in Å along x (cella / mx), 0 if unknown.
    public var voxelSize: Double { mx > 0 && cella.x > 0 ? Double(cella.x) / Double(mx) : 0 }

    /// A volume stack (mrcfile convention: space group 401–630, nz = count × mz).
    public var isVolumeStack: Bool { (401...630).contains(ispg) && mz > 0 && nz % mz == 0 && nz / mz >= 1 }
    public var volumeCount: Int { isVolumeStack ? nz / mz : 1 }
    /// Sections per volume.
    public var volumeDepth: Int { isVolumeStack ? mz : nz }

    /// Size of each volume along x, y, z after applying the axis order (MAPC/MAPR/MAPS).
    public var volumeSize: (x: Int, y: Int, z: Int) {
        let axes = [mapc, mapr, maps]
        let dims = [nx, ny, volumeDepth]
        guard axes.sorted() == [1, 2, 3] else { return (nx, ny, volumeDepth) }
        var out = [0, 0, 0]
        for f in 0..<3 { out[axes[f] - 1] = dims[f] }
        return (out[0], out[1], out[2])
    }

    var bytesPerVoxel: Int {
        switch mode {
        case 0: return 1
        case 1, 6, 12: return 2
        case 2: return 4
        default: return 0
        }
    }
    var dataOffset: Int { 1024 + nsymbt }
}

/// MRC2014 reading (modes 0, 1, 2, 6, 12; either byte order; extended headers) and float32 writing.
public enum MRCFile {
    static let supportedModes: Set<Int> = [0, 1, 2, 6, 12]

    /// Reads only the header (1024 bytes).
    public static func readHeader(_ path: String) throws -> MRCHeader {
        let f = try ReadOnlyFile(path)
        return try header(of: f)
    }

    /// Parses the header; `head` may hold the file's first 1024 bytes already read.
    static func header(of f: borrowing ReadOnlyFile, head: [UInt8]? = nil) throws -> MRCHeader {
        if f.size < 1024 {
            throw FormatError(.truncated, file: f.path, "file is truncated: an MRC header needs 1024 bytes but the file has \(f.size)")
        }
        let bytes = try head.flatMap { $0.count >= 1024 ? $0 : nil } ?? f.bytes(at: 0, count: 1024, what: "the MRC header")
        return try parseHeader(bytes, path: f.path, fileSize: f.size)
    }

    /// Is this plausibly an MRC header (used for format detection)?
    static func looksLikeMRC(_ h: [UInt8], fileSize: Int) -> Bool {
        guard h.count >= 1024 else { return false }
        if h[208] == 0x4D && h[209] == 0x41 && h[210] == 0x50 { return true } // "MAP"
        return saneOrder(h, fileSize: fileSize) != nil
    }

    /// Byte order from which order gives sane dimensions and mode, and a data size the file can hold
    /// (for files without a machine stamp).
    static func saneOrder(_ h: [UInt8], fileSize: Int) -> Bool? {
        for big in [false, true] {
            let v = ByteView(bytes: h, bigEndian: big)
            let nx = v.i32(0), ny = v.i32(4), nz = v.i32(8), mode = v.i32(12), nsymbt = v.i32(92)
            if (1...(1 << 20)).contains(nx) && (1...(1 << 20)).contains(ny) && (1...(1 << 24)).contains(nz) && supportedModes.contains(mode)
                && nsymbt >= 0 {
                let bpv = mode == 0 ? 1 : mode == 2 ? 4 : 2
                if Double(1024 + nsymbt) + Double(nx) * Double(ny) * Double(nz) * Double(bpv) <= Double(fileSize) { return big }
            }
        }
        return nil
    }

    static func parseHeader(_ h: [UInt8], path: String, fileSize: Int) throws -> MRCHeader {
        let big: Bool
        switch h[212] {
        case 0x44, 0x41: big = false
        case 0x11: big = true
        default:
            guard let order = saneOrder(h, fileSize: fileSize) else {
                throw FormatError(.badMagic, file: path, "not an MRC file: no machine stamp and no byte order gives sane dimensions/mode")
            }
            big = order
        }
        let v = ByteView(bytes: h, bigEndian: big)
        var hd = MRCHeader(
            nx: v.i32(0), ny: v.i32(4), nz: v.i32(8), mode: v.i32(12),
            nxstart: v.i32(16), nystart: v.i32(20), nzstart: v.i32(24),
            mx: v.i32(28), my: v.i32(32), mz: v.i32(36),
            cella: (v.f32(40), v.f32(44), v.f32(48)),
            mapc: v.i32(64), mapr: v.i32(68), maps: v.i32(72),
            dmin: v.f32(76), dmax: v.f32(80), dmean: v.f32(84), rms: v.f32(216),
            ispg: v.i32(88), nsymbt: v.i32(92), exttyp: v.ascii(104, 4), nversion: v.i32(108),
            origin: (v.f32(196), v.f32(200), v.f32(204)), bigEndian: big, labels: [])
        let nlabl = max(0, min(10, v.i32(220)))
        hd.labels = (0..<nlabl).map { v.ascii(224 + 80 * $0, 80).trimmingCharacters(in: .whitespaces) }
        try validate(hd, path: path, fileSize: fileSize)
        return hd
    }

    static func validate(_ h: MRCHeader, path: String, fileSize: Int) throws {
        guard h.nx > 0, h.ny > 0, h.nz > 0 else {
            throw FormatError(.badHeader, file: path, "MRC dimensions \(h.nx)x\(h.ny)x\(h.nz) are not positive")
        }
        guard supportedModes.contains(h.mode) else {
            throw FormatError(.badHeader, file: path, "MRC mode \(h.mode) is not supported (0 int8, 1 int16, 2 float32, 6 uint16, 12 float16)")
        }
        guard h.nsymbt >= 0 else { throw FormatError(.badHeader, file: path, "negative extended header size NSYMBT=\(h.nsymbt)") }
        let axes = [h.mapc, h.mapr, h.maps]
        guard axes == [0, 0, 0] || axes.sorted() == [1, 2, 3] else {
            throw FormatError(.badHeader, file: path, "MRC axis order MAPC/MAPR/MAPS = \(axes) is not a permutation of 1,2,3")
        }
        // Compare sizes in Double first so absurd dimensions cannot overflow.
        let need = Double(h.dataOffset) + Double(h.nx) * Double(h.ny) * Double(h.nz) * Double(h.bytesPerVoxel)
        if need > Double(fileSize) {
            throw FormatError(.truncated, file: path, "file is truncated: header says \(h.nx)x\(h.ny)x\(h.nz) mode \(h.mode) (+\(h.nsymbt) bytes extended header) = \(Int(min(need, 9e18))) bytes, file has \(fileSize)")
        }
    }

    /// Reads volume `index` (1-based; nil = the only volume) of an MRC file or volume stack.
    public static func read(_ path: String, index: Int? = nil) throws -> Volume {
        let f = try ReadOnlyFile(path)
        let h = try header(of: f)
        return try readVolume(f, h, index: index)
    }

    /// Reads every volume of the file (one for a plain volume).
    public static func readAll(_ path: String) throws -> [Volume] {
        let f = try ReadOnlyFile(path)
        let h = try header(of: f)
        return try (1...h.volumeCount).map { try readVolume(f, h, index: $0) }
    }

    static func readVolume(_ f: borrowing ReadOnlyFile, _ h: MRCHeader, index: Int?) throws -> Volume {
        let count = h.volumeCount
        let k = index ?? 1
        if index == nil && count > 1 {
            throw FormatError(.indexOutOfRange, file: f.path, "is a stack of \(count) volumes; address one as N@\(f.path)")
        }
        guard (1...count).contains(k) else {
            throw FormatError(.indexOutOfRange, file: f.path, "volume \(k) requested but the file holds \(count)")
        }
        let depth = h.volumeDepth
        let n = h.nx * h.ny * depth
        let offset = h.dataOffset + (k - 1) * n * h.bytesPerVoxel
        var data: [Float]
        let what = count > 1 ? "volume \(k)" : "the voxel data"
        if h.mode == 2 {
            data = try readFloats(f, at: offset, count: n, bigEndian: h.bigEndian, what: what)
        } else {
            let raw = try f.bytes(at: offset, count: n * h.bytesPerVoxel, what: what)
            data = [Float](repeating: 0, count: n)
            raw.withUnsafeBufferPointer { r in
                data.withUnsafeMutableBufferPointer { d in
                    switch h.mode {
                    case 0:
                        for i in 0..<n { d[i] = Float(Int8(bitPattern: r[i])) }
                    default:
                        for i in 0..<n {
                            let a = UInt16(r[2 * i]), b = UInt16(r[2 * i + 1])
                            let u = h.bigEndian ? (a << 8 | b) : (b << 8 | a)
                            switch h.mode {
                            case 1: d[i] = Float(Int16(bitPattern: u))
                            case 6: d[i] = Float(u)
                            default: d[i] = halfToFloat(u)
                            }
                        }
                    }
                }
            }
        }
        try checkFinite(data, nx: h.nx, ny: h.ny, file: f.path, item: count > 1 ? k : nil)
        let axes = [h.mapc, h.mapr, h.maps]
        if axes == [0, 0, 0] || axes == [1, 2, 3] {
            return Volume(nx: h.nx, ny: h.ny, nz: depth, data: data)
        }
        return permuted(data, dims: [h.nx, h.ny, depth], axes: axes)
    }

    /// File order is (column, row, section) along axes (mapc, mapr, maps); returns x-fastest voxels.
    static func permuted(_ data: [Float], dims: [Int], axes: [Int]) -> Volume {
        var out = [0, 0, 0]
        for f in 0..<3 { out[axes[f] - 1] = dims[f] }
        var v = Volume(nx: out[0], ny: out[1], nz: out[2])
        var idx = [0, 0, 0]
        var i = 0
        for s in 0..<dims[2] {
            for r in 0..<dims[1] {
                for c in 0..<dims[0] {
                    idx[axes[0] - 1] = c
                    idx[axes[1] - 1] = r
                    idx[axes[2] - 1] = s
                    v[idx[0], idx[1], idx[2]] = data[i]
                    i += 1
                }
            }
        }
        return v
    }

    // MARK: Writing

    /// Writes one volume as mode 2 (float32, little-endian) with a complete MRC2014 header, atomically.
    public static func write(_ volume: Volume, to path: String, voxelSize: Double = 1,
                             origin: (x: Double, y: Double, z: Double) = (0, 0, 0), label: String = "ml_tomo") throws {
        try write([volume], to: path, voxelSize: voxelSize, origin: origin, label: label)
    }

    /// Writes volumes: one volume (ISPG 1) or a volume stack (ISPG 401, nz = count × depth), atomically.
    public static func write(_ volumes: [Volume], to path: String, voxelSize: Double = 1,
                             origin: (x: Double, y: Double, z: Double) = (0, 0, 0), label: String = "ml_tomo") throws {
        guard let first = volumes.first else { throw FormatError(.badHeader, file: path, "no volume to write") }
        for (i, v) in volumes.enumerated() where v.nx != first.nx || v.ny != first.ny || v.nz != first.nz {
            throw FormatError(.boxMismatch, file: path, "volume \(i + 1) is \(v.nx)x\(v.ny)x\(v.nz) but volume 1 is \(first.nx)x\(first.ny)x\(first.nz)")
        }
        for (i, v) in volumes.enumerated() {
            try checkFinite(v.data, nx: v.nx, ny: v.ny, file: path, item: volumes.count > 1 ? i + 1 : nil)
        }
        guard voxelSize.isFinite, voxelSize > 0 else { throw FormatError(.badHeader, file: path, "voxel size \(voxelSize) must be positive") }
        var out = header(for: volumes, voxelSize: voxelSize, origin: origin, label: label)
        out.reserveCapacity(1024 + volumes.count * first.count * 4)
        for v in volumes { appendFloatsLE(v.data, to: &out) }
        try AtomicFile.write(out, to: path)
    }

    static func header(for volumes: [Volume], voxelSize: Double, origin: (x: Double, y: Double, z: Double), label: String) -> [UInt8] {
        let v0 = volumes[0]
        let stats = VoxelStats(volumes.map(\.data))
        var w = ByteWriter(count: 1024)
        w.i32(0, v0.nx); w.i32(4, v0.ny); w.i32(8, v0.nz * volumes.count)
        w.i32(12, 2)
        w.i32(28, v0.nx); w.i32(32, v0.ny); w.i32(36, v0.nz)
        w.f32(40, Float(Double(v0.nx) * voxelSize)); w.f32(44, Float(Double(v0.ny) * voxelSize)); w.f32(48, Float(Double(v0.nz) * voxelSize))
        w.f32(52, 90); w.f32(56, 90); w.f32(60, 90)
        w.i32(64, 1); w.i32(68, 2); w.i32(72, 3)
        w.f32(76, stats.min); w.f32(80, stats.max); w.f32(84, Float(stats.mean))
        w.i32(88, volumes.count > 1 ? 401 : 1)
        w.i32(92, 0)
        w.i32(108, 20140)
        w.f32(196, Float(origin.x)); w.f32(200, Float(origin.y)); w.f32(204, Float(origin.z))
        w.ascii(208, "MAP ", max: 4)
        w.bytes[212] = 0x44; w.bytes[213] = 0x44
        w.f32(216, Float(stats.std))
        w.i32(220, 1)
        w.ascii(224, label, max: 80)
        for k in (224 + min(80, label.utf8.count))..<304 { w.bytes[k] = 0x20 }
        return w.bytes
    }
}
