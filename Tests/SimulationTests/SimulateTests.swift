import Foundation
import Formats
import Simulation
import Testing
import Volumes

private func simulator(classes: Int = 2, particles: Int = 8, dim: Int = 24, snr: Double = 0.1, seed: UInt64 = 11,
                       missing: MissingRegionChoice = .wedgeY, tilt: Double = 60) throws -> ParticleSimulator {
    let plan = try MissingRegionPlan(choice: missing, tiltRange: tilt)
    let settings = SimulationSettings(classes: classes, particles: particles, dim: dim, snr: snr, seed: seed,
                                      shiftSigma: 2, missing: plan)
    return try ParticleSimulator(settings: settings, phantoms: PhantomFamily.analytic(classes: classes, dim: dim))
}

private func correlation(_ a: Volume, _ b: Volume) -> Double {
    let sa = VoxelStatistics(a), sb = VoxelStatistics(b)
    var c = 0.0
    for i in 0..<a.count { c += (Double(a.data[i]) - sa.mean) * (Double(b.data[i]) - sb.mean) }
    return c / Double(a.count) / (sa.standardDeviation * sb.standardDeviation)
}

private func temporaryDirectory(_ name: String) -> String {
    let dir = NSTemporaryDirectory() + "simtest-\(name)-\(ProcessInfo.processInfo.processIdentifier)"
    try? FileManager.default.removeItem(atPath: dir)
    return dir
}

@Suite("Simulated particles")
struct SimulateTests {
    @Test("noise level matches the requested SNR; particles have mean 0 and std 1", arguments: [0.05, 0.1, 1.0])
    func snrMatches(snr: Double) throws {
        let sim = try simulator(snr: snr)
        for i in 0..<3 {
            let p = sim.particle(i)
            var noise = p.volume
            for j in 0..<noise.count { noise.data[j] -= p.clean.data[j] }
            let measured = VoxelStatistics(p.clean).variance / VoxelStatistics(noise).variance
            #expect(abs(measured / snr - 1) < 0.05)
            let stats = VoxelStatistics(p.volume)
            #expect(abs(stats.mean) < 1e-5)
            #expect(abs(stats.standardDeviation - 1) < 1e-5)
            // The noise really is noise: it is nearly uncorrelated with the signal.
            #expect(abs(correlation(noise, p.clean)) < 0.2)
        }
    }

    @Test("Fourier coefficients inside the missing region are zero",
          arguments: [MissingRegionChoice.wedgeY, .wedgeX, .pyramid, .cone, .mixed])
    func missingRegionIsEmpty(choice: MissingRegionChoice) throws {
        let sim = try simulator(particles: 4, dim: 16, missing: choice, tilt: 50)
        for i in 0..<(choice == .mixed ? 4 : 1) {
            let p = sim.particle(i)
            let region = try #require(sim.settings.missing.region(p.truth.regionIndex))
            let f = p.volume.fourierTransform()
            var maxMissing = 0.0, maxMeasured = 0.0, missingCount = 0
            for z in 0..<16 {
                for y in 0..<16 {
                    for x in 0..<9 {
                        let k = SIMD3(Double(x), Double(FourierVolume.frequency(y, 16)), Double(FourierVolume.frequency(z, 16)))
                        let a = Double(f[x, y, z].length)
                        if region.isMeasured(k) {
                            maxMeasured = max(maxMeasured, a)
                        } else {
                            maxMissing = max(maxMissing, a)
                            missingCount += 1
                        }
                    }
                }
            }
            #expect(missingCount > 50)
            #expect(maxMeasured > 0.01)
            #expect(maxMissing < 1e-6 * maxMeasured + 1e-7)
        }
        if choice == .mixed {
            #expect(sim.settings.missing.regions.map(\.kind) == [.wedgeY, .wedgeX, .pyramid, .cone])
        }
    }

