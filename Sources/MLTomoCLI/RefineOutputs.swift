import Distributed
import Engine
import Formats
import Foundation
import Volumes

/// Names and writes the files of a refinement (README.md, "Files a refinement writes"). Rank 0
/// only; every file is written atomically (temporary file + rename), so a run killed at any moment
/// leaves each file either complete or absent.
struct RefineOutputs {
    let oroot: String
    let commandLine: String
    /// Å per voxel of the input subtomograms (`--pixel_size`).
    let pixelSize: Double
    let originalDim: Int
    let workingDim: Int
    let hasMissingData: Bool
    /// The `--missing` regions, for the RELION wedge masks (RefineRelionOutput.swift).
    var regions: [MissingRegion] = []

    /// `<oroot>_itNNNNNN`, or `<oroot>` for the final files (iteration nil).
    func base(_ iteration: Int?) -> String {
        guard let iteration else { return oroot }
        return oroot + "_it" + String(format: "%06d", iteration)
    }

    func referencePath(_ iteration: Int?, classIndex k: Int) -> String {
        base(iteration) + "_ref" + String(format: "%06d", k + 1) + ".mrc"
    }

    /// Checks, before any work, that the output directory exists or can be created (nothing is created
    /// yet: a run that fails before its first iteration leaves nothing behind).
    func checkDirectory() throws {
        var dir = Self.parent(of: oroot)
        if dir.isEmpty { dir = "." }
        let fm = FileManager.default
        var probe = dir
        while !fm.fileExists(atPath: probe) {
            let parent = Self.parent(of: probe)
            if parent.isEmpty || parent == probe { probe = "."; break }
            probe = parent
        }
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: probe, isDirectory: &isDirectory), isDirectory.boolValue, fm.isWritableFile(atPath: probe) else {
            throw ValidationFailure("--oroot \(oroot): cannot write into \(probe)")
        }
    }

    /// The directory part of `path` ("" for a bare name, "/" for a file at the root). Written out because
    /// swift-corelibs-foundation's `deletingLastPathComponent` traps on one-character paths such as "a".
    static func parent(of path: String) -> String {
        var p = Substring(path)
        while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
        guard let slash = p.lastIndex(of: "/") else { return "" }
        if slash == p.startIndex { return "/" }
        var dir = p[..<slash]
        while dir.count > 1, dir.hasSuffix("/") { dir = dir.dropLast() }
        return String(dir)
    }

    /// Removes the temporary files of this `oroot`'s outputs that an earlier run, killed mid-write, left in
    /// the output directory (`AtomicFile.removeAbandonedTemporaries`); returns their paths.
    func removeAbandonedTemporaries() -> [String] {
        let dir = Self.parent(of: oroot)
        var name = Substring(oroot)
        while name.count > 1, name.hasSuffix("/") { name = name.dropLast() }
        if let slash = name.lastIndex(of: "/") { name = name[name.index(after: slash)...] }
        return AtomicFile.removeAbandonedTemporaries(in: dir.isEmpty ? "." : dir, forNamesStartingWith: String(name))
    }

    /// Creates the output directory of `oroot` if needed.
    func prepareDirectory() throws {
        let dir = Self.parent(of: oroot)
        guard !dir.isEmpty else { return }
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw ValidationFailure("--oroot \(oroot): cannot create the output directory \(dir): \(error.localizedDescription)")
        }
    }

    /// Everything of one iteration (or the final set when `iteration` is nil) but its log doc, which
    /// `RefineProgress` writes last, with the time the others took.
    func write(iteration: Int?, model: Model, results: [ParticleResult], images: MetaDataTable,
               statistics: IterationStatistics?) throws {
        // References first (MRC at the input box size, for ChimeraX/IMOD), then the HDF5 state, then the
        // docs that name them: a reader that finds a doc also finds the files it points to.
        for (k, ref) in model.references.enumerated() {
            let volume = ref.nx == originalDim ? ref : ref.fourierResized(to: originalDim)
            try MRCFile.write(volume, to: referencePath(iteration, classIndex: k), voxelSize: pixelSize)
        }
        try RestartState().write(to: base(iteration) + ".h5", model: model, results: results,
                        voxelSize: pixelSize * Double(originalDim) / Double(workingDim),
                        logLikelihood: statistics?.logLikelihood ?? 0)
        try referenceDoc(iteration: iteration, model: model, results: results).write(to: base(iteration) + "_ref.doc")
        try imageDoc(images: images, results: results).write(to: base(iteration) + ".doc")
        try writeRelion(iteration: iteration, images: images, results: results, classFractions: model.fractions)
    }

    /// The input image table with the result columns of this iteration.
    func imageDoc(images: MetaDataTable, results: [ParticleResult]) -> MetaDataFile {
        var table = images
        table.name = ""
        table.layout = .loop
        table.comment = "ml_tomo results; command: \(commandLine)"
        for r in results {
            let row = r.globalIndex
            table.set("angleRot", row: row, .real(r.angles.rot), fill: .real(0))
            table.set("angleTilt", row: row, .real(r.angles.tilt), fill: .real(0))
            table.set("anglePsi", row: row, .real(r.angles.psi), fill: .real(0))
            table.set("shiftX", row: row, .real(r.shift.x), fill: .real(0))
            table.set("shiftY", row: row, .real(r.shift.y), fill: .real(0))
            table.set("shiftZ", row: row, .real(r.shift.z), fill: .real(0))
            table.set("ref", row: row, .int(r.classNumber))
            table.set("logLikelihood", row: row, .real(r.logLikelihood), fill: .real(0))
            if hasMissingData { table.set("missingRegionNumber", row: row, .int(r.regionNumber)) }
            table.set("maxProbability", row: row, .real(r.maxProbability), fill: .real(0))
        }
        return MetaDataFile(table)
    }

    /// One row per class: the MRC written for it, its fraction (`weight`, so the file can be given to
    /// `--ref` to continue), resolution, images assigned to it.
    func referenceDoc(iteration: Int?, model: Model, results: [ParticleResult]) -> MetaDataFile {
        var table = MetaDataTable(name: "classes", labels: [], layout: .loop,
                                  comment: "ml_tomo references; command: \(commandLine)")
        var counts = [Int](repeating: 0, count: model.classCount)
        for r in results where (1 ... model.classCount).contains(r.classNumber) { counts[r.classNumber - 1] += 1 }
        for k in 0 ..< model.classCount {
            let path = referencePath(iteration, classIndex: k)
            let resolution = k < model.resolutions.count ? model.resolutions[k] : 0
            table.appendRow([
                ("image", .string(path)),
                ("enabled", .int(1)),
                ("ref", .int(k + 1)),
                ("weight", .real(model.fractions[k])),
                ("classCount", .int(counts[k])),
                ("resolution", .real(resolution)),
                ("signalChange", .real(k < model.signalChange.count ? model.signalChange[k] : 0)),
            ])
        }
        return MetaDataFile(table)
    }

    /// Iteration statistics in row (key/value) format, with the command line as the block comment.
    func logDoc(iteration: Int, statistics s: IterationStatistics, model: Model, timing t: RankTiming) -> MetaDataFile {
        var table = MetaDataTable(name: "", labels: [], layout: .list, comment: commandLine)
        var row: [(String, MetaDataValue)] = [
            ("iterationNumber", .int(iteration)),
            ("logLikelihood", .real(s.logLikelihood)),
            ("pMax", .real(s.averageMaxProbability)),
            ("sigmaNoise", .real(s.sigmaNoise)),
            ("sigmaOffset", .real(s.sigmaOffset)),
            ("imageMetaData", .string(base(iteration) + ".doc")),
            ("referenceMetaData", .string(base(iteration) + "_ref.doc")),
            ("converged", .int(s.converged ? 1 : 0)),
        ]
        if s.radius > 0 {
            // The resolution-limited mode: the band this iteration's likelihood used, as shells and Å.
            row += [("currentRadius", .int(s.radius)), ("currentBox", .int(s.workingDim)),
                    ("currentResolution", .real(Double(originalDim) * pixelSize / Double(s.radius)))]
        }
        if s.coarseTriples > 0 {
            // The two-pass search: the coarse pass's reach (0: global) and, where measured, the fraction
            // of particles that moved by more than one step or changed class (automatic local refinement).
            row += [("localSearchReach", .real(s.localSearchReach)), ("movedFraction", .real(s.movedFraction ?? -1))]
        }
        row += [
            ("timeEStepMax", .real(t.eStepMax)), ("timeEStepMin", .real(t.eStepMin)),
            ("timeReduce", .real(t.reduce)), ("timeMStep", .real(t.mStep)), ("timeWrite", .real(t.write)),
            ("timeIteration", .real(t.total)), ("ranks", .int(t.ranks)), ("threads", .int(t.threads)),
        ]
        table.appendRow(row)
        return MetaDataFile(blocks: [table] + (s.radius > 0 ? [shellTable(model)] : []))
    }

    /// The resolution-limited mode's per-shell curves of the iteration (block `shells`): per class and
    /// Fourier shell of the working box, the resolution (Å), the half-set FSC, the SSNR of the class
    /// reference it implies, and τ²/σ² (`tau2OverSigma2`), the MAP prior's signal power over one image's
    /// noise power (1/λ of the update; 0 where the shell was zeroed).
    func shellTable(_ model: Model) -> MetaDataTable {
        var table = MetaDataTable(name: "shells", layout: .loop)
        let shells = model.dim / 2
        for c in 0 ..< model.classCount {
            func value(_ curves: [[Double]], _ q: Int) -> Double { c < curves.count && q < curves[c].count ? curves[c][q] : 0 }
            for q in 1 ... max(1, shells) {
                table.appendRow([
                    ("ref", .int(c + 1)), ("shell", .int(q)),
                    ("resolution", .real(Double(originalDim) * pixelSize / Double(q))),
                    ("fsc", .real(value(model.fsc, q))), ("ssnr", .real(value(model.ssnr, q))),
                    ("tau2OverSigma2", .real(value(model.priorSignalToNoise, q))),
                ])
            }
        }
        return table
    }
}
