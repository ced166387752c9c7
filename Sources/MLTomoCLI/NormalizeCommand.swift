import ArgumentParser
import Foundation
import Formats
import Volumes

/// `ml_tomo normalize`: the seed FAQ's preparation step (question 1), mean 0 and standard deviation 1
/// per subtomogram, optionally with the statistics taken within a mask.
struct NormalizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "normalize",
        abstract: "Normalise subtomograms to mean 0, standard deviation 1 (optionally within a mask); new files, new metadata.",
        discussion: """
            Each subtomogram v becomes (v − m) / s, with m and s the mean and (population) standard \
            deviation of all its voxels, or of the voxels where --mask is > 0.5 (the seed FAQ's \
            "normalize within a binary mask": 1 protein, 0 solvent). The whole volume is transformed.

            The normalised volumes are written as MRC into --odir (named after the input files; N@stack \
            becomes <stack>_N.mrc), and a copy of the metadata with _image pointing at them is written to \
            -o (default: <odir>/<input metadata name>). Every other column is kept, so the output can be \
            given to ml_tomo -i / --doc directly. Inputs are never overwritten: an output that would \
            replace an input is an error before anything is written.

            Examples:
              ml_tomo normalize -i images.sel --odir normalized
              ml_tomo normalize -i images.doc --odir normalized -o normalized/images.doc --mask protein.mrc
            """
    )

    @Option(name: .customShort("i"), help: ArgumentHelp("Input images: Xmipp metadata (sel/doc/xmd) or RELION STAR.", valueName: "metadata"))
    var input: String

    @Option(name: .customLong("odir"), help: ArgumentHelp("Directory for the normalised volumes (created if needed).", valueName: "dir"))
    var odir: String

    @Option(name: .customShort("o"), help: ArgumentHelp("Output metadata (default: <odir>/<name of the input metadata>).", valueName: "metadata"))
    var output: String?

    @Option(name: .customLong("mask"), help: ArgumentHelp("Statistics only where this volume is > 0.5 (same size as the subtomograms).", valueName: "mask.mrc"))
    var mask: String?

    private var outputMetadata: String {
        output ?? (odir as NSString).appendingPathComponent((MetaDataFile.splitBlockSpec(input).path as NSString).lastPathComponent)
    }

    func run() throws {
        let inputPath = MetaDataFile.splitBlockSpec(input).path
        var table = try (ParticleList.relionImageTable(inputPath) ?? MetaDataFile.readTable(input)).removingDisabledRows()
        try table.require(["image"])
        guard table.rowCount > 0 else { throw ValidationFailure("\(input): no enabled images") }
        let maskVolume = try mask.map { try VolumeIO.read($0) }

        // Plan every name first: nothing is written if any output would replace an input.
        var sources: [ImageLocator] = []
        var targets: [String] = []
        var used = Set<String>()
        for r in 0 ..< table.rowCount {
            let loc = try ImageLocator(parsing: try table.string("image", row: r), context: table.location(row: r))
                .resolved(metadataFile: inputPath, context: table.location(row: r))
            var stem = ((loc.path as NSString).lastPathComponent as NSString).deletingPathExtension
            if let n = loc.index { stem += "_\(n)" }
            var name = (odir as NSString).appendingPathComponent(stem + ".mrc")
            if used.contains(name) { name = (odir as NSString).appendingPathComponent(stem + "_row\(r + 1).mrc") }
            used.insert(name)
            sources.append(loc)
            targets.append(name)
        }
        let inputs = Set(sources.map { Self.canonical($0.path) } + [Self.canonical(inputPath)] + (mask.map { [Self.canonical($0)] } ?? []))
        for t in targets + [outputMetadata] where inputs.contains(Self.canonical(t)) {
            throw ValidationFailure("\(t) is an input: normalize never overwrites its inputs (choose another --odir or -o)")
        }

        try FileManager.default.createDirectory(atPath: odir, withIntermediateDirectories: true)
        let metadataDirectory = (outputMetadata as NSString).deletingLastPathComponent
        if !metadataDirectory.isEmpty {
            try FileManager.default.createDirectory(atPath: metadataDirectory, withIntermediateDirectories: true)
        }
        for (r, (source, target)) in zip(sources, targets).enumerated() {
            let v = try VolumeIO.read(source)
            if let maskVolume, maskVolume.nx != v.nx || maskVolume.ny != v.ny || maskVolume.nz != v.nz {
                throw ValidationFailure("--mask \(mask!) is \(maskVolume.nx)x\(maskVolume.ny)x\(maskVolume.nz) but \(source) is \(v.nx)x\(v.ny)x\(v.nz)")
            }
            let stats = VoxelStatistics(v, mask: maskVolume)
            guard stats.count > 1, stats.std > 0, stats.std.isFinite else {
                throw ValidationFailure("\(table.location(row: r)): \(source) has standard deviation \(stats.std) over \(stats.count) voxel(s)"
                    + (mask == nil ? "" : " inside --mask") + "; it cannot be normalised")
            }
            let voxel = (try? VolumeIO.dimensions(source.description).voxelSize) ?? nil
            try MRCFile.write(v.normalised(by: stats), to: target, voxelSize: voxel ?? 1)
            // The metadata names the new file relative to where the metadata is written, like any sel.
            table.set("image", row: r, .string(Self.relative(target, from: outputMetadata)))
        }
        table.comment = "ml_tomo normalize -i \(input)" + (mask.map { " --mask \($0)" } ?? "")
        try MetaDataFile(table).write(to: outputMetadata)
        FileHandle.standardError.write(Data("normalize: \(table.rowCount) subtomograms into \(odir); metadata \(outputMetadata)\n".utf8))
    }

    static func canonical(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// `target` relative to the directory of `metadata` when it lies below it, else absolute.
    static func relative(_ target: String, from metadata: String) -> String {
        let dir = canonical((metadata as NSString).deletingLastPathComponent.isEmpty ? "." : (metadata as NSString).deletingLastPathComponent)
        let t = canonical(target)
        return t.hasPrefix(dir + "/") ? String(t.dropFirst(dir.count + 1)) : t
    }
}
