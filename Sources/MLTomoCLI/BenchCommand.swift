import ArgumentParser
import Diagnostics
import Engine
import Formats
import Foundation
import Volumes

/// `ml_tomo bench`: the performance figures of the project, measured in one run.
///
/// W1–W3 are real refinements (simulated data, `mpirun`, the release binary itself); their E-step is
/// compared with the FFT floor measured inside the same refinement (one d³ c2r per (image, orientation,
/// class) triple, spread over ranks × threads). W4 times the kernels in this process. Results go to
/// `<output>/bench-<date>.json` and a table on standard output. `--smoke` runs one tiny workload, to keep
/// the harness working in CI; its figures mean nothing.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure the performance figures (workloads W1-W4) and write them as JSON."
    )

    @Option(help: "Directory for the JSON results.")
    var output: String = "bench/results"

    @Option(help: "Workloads to run, comma-separated (W1, W2, W3, W4, scaling).")
    var workloads: String = "W1,W2,W3,W4,scaling"

    @Flag(help: "One tiny workload only (CI keeps the harness working; the figures mean nothing).")
    var smoke = false

    @Option(help: "Keep the simulated data and runs in this directory instead of a temporary one.")
    var workdir: String?

    func run() throws {
        let selected = Set(workloads.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() })
        let work = workdir ?? (FileManager.default.temporaryDirectory.path + "/ml_tomo-bench-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { if workdir == nil { try? FileManager.default.removeItem(atPath: work) } }
        let runner = BenchRunner(workdir: work)
        var report = BenchReport(machine: BenchReport.machineDescription(), date: ISO8601DateFormatter().string(from: Date()))

        if smoke {
            report.refinements.append(try runner.refinement(name: "smoke", particles: 4, dim: 16, classes: 1, ang: 30,
                                                            angSearch: nil, ranks: 1, threads: 1))
        } else {
            if selected.contains("W4") { report.kernels = kernelFigures() }
            if selected.contains("W1") {
                report.refinements.append(try runner.refinement(name: "W1", particles: 64, dim: 32, classes: 2, ang: 20,
                                                                angSearch: nil, ranks: 1, threads: 2))
            }
            if selected.contains("W2") {
                report.refinements.append(try runner.refinement(name: "W2", particles: 200, dim: 32, classes: 3, ang: 15,
                                                                angSearch: nil, ranks: 2, threads: 1))
            }
            if selected.contains("W3") {
                report.refinements.append(try runner.refinement(name: "W3", particles: 64, dim: 64, classes: 2, ang: 10,
                                                                angSearch: 20, ranks: 1, threads: 2))
            }
            if selected.contains("SCALING") {
                for n in [32, 64, 128] {
                    report.particleScaling.append(try runner.refinement(name: "N\(n)", particles: n, dim: 32, classes: 2, ang: 20,
                                                                        angSearch: nil, ranks: 1, threads: 2))
                }
                for a in [30.0, 20, 15] {
                    report.orientationScaling.append(try runner.refinement(name: "ang\(Int(a))", particles: 32, dim: 32, classes: 2,
                                                                           ang: a, angSearch: nil, ranks: 1, threads: 2))
                }
            }
        }
        print(report.table())
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let stamp = report.date.replacingOccurrences(of: ":", with: "")
        let path = "\(output)/bench-\(smoke ? "smoke-" : "")\(stamp).json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try encoder.encode(report), to: path)
        print("results: \(path)")
    }

    private func kernelFigures() -> [String: Double] {
        var figures = VolumesBenchmark.run(threads: 2)
        if let f = try? FormatsBenchmark.run(reads: 10_000, box: 32, distinctFiles: 1_000, docRows: 10_000) {
            figures["mrc_read_10000x32_seconds"] = f.mrcReadSeconds
            figures["doc_write_10000_rows_seconds"] = f.docWriteSeconds
            figures["doc_read_10000_rows_seconds"] = f.docReadSeconds
        }
        return figures
    }
}

