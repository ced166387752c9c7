import Distributed
import Engine
import Formats
import Foundation
import Volumes

/// The HDF5 file of an iteration doubles as its restart point: besides the documented reference stack
/// it holds, exactly (float64), the model scalars and every particle's last result, so that
/// `--restart <oroot>_itNNNNNN` continues with bit-identical state and ends with the same files as a
/// run that was never stopped.
struct RestartState {
    static let particleDataset = "particles/state"
    static let modelDataset = "model/per_class"
    static let ssnrDataset = "model/ssnr"
    /// τ²/σ² per class and shell (`Model.priorSignalToNoise`): written for readers, not read back (the
    /// next M-step computes it again).
    static let priorDataset = "model/tau2_over_sigma2"
    /// Per particle: global index, rot, tilt, psi, shiftX, shiftY, shiftZ, class, logLikelihood,
    /// maxProbability, region, half-set.
    static let particleColumns = ResultCodec.doublesPerResult

    func write(to path: String, model: Model, results: [ParticleResult], voxelSize: Double,
               logLikelihood: Double) throws {
        let d = model.dim
        let K = model.classCount
        let particleValues = ResultCodec.values(results)
        // Per class: resolution, signal change, then the FSC curve over shells 0…d/2.
        let shells = d / 2 + 1
        var perClass: [Double] = []
        for k in 0 ..< K {
            let curve = model.fsc[k].count == shells ? model.fsc[k] : [Double](repeating: 0, count: shells)
            perClass += [model.resolutions[k], model.signalChange[k]] + curve
        }
        let publishedFSC: [[Double]]? = model.fsc.allSatisfy { $0.count == shells }
            ? model.fsc.map { Array($0.dropFirst()) } : nil
        var file = ReferenceStackFile(
            references: model.references, fsc: publishedFSC, iteration: model.iteration, voxelSize: voxelSize,
            classFractions: model.fractions, sigmaNoise: model.sigmaNoise, sigmaOffset: model.sigmaOffset,
            logLikelihood: logLikelihood,
            extraAttributes: ["regularisation": model.regularisation, "current_radius": Double(model.currentRadius),
                              "local_search_reach": model.localSearchReach])
        file.extraDatasets[Self.particleDataset] = .init(shape: [results.count, Self.particleColumns], values: particleValues)
        file.extraDatasets[Self.modelDataset] = .init(shape: [K, 2 + shells], values: perClass)
        if model.ssnr.count == K && model.ssnr.allSatisfy({ $0.count == shells }) {
            // The resolution-limited mode's per-shell SSNR (T × this is the prior's signal power, τ²).
            file.extraDatasets[Self.ssnrDataset] = .init(shape: [K, shells], values: model.ssnr.flatMap { $0 })
        }
        if model.priorSignalToNoise.count == K && model.priorSignalToNoise.allSatisfy({ $0.count == shells }) {
            file.extraDatasets[Self.priorDataset] = .init(shape: [K, shells], values: model.priorSignalToNoise.flatMap { $0 })
        }
        try file.write(to: path)
    }

    /// Reads `<prefix>.h5` back into a model and the per-particle results (indexed by global index).
    static func read(prefix: String, imageCount: Int) throws -> (Model, [ParticleResult]) {
        let path = prefix.hasSuffix(".h5") ? prefix : prefix + ".h5"
        guard FileManager.default.fileExists(atPath: path) else {
            throw ValidationFailure("--restart \(prefix): \(path) does not exist (give the <oroot>_itNNNNNN of a finished iteration)")
        }
        let file = try ReferenceStackFile.read(path, extraDatasetNames: [particleDataset, modelDataset])
        let K = file.classCount
        let d = file.box
        let shells = d / 2 + 1
        var model = Model(references: file.references, fractions: file.classFractions, sigmaNoise: file.sigmaNoise,
                          sigmaOffset: file.sigmaOffset, iteration: file.iteration,
                          regularisation: file.extraAttributes["regularisation"] ?? 0)
        model.currentRadius = Int(file.extraAttributes["current_radius"] ?? 0)
        model.localSearchReach = file.extraAttributes["local_search_reach"] ?? 0
        let perClass = file.extraDatasets[modelDataset]!
        guard perClass.shape == [K, 2 + shells] else {
            throw ValidationFailure("\(path): dataset \(modelDataset) has shape \(perClass.shape), expected [\(K), \(2 + shells)]")
        }
        for k in 0 ..< K {
            let row = Array(perClass.values[(k * (2 + shells)) ..< ((k + 1) * (2 + shells))])
            model.resolutions[k] = row[0]
            model.signalChange[k] = row[1]
            model.fsc[k] = Array(row[2...])
        }
        let state = file.extraDatasets[particleDataset]!
        guard state.shape.count == 2, state.shape[1] == particleColumns, state.shape[0] == imageCount else {
            throw ValidationFailure("\(path) holds \(state.shape.first ?? 0) particles but the input has \(imageCount): "
                + "restart with the same -i (and --doc) as the interrupted run")
        }
        let results = ResultCodec.results(from: state.values)
        return (model, results)
    }
}
