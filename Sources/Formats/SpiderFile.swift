import Foundation
import Volumes

/// The fields of a Spider header that matter to us (1-based float word numbers in the comments).
public struct SpiderHeader: Equatable, Sendable {
    public var nx: Int            // 12 NSAM
    public var ny: Int            // 2 NROW
    public var nz: Int            // 1 NSLICE
    public var iform: Int         // 5 IFORM: 1 image, 3 volume
    public var labrec: Int        // 13 LABREC
    public var labbyt: Int        // 22 LABBYT: header bytes
    public var lenbyt: Int        // 23 LENBYT: record length
    public var istack: Int        // 24 ISTACK: >0 for a stack's overall header
    public var maxim: Int         // 26 MAXIM: images in the stack
    public var pixelSize: Float   // 38 PIXSIZ (Å)
    public var bigEndian: Bool

    public var isStack: Bool { istack > 0 }
    public var volumeCount: Int { isStack ? maxim : 1 }
    var voxelsPerVolume: Int { nx * ny * nz }
    /// Byte offset of volume k (1-based).
    func dataOffset(_ k: Int) -> Int {
        isStack ? labbyt + (k - 1) * (labbyt + voxelsPerVolume * 4) + labbyt : labbyt
    }
}

/// Spider / Xmipp volumes (`.vol`, `.spi`, `.xmp`) and stacks (`.stk`): float32, either byte order.
public enum SpiderFile {
    /// Decodes a header in the given byte order, or nil when the words are not a sane Spider header.
    static func decode(_ h: [UInt8], bigEndian: Bool) -> SpiderHeader? {
        guard h.count >= 27 * 4 else { return nil }
        let v = ByteView(bytes: h, bigEndian: bigEndian)
        func word(_ i: Int) -> Float { v.f32((i - 1) * 4) }
        func intWord(_ i: Int) -> Int? {
            let f = word(i)
            guard f.isFinite, f.rounded() == f, abs(f) < 1.0e9 else { return nil }
            return Int(f)
        }
        guard let nz = intWord(1), let ny = intWord(2), let iform = intWord(5), let nx = intWord(12),
              let labrec = intWord(13), let labbyt = intWord(22), let lenbyt = intWord(23),
              let istack = intWord(24), let maxim = intWord(26) else { return nil }
        guard nx > 0, ny > 0, nz > 0, nx <= 1 << 20, ny <= 1 << 20, nz <= 1 << 20 else { return nil }
        guard iform == 1 || iform == 3 else { return nil }
        guard labbyt >= 27 * 4, labbyt % 4 == 0, lenbyt >= 0, labrec >= 0, istack >= 0, maxim >= 0 else { return nil }
        let pix = h.count >= 38 * 4 ? word(38) : 0
        return SpiderHeader(nx: nx, ny: ny, nz: nz, iform: iform, labrec: labrec, labbyt: labbyt, lenbyt: lenbyt,
                            istack: istack, maxim: maxim, pixelSize: pix.isFinite ? pix : 0, bigEndian: bigEndian)
    }

    /// A sane header in either byte order whose data fits in the file.
    static func looksLikeSpider(_ h: [UInt8], fileSize: Int) -> Bool {
        for big in [false, true] {
            if let hd = decode(h, bigEndian: big), Double(hd.labbyt) + Double(hd.voxelsPerVolume) * 4 <= Double(fileSize) { return true }
        }
        return false
    }

    public static func readHeader(_ path: String) throws -> SpiderHeader {
        let f = try ReadOnlyFile(path)
        return try header(of: f)
    }

    /// Parses the header; `head` may hold the file's first min(size, 1024) bytes already read.
    static func header(of f: borrowing ReadOnlyFile, head: [UInt8]? = nil) throws -> SpiderHeader {
        let n = min(f.size, 1024)
        if n < 27 * 4 {
            throw FormatError(.truncated, file: f.path, "file is truncated: a Spider header needs at least 108 bytes but the file has \(f.size)")
        }
        let bytes = try head.flatMap { $0.count >= n ? $0 : nil } ?? f.bytes(at: 0, count: n, what: "the Spider header")
        let native = UInt32(1).bigEndian == 1
        guard let h = decode(bytes, bigEndian: native) ?? decode(bytes, bigEndian: !native) else {
            throw FormatError(.badMagic, file: f.path, "not a Spider file: in neither byte order are NSLICE/NROW/NSAM positive integers with IFORM 1 or 3")
        }
        if h.isStack && h.maxim < 1 {
            throw FormatError(.badHeader, file: f.path, "Spider stack header has MAXIM=\(h.maxim)")
        }
        let need = Double(h.labbyt) + Double(h.volumeCount) * (Double(h.voxelsPerVolume) * 4 + (h.isStack ? Double(h.labbyt) : 0))
        if need > Double(f.size) {
            throw FormatError(.truncated, file: f.path, "file is truncated: header says \(h.volumeCount) volume(s) of \(h.nx)x\(h.ny)x\(h.nz) = \(Int(min(need, 9e18))) bytes, file has \(f.size)")
        }
        return h
    }

