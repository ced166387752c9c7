import ArgumentParser
import Foundation
import Formats

extension ParticleMetadataFormat: ExpressibleByArgument {}

/// `ml_tomo convert`: particle metadata between Xmipp, RELION, Dynamo and TOM/AV3.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert particle metadata between Xmipp doc, RELION STAR, Dynamo .tbl and TOM/AV3 motive lists (.em).",
        discussion: """
            The formats are guessed from the extensions (.doc .xmd .sel: xmipp; .star: relion; .tbl: dynamo; \
            .em: tom) or given with --from / --to. Every format's angles and shifts keep their package's \
            meaning: Xmipp's map the particle onto the reference (seed FAQ, question 2); RELION's, Dynamo's \
            and TOM's map the reference onto the particle. The rotation and the particle's centre are \
            preserved exactly (README, "Converting particle metadata").

            Dynamo and TOM number particles instead of naming files: reading them names particle n by \
            --image-pattern; writing them numbers the particles 1, 2, … in input order.

            --class keeps the particles of the given class(es) only, e.g. to refine one class of a run \
            again on its own: a run given the result (without --keep_angles) starts from nothing, from \
            the selected particles only.

            Examples:
              ml_tomo convert run/demo.doc run/demo.star --angpix 4.4
              ml_tomo convert run/demo.doc run/demo.tbl
              ml_tomo convert particles.tbl images.doc --image-pattern 'data/particle_%06d.em'
              ml_tomo convert motl_1.em run1.star --angpix 2.2 --box 64
              ml_tomo convert run/ml.doc class1.doc --class 1
            """
    )

    @Argument(help: ArgumentHelp("The particle metadata to read.", valueName: "input"))
    var input: String

    @Argument(help: ArgumentHelp("The file to write (replaced atomically; never the input).", valueName: "output"))
    var output: String

    @Option(name: .customLong("from"), help: "Input format: xmipp, relion, dynamo or tom (default: from the extension).")
    var from: ParticleMetadataFormat?

    @Option(name: .customLong("to"), help: "Output format: xmipp, relion, dynamo or tom (default: from the extension).")
    var to: ParticleMetadataFormat?

    @Option(name: .customLong("angpix"), help: ArgumentHelp("Pixel size in Å (needed to write RELION when the input does not record it; overrides the input's).", valueName: "Å"))
    var angpix: Double?

    @Option(name: .customLong("box"), help: ArgumentHelp("Box size in pixels, written as RELION's rlnImageSize.", valueName: "pixels"))
    var box: Int?

    @Option(name: .customLong("image-pattern"), help: ArgumentHelp("Names of numbered particles (Dynamo tag, TOM row 4): %d or %0Nd is the number.", valueName: "pattern"))
    var imagePattern: String = ParticleList.defaultImagePattern

    @Option(name: .customLong("class"), help: ArgumentHelp("Keep only the particles of this class (1-based; repeat for several).", valueName: "n"))
    var classes: [Int] = []

    func validate() throws {
        if let bad = classes.first(where: { $0 < 1 }) { throw ValidationError("--class \(bad): classes are numbered from 1") }
        if let angpix, !(angpix.isFinite && angpix > 0) { throw ValidationError("--angpix \(angpix) must be a positive number of Å") }
        if let box, box < 1 { throw ValidationError("--box \(box) must be a positive number of pixels") }
        if inputFormat == nil { throw ValidationError("cannot tell the format of \(input) from its extension: give --from xmipp|relion|dynamo|tom") }
        if outputFormat == nil { throw ValidationError("cannot tell the format of \(output) from its extension: give --to xmipp|relion|dynamo|tom") }
        do { _ = try ParticleList.name(imagePattern, 1) } catch { throw ValidationError("--image-pattern: \(error)") }
        let a = URL(fileURLWithPath: input).standardizedFileURL.path, b = URL(fileURLWithPath: output).standardizedFileURL.path
        if a == b { throw ValidationError("the output \(output) is the input: convert never overwrites its input") }
    }

    private var inputFormat: ParticleMetadataFormat? { from ?? ParticleMetadataFormat.guess(input) }
    private var outputFormat: ParticleMetadataFormat? { to ?? ParticleMetadataFormat.guess(output) }

    func run() throws {
        var list = try ParticleList.read(input, format: inputFormat!, imagePattern: imagePattern)
        if let angpix { list.pixelSize = angpix }
        if let box { list.boxSize = box }
        if !classes.isEmpty { list.particles = try selected(list.particles) }
        try list.write(to: output, format: outputFormat!)
        let selection = classes.isEmpty ? "" : " of class\(Set(classes).count > 1 ? "es" : "") \(classList(classes))"
        FileHandle.standardError.write(Data("convert: \(list.particles.count) particles\(selection), \(inputFormat!.rawValue) → \(outputFormat!.rawValue): \(output)\n".utf8))
    }

    /// The particles of the `--class` classes, in input order; an error naming the file when it has no
    /// classes or none of those asked for.
    private func selected(_ particles: [ParticleRecord]) throws -> [ParticleRecord] {
        let present = Set(particles.compactMap(\.classNumber))
        guard !present.isEmpty else {
            throw ValidationFailure("--class \(classList(classes)): \(input) gives no particle a class")
        }
        let wanted = Set(classes)
        let kept = particles.filter { $0.classNumber.map(wanted.contains) ?? false }
        guard !kept.isEmpty else {
            throw ValidationFailure("--class \(classList(classes)): no particle of \(input) is in it; its classes are \(classList(present.sorted()))")
        }
        return kept
    }

    private func classList(_ c: [Int]) -> String { c.map(String.init).joined(separator: ", ") }
}
