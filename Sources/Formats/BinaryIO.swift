#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `close(2)`, callable from types that have their own `close()` method.
func closeDescriptor(_ fd: Int32) { _ = close(fd) }

/// Little helpers to decode fixed-layout binary headers in either byte order.
struct ByteView {
    let bytes: [UInt8]
    let bigEndian: Bool

    @inline(__always) func u32(_ off: Int) -> UInt32 {
        let b0 = UInt32(bytes[off]), b1 = UInt32(bytes[off + 1]), b2 = UInt32(bytes[off + 2]), b3 = UInt32(bytes[off + 3])
        return bigEndian ? (b0 << 24 | b1 << 16 | b2 << 8 | b3) : (b3 << 24 | b2 << 16 | b1 << 8 | b0)
    }
    @inline(__always) func i32(_ off: Int) -> Int { Int(Int32(bitPattern: u32(off))) }
    @inline(__always) func f32(_ off: Int) -> Float { Float(bitPattern: u32(off)) }
    func ascii(_ off: Int, _ n: Int) -> String {
        String(decoding: bytes[off..<(off + n)].map { ($0 >= 0x20 && $0 < 0x7F) ? $0 : 0x20 }, as: UTF8.self)
    }
}

/// Builds a little-endian binary header.
struct ByteWriter {
    var bytes: [UInt8]
    init(count: Int) { bytes = [UInt8](repeating: 0, count: count) }
    mutating func u32(_ off: Int, _ v: UInt32) {
        bytes[off] = UInt8(v & 0xFF)
        bytes[off + 1] = UInt8((v >> 8) & 0xFF)
        bytes[off + 2] = UInt8((v >> 16) & 0xFF)
        bytes[off + 3] = UInt8((v >> 24) & 0xFF)
    }
    mutating func i32(_ off: Int, _ v: Int) { u32(off, UInt32(bitPattern: Int32(truncatingIfNeeded: v))) }
    mutating func f32(_ off: Int, _ v: Float) { u32(off, v.bitPattern) }
    mutating func ascii(_ off: Int, _ s: String, max: Int) {
        for (k, c) in s.utf8.prefix(max).enumerated() { bytes[off + k] = c }
    }
}

/// IEEE half → single conversion (portable; Swift's Float16 is not available on every platform).
@inline(__always) func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h >> 15) << 31
    let exp = Int((h >> 10) & 0x1F)
    let mant = UInt32(h & 0x3FF)
    if exp == 0 {
        if mant == 0 { return Float(bitPattern: sign) }
        let v = Float(mant) * Float(sign: .plus, exponent: -24, significand: 1)
        return sign != 0 ? -v : v
    }
    if exp == 31 { return Float(bitPattern: sign | 0x7F80_0000 | (mant << 13)) }
    return Float(bitPattern: sign | UInt32(exp - 15 + 127) << 23 | (mant << 13))
}

/// Statistics written into headers (Double accumulation, fixed order).
struct VoxelStats {
    var min: Float = .infinity
    var max: Float = -.infinity
    var mean: Double = 0
    var std: Double = 0

    init(_ arrays: [[Float]]) {
        var sum = 0.0
        var n = 0
        for a in arrays {
            for v in a {
                if v < min { min = v }
                if v > max { max = v }
                sum += Double(v)
            }
            n += a.count
        }
        guard n > 0 else { min = 0; max = 0; return }
        mean = sum / Double(n)
        var ss = 0.0
        for a in arrays { for v in a { let d = Double(v) - mean; ss += d * d } }
        std = (ss / Double(n)).squareRoot()
    }
}

/// Throws `.nonFinite` naming the first bad voxel.
func checkFinite(_ data: [Float], nx: Int, ny: Int, file: String, item: Int?) throws {
    // Fast pass: a float is NaN/Inf iff its exponent bits are all ones; the max over exponent fields is a
    // branch-free loop the compiler vectorises. The slow pass only runs to name the bad voxel.
    let anyBad = data.withUnsafeBytes { raw -> Bool in
        let p = raw.bindMemory(to: UInt32.self)
        var acc: UInt32 = 0
        for i in 0..<p.count { acc = max(acc, p[i] & 0x7F80_0000) }
        return acc == 0x7F80_0000
    }
    guard anyBad else { return }
    for i in data.indices where !data[i].isFinite {
        let x = i % nx, y = (i / nx) % ny, z = i / (nx * ny)
        let which = item.map { " of volume \($0)" } ?? ""
        throw FormatError(.nonFinite, file: file, "voxel (x=\(x), y=\(y), z=\(z))\(which) is \(data[i]) (NaN/Inf voxels are not accepted)")
    }
}

/// An open read-only file with its size (POSIX; cheap for the 10^4-files-per-iteration read pattern).
struct ReadOnlyFile: ~Copyable {
    let fd: Int32
    let path: String
    let size: Int

    init(_ path: String) throws {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { throw FormatError(.notFound, file: path, "no such file") }
            throw AtomicFile.ioError(path, "cannot open")
        }
        var st = stat()
        if fstat(fd, &st) != 0 {
            close(fd)
            throw AtomicFile.ioError(path, "cannot stat")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw FormatError(.io, file: path, "is a directory, not a file")
        }
        self.fd = fd
        self.path = path
        self.size = Int(st.st_size)
    }

    deinit { close(fd) }

    /// Exactly `count` bytes at `offset`, or a `.truncated` error saying what was being read.
    func bytes(at offset: Int, count: Int, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let got = try out.withUnsafeMutableBytes { try FileBytes.read(fd: fd, offset: offset, count: count, into: $0.baseAddress!, path: path) }
        if got < count {
            throw FormatError(.truncated, file: path, "file is truncated: \(what) needs bytes \(offset)..<\(offset + count) but the file has \(size) bytes")
        }
        return out
    }

    /// Fills `buffer` from `offset`, or throws `.truncated`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int, what: String) throws {
        if buffer.count == 0 { return }
        let got = try FileBytes.read(fd: fd, offset: offset, count: buffer.count, into: buffer.baseAddress!, path: path)
        if got < buffer.count {
            throw FormatError(.truncated, file: path, "file is truncated: \(what) needs bytes \(offset)..<\(offset + buffer.count) but the file has \(size) bytes")
        }
    }
}

/// Reads `count` float32 values at `offset`, converting from the file's byte order.
func readFloats(_ f: borrowing ReadOnlyFile, at offset: Int, count: Int, bigEndian: Bool, what: String) throws -> [Float] {
    // Uninitialised storage: the read fills every element (or throws).
    var data = try [Float](unsafeUninitializedCapacity: count) { buf, initialised in
        try f.read(into: UnsafeMutableRawBufferPointer(buf), at: offset, what: what)
        initialised = count
    }
    if bigEndian != (UInt32(1).bigEndian == 1) {
        data.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = Float(bitPattern: p[i].bitPattern.byteSwapped) }
        }
    }
    return data
}

/// Appends float32 little-endian bytes.
func appendFloatsLE(_ data: [Float], to out: inout [UInt8]) {
    let start = out.count
    out.append(contentsOf: repeatElement(0, count: data.count * 4))
    out.withUnsafeMutableBytes { dst in
        data.withUnsafeBytes { src in
            if UInt32(1).littleEndian == 1 {
                (dst.baseAddress! + start).copyMemory(from: src.baseAddress!, byteCount: src.count)
            } else {
                for (i, v) in data.enumerated() { dst.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: start + 4 * i, as: UInt32.self) }
            }
        }
    }
}