/// One refinement workload as measured from its JSON lines.
struct RefinementFigures: Codable, Sendable {
    var name: String
    var particles: Int
    var dim: Int
    var classes: Int
    var ang: Double
    var angSearch: Double?
    var ranks: Int
    var threads: Int
    var iterationSeconds: Double
    var eStepSeconds: Double
    var reduceSeconds: Double
    var mStepSeconds: Double
    var writeSeconds: Double
    var triples: Int
    var triplesPerSecond: Double
    var fftC2RSeconds: Double
    /// One c2r per triple over ranks × threads.
    var floorSeconds: Double
    var eStepRatioToFloor: Double
    /// The same floor with the c2r time the E-step's own FFT calls took (mean wall time per call over
    /// all ranks and threads): immune to the VM's drift between the start-up benchmark and the E-step,
    /// but it includes whatever the E-step's other work does to the FFT's caches.
    var c2rInEStepSeconds: Double = 0
    var floorInEStepSeconds: Double = 0
    var eStepRatioToFloorInEStep: Double = 0
    var peakRSSMiB: Double
    /// The runtime's RSS before any image was loaded, and the data budget (images + model + per-thread
    /// buffers, `MemoryBudget`) of the rank with the largest peak (MiB).
    var baselineRSSMiB: Double
    var budgetMiB: Double
    /// What the RSS should stay near: baseline + budget.
    var expectedMemoryMiB: Double { baselineRSSMiB + budgetMiB }
    var memoryRatio: Double { expectedMemoryMiB > 0 ? peakRSSMiB / expectedMemoryMiB : 0 }
    /// The same command's `--dry-run` (run just before): its point estimate of the iteration's time and
    /// triples (the two-pass search's sharp-posterior estimate), for measured ÷ predicted.
    var predictedSeconds: Double = 0
    var predictedTriples: Int = 0
    var measuredOverPredicted: Double { predictedSeconds > 0 ? iterationSeconds / predictedSeconds : 0 }
}

struct BenchReport: Codable {
    var machine: String
    var date: String
    var kernels: [String: Double] = [:]
    var refinements: [RefinementFigures] = []
    var particleScaling: [RefinementFigures] = []
    var orientationScaling: [RefinementFigures] = []

    static func machineDescription() -> String {
        let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown CPU"
        return "\(cpu), \(ProcessInfo.processInfo.activeProcessorCount) cores, "
            + String(format: "%.0f GiB", Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824)
    }

    /// Least-squares slope of log(time) against log(x): 1 means linear growth.
    static func exponent(_ points: [(x: Double, y: Double)]) -> Double? {
        let valid = points.filter { $0.x > 0 && $0.y > 0 }
        guard valid.count >= 2 else { return nil }
        let lx = valid.map { Foundation.log($0.x) }, ly = valid.map { Foundation.log($0.y) }
        let mx = lx.reduce(0, +) / Double(lx.count), my = ly.reduce(0, +) / Double(ly.count)
        let sxy = zip(lx, ly).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let sxx = lx.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
        return sxx > 0 ? sxy / sxx : nil
    }

    func table() -> String {
        var lines = ["machine: \(machine)", "",
                     "| workload | particles | d | K | ang | ranks×thr | s/iter | E-step s | triples/s | c2r µs (start / in E-step) | floor s | E/floor | E/floor in E-step | reduce s | M s | write s | RSS MiB (baseline + budget = expected) | RSS/expected | dry run: s/iter (triples) | measured/predicted |",
                     "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in refinements + particleScaling + orientationScaling {
            let ang = r.angSearch.map { String(format: "%g±%g", r.ang, $0) } ?? String(format: "%g", r.ang)
            lines.append(String(format: "| %@ | %d | %d | %d | %@ | %d×%d | %.2f | %.2f | %.0f | %.1f / %.1f | %.2f | %.2f | %.2f | %.3f | %.3f | %.3f | %.1f (%.1f + %.1f = %.1f) | %.2f | %.2f (%d) | %.2f |",
                                r.name, r.particles, r.dim, r.classes, ang, r.ranks, r.threads, r.iterationSeconds,
                                r.eStepSeconds, r.triplesPerSecond, r.fftC2RSeconds * 1e6, r.c2rInEStepSeconds * 1e6,
                                r.floorSeconds, r.eStepRatioToFloor, r.eStepRatioToFloorInEStep, r.reduceSeconds,
                                r.mStepSeconds, r.writeSeconds, r.peakRSSMiB, r.baselineRSSMiB, r.budgetMiB,
                                r.expectedMemoryMiB, r.memoryRatio, r.predictedSeconds, r.predictedTriples, r.measuredOverPredicted))
        }
        if let e = Self.exponent(particleScaling.map { (Double($0.particles), $0.eStepSeconds) }) {
            lines.append(String(format: "\nE-step time vs particles: fitted exponent %.2f (1 = linear)", e))
        }
        if let e = Self.exponent(orientationScaling.map { (Double($0.triples / max($0.particles * $0.classes, 1)), $0.eStepSeconds) }) {
            lines.append(String(format: "E-step time vs orientations: fitted exponent %.2f (1 = linear)", e))
        }
        if !kernels.isEmpty {
            lines.append("\nkernels:")
            for (k, v) in kernels.sorted(by: { $0.key < $1.key }) { lines.append(String(format: "  %@ = %.4g", k, v)) }
        }
        return lines.joined(separator: "\n")
    }
}