    /// Reads volume `index` (1-based; nil = the only volume).
    public static func read(_ path: String, index: Int? = nil) throws -> Volume {
        let f = try ReadOnlyFile(path)
        let h = try header(of: f)
        return try readVolume(f, h, index: index)
    }

    public static func readAll(_ path: String) throws -> [Volume] {
        let f = try ReadOnlyFile(path)
        let h = try header(of: f)
        return try (1...h.volumeCount).map { try readVolume(f, h, index: $0) }
    }

    static func readVolume(_ f: borrowing ReadOnlyFile, _ h: SpiderHeader, index: Int?) throws -> Volume {
        let count = h.volumeCount
        if index == nil && count > 1 {
            throw FormatError(.indexOutOfRange, file: f.path, "is a stack of \(count) volumes; address one as N@\(f.path)")
        }
        let k = index ?? 1
        guard (1...count).contains(k) else {
            throw FormatError(.indexOutOfRange, file: f.path, "volume \(k) requested but the file holds \(count)")
        }
        let data = try readFloats(f, at: h.dataOffset(k), count: h.voxelsPerVolume, bigEndian: h.bigEndian,
                                  what: count > 1 ? "volume \(k)" : "the voxel data")
        try checkFinite(data, nx: h.nx, ny: h.ny, file: f.path, item: count > 1 ? k : nil)
        return Volume(nx: h.nx, ny: h.ny, nz: h.nz, data: data)
    }

    // MARK: Writing

    /// Writes one volume (IFORM 3, or 1 for a single slice), little-endian, atomically.
    public static func write(_ volume: Volume, to path: String, voxelSize: Double = 1) throws {
        try checkFinite(volume.data, nx: volume.nx, ny: volume.ny, file: path, item: nil)
        var out = header(for: volume, voxelSize: voxelSize, stats: VoxelStats([volume.data]), istack: 0, maxim: 0, imgnum: 0)
        appendFloatsLE(volume.data, to: &out)
        try AtomicFile.write(out, to: path)
    }

    /// Writes a stack: overall header (ISTACK 2, MAXIM n) then, per volume, its own header (IMGNUM k) and data.
    public static func writeStack(_ volumes: [Volume], to path: String, voxelSize: Double = 1) throws {
        guard let first = volumes.first else { throw FormatError(.badHeader, file: path, "no volume to write") }
        for (i, v) in volumes.enumerated() {
            if v.nx != first.nx || v.ny != first.ny || v.nz != first.nz {
                throw FormatError(.boxMismatch, file: path, "volume \(i + 1) is \(v.nx)x\(v.ny)x\(v.nz) but volume 1 is \(first.nx)x\(first.ny)x\(first.nz)")
            }
            try checkFinite(v.data, nx: v.nx, ny: v.ny, file: path, item: i + 1)
        }
        var out = header(for: first, voxelSize: voxelSize, stats: VoxelStats(volumes.map(\.data)), istack: 2, maxim: volumes.count, imgnum: 0)
        for (i, v) in volumes.enumerated() {
            out.append(contentsOf: header(for: v, voxelSize: voxelSize, stats: VoxelStats([v.data]), istack: 0, maxim: 0, imgnum: i + 1))
            appendFloatsLE(v.data, to: &out)
        }
        try AtomicFile.write(out, to: path)
    }

    static func header(for v: Volume, voxelSize: Double, stats: VoxelStats, istack: Int, maxim: Int, imgnum: Int) -> [UInt8] {
        let lenbyt = v.nx * 4
        let labrec = (1024 + lenbyt - 1) / lenbyt     // header records: at least 256 floats
        let labbyt = labrec * lenbyt
        var w = ByteWriter(count: labbyt)
        func set(_ word: Int, _ value: Double) { w.f32((word - 1) * 4, Float(value)) }
        set(1, Double(v.nz))
        set(2, Double(v.ny))
        set(3, Double(v.ny * v.nz + labrec))           // IREC: records in the file (data + header)
        set(5, v.nz > 1 ? 3 : 1)
        set(6, 1)                                       // IMAMI: statistics below are valid
        set(7, Double(stats.max)); set(8, Double(stats.min)); set(9, stats.mean); set(10, stats.std)
        set(12, Double(v.nx))
        set(13, Double(labrec))
        set(21, 1)                                      // SCALE
        set(22, Double(labbyt))
        set(23, Double(lenbyt))
        set(24, Double(istack))
        set(26, Double(maxim))
        set(27, Double(imgnum))
        set(38, voxelSize)
        return w.bytes
    }
}
