import Foundation
import Formats
import Testing
import Volumes

#if canImport(Glibc)
import Glibc
#endif

/// One row of a result doc, by image name.
struct DocRow: Equatable {
    var classNumber: Int
    var angles: EulerAngles
    var shift: SIMD3<Double>
    var logLikelihood: Double
    var maxProbability: Double
}

/// Readers and small numerical helpers shared by the option, seed, restart and rejection suites.
enum RunFiles {
    /// The data rows of a result (or input) doc, keyed by `_image` (the command-line comment is ignored).
    static func rows(_ path: String) throws -> [String: DocRow] {
        let t = try MetaDataFile.readTable(path)
        var out: [String: DocRow] = [:]
        for r in 0 ..< t.rowCount {
            func d(_ label: String) throws -> Double { t.has(label) ? try t.double(label, row: r) : 0 }
            out[try t.string("image", row: r)] = DocRow(
                classNumber: t.has("ref") ? try t.int("ref", row: r) : 0,
                angles: EulerAngles(rot: try d("angleRot"), tilt: try d("angleTilt"), psi: try d("anglePsi")),
                shift: SIMD3(try d("shiftX"), try d("shiftY"), try d("shiftZ")),
                logLikelihood: try d("logLikelihood"), maxProbability: try d("maxProbability"))
        }
        return out
    }

    /// Every data row of a metadata file as text values (label → column), in file order.
    static func table(_ path: String) throws -> MetaDataTable { try MetaDataFile.readTable(path) }

    /// Class fractions (`weight`) of a `_ref.doc`.
    static func weights(_ path: String) throws -> [Double] {
        let t = try MetaDataFile.readTable(path)
        return try (0 ..< t.rowCount).map { try t.double("weight", row: $0) }
    }

    /// A key/value of a `_log.doc` (row format).
    static func logValue(_ path: String, _ label: String) throws -> Double {
        try MetaDataFile.readTable(path).double(label, row: 0)
    }

    static func norm(_ v: SIMD3<Double>) -> Double { (v * v).sum().squareRoot() }

