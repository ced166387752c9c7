import Foundation
import Formats
import Testing
import Volumes

/// Every prefix and thousands of seeded random byte flips of small valid files must give a FormatError or a
/// valid value: never a crash, a hang, or another kind of error.
@Suite struct CorruptionSweepTests {
    /// Mutations of `good`: every prefix (stride `prefixStride`), then `flips` trials of 1–4 random byte changes.
    static func mutations(of good: [UInt8], prefixStride: Int = 1, flips: Int, seed: UInt64) -> [[UInt8]] {
        var out: [[UInt8]] = []
        for n in stride(from: 0, to: good.count, by: prefixStride) { out.append(Array(good.prefix(n))) }
        var rng = SeededRandom(seed: seed)
        for _ in 0..<flips {
            var b = good
            for _ in 0..<(1 + rng.int(4)) {
                let i = rng.int(b.count)
                b[i] ^= UInt8(1 + rng.int(255))
            }
            out.append(b)
        }
        return out
    }

    /// Runs `read` on each mutation written to a file; returns (errors, successes).
    static func sweep(_ good: [UInt8], name: String, prefixStride: Int = 1, flips: Int, seed: UInt64,
                      read: (String) throws -> Void) -> (errors: Int, ok: Int, other: [String]) {
        let s = Scratch(name)
        defer { s.cleanup() }
        var errors = 0, ok = 0
        var other: [String] = []
        for m in mutations(of: good, prefixStride: prefixStride, flips: flips, seed: seed) {
            let p = s.write(m, to: name)
            do {
                try read(p)
                ok += 1
            } catch is FormatError {
                errors += 1
            } catch {
                other.append("\(error)")
            }
        }
        return (errors, ok, other)
    }

    static func checkVolume(_ v: Volume) throws {
        guard v.nx > 0, v.ny > 0, v.nz > 0, v.data.count == v.nx * v.ny * v.nz, v.data.allSatisfy(\.isFinite) else {
            throw FormatError(.io, file: "?", "invalid volume returned")   // counted as an error, but see the test below
        }
    }

    @Test func mrc() throws {
        let s = Scratch()
        defer { s.cleanup() }
        try MRCFile.write([randomVolume(nx: 4, ny: 4, nz: 4, seed: 60), randomVolume(nx: 4, ny: 4, nz: 4, seed: 61)],
                          to: s.path("a.mrcs"))
        var invalid = 0
        let r = Self.sweep(s.bytes("a.mrcs"), name: "m.mrcs", flips: 3000, seed: 1) { p in
            _ = try VolumeIO.dimensions(p)
            for v in try VolumeIO.readStack(p) {
                if (try? Self.checkVolume(v)) == nil { invalid += 1 }
            }
            _ = try VolumeIO.read("1@" + p)
        }
        #expect(r.other.isEmpty)
        #expect(invalid == 0)
        #expect(r.errors > 1000)   // every short prefix must fail
        #expect(r.ok > 100)        // flips in the data leave a valid file
    }

    @Test func spider() throws {
        let s = Scratch()
        defer { s.cleanup() }
        try SpiderFile.writeStack([randomVolume(nx: 4, ny: 4, nz: 4, seed: 62), randomVolume(nx: 4, ny: 4, nz: 4, seed: 63)],
                                  to: s.path("a.stk"))
        var invalid = 0
        let r = Self.sweep(s.bytes("a.stk"), name: "m.stk", prefixStride: 3, flips: 3000, seed: 2) { p in
            _ = try VolumeIO.dimensions(p)
            for v in try VolumeIO.readStack(p) {
                if (try? Self.checkVolume(v)) == nil { invalid += 1 }
            }
        }
        #expect(r.other.isEmpty)
        #expect(invalid == 0)
        #expect(r.errors > 500)
        #expect(r.ok > 100)
    }

    @Test func star() throws {
        var t = MetaDataTable(name: "images", labels: ["image", "enabled", "angleRot", "ref", "note"])
        for i in 0..<6 { t.appendRow([.string("\(i + 1)@s.mrcs"), .int(1), .real(Double(i) * 1.5), .int(i % 2 + 1), .string("a b")]) }
        var log = MetaDataTable(name: "log", labels: ["logLikelihood", "pMax"], layout: .list)
        log.appendRow([.real(-5), .real(0.5)])
        let good = MetaDataFile(blocks: [log, t]).serialized()
        var errors = 0, ok = 0
        for m in Self.mutations(of: good, flips: 4000, seed: 3) {
            do {
                let f = try MetaDataFile.parse(bytes: m, path: "fuzz.xmd")
                for b in f.blocks {
                    for r in 0..<b.rowCount {
                        for l in b.labels { _ = try? b.double(l, row: r); _ = try b.string(l, row: r) }
                        #expect(b.rows[r].count == b.labels.count)
                    }
                    _ = try? b.enabledRowIndices()
                }
                _ = try? RelionStarFile.interpret(bytes: m)
                ok += 1
            } catch is FormatError {
                errors += 1
            }
        }
        #expect(errors > 100 && ok > 100)
    }

    @Test func hdf5() throws {
        let s = Scratch()
        defer { s.cleanup() }
        let f = ReferenceStackFile(references: [randomVolume(nx: 4, ny: 4, nz: 4, seed: 64)], fsc: [[1, 0.5]], iteration: 1,
                                   voxelSize: 2, classFractions: [1], sigmaNoise: 1, sigmaOffset: 1, logLikelihood: -1)
        try f.write(to: s.path("a.h5"))
        let r = Self.sweep(s.bytes("a.h5"), name: "m.h5", prefixStride: 31, flips: 600, seed: 4) { p in
            let g = try ReferenceStackFile.read(p)
            for v in g.references { try Self.checkVolume(v) }
            _ = try VolumeIO.read("1@" + p)
        }
        #expect(r.other.isEmpty)
        #expect(r.errors > 50 && r.ok > 50)
    }
}

extension RelionStarFile {
    /// Test helper: interpret bytes as a RELION file.
    static func interpret(bytes: [UInt8]) throws -> RelionStarFile {
        try parse(text: String(decoding: bytes, as: UTF8.self), path: "fuzz.star")
    }
}
