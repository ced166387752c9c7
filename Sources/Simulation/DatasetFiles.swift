import Foundation
import Formats
import Volumes

/// File format of the written subtomograms.
public enum ParticleFileFormat: String, Sendable, CaseIterable {
    case mrc
    case spider

    /// Spider volumes get Xmipp's customary `.vol`.
    public var fileExtension: String { self == .mrc ? "mrc" : "vol" }
}

/// Names of the files `ml_tomo simulate` writes into its output directory. Image paths inside the
/// metadata are relative to that directory (the readers also look next to the metadata file).
public enum DatasetLayout {
    public static let selFile = "images.sel"
    public static let docFile = "images.doc"
    public static let wedgesFile = "wedges.doc"
    public static let truthFile = "truth.star"
    public static let particleDirectory = "particles"
    public static let truthBlock = "particles"
    public static let settingsBlock = "simulation"

    public static func particleName(_ i: Int, format: ParticleFileFormat) -> String {
        particleDirectory + String(format: "/particle_%06d.", i + 1) + format.fileExtension
    }

    /// True reference of 0-based class k: `truth_ref000001.mrc` for class 1.
    public static func truthReferenceName(_ k: Int) -> String { String(format: "truth_ref%06d.mrc", k + 1) }
}

/// What was written, for the command's summary line.
public struct DatasetSummary: Sendable {
    public var particles: Int
    public var classCounts: [Int]
    public var meanSignalVariance: Double
    public var meanNoiseVariance: Double
    public var files: [String]
}

public enum DatasetWriter {
    /// Writes the whole data set into `directory` (created if needed): particles, images.sel,
    /// images.doc, wedges.doc, truth_refNNNNNN.mrc and truth.star. Every file is written atomically.
    /// Particles are generated `batch` at a time on all cores; the result does not depend on it.
    public static func write(_ simulator: ParticleSimulator, to directory: String, format: ParticleFileFormat,
                             pixelSize: Double = 1, progress: ((Int, Int) -> Void)? = nil) throws -> DatasetSummary {
        let s = simulator.settings
        let fm = FileManager.default
        if s.missing.regions.isEmpty {
            // A stale wedges.doc from an earlier run in the same directory would contradict the data.
            try? fm.removeItem(atPath: directory + "/" + DatasetLayout.wedgesFile)
        }
        let partDir = directory + "/" + DatasetLayout.particleDirectory
        do {
            try fm.createDirectory(atPath: partDir, withIntermediateDirectories: true)
        } catch {
            throw SimulationError("cannot create the output directory \(partDir): \(error.localizedDescription)")
        }
        func path(_ name: String) -> String { directory + "/" + name }

        var written: [String] = []
        for k in 0..<s.classes {
            let name = DatasetLayout.truthReferenceName(k)
            try VolumeIO.write(simulator.reference(k), to: path(name), voxelSize: pixelSize)
            written.append(name)
        }

        var truths: [ParticleTruth] = []
        truths.reserveCapacity(s.particles)
        var signalSum = 0.0, noiseSum = 0.0
        let batch = max(1, ProcessInfo.processInfo.activeProcessorCount * 4)
        var start = 0
        while start < s.particles {
            let count = min(batch, s.particles - start)
            let box = ParticleBox(count: count)
            let first = start
            DispatchQueue.concurrentPerform(iterations: count) { j in
                box.store(simulator.particle(first + j), at: j)
            }
            for j in 0..<count {
                let p = box.items[j]!
                let name = DatasetLayout.particleName(first + j, format: format)
                try VolumeIO.write(p.volume, to: path(name), voxelSize: pixelSize)
                truths.append(p.truth)
                signalSum += p.signalVariance
                noiseSum += p.noiseVariance
            }
            start += count
            progress?(start, s.particles)
        }
        let names = (0..<s.particles).map { DatasetLayout.particleName($0, format: format) }

        try selTable(names: names).writeFile(path(DatasetLayout.selFile))
        try docTable(names: names, truths: truths).writeFile(path(DatasetLayout.docFile))
        let hasRegions = !s.missing.regions.isEmpty
        if hasRegions { try wedgesTable(s.missing).writeFile(path(DatasetLayout.wedgesFile)) }
        try MetaDataFile(blocks: [truthTable(names: names, truths: truths), settingsTable(s, format: format, pixelSize: pixelSize)])
            .write(to: path(DatasetLayout.truthFile))
        written += [DatasetLayout.selFile, DatasetLayout.docFile] + (hasRegions ? [DatasetLayout.wedgesFile] : [])
            + [DatasetLayout.truthFile]

        var counts = [Int](repeating: 0, count: s.classes)
        for t in truths { counts[t.classIndex] += 1 }
        return DatasetSummary(particles: s.particles, classCounts: counts,
                              meanSignalVariance: signalSum / Double(s.particles),
                              meanNoiseVariance: noiseSum / Double(s.particles), files: written)
    }

    /// `images.sel`: `_image _enabled`.
    public static func selTable(names: [String]) -> MetaDataTable {
        var t = MetaDataTable(name: "", labels: ["image", "enabled"])
        for n in names { t.appendRow([.string(n), .int(1)]) }
        return t
    }

