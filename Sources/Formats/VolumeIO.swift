import Foundation
import Volumes

/// Volume file formats, told from the file's header (the extension only breaks ties).
public enum VolumeFormat: String, Sendable {
    case mrc, spider, hdf5
}

/// What a header says about a volume file, without reading the voxels.
public struct VolumeInfo: Equatable, Sendable {
    public var format: VolumeFormat
    public var nx: Int
    public var ny: Int
    public var nz: Int
    /// Volumes in the file (1 for a plain volume).
    public var count: Int
    /// Voxel size in Å when the header records one, else nil.
    public var voxelSize: Double?

    public var isCubic: Bool { nx == ny && ny == nz }

    public init(format: VolumeFormat, nx: Int, ny: Int, nz: Int, count: Int, voxelSize: Double?) {
        self.format = format
        self.nx = nx
        self.ny = ny
        self.nz = nz
        self.count = count
        self.voxelSize = voxelSize
    }
}

/// Format-independent volume reading (with `N@stack` addressing) and writing (format from the extension).
public enum VolumeIO {
    /// The dataset read from HDF5 files by `N@file.h5` (see HDF5-LAYOUT.md).
    public static let hdf5VolumeDataset = "references"

    /// Detects the format from the first bytes of the file.
    public static func format(of path: String) throws -> VolumeFormat {
        let f = try ReadOnlyFile(path)
        return try detect(f).format
    }

    /// The format and the first (up to) 1024 bytes, which the format's header parser reuses.
    static func detect(_ f: borrowing ReadOnlyFile) throws -> (format: VolumeFormat, head: [UInt8]) {
        let head = try f.bytes(at: 0, count: min(f.size, 1024), what: "the header")
        return (try format(of: f, head: head), head)
    }

    static func format(of f: borrowing ReadOnlyFile, head: [UInt8]) throws -> VolumeFormat {
        if head.starts(with: [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]) { return .hdf5 }
        if head.count >= 1024 && head[208] == 0x4D && head[209] == 0x41 && head[210] == 0x50 { return .mrc }
        let ext = (f.path as NSString).pathExtension.lowercased()
        let mrcFirst = ["mrc", "mrcs", "map", "rec", "st", "ali", "ccp4"].contains(ext)
        // Strict: a sane header whose data fits in the file.
        if mrcFirst && MRCFile.looksLikeMRC(head, fileSize: f.size) { return .mrc }
        if SpiderFile.looksLikeSpider(head, fileSize: f.size) { return .spider }
        if MRCFile.looksLikeMRC(head, fileSize: f.size) { return .mrc }
        // Lenient: a sane header but too little data; the format's reader then reports the truncation.
        if mrcFirst && MRCFile.looksLikeMRC(head, fileSize: Int.max) { return .mrc }
        if SpiderFile.looksLikeSpider(head, fileSize: Int.max) { return .spider }
        if MRCFile.looksLikeMRC(head, fileSize: Int.max) { return .mrc }
        if head.count < 1024 && (mrcFirst || ["vol", "spi", "xmp", "stk"].contains(ext)) {
            throw FormatError(.truncated, file: f.path, "file is truncated: \(head.count) bytes is shorter than any \(mrcFirst ? "MRC" : "Spider") header")
        }
        throw FormatError(.badMagic, file: f.path, "unknown volume format: not MRC (no 'MAP ' id, no sane header), not Spider, not HDF5")
    }

    /// Header-only dimensions of `path` or `N@path` (cheap: reads at most 1 KiB for MRC/Spider).
    public static func dimensions(_ spec: String) throws -> VolumeInfo {
        let loc = try ImageLocator(parsing: spec)
        let f = try ReadOnlyFile(loc.path)
        let info: VolumeInfo
        let (format, head) = try detect(f)
        switch format {
        case .mrc:
            let h = try MRCFile.header(of: f, head: head)
            let size = h.volumeSize
            info = VolumeInfo(format: .mrc, nx: size.x, ny: size.y, nz: size.z, count: h.volumeCount,
                              voxelSize: h.voxelSize > 0 ? h.voxelSize : nil)
        case .spider:
            let h = try SpiderFile.header(of: f, head: head)
            info = VolumeInfo(format: .spider, nx: h.nx, ny: h.ny, nz: h.nz, count: h.volumeCount,
                              voxelSize: h.pixelSize > 0 ? Double(h.pixelSize) : nil)
        case .hdf5:
            HDF5File.lock.lock()
            defer { HDF5File.lock.unlock() }
            let h5 = try HDF5File.open(loc.path)
            defer { h5.close() }
            let shape = try h5.shape(hdf5VolumeDataset)
            guard shape.count == 4 || shape.count == 3 else {
                throw FormatError(.badHeader, file: loc.path, "dataset '\(hdf5VolumeDataset)' has shape \(shape); expected K×d×d×d or d×d×d")
            }
            let s = shape.count == 4 ? Array(shape.dropFirst()) : shape
            let vs = h5.hasAttribute("voxel_size") ? try? h5.attributeDouble("voxel_size") : nil
            info = VolumeInfo(format: .hdf5, nx: s[2], ny: s[1], nz: s[0], count: shape.count == 4 ? shape[0] : 1, voxelSize: vs)
        }
        if let k = loc.index, !(1...info.count).contains(k) {
            throw FormatError(.indexOutOfRange, file: loc.path, "volume \(k) requested but the file holds \(info.count)")
        }
        return info
    }

