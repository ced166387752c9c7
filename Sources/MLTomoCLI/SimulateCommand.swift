import ArgumentParser
import Foundation
import Formats
import Simulation
import Volumes

/// `ml_tomo simulate OUTDIR`: a synthetic data set with ground truth, written as exactly the input
/// files of the seed document's examples (images.sel, images.doc, wedges.doc) plus the truth.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Write synthetic subtomograms with known classes, orientations and shifts.",
        discussion: """
            Every class shares one asymmetric body (Gaussian blobs, or the map given with --phantom); one \
            domain is present in class 1, absent in class 2 and moved elsewhere in classes 3, 4, ... \
            Particle i has a uniformly random class, a uniformly random rotation A (uniform unit \
            quaternion), a Gaussian shift t, and satisfies X(x) = Ref(A·(x + t)) + noise — the program's \
            own output convention, so truth.star holds exactly what a perfect refinement writes. The \
            missing region is removed from signal and noise in the particle's own frame.
            SNR = var(signal) / var(noise) over all voxels of a particle, both after the missing-region \
            filter (what is in the file). Each particle is then normalised to mean 0, std 1.
            Output: OUTDIR/images.sel, images.doc (angles/shifts zero), wedges.doc, particles/, \
            truth_refNNNNNN.mrc (true references), truth.star (truth per particle). Deterministic from --seed.
            Example: ml_tomo simulate sim --classes 2 --particles 200 --snr 0.1 --missing wedge_y --tilt-range 60
            """
    )

    @Argument(help: "Output directory (created if needed).")
    var outdir: String

    @Option(name: .customLong("classes"), help: "Number of classes K.")
    var classes: Int = 2

    @Option(name: .customLong("particles"), help: "Number of particles N.")
    var particles: Int = 100

    @Option(name: .customLong("size"), help: "Box size d (pixels).")
    var size: Int = 32

    @Option(name: .customLong("snr"), help: "Signal-to-noise ratio: var(signal)/var(noise) per particle after the missing-region filter.")
    var snr: Double = 0.1

    @Option(name: .customLong("seed"), help: "Random seed; the same seed gives the same data set.")
    var seed: UInt64 = 1

    @Option(name: .customLong("shift-sigma"), help: "Standard deviation of each shift component (pixels).")
    var shiftSigma: Double = 2

    @Option(name: .customLong("missing"), help: "Missing region: wedge_y, wedge_x, pyramid, cone, mixed (one row of each, used in turn) or none.")
    var missing: String = "wedge_y"

    @Option(name: .customLong("tilt-range"), help: "Tilt range T in degrees, 0 < T < 90: data measured from -T to +T (cone: tilt angle T).")
    var tiltRange: Double = 60

    @Option(name: .customLong("format"), help: "Particle file format: mrc or spider.")
    var format: String = "mrc"

    @Option(name: .customLong("phantom"), help: ArgumentHelp("A map (MRC/Spider) to use as the shared body, Fourier-resized to --size.", valueName: "file"))
    var phantom: String?

    @Option(name: .customLong("remove-sphere"), help: ArgumentHelp("With --phantom: classes 2…K lack a sphere of this radius (pixels of --size) at a dense place (class 1 is the whole map), instead of the domain.", valueName: "r"))
    var removeSphere: Double?

    @Option(name: .customLong("sphere-distance"), help: ArgumentHelp("Distance of the removed spheres' centres from the box centre, as a fraction of --size.", valueName: "f"))
    var sphereDistance: Double = 0.25

    @Option(name: .customLong("pixel-size"), help: "Pixel size (Å) written into the file headers.")
    var pixelSize: Double = 1

    func validate() throws {
        guard MissingRegionChoice(rawValue: missing) != nil else {
            throw ValidationError("--missing '\(missing)' must be one of: " + MissingRegionChoice.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard ParticleFileFormat(rawValue: format) != nil else {
            throw ValidationError("--format '\(format)' must be mrc or spider")
        }
        guard pixelSize.isFinite, pixelSize > 0 else { throw ValidationError("--pixel-size \(pixelSize) must be positive") }
        if let r = removeSphere {
            guard phantom != nil else { throw ValidationError("--remove-sphere needs a map given with --phantom") }
            guard r > 0, r < Double(size) / 4 else { throw ValidationError("--remove-sphere \(r) must be in (0, \(size / 4)) pixels") }
            guard sphereDistance >= 0, sphereDistance * Double(size) + r <= Double(size) / 2 else {
                throw ValidationError("--sphere-distance \(sphereDistance): the sphere must stay inside the box (distance × size + radius ≤ size/2)")
            }
        }
    }

    func run() throws {
        let plan = try MissingRegionPlan(choice: MissingRegionChoice(rawValue: missing)!, tiltRange: tiltRange)
        let settings = SimulationSettings(classes: classes, particles: particles, dim: size, snr: snr, seed: seed,
                                          shiftSigma: shiftSigma, missing: plan)
        try settings.validate()
        let phantoms: [PhantomModel]
        if let phantom {
            var map = try VolumeIO.read(phantom)
            guard map.isCubic else {
                throw ValidationError("--phantom \(phantom) is \(map.nx)x\(map.ny)x\(map.nz); the map must be a cube")
            }
            if map.nx != size { map = map.fourierResized(to: size) }
            if let r = removeSphere {
                let family = PhantomFamily.fromMap(map, classes: classes, removingSphereOfRadius: r,
                                                   atDistance: sphereDistance * Double(size))
                guard family.centres.count == classes - 1 else {
                    throw ValidationError("--remove-sphere \(r): found room for \(family.centres.count) separate spheres at distance \(sphereDistance) × \(size), need \(classes - 1)")
                }
                phantoms = family.phantoms
                let power = family.phantoms.dropFirst().map { differencePower(family.phantoms[0], $0, dim: size) }
                let centres = family.centres.map { String(format: "(%.0f, %.0f, %.0f)", $0.x, $0.y, $0.z) }.joined(separator: ", ")
                print("removed spheres of radius \(r) px at \(centres); difference power / map power: "
                      + power.map { String(format: "%.3f", $0) }.joined(separator: ", "))
            } else {
                phantoms = PhantomFamily.fromMap(map, classes: classes)
            }
        } else {
            phantoms = PhantomFamily.analytic(classes: classes, dim: size)
        }
        let simulator = try ParticleSimulator(settings: settings, phantoms: phantoms)
        let summary = try DatasetWriter.write(simulator, to: outdir, format: ParticleFileFormat(rawValue: format)!,
                                              pixelSize: pixelSize) { done, total in
            FileHandle.standardError.write(Data("\rsimulated \(done)/\(total) particles".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        let counts = summary.classCounts.enumerated().map { "class \($0.offset + 1): \($0.element)" }.joined(separator: ", ")
        print("Wrote \(summary.particles) particles of \(size)³ to \(outdir)/ (\(counts)); "
              + "regions: \(plan.regions.isEmpty ? "none" : plan.regions.map(\.kind.rawValue).joined(separator: ", ")); "
              + String(format: "mean signal variance %.4g, noise variance %.4g (SNR %.4g).",
                       summary.meanSignalVariance, summary.meanNoiseVariance,
                       summary.meanSignalVariance / max(summary.meanNoiseVariance, .leastNonzeroMagnitude)))
        let missingOption = plan.regions.isEmpty ? "" : " --missing wedges.doc"
        print("Refine with: cd \(outdir) && ml_tomo -i images.sel --doc images.doc\(missingOption) --nref \(classes) --oroot run/ml --iter 10 --ang 15")
    }

    /// ‖a − b‖² / ‖a − mean(a)‖² of two map phantoms (the class difference's share of the map's power).
    private func differencePower(_ a: PhantomModel, _ b: PhantomModel, dim: Int) -> Double {
        let va = a.sample(dim: dim), vb = b.sample(dim: dim)
        let mean = va.data.reduce(0.0) { $0 + Double($1) } / Double(va.count)
        var diff = 0.0, power = 0.0
        for j in 0 ..< va.count {
            diff += (Double(va.data[j]) - Double(vb.data[j])) * (Double(va.data[j]) - Double(vb.data[j]))
            power += (Double(va.data[j]) - mean) * (Double(va.data[j]) - mean)
        }
        return power > 0 ? diff / power : 0
    }
}