    /// `images.doc`: the seed's input table with zero angles and shifts (the refinement must find them),
    /// class 1 and each particle's missing-region row (no region column when nothing is missing).
    public static func docTable(names: [String], truths: [ParticleTruth]) -> MetaDataTable {
        let withRegions = truths.contains { $0.regionIndex != nil }
        var t = MetaDataTable(name: "", labels: ["image"] + (withRegions ? ["missingRegionNumber"] : [])
                              + ["angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ", "ref", "logLikelihood"])
        for (n, tr) in zip(names, truths) {
            let region: [MetaDataValue] = withRegions ? [.int((tr.regionIndex ?? 0) + 1)] : []
            t.appendRow([.string(n)] + region + [.real(0), .real(0), .real(0),
                         .real(0), .real(0), .real(0), .int(1), .real(0)])
        }
        return t
    }

    /// `wedges.doc`: one row per missing region (the seed's missing-region table).
    public static func wedgesTable(_ plan: MissingRegionPlan) -> MetaDataTable {
        var t = MetaDataTable(name: "", labels: ["missingRegionNumber", "missingRegionType",
                                                 "missingRegionThetaY0", "missingRegionThetaYF",
                                                 "missingRegionThetaX0", "missingRegionThetaXF"],
                              comment: "Wedgeinfo")
        for (i, r) in plan.regions.enumerated() {
            t.appendRow([.int(i + 1), .string(r.kind.rawValue), .real(r.thetaY0), .real(r.thetaYF),
                         .real(r.thetaX0), .real(r.thetaXF)])
        }
        return t
    }

    /// `truth.star`, block `particles`: the transform a perfect refinement would write (spec §10).
    public static func truthTable(names: [String], truths: [ParticleTruth]) -> MetaDataTable {
        var t = MetaDataTable(name: DatasetLayout.truthBlock,
                              labels: ["image", "ref", "angleRot", "angleTilt", "anglePsi",
                                       "shiftX", "shiftY", "shiftZ", "missingRegionNumber"],
                              comment: """
                                Ground truth of ml_tomo simulate. Particle X satisfies X(x) = Ref_ref(A (x + t)) + noise, \
                                A = E(angleRot, angleTilt, anglePsi) (Xmipp ZYZ), t = (shiftX, shiftY, shiftZ) pixels: \
                                exactly what a perfect ml_tomo run writes (translate by t, then rotate by A).
                                """)
        for (n, tr) in zip(names, truths) {
            t.appendRow([.string(n), .int(tr.classIndex + 1), .real(tr.angles.rot), .real(tr.angles.tilt),
                         .real(tr.angles.psi), .real(tr.shift.x), .real(tr.shift.y), .real(tr.shift.z),
                         .int((tr.regionIndex ?? -1) + 1)])
        }
        return t
    }

    /// `truth.star`, block `simulation`: the settings (row format), so a data set documents itself.
    static func settingsTable(_ s: SimulationSettings, format: ParticleFileFormat, pixelSize: Double) -> MetaDataTable {
        var t = MetaDataTable(name: DatasetLayout.settingsBlock,
                              labels: ["classes", "particles", "size", "snr", "seed", "shiftSigma", "format", "pixelSize"],
                              layout: .list)
        t.appendRow([.int(s.classes), .int(s.particles), .int(s.dim), .real(s.snr), .string(String(s.seed)),
                     .real(s.shiftSigma), .string(format.rawValue), .real(pixelSize)])
        return t
    }
}

/// Results of a concurrent batch, stored by index (each slot written by exactly one iteration).
private final class ParticleBox: @unchecked Sendable {
    private(set) var items: [SimulatedParticle?]
    private let lock = NSLock()
    init(count: Int) { items = [SimulatedParticle?](repeating: nil, count: count) }
    func store(_ p: SimulatedParticle, at i: Int) {
        lock.lock()
        items[i] = p
        lock.unlock()
    }
}

extension MetaDataTable {
    /// Writes this table as a one-block Xmipp STAR file, atomically.
    func writeFile(_ path: String) throws { try MetaDataFile(self).write(to: path) }
}

/// Reading truth and result metadata for `ml_tomo evaluate`.
public enum RecordReader {
    /// Particle records from an Xmipp metadata file (truth.star or a refinement's doc/xmd). Needs
    /// `_image` and `_ref`; angles and shifts default to 0 when absent; disabled rows are skipped.
    /// `block` picks a named block if the file has one.
    public static func read(_ path: String, block: String? = nil) throws -> [ParticleRecord] {
        let file = try MetaDataFile.read(path)
        guard var table = block.flatMap({ file.block(named: $0) }) ?? file.blocks.first else {
            throw SimulationError("\(path): no data_ block")
        }
        table = try table.removingDisabledRows()
        try table.require(["image", "ref"])
        var out: [ParticleRecord] = []
        out.reserveCapacity(table.rowCount)
        func real(_ label: String, _ r: Int) throws -> Double { table.has(label) ? try table.double(label, row: r) : 0 }
        for r in 0..<table.rowCount {
            let k = try table.int("ref", row: r)
            guard k >= 1 else {
                throw table.error(row: r, .wrongType, "_ref = \(k): classes are numbered from 1")
            }
            let regionNumber = table.has("missingRegionNumber") ? try table.int("missingRegionNumber", row: r) : 0
            let region = regionNumber > 0 ? regionNumber - 1 : nil
            out.append(ParticleRecord(
                image: try table.string("image", row: r), classIndex: k - 1,
                angles: EulerAngles(rot: try real("angleRot", r), tilt: try real("angleTilt", r), psi: try real("anglePsi", r)),
                shift: SIMD3(try real("shiftX", r), try real("shiftY", r), try real("shiftZ", r)),
                regionIndex: region))
        }
        return out
    }
}