/// Simulates a data set and runs one refinement iteration of it under mpirun, from the true
/// references (steady-state posteriors, like a late iteration), and reads its JSON line.
struct BenchRunner {
    let workdir: String

    var binary: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    func refinement(name: String, particles: Int, dim: Int, classes: Int, ang: Double, angSearch: Double?,
                    ranks: Int, threads: Int) throws -> RefinementFigures {
        let data = "\(workdir)/\(name)"
        try? FileManager.default.removeItem(atPath: data)
        _ = try run([binary, "simulate", data, "--particles", "\(particles)", "--size", "\(dim)", "--classes", "\(classes)",
                     "--snr", "0.1", "--seed", "11"], directory: workdir)
        var refs = MetaDataTable(name: "", labels: ["image"])
        for k in 0 ..< classes { refs.appendRow([.string(String(format: "truth_ref%06d.mrc", k + 1))]) }
        try MetaDataFile(refs).write(to: "\(data)/truth_refs.doc")
        // A local search refines poses found before: it starts from the true ones (truth.star holds them as
        // a refinement writes them); images.doc's zero angles would put every true pose outside the window.
        let doc = angSearch == nil ? "images.doc" : "truth.star"
        var arguments = ["/usr/bin/mpirun", "--allow-run-as-root", "--oversubscribe", "--bind-to", "none", "-np", "\(ranks)",
                         binary, "-i", "images.sel", "--doc", doc, "--missing", "wedges.doc",
                         "--ref", "truth_refs.doc", "--oroot", "run/b", "--iter", "1", "--ang", "\(ang)", "--thr", "\(threads)"]
        if let angSearch { arguments += ["--ang_search", "\(angSearch)"] }
        let prediction = try RunEvents.decode(PredictionEvent.self, from: try run(arguments + ["--dry-run"], directory: data)).last
        let stdout = try run(arguments, directory: data)
        guard let event = try RunEvents.decode(IterationEvent.self, from: stdout).last else {
            throw ValidationError("bench \(name): the refinement printed no iteration line")
        }
        let triples = event.triples
        let fft = event.fftC2RSeconds
        let floor = Double(triples) * fft / Double(ranks * threads)
        let eStep = event.eStepMax
        let c2rInEStep = event.c2rInEStepSeconds
        let floorInEStep = Double(triples) * c2rInEStep / Double(ranks * threads)
        var figures = RefinementFigures(name: name, particles: particles, dim: dim, classes: classes, ang: ang, angSearch: angSearch,
                                 ranks: ranks, threads: threads, iterationSeconds: event.seconds, eStepSeconds: eStep,
                                 reduceSeconds: event.reduce, mStepSeconds: event.mStep, writeSeconds: event.write,
                                 triples: triples, triplesPerSecond: eStep > 0 ? Double(triples) / eStep : 0,
                                 fftC2RSeconds: fft, floorSeconds: floor, eStepRatioToFloor: floor > 0 ? eStep / floor : 0,
                                 peakRSSMiB: event.peakRSSMiB, baselineRSSMiB: event.baselineRSSMiB,
                                 budgetMiB: event.budgetMiB)
        figures.c2rInEStepSeconds = c2rInEStep
        figures.floorInEStepSeconds = floorInEStep
        figures.eStepRatioToFloorInEStep = floorInEStep > 0 ? eStep / floorInEStep : 0
        if let prediction {
            figures.predictedSeconds = prediction.secondsPerIterationExpected > 0
                ? prediction.secondsPerIterationExpected : prediction.secondsPerIteration
            figures.predictedTriples = prediction.triplesExpected > 0 ? prediction.triplesExpected : prediction.triples
        }
        return figures
    }

    /// Runs a command (stdin /dev/null), returns its standard output; a failure is an error with its output.
    private func run(_ command: [String], directory: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var environment = ProcessInfo.processInfo.environment
        environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting, so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errReader.isFinished { usleep(1000) }
        guard process.terminationStatus == 0 else {
            throw ValidationError("bench: `\(command.joined(separator: " "))` failed (status \(process.terminationStatus)):\n"
                + String(decoding: errData, as: UTF8.self))
        }
        return String(decoding: outData, as: UTF8.self)
    }
}