    @Test("aligning a particle back with its true transform (§1.4) recovers the reference; the wrong convention does not")
    func rotationConventionRoundTrip() throws {
        // Nothing missing and a high SNR, so only the geometry is tested.
        let sim = try simulator(classes: 1, particles: 40, dim: 32, snr: 1e4, missing: .none)
        let reference = sim.reference(0)
        // A particle whose rotation differs clearly from its inverse, so the wrong convention shows.
        let i = try #require((0..<40).first { i in
            let a = sim.truth(i).matrix
            return rotationDistance(a, a.transposed) > 120
        })
        let p = sim.particle(i)
        let a = p.truth.matrix, t = p.truth.shift
        // X_aligned = Rot_A[T_t[X]], i.e. X_aligned(y) = X(Aᵀ y − t).
        let aligned = p.volume.translated(by: t).rotated(by: a, outside: 0)
        #expect(correlation(aligned, reference) > 0.97)
        // Wrong: rotating by Aᵀ (the reference-onto-image direction).
        let wrongRotation = p.volume.translated(by: t).rotated(by: a.transposed, outside: 0)
        #expect(correlation(wrongRotation, reference) < 0.8)
        // Wrong: shift with the opposite sign.
        let wrongShift = p.volume.translated(by: -t).rotated(by: a, outside: 0)
        #expect(correlation(wrongShift, reference) < correlation(aligned, reference) - 0.05)
    }

    @Test("the same seed gives the same data; another seed does not")
    func determinism() throws {
        let a = try simulator(seed: 5), b = try simulator(seed: 5), c = try simulator(seed: 6)
        for i in 0..<2 {
            #expect(a.particle(i).volume == b.particle(i).volume)
            #expect(a.truth(i) == b.truth(i))
            #expect(a.particle(i).volume != c.particle(i).volume)
        }
    }

    @Test("classes differ by a domain; the phantom is not symmetric under a 180° turn")
    func phantomClassesDiffer() {
        let refs = PhantomFamily.analytic(classes: 3, dim: 24).map { $0.sample(dim: 24) }
        #expect(correlation(refs[0], refs[1]) < 0.97)
        #expect(correlation(refs[0], refs[2]) < 0.97)
        #expect(correlation(refs[0], refs[1]) > 0.5)  // they share the body
        let turned = refs[0].rotated(by: EulerAngles(rot: 0, tilt: 0, psi: 180).matrix, outside: 0)
        #expect(correlation(turned, refs[0]) < 0.9)
    }

    @Test("the written files parse and hold the truth; two runs write identical files")
    func writtenFilesParse() throws {
        let sim = try simulator(classes: 2, particles: 6, dim: 16, missing: .mixed)
        let dir1 = temporaryDirectory("a"), dir2 = temporaryDirectory("b")
        defer {
            try? FileManager.default.removeItem(atPath: dir1)
            try? FileManager.default.removeItem(atPath: dir2)
        }
        let summary = try DatasetWriter.write(sim, to: dir1, format: .mrc)
        _ = try DatasetWriter.write(sim, to: dir2, format: .mrc)
        #expect(summary.classCounts.reduce(0, +) == 6)

        let doc = try MetaDataFile.readTable(dir1 + "/images.doc")
        #expect(doc.rowCount == 6)
        for label in ["image", "missingRegionNumber", "angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ", "ref", "logLikelihood"] {
            #expect(doc.has(label))
        }
        for r in 0..<6 {
            #expect(try doc.double("angleRot", row: r) == 0)
            #expect(try doc.double("shiftZ", row: r) == 0)
            #expect(try doc.int("missingRegionNumber", row: r) == r % 4 + 1)
        }
        let sel = try MetaDataFile.readTable(dir1 + "/images.sel")
        #expect(sel.rowCount == 6)
        #expect(try sel.int("enabled", row: 0) == 1)
        let wedges = try MetaDataFile.readTable(dir1 + "/wedges.doc")
        #expect(wedges.rowCount == 4)
        #expect(try wedges.string("missingRegionType", row: 2) == "pyramid")
        #expect(try wedges.double("missingRegionThetaY0", row: 0) == -60)

        let truth = try RecordReader.read(dir1 + "/truth.star", block: DatasetLayout.truthBlock)
        #expect(truth.count == 6)
        for (i, r) in truth.enumerated() {
            let t = sim.truth(i)
            #expect(r.classIndex == t.classIndex)
            #expect(r.angles == t.angles)
            #expect(r.shift == t.shift)
            #expect(r.regionIndex == t.regionIndex)
            #expect(r.image == DatasetLayout.particleName(i, format: .mrc))
        }
        let image = try VolumeIO.read(dir1 + "/" + DatasetLayout.particleName(3, format: .mrc))
        #expect(image == sim.particle(3).volume)
        let ref = try VolumeIO.read(dir1 + "/" + DatasetLayout.truthReferenceName(1))
        #expect(ref == sim.reference(1))

        for name in ["images.doc", "images.sel", "wedges.doc", "truth.star", DatasetLayout.particleName(5, format: .mrc)] {
            let a = try Data(contentsOf: URL(fileURLWithPath: dir1 + "/" + name))
            let b = try Data(contentsOf: URL(fileURLWithPath: dir2 + "/" + name))
            #expect(a == b, "\(name) differs between two runs with the same seed")
        }
        // Scoring the truth file against itself through the reader is perfect.
        let (report, _) = try Evaluation.evaluate(truth: truth, estimates: try RecordReader.read(dir1 + "/truth.star"))
        #expect(report.accuracy == 1)
        #expect(report.angularErrorRaw.max < 1e-6)
    }

    @Test("bad settings are rejected with the option named")
    func badSettings() throws {
        #expect(throws: SimulationError.self) { try MissingRegionPlan(choice: .cone, tiltRange: 0) }
        let plan = try MissingRegionPlan(choice: .wedgeY, tiltRange: 60)
        let bad = SimulationSettings(classes: 0, particles: 3, missing: plan)
        do {
            try bad.validate()
            Issue.record("classes = 0 was accepted")
        } catch let e as SimulationError {
            #expect(e.message.contains("--classes"))
        }
    }
}

@Suite("Map phantoms")
struct MapPhantomTests {
    @Test("a map body keeps the forward model: aligning back recovers the reference")
    func mapBodyRoundTrip() throws {
        // The analytic class-2 phantom (no domain) stands in for a map read with --phantom.
        let map = PhantomFamily.analytic(classes: 2, dim: 32)[1].sample(dim: 32)
        let phantoms = PhantomFamily.fromMap(map, classes: 3)
        let plan = try MissingRegionPlan(choice: .none, tiltRange: 60)
        let settings = SimulationSettings(classes: 3, particles: 10, dim: 32, snr: 1e4, seed: 4, shiftSigma: 1, missing: plan)
        let sim = try ParticleSimulator(settings: settings, phantoms: phantoms)
        let refs = (0..<3).map { sim.reference($0) }
        #expect(refs[1] == map)  // class 2 is the bare body
        #expect(refs[0] != refs[2])
        let p = sim.particle(0)
        let aligned = p.volume.translated(by: p.truth.shift).rotated(by: p.truth.matrix, outside: 0)
        #expect(correlation(aligned, refs[p.truth.classIndex]) > 0.95)
    }
}