    /// Every image of `reference` is in `other` with the same class and orientation (1e-3°), and with
    /// `shifts` the same shift (1e-4 px): a run on another number of ranks (`ranks` names it in messages).
    static func expectSamePoses(_ other: [String: DocRow], as reference: [String: DocRow], ranks: String,
                                context: String = "", shifts: Bool = false,
                                sourceLocation: SourceLocation = #_sourceLocation) throws {
        for (image, row1) in reference {
            let row = try #require(other[image], "\(image) missing from the \(ranks) doc", sourceLocation: sourceLocation)
            #expect(row.classNumber == row1.classNumber, "\(context)\(image): class \(row.classNumber) vs \(row1.classNumber)",
                    sourceLocation: sourceLocation)
            #expect(distance(row.angles, row1.angles) < 1e-3, "\(context)\(image): \(row.angles) vs \(row1.angles)",
                    sourceLocation: sourceLocation)
            if shifts {
                #expect(norm(row.shift - row1.shift) < 1e-4, "\(context)\(image): \(row.shift) vs \(row1.shift)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// Geodesic distance (degrees) between two orientations.
    static func distance(_ a: EulerAngles, _ b: EulerAngles) -> Double { rotationDistance(a.matrix, b.matrix) }

    /// Pearson correlation of two volumes of equal size.
    static func correlation(_ a: Volume, _ b: Volume) -> Double {
        precondition(a.data.count == b.data.count)
        let n = Double(a.data.count)
        let ma = a.data.reduce(0.0) { $0 + Double($1) } / n
        let mb = b.data.reduce(0.0) { $0 + Double($1) } / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0 ..< a.data.count {
            let x = Double(a.data[i]) - ma, y = Double(b.data[i]) - mb
            sab += x * y
            saa += x * x
            sbb += y * y
        }
        return sab / max((saa * sbb).squareRoot(), .leastNonzeroMagnitude)
    }

    /// ‖a − b‖ / ‖a‖.
    static func relativeDifference(_ a: Volume, _ b: Volume) -> Double {
        var diff = 0.0, norm = 0.0
        for i in 0 ..< a.data.count {
            let x = Double(a.data[i]), y = Double(b.data[i])
            diff += (x - y) * (x - y)
            norm += x * x
        }
        return (diff / max(norm, .leastNonzeroMagnitude)).squareRoot()
    }

    /// The volume rotated by 90° about z (x → −y about the centre d/2), voxels that leave the box zero:
    /// the c4 test compares only voxels whose image stays inside.
    static func c4Difference(_ v: Volume) -> Double {
        let d = v.nx, c = d / 2
        var diff = 0.0, norm = 0.0
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< d {
                    let x2 = c - (y - c), y2 = c + (x - c)
                    guard x2 >= 0, x2 < d, y2 >= 0, y2 < d else { continue }
                    let a = Double(v[x, y, z]), b = Double(v[x2, y2, z])
                    diff += (a - b) * (a - b)
                    norm += a * a
                }
            }
        }
        return (diff / max(norm, .leastNonzeroMagnitude)).squareRoot()
    }

    /// `ml_tomo evaluate --json` of a result against the simulated truth in `truthDir`.
    static func evaluate(truth truthDir: String, doc: String, currentDirectory: String) async throws -> [String: Any] {
        let run = try await ProcessRunner.mlTomo(["evaluate", "--truth", truthDir, "--doc", doc, "--json"],
                                                 currentDirectory: currentDirectory, timeout: 120)
        try #require(run.status == 0, "evaluate failed: \(run)")
        let object = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8))
        return try #require(object as? [String: Any], "evaluate printed no JSON object: \(run.stdout)")
    }

    static func accuracy(_ report: [String: Any]) -> Double { report["accuracy"] as? Double ?? -1 }

    /// Median of the named error summary (e.g. "angularErrorRaw").
    static func median(_ report: [String: Any], _ summary: String) -> Double {
        ((report[summary] as? [String: Any])?["median"] as? Double) ?? .infinity
    }

    /// Writes the particle block of `truth.star` as a plain doc (`truth.doc`): the input angles,
    /// shifts, classes and regions of a perfectly aligned data set.
    static func writeTruthDoc(in directory: String, name: String = "truth.doc") throws {
        let table = try MetaDataFile.readTable("particles@" + directory + "/truth.star")
        var plain = table
        plain.name = ""
        try MetaDataFile(plain).write(to: directory + "/" + name)
    }

    /// PIDs of running processes whose command line contains `needle` (and `also`, if given).
    static func processes(containing needle: String, also: String? = nil) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var out: [pid_t] = []
        for e in entries {
            guard let pid = pid_t(e), pid != getpid(),
                  let raw = FileManager.default.contents(atPath: "/proc/\(e)/cmdline") else { continue }
            let cmd = String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            if cmd.contains(needle), also.map(cmd.contains) ?? true { out.append(pid) }
        }
        return out
    }

    /// PID of the MPI rank `rank` of a running job whose command line contains `also` (the rank's
    /// environment holds `OMPI_COMM_WORLD_RANK`, which mpirun itself does not have).
    static func rankProcess(_ rank: Int, also: String) -> pid_t? {
        processes(containing: "ml_tomo", also: also).first { pid in
            guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return false }
            return raw.split(separator: 0).contains { String(decoding: $0, as: UTF8.self) == "OMPI_COMM_WORLD_RANK=\(rank)" }
        }
    }

    /// Process group of `pid` (field 5 of /proc/pid/stat).
    static func processGroup(_ pid: pid_t) -> pid_t? {
        guard let raw = FileManager.default.contents(atPath: "/proc/\(pid)/stat") else { return nil }
        let text = String(decoding: raw, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 2 ? pid_t(fields[2]) : nil
    }

    /// Waits (polling) until `path` exists; false after `timeout` seconds.
    static func waitForFile(_ path: String, timeout: Double) async -> Bool {
        let start = Date()
        while Date().timeIntervalSince(start) < timeout {
            if FileManager.default.fileExists(atPath: path) { return true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return false
    }

    /// How often `needle` occurs in `text`.
    static func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }
}
