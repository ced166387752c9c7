import Foundation
import Formats
import Volumes

/// Measured throughput of the Formats hot paths (for `ml_tomo bench`).
public struct FormatsBenchmarkResult: Sendable, CustomStringConvertible {
    /// MRC volume reads performed and their side.
    public var mrcReads: Int
    public var mrcBox: Int
    /// Distinct files behind those reads (they are all in the page cache after the warm-up pass).
    public var mrcDistinctFiles: Int
    public var mrcReadSeconds: Double
    public var docRows: Int
    public var docWriteSeconds: Double
    public var docReadSeconds: Double

    public var description: String {
        String(format: "read %d MRC %d^3 float32 volumes (%d distinct files, page cache, 1 core): %.3f s (%.1f us each); write %d-row doc: %.3f s; read it back: %.3f s",
               mrcReads, mrcBox, mrcDistinctFiles, mrcReadSeconds, mrcReadSeconds / Double(max(mrcReads, 1)) * 1e6,
               docRows, docWriteSeconds, docReadSeconds)
    }
}

/// Times reading many small MRC volumes (the per-iteration re-read of every subtomogram, spec §3.1) and
/// writing/reading a large image doc. Not a test: it returns figures and asserts nothing.
public enum FormatsBenchmark {
    /// - Parameters:
    ///   - reads: number of volume reads (target: 10,000 32³ reads in < 2 s on one core).
    ///   - distinctFiles: files written once and read round-robin (all cached; keeps disk use small).
    ///   - docRows: rows of the doc written (target: 10,000 rows in < 0.5 s).
    public static func run(reads: Int = 10_000, box: Int = 32, distinctFiles: Int = 1_000, docRows: Int = 10_000) throws -> FormatsBenchmarkResult {
        let fm = FileManager.default
        // A fresh scratch directory, removed afterwards.
        let dir = NSTemporaryDirectory() + "/ml_tomo_formats_bench_\(getpid())_\(UInt32.random(in: 0...UInt32.max))"
        try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? fm.removeItem(atPath: dir) }

        // Distinct files with distinct content.
        let nFiles = max(1, min(distinctFiles, reads))
        var paths: [String] = []
        var v = Volume(dim: box)
        for i in 0..<nFiles {
            for j in 0..<v.data.count { v.data[j] = Float((i * 7919 + j * 31) % 1000) * 0.001 - 0.5 }
            let p = dir + "/sub_\(i).mrc"
            try MRCFile.write(v, to: p, voxelSize: 2.0)
            paths.append(p)
        }
        // Warm the page cache.
        for p in paths { _ = try VolumeIO.read(p) }

        var checksum = 0.0
        let t0 = DispatchTime.now().uptimeNanoseconds
        for r in 0..<reads {
            let vol = try VolumeIO.read(paths[r % nFiles])
            checksum += Double(vol.data[r % vol.data.count])
        }
        let t1 = DispatchTime.now().uptimeNanoseconds
        if checksum.isNaN { print("unreachable") }   // keeps the reads observable

        // A doc like the ones the refinement writes every iteration.
        var table = MetaDataTable(name: "images", labels: ["image", "enabled", "missingRegionNumber", "angleRot", "angleTilt",
                                                          "anglePsi", "shiftX", "shiftY", "shiftZ", "ref", "logLikelihood",
                                                          "maxProbability"])
        for i in 0..<docRows {
            let x = Double(i)
            table.appendRow([.string(String(format: "%06d@subtomograms.mrcs", i + 1)), .int(1), .int(i % 3 + 1),
                             .real(x * 0.731), .real(x * 0.173), .real(-x * 0.337), .real(x * 1e-3), .real(-x * 2e-3),
                             .real(0.25), .int(i % 5 + 1), .real(-12345.678 + x), .real(1 / (1 + x))])
        }
        let docPath = dir + "/bench_it000001.doc"
        let t2 = DispatchTime.now().uptimeNanoseconds
        try MetaDataFile(table).write(to: docPath)
        let t3 = DispatchTime.now().uptimeNanoseconds
        let back = try MetaDataFile.readTable(docPath)
        let t4 = DispatchTime.now().uptimeNanoseconds
        guard back.rowCount == docRows else {
            throw FormatError(.io, file: docPath, "benchmark doc read back \(back.rowCount) rows, wrote \(docRows)")
        }
        return FormatsBenchmarkResult(mrcReads: reads, mrcBox: box, mrcDistinctFiles: nFiles,
                                      mrcReadSeconds: Double(t1 - t0) * 1e-9, docRows: docRows,
                                      docWriteSeconds: Double(t3 - t2) * 1e-9, docReadSeconds: Double(t4 - t3) * 1e-9)
    }
}
