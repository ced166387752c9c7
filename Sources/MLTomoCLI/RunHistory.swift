import Foundation
import Formats
import Volumes

/// What the report shows, gathered from the files a run wrote (nothing is recomputed from the data).
struct RunHistory {
    struct Iteration {
        var number: Int
        var logLikelihood: Double
        var sigmaNoise: Double
        var sigmaOffset: Double
        var fractions: [Double]
        /// Å⁻¹ per class (FSC 0.5 between half-sets), 0 when not reached.
        var resolutions: [Double]
        /// The central sections of each class reference of this iteration (class 1 first).
        var sections: [CentralSections]
    }

    /// One particle's pose in the last iteration, as the angular distribution plots it.
    struct Orientation {
        var classNumber: Int
        /// Degrees, (−180, 180].
        var rot: Double
        /// Degrees, [0, 180].
        var tilt: Double
    }

    var oroot: String
    /// Every iteration file, iteration 0 (the starting references) first.
    var iterations: [Iteration]
    /// FSC of the last iteration per class, shell q = 1 … d/2 at frequency q / (d · voxelSize).
    var lastFSC: [[Double]]
    var workingBox: Int
    /// Å per voxel at the working size.
    var voxelSize: Double
    /// Central sections of the final references at the input size, class 1 first.
    var finalSections: [CentralSections]
    /// The poses of the last iteration's doc (empty when that doc is missing or has no angles).
    var lastOrientations: [Orientation]

    var classCount: Int { finalSections.count }

    static func iterationBase(_ oroot: String, _ n: Int) -> String { oroot + "_it" + String(format: "%06d", n) }
    static func referencePath(_ base: String, classIndex k: Int) -> String { base + "_ref" + String(format: "%06d", k + 1) + ".mrc" }

    /// Reads `<oroot>_itNNNNNN.h5` (and the `_ref.doc`, `_refNNNNNN.mrc` beside it) of every iteration, the
    /// last iteration's `.doc`, and the final `<oroot>_refNNNNNN.mrc`.
    static func read(oroot: String) throws -> RunHistory {
        let dir = RefineOutputs.parent(of: oroot)
        let stem = (oroot as NSString).lastPathComponent
        let listing = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
        let prefix = stem + "_it"
        let numbers = listing.compactMap { name -> Int? in
            guard name.hasPrefix(prefix), name.hasSuffix(".h5") else { return nil }
            let digits = name.dropFirst(prefix.count).dropLast(3)
            return digits.count == 6 ? Int(digits) : nil
        }.sorted()
        guard let lastNumber = numbers.last else {
            throw ValidationFailure("\(oroot): no \(stem)_itNNNNNN.h5 in \(dir.isEmpty ? "." : dir); give the --oroot of a run")
        }
        var iterations: [Iteration] = []
        var last: ReferenceStackFile?
        for n in numbers {
            let base = iterationBase(oroot, n)
            let stack = try ReferenceStackFile.read(base + ".h5")
            var resolutions = [Double](repeating: 0, count: stack.classCount)
            if let doc = try? MetaDataFile.readTable(base + "_ref.doc"), doc.has("resolution") {
                for r in 0 ..< min(doc.rowCount, stack.classCount) { resolutions[r] = (try? doc.double("resolution", row: r)) ?? 0 }
            }
            // The MRC files are at the input box size (what a user opens); the HDF5 stack is at the
            // working size (--dim) and serves when they are gone.
            let sections = try (0 ..< stack.classCount).map { k in
                try CentralSections(of: volume(at: referencePath(base, classIndex: k), else: stack.references[k]))
            }
            iterations.append(Iteration(number: n, logLikelihood: stack.logLikelihood, sigmaNoise: stack.sigmaNoise,
                                        sigmaOffset: stack.sigmaOffset, fractions: stack.classFractions,
                                        resolutions: resolutions, sections: sections))
            last = stack
        }
        guard let last else { throw ValidationFailure("\(oroot): no iteration could be read") }
        let lastBase = iterationBase(oroot, lastNumber)
        let finalSections = try (0 ..< last.classCount).map { k in
            try CentralSections(of: volume(at: referencePath(oroot, classIndex: k),
                                           else: volume(at: referencePath(lastBase, classIndex: k), else: last.references[k])))
        }
        return RunHistory(oroot: oroot, iterations: iterations, lastFSC: last.fsc ?? [], workingBox: last.box,
                          voxelSize: last.voxelSize, finalSections: finalSections,
                          lastOrientations: try orientations(doc: lastBase + ".doc"))
    }

    static func volume(at path: String, else fallback: @autoclosure () throws -> Volume) throws -> Volume {
        FileManager.default.fileExists(atPath: path) ? try VolumeIO.read(path) : try fallback()
    }

    /// The `_angleRot`, `_angleTilt` and `_ref` of every enabled row; tilt folded into [0°, 180°] with
    /// rot following (the same direction (sin tilt cos rot, sin tilt sin rot, cos tilt)).
    static func orientations(doc path: String) throws -> [Orientation] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let table = try MetaDataFile.readTable(path).removingDisabledRows()
        guard table.has("angleRot"), table.has("angleTilt"), table.has("ref") else { return [] }
        return try (0 ..< table.rowCount).map { r in
            let rot = try table.double("angleRot", row: r) * .pi / 180, tilt = try table.double("angleTilt", row: r) * .pi / 180
            let x = sin(tilt) * cos(rot), y = sin(tilt) * sin(rot), z = cos(tilt)
            return Orientation(classNumber: try table.int("ref", row: r),
                               rot: atan2(y, x) * 180 / .pi, tilt: acos(max(-1, min(1, z))) * 180 / .pi)
        }
    }
}

/// The three central sections of a volume: normal to z (the xy plane at z = nz/2), to y and to x, rows
/// top to bottom along y (or z), as the report draws them.
struct CentralSections {
    enum Normal: String, CaseIterable { case z, y, x }

    struct Plane {
        var normal: Normal
        var width: Int
        var height: Int
        /// Row by row, `width × height` values.
        var values: [Float]
    }

    var planes: [Plane]

    init(of v: Volume) {
        planes = Normal.allCases.map { normal in
            let (w, h): (Int, Int)
            let value: (Int, Int) -> Float
            switch normal {
            case .z: (w, h) = (v.nx, v.ny); value = { v[$0, $1, v.nz / 2] }
            case .y: (w, h) = (v.nx, v.nz); value = { v[$0, v.ny / 2, $1] }
            case .x: (w, h) = (v.ny, v.nz); value = { v[v.nx / 2, $0, $1] }
            }
            var values = [Float](repeating: 0, count: w * h)
            for r in 0 ..< h { for c in 0 ..< w { values[r * w + c] = value(c, r) } }
            return Plane(normal: normal, width: w, height: h, values: values)
        }
    }
}

extension CentralSections.Plane {
    /// Greyscale PNG, scaled from the plane's minimum (black) to its maximum (white).
    func png() -> Data {
        let lo = values.min() ?? 0, hi = values.max() ?? 1
        let scale = hi > lo ? 255 / (hi - lo) : 0
        let pixels = values.map { UInt8(max(0, min(255, (($0 - lo) * scale).rounded()))) }
        return Data(PNGFile.greyscale(width: width, height: height, pixels: pixels))
    }
}