    /// Reads `path` or `N@path` (N 1-based) from an MRC, Spider or HDF5 file. NaN/Inf voxels are errors.
    public static func read(_ spec: String) throws -> Volume {
        try read(try ImageLocator(parsing: spec))
    }

    public static func read(_ loc: ImageLocator) throws -> Volume {
        let f = try ReadOnlyFile(loc.path)
        let (format, head) = try detect(f)
        switch format {
        case .mrc:
            let h = try MRCFile.header(of: f, head: head)
            return try MRCFile.readVolume(f, h, index: loc.index)
        case .spider:
            let h = try SpiderFile.header(of: f, head: head)
            return try SpiderFile.readVolume(f, h, index: loc.index)
        case .hdf5:
            return try readHDF5(loc)
        }
    }

    /// Reads a volume and checks it is cubic and, if given, of side `box`.
    public static func readCubic(_ spec: String, box: Int? = nil) throws -> Volume {
        let loc = try ImageLocator(parsing: spec)
        let v = try read(loc)
        try checkBox(v, box: box, file: loc.path, item: loc.index)
        return v
    }

    /// Throws `.boxMismatch` unless `v` is cubic (and of side `box` when given).
    public static func checkBox(_ v: Volume, box: Int?, file: String, item: Int? = nil) throws {
        let what = item.map { "volume \($0)" } ?? "volume"
        guard v.isCubic else {
            throw FormatError(.boxMismatch, file: file, "\(what) is \(v.nx)x\(v.ny)x\(v.nz); subtomograms must be cubic")
        }
        if let box, v.nx != box {
            throw FormatError(.boxMismatch, file: file, "\(what) is \(v.nx)^3 but the others are \(box)^3")
        }
    }

    /// Reads every volume of a file (one for a plain volume).
    public static func readStack(_ path: String) throws -> [Volume] {
        let f = try ReadOnlyFile(path)
        let (format, head) = try detect(f)
        switch format {
        case .mrc:
            let h = try MRCFile.header(of: f, head: head)
            return try (1...h.volumeCount).map { try MRCFile.readVolume(f, h, index: $0) }
        case .spider:
            let h = try SpiderFile.header(of: f, head: head)
            return try (1...h.volumeCount).map { try SpiderFile.readVolume(f, h, index: $0) }
        case .hdf5:
            let n = try dimensions(path).count
            return try (1...n).map { try readHDF5(ImageLocator(path: path, index: $0)) }
        }
    }

    static func readHDF5(_ loc: ImageLocator) throws -> Volume {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let h5 = try HDF5File.open(loc.path)
        defer { h5.close() }
        let shape = try h5.shape(hdf5VolumeDataset)
        let volume: Volume
        if shape.count == 4 {
            if loc.index == nil && shape[0] > 1 {
                throw FormatError(.indexOutOfRange, file: loc.path, "is a stack of \(shape[0]) volumes; address one as N@\(loc.path)")
            }
            let (s, values) = try h5.readFloatSlab(hdf5VolumeDataset, index: (loc.index ?? 1) - 1)
            volume = Volume(nx: s[2], ny: s[1], nz: s[0], data: values)
        } else if shape.count == 3 {
            if let k = loc.index, k != 1 {
                throw FormatError(.indexOutOfRange, file: loc.path, "volume \(k) requested but the file holds 1")
            }
            let (s, values) = try h5.readFloats(hdf5VolumeDataset)
            guard s.allSatisfy({ $0 > 0 }) else { throw FormatError(.badHeader, file: loc.path, "empty dataset '\(hdf5VolumeDataset)'") }
            volume = Volume(nx: s[2], ny: s[1], nz: s[0], data: values)
        } else {
            throw FormatError(.badHeader, file: loc.path, "dataset '\(hdf5VolumeDataset)' has shape \(shape); expected K×d×d×d or d×d×d")
        }
        guard volume.count > 0 else { throw FormatError(.badHeader, file: loc.path, "empty dataset '\(hdf5VolumeDataset)'") }
        try checkFinite(volume.data, nx: volume.nx, ny: volume.ny, file: loc.path, item: loc.index)
        return volume
    }

    /// Writes a volume in the format named by the extension: `.mrc/.map/.mrcs` MRC, `.vol/.spi/.xmp` Spider.
    public static func write(_ volume: Volume, to path: String, voxelSize: Double = 1) throws {
        switch (path as NSString).pathExtension.lowercased() {
        case "mrc", "map", "mrcs", "rec", "ccp4": try MRCFile.write(volume, to: path, voxelSize: voxelSize)
        case "vol", "spi", "xmp": try SpiderFile.write(volume, to: path, voxelSize: voxelSize)
        case "stk": try SpiderFile.writeStack([volume], to: path, voxelSize: voxelSize)
        default:
            throw FormatError(.badMagic, file: path, "cannot tell the format from the extension (use .mrc, .vol, .spi, .xmp or .stk)")
        }
    }
}
