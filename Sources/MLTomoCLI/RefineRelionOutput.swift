import Engine
import Formats
import Foundation
import Volumes

/// The RELION view of a refinement: `<oroot>[_itNNNNNN]_data.star` and `_references.star`, so a RELION
/// user can continue (relion_reconstruct, relion_refine) from our alignment, classes and references:
///   relion_refine --i <oroot>_data.star --ref <oroot>_references.star --K <K> --ctf --skip_align …
///
/// Conventions (README, "Converting particle metadata"): RELION's angles are those of Eᵀ and its
/// origins s × pixel size in Å; one optics group of 3D images with the input's pixel size and box. The
/// missing region of each particle is a binary mask `<oroot>_wedgeNNNNNN.mrc` (one per `--missing`
/// row, centred, input box size) given as `rlnCtfImage`, the form RELION 3.1 reads for subtomograms.
extension RefineOutputs {
    func wedgePath(region: Int) -> String { oroot + "_wedge" + String(format: "%06d", region) + ".mrc" }

    func writeRelion(iteration: Int?, images: MetaDataTable, results: [ParticleResult], classFractions: [Double]) throws {
        for (i, region) in regions.enumerated() where !FileManager.default.fileExists(atPath: wedgePath(region: i + 1)) {
            try MRCFile.write(Self.measuredMask(region, dim: originalDim), to: wedgePath(region: i + 1), voxelSize: pixelSize)
        }
        var list = ParticleList(pixelSize: pixelSize, boxSize: originalDim)
        for r in results {
            list.particles.append(ParticleRecord(
                image: Self.relionImageName(images, row: r.globalIndex),
                pose: ParticlePose(angles: r.angles, shift: r.shift), classNumber: r.classNumber,
                missingRegion: hasMissingData ? r.regionNumber : nil))
        }
        var star = try list.relionStar(file: base(iteration) + "_data.star")
        star.particles.comment = "ml_tomo results in RELION's conventions; command: \(commandLine)"
        for (row, r) in results.enumerated() {
            star.particles.set("rlnLogLikeliContribution", row: row, .real(r.logLikelihood), fill: .real(0))
            star.particles.set("rlnMaxValueProbDistribution", row: row, .real(r.maxProbability), fill: .real(0))
            star.particles.set("rlnRandomSubset", row: row, .int(r.halfSet + 1))
            if hasMissingData, r.regionNumber >= 1 {
                star.particles.set("rlnCtfImage", row: row, .string(wedgePath(region: r.regionNumber)), fill: .string(""))
            }
        }
        try star.write(to: base(iteration) + "_data.star")
        try AtomicFile.write(referenceList(iteration: iteration, classFractions: classFractions), to: base(iteration) + "_references.star")
    }

    /// The references in the form relion_refine's `--ref` reads for K classes: block `model_classes` with
    /// `rlnReferenceImage` (the MRC files this iteration wrote, class 1 first) and `rlnClassDistribution`.
    func referenceList(iteration: Int?, classFractions: [Double]) -> [UInt8] {
        var table = MetaDataTable(name: "model_classes", labels: [], layout: .loop,
                                  comment: "ml_tomo references in RELION's form; command: \(commandLine)")
        for (k, fraction) in classFractions.enumerated() {
            table.appendRow([("rlnReferenceImage", .string(referencePath(iteration, classIndex: k))),
                             ("rlnClassDistribution", .real(fraction))])
        }
        return MetaDataFile(table).serialized(header: "# version 30001")
    }

    /// The image as RELION must open it from the current directory: ours are looked up there first, then
    /// next to the metadata file (`ImageLocator.resolved`); RELION only looks in the current directory.
    static func relionImageName(_ images: MetaDataTable, row: Int) -> String {
        guard let text = try? images.string("image", row: row) else { return "" }
        guard let loc = try? ImageLocator(parsing: text, context: nil),
              let resolved = try? loc.resolved(metadataFile: images.source, context: nil) else { return text }
        return resolved.description
    }

    /// 1 where the region was measured, 0 in the missing region: a d³ volume with frequency 0 at
    /// voxel (d/2, d/2, d/2), x fastest.
    static func measuredMask(_ region: MissingRegion, dim d: Int) -> Volume {
        var v = Volume(dim: d)
        let c = d / 2
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< d where region.isMeasured(SIMD3(Double(x - c), Double(y - c), Double(z - c))) {
                    v.data[(z * d + y) * d + x] = 1
                }
            }
        }
        return v
    }
}
