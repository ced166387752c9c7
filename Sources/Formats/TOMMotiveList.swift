import Foundation

/// A TOM Toolbox / AV3 motive list: an EM-format file (512-byte header) holding a 20 × N float32 image,
/// one column of 20 values per particle (x fastest, so particle p's values are contiguous). Rows used
/// here (1-based, as TOM numbers them): 1 score, 4 particle number, 5 tomogram number, 7–9 x y z in the
/// tomogram, 11–13 shift after rotating the reference, 17 phi, 18 psi, 19 theta, 20 class.
public struct TOMMotiveList: Equatable, Sendable {
    public enum Row: Int, Sendable {
        case score = 1, particle = 4, tomogram = 5, x = 7, y = 8, z = 9
        case shiftX = 11, shiftY = 12, shiftZ = 13, phi = 17, psi = 18, theta = 19, classNumber = 20
    }

    public static let rowsPerParticle = 20
    static let headerSize = 512

    /// `particles[p]` has 20 values.
    public var particles: [[Float]]
    public var path: String?

    public init(particles: [[Float]] = []) {
        self.particles = particles
        self.path = nil
    }

    public var count: Int { particles.count }

    public subscript(particle: Int, row: Row) -> Float {
        get { particles[particle][row.rawValue - 1] }
        set { particles[particle][row.rawValue - 1] = newValue }
    }

    public mutating func appendParticle() {
        particles.append([Float](repeating: 0, count: Self.rowsPerParticle))
    }

    /// EM machine codes: 6 is a PC (little-endian); 0 (OS-9), 3 (SGI) and 5 (Mac) are big-endian.
    public static func read(_ path: String) throws -> TOMMotiveList {
        let bytes = try FileBytes.read(path)
        guard bytes.count >= headerSize else {
            throw FormatError(.truncated, file: path, "an EM file needs a 512-byte header; the file has \(bytes.count) bytes")
        }
        let bigEndian: Bool
        switch bytes[0] {
        case 6: bigEndian = false
        case 0, 3, 5: bigEndian = true
        default:
            throw FormatError(.badMagic, file: path, "byte 0 (machine) is \(bytes[0]); an EM file has 0, 3, 5 or 6")
        }
        let v = ByteView(bytes: bytes, bigEndian: bigEndian)
        let dtype = Int(bytes[3])
        let nx = v.i32(4), ny = v.i32(8), nz = v.i32(12)
        guard dtype == 5 else {
            throw FormatError(.badHeader, file: path, "EM data type \(dtype); a motive list is float32 (type 5)")
        }
        guard nx == rowsPerParticle, ny >= 1, nz == 1 else {
            throw FormatError(.badHeader, file: path, "EM image of \(nx) × \(ny) × \(nz); a motive list is 20 × N × 1")
        }
        let need = headerSize + 4 * nx * ny
        guard bytes.count >= need else {
            throw FormatError(.truncated, file: path, "the header announces \(ny) particles (\(need) bytes) but the file has \(bytes.count) bytes")
        }
        var list = TOMMotiveList()
        list.path = path
        list.particles.reserveCapacity(ny)
        for p in 0..<ny {
            var col = [Float](repeating: 0, count: nx)
            for r in 0..<nx {
                let x = v.f32(headerSize + 4 * (p * nx + r))
                guard x.isFinite else {
                    throw FormatError(.nonFinite, file: path, "particle \(p + 1), row \(r + 1) is \(x)")
                }
                col[r] = x
            }
            list.particles.append(col)
        }
        return list
    }

    /// Little-endian (machine 6), float32, 20 × N × 1.
    public func serialized() -> [UInt8] {
        var w = ByteWriter(count: Self.headerSize + 4 * Self.rowsPerParticle * particles.count)
        w.bytes[0] = 6
        w.bytes[3] = 5
        w.i32(4, Self.rowsPerParticle)
        w.i32(8, particles.count)
        w.i32(12, 1)
        for (p, col) in particles.enumerated() {
            for (r, x) in col.enumerated() { w.f32(Self.headerSize + 4 * (p * Self.rowsPerParticle + r), x) }
        }
        return w.bytes
    }

    public func write(to path: String) throws {
        guard !particles.isEmpty else { throw FormatError(.io, file: path, "a motive list needs at least one particle") }
        try AtomicFile.write(serialized(), to: path)
    }
}
