import Foundation
import Formats
import Testing
import Volumes

/// One test per option of spec §2.1, each proving that the option changes what it should (and, where
/// it is cheap, that the run without it behaves differently). Small problems: 12 particles of 24³,
/// `--ang 30`, 1–3 iterations, under `mpirun -np 2`.
@Suite(.serialized) struct OptionTests {
    /// A two-class data set with its truth as `truth.doc` (angles, shifts, classes, regions).
    private func dataset(_ name: String, particles: Int = 12, classes: Int = 2, snr: Double = 1,
                         extra: [String] = []) async throws -> Workspace {
        let ws = try Workspace(name)
        try await ws.simulate("data", particles: particles, size: 24, classes: classes, snr: snr, extra: extra)
        try RunFiles.writeTruthDoc(in: ws.file("data"))
        return ws
    }

    private func refine(_ ws: Workspace, _ arguments: [String], timeout: Double = 900,
                        sourceLocation: SourceLocation = #_sourceLocation) async throws -> ProcessResult {
        let run = try await ProcessRunner.mpirun(ranks: 2, arguments, currentDirectory: ws.file("data"), timeout: timeout,
                                                 sourceLocation: sourceLocation)
        try #require(run.status == 0, "\(arguments.joined(separator: " ")): \(run)", sourceLocation: sourceLocation)
        return run
    }

    private let wedge = ["--missing", "wedges.doc"]

    /// Runs `arguments` with `--dry-run`, then for real: the dry run's output and prediction line, and the
    /// run's first iteration line.
    private func predictThenRun(_ ws: Workspace, _ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> (dry: ProcessResult, prediction: PredictionEvent, iteration: IterationEvent) {
        let dry = try await refine(ws, arguments + ["--dry-run"], sourceLocation: sourceLocation)
        let prediction = try #require(try RunEvents.decode(PredictionEvent.self, from: dry.stdout).first,
                                      "no prediction line: \(dry)", sourceLocation: sourceLocation)
        let run = try await refine(ws, arguments, sourceLocation: sourceLocation)
        let iteration = try #require(try RunEvents.decode(IterationEvent.self, from: run.stdout).first,
                                     "no iteration line: \(run)", sourceLocation: sourceLocation)
        return (dry, prediction, iteration)
    }

    // MARK: Input orientations

    @Test func dontAlignKeepsEveryAngleAndShiftFromTheDoc() async throws {
        let ws = try await dataset("dont-align")
        _ = try await refine(ws, ["-i", "images.sel", "--doc", "truth.doc", "--oroot", "run/x", "--nref", "2", "--dont_align",
                                  "--iter", "2"] + wedge)
        let truth = try RunFiles.rows(ws.file("data/truth.doc"))
        let out = try RunFiles.rows(ws.file("data/run/x.doc"))
        #expect(out.count == truth.count)
        for (image, t) in truth {
            let o = try #require(out[image])
            #expect(RunFiles.distance(o.angles, t.angles) < 1e-3, "\(image): \(o.angles) vs \(t.angles)")
            #expect(RunFiles.norm(o.shift - t.shift) < 1e-4, "\(image): \(o.shift) vs \(t.shift)")
        }
    }

    @Test func anglesAreReadFromTheInputMetadataItself() async throws {
        let ws = try await dataset("angles-from-i")
        // No --doc: -i carries the angle, shift and region columns.
        _ = try await refine(ws, ["-i", "truth.doc", "--oroot", "run/x", "--nref", "2", "--dont_rotate", "--iter", "1"] + wedge)
        let truth = try RunFiles.rows(ws.file("data/truth.doc"))
        let out = try RunFiles.rows(ws.file("data/run/x.doc"))
        #expect(out.count == truth.count)
        for (image, t) in truth {
            let o = try #require(out[image])
            #expect(RunFiles.distance(o.angles, t.angles) < 1e-3, "\(image): --dont_rotate must keep \(t.angles), wrote \(o.angles)")
        }
    }

    @Test func keepAnglesBuildsTheInitialReferenceFromTheInputOrientations() async throws {
        let ws = try await dataset("keep-angles", classes: 1, snr: 2)
        let truthRef = try VolumeIO.read(ws.file("data/truth_ref000001.mrc"))
        var scores: [Bool: Double] = [:]
        for keep in [true, false] {
            let oroot = keep ? "keep/x" : "random/x"
            _ = try await refine(ws, ["-i", "images.sel", "--doc", "truth.doc", "--oroot", oroot, "--nref", "1", "--iter", "1",
                                      "--ang", "30"] + wedge + (keep ? ["--keep_angles"] : []))
            let initial = try VolumeIO.read(ws.file("data/\(oroot)_it000000_ref000001.mrc"))
            scores[keep] = RunFiles.correlation(initial, truthRef)
        }
        // Averaging the particles in their true orientations reproduces the true reference; random
        // orientations give a blob.
        #expect(scores[true]! > 0.6, "keep_angles: correlation with the truth \(scores[true]!)")
        #expect(scores[true]! > scores[false]! + 0.2, "keep_angles \(scores[true]!) vs random \(scores[false]!)")
    }

    // MARK: Dry run

    /// `--dry-run` predicts the work of an iteration from the inputs alone: its triple count must be
    /// the one the real run then evaluates, its times positive, and it must write nothing.
    @Test func dryRunPredictsTheTriplesThatTheRunEvaluates() async throws {
        let ws = try await dataset("dry-run")
        // The classic one-pass search first: its triple count is exact.
        let arguments = ["-i", "images.sel", "--doc", "images.doc", "--oroot", "run/x", "--nref", "2", "--ang", "30",
                         "--iter", "1", "--classic"] + wedge
        let dry = try await refine(ws, arguments + ["--dry-run"])
        let prediction = try #require(try RunEvents.decode(PredictionEvent.self, from: dry.stdout).first, "no prediction line: \(dry)")
        #expect(dry.combinedOutput.contains("predicted time per iteration"), "\(dry)")
        #expect(!FileManager.default.fileExists(atPath: ws.file("data/run")), "a dry run must write nothing")
        #expect(prediction.secondsPerIteration > 0 && prediction.secondsPerIteration.isFinite)
        #expect(prediction.ranks == 2)

        let run = try await refine(ws, arguments)
        let iteration = try #require(try RunEvents.decode(IterationEvent.self, from: run.stdout).first, "no iteration line: \(run)")
        #expect(prediction.triples > 0)
        #expect(prediction.triples == iteration.triples, "predicted \(prediction.triples), evaluated \(iteration.triples)")

        // The default two-pass search (--ang 15): its coarse pass exactly, its fine pass within the predicted bounds.
        let fine = ["-i", "images.sel", "--doc", "images.doc", "--oroot", "run15/x", "--nref", "2", "--ang", "15",
                    "--iter", "1"] + wedge
        let (dry15, p15, it15) = try await predictThenRun(ws, fine)
        #expect(p15.coarseTriples > 0 && p15.coarseTriples == it15.coarseTriples,
                "coarse: predicted \(p15.coarseTriples), evaluated \(it15.coarseTriples)")
        #expect(p15.triplesAtLeast <= it15.triples && it15.triples <= p15.triples,
                "evaluated \(it15.triples) triples, predicted \(p15.triplesAtLeast)…\(p15.triples)")
        #expect(dry15.combinedOutput.contains("predicted time for the first iteration"), "\(dry15)")
        #expect(p15.triplesAtLeast <= p15.triplesExpected && p15.triplesExpected <= p15.triples)
        #expect(p15.localCoarseTriples > 0 && p15.localCoarseTriples < p15.coarseTriples / 4,
                "automatic local refinement: \(p15.localCoarseTriples) coarse triples of \(p15.coarseTriples)")

        // A local search (--ang_search around the input angles), two-pass by default: its coarse pass exactly.
        let local = ["-i", "images.sel", "--doc", "images.doc", "--oroot", "runL/x", "--nref", "2", "--ang", "15",
                     "--ang_search", "30", "--iter", "1"] + wedge
        let (_, pL, itL) = try await predictThenRun(ws, local)
        #expect(pL.coarseTriples > 0 && pL.coarseTriples == itL.coarseTriples,
                "local coarse: predicted \(pL.coarseTriples), evaluated \(itL.coarseTriples)")
        #expect(itL.triples <= pL.triples, "local: evaluated \(itL.triples) triples, predicted at most \(pL.triples)")
        #expect(pL.localCoarseTriples == 0)
        // --one_pass_local: the original's local search over every candidate, no coarse pass.
        let (_, p1, it1) = try await predictThenRun(ws, local.map { $0 == "runL/x" ? "runL1/x" : $0 } + ["--one_pass_local"])
        #expect(p1.coarseTriples == 0 && it1.coarseTriples == 0 && p1.triplesAtLeast <= it1.triples && it1.triples <= p1.triples
                && it1.triples > itL.triples,
                "one-pass local: predicted \(p1.triples), evaluated \(it1.triples) (coarse \(it1.coarseTriples)); two-pass \(itL.triples)")
    }

    // MARK: Searches

    /// The projection direction of an orientation (third row of the Euler matrix; psi does not enter).
    private func direction(_ a: EulerAngles) -> SIMD3<Double> {
        let r = a.rot * .pi / 180, t = a.tilt * .pi / 180
        return SIMD3(Foundation.cos(r) * Foundation.sin(t), Foundation.sin(r) * Foundation.sin(t), Foundation.cos(t))
    }

    private func directionDistance(_ a: EulerAngles, _ b: EulerAngles) -> Double {
        let c = max(-1, min(1, (direction(a) * direction(b)).sum()))
        return Foundation.acos(c) * 180 / .pi
    }

    @Test func localSearchMovesAtMostTheRangePlusOneStepPerIterationAroundTheCurrentOrientation() async throws {
        let ws = try await dataset("ang-search")
        // Start 35° (in tilt) away from the true orientations, so the particles pull away from the start.
        var doc = try MetaDataFile.readTable(ws.file("data/truth.doc"))
        for row in 0 ..< doc.rowCount {
            let tilt = try doc.double("angleTilt", row: row)
            doc.set("angleTilt", row: row, .real(tilt < 90 ? tilt + 35 : tilt - 35))
        }
        try MetaDataFile(doc).write(to: ws.file("data/start.doc"))
        _ = try await refine(ws, ["-i", "images.sel", "--doc", "start.doc", "--oroot", "run/x", "--ref", "truth_ref000001.mrc",
                                  "--iter", "3", "--ang", "5", "--ang_search", "10"] + wedge, timeout: 1200)
        let docs = try (0 ... 3).map { try RunFiles.rows(ws.file("data/run/x_it\(String(format: "%06d", $0)).doc")) }
        // The search admits directions within 10° of the current one (the grid adds up to one step) and,
        // away from the poles (spec §5.4: |tilt| < 1.1·Δ allows any psi), psi within 10° of the current psi.
        let bound = 10.0 + 5.0
        var farthestFromStart = 0.0
        for image in docs[0].keys {
            for it in 1 ... 3 {
                let before = docs[it - 1][image]!.angles, after = docs[it][image]!.angles
                let move = directionDistance(before, after)
                #expect(move <= bound, "\(image) moved its direction \(move)° in iteration \(it) (bound \(bound)°)")
                let polar = before.tilt < 1.1 * 10 + 5 || before.tilt > 180 - 1.1 * 10 - 5
                if !polar {
                    var dpsi = (after.psi - before.psi).truncatingRemainder(dividingBy: 360)
                    if dpsi > 180 { dpsi -= 360 } else if dpsi < -180 { dpsi += 360 }
                    #expect(abs(dpsi) <= bound, "\(image): psi moved \(dpsi)° in iteration \(it)")
                }
            }
            farthestFromStart = max(farthestFromStart, directionDistance(docs[0][image]!.angles, docs[3][image]!.angles))
        }
        // The centre follows the particle: after three iterations some particle is farther from its input
        // direction than one search range allows.
        #expect(farthestFromStart > bound, "no particle left the first neighbourhood (max \(farthestFromStart)°): centre not updated?")
    }

    /// The minimum distance (degrees) of `angles` to the unperturbed `--ang 30` grid.
    private func distanceToGrid(_ angles: EulerAngles, grid: AngularSampling) -> Double {
        var best = Double.infinity
        let m = angles.matrix
        for i in 0 ..< grid.count { best = min(best, rotationDistance(m, grid.orientations[i].matrix)) }
        return best
    }

    @Test func perturbPutsAnglesOffTheGridAndNoSmallAngleRemovesThePsiOffset() async throws {
        let ws = try await dataset("perturb")
        let grid = try AngularSampling(angularStep: 30)
        for variant in ["plain", "perturb", "nosmall"] {
            let flags = variant == "perturb" ? ["--perturb"] : (variant == "nosmall" ? ["--no_SMALLANGLE"] : [])
            // --grid_poses: the test is about the grid searched, so the reported poses must be its samples.
            _ = try await refine(ws, ["-i", "images.sel", "--doc", "images.doc", "--oroot", "\(variant)/x", "--nref", "1", "--iter", "2",
                                      "--ang", "30", "--grid_poses"] + wedge + flags)
        }
        for it in ["_it000001", "_it000002"] {
            let plain = try RunFiles.rows(ws.file("data/plain/x\(it).doc"))
            let perturbed = try RunFiles.rows(ws.file("data/perturb/x\(it).doc"))
            let nosmall = try RunFiles.rows(ws.file("data/nosmall/x\(it).doc"))
            for (image, row) in plain {
                #expect(distanceToGrid(row.angles, grid: grid) < 1e-3, "\(image)\(it): \(row.angles) is not a grid orientation")
                // psi − 2.75° is a multiple of the psi step.
                let r = (row.angles.psi - 2.75).truncatingRemainder(dividingBy: 30)
                #expect(min(abs(r), 30 - abs(r)) < 1e-3, "\(image)\(it): psi \(row.angles.psi)")
                let p = try #require(perturbed[image])
                #expect(distanceToGrid(p.angles, grid: grid) > 0.1, "\(image)\(it): perturbed \(p.angles) lies on the grid")
                let n = try #require(nosmall[image])
                let rn = n.angles.psi.truncatingRemainder(dividingBy: 30)
                #expect(min(abs(rn), 30 - abs(rn)) < 1e-3, "\(image)\(it): --no_SMALLANGLE psi \(n.angles.psi)")
            }
        }
        // A different random rotation every iteration: the offsets from the grid differ between iterations.
        let p1 = try RunFiles.rows(ws.file("data/perturb/x_it000001.doc"))
        let p2 = try RunFiles.rows(ws.file("data/perturb/x_it000002.doc"))
        let offsets1 = p1.keys.sorted().map { distanceToGrid(p1[$0]!.angles, grid: grid) }
        let offsets2 = p1.keys.sorted().map { distanceToGrid(p2[$0]!.angles, grid: grid) }
        #expect(zip(offsets1, offsets2).contains { abs($0 - $1) > 0.01 }, "same perturbation in iterations 1 and 2")
    }

    @Test func symmetryC4GivesC4SymmetricReferencesInEverySearchMode() async throws {
        let ws = try await dataset("sym")
        let modes: [(String, [String])] = [
            ("c1", ["--nref", "1", "--ang", "30"]),
            ("exhaustive", ["--nref", "1", "--ang", "30", "--sym", "c4"]),
            ("perturb", ["--nref", "1", "--ang", "30", "--sym", "c4", "--perturb"]),
            ("local", ["--nref", "1", "--ang", "15", "--ang_search", "20", "--sym", "c4"]),
            ("maxcc", ["--ref", "truth_ref000001.mrc", "--ang", "30", "--sym", "c4", "--maxCC"]),
        ]
        for (name, flags) in modes {
            _ = try await refine(ws, ["-i", "images.sel", "--doc", "truth.doc", "--oroot", "\(name)/x", "--iter", "1"] + wedge + flags)
            let refs = try ReferenceStackFile.read(ws.file("data/\(name)/x.h5")).references
            let asymmetry = RunFiles.c4Difference(refs[0])
            if name == "c1" {
                #expect(asymmetry > 0.05, "the c1 reference is already c4-symmetric (\(asymmetry)): the test proves nothing")
            } else {
                #expect(asymmetry < 1e-3, "\(name): reference not c4-symmetric (relative difference \(asymmetry))")
            }
        }
    }

    @Test func limitTransBoundsTheShifts() async throws {
        let ws = try await dataset("limit-trans", extra: ["--shift-sigma", "3"])
        for limit in [nil, 1.0] {
            let oroot = limit == nil ? "free/x" : "limited/x"
            _ = try await refine(ws, ["-i", "images.sel", "--doc", "truth.doc", "--oroot", oroot, "--ref", "truth_ref000001.mrc",
                                      "--iter", "1", "--ang", "30", "--keep_angles"] + wedge
                                      + (limit.map { ["--limit_trans", "\($0)"] } ?? []))
        }
        let free = try RunFiles.rows(ws.file("data/free/x.doc")).values.map { RunFiles.norm($0.shift) }
        let limited = try RunFiles.rows(ws.file("data/limited/x.doc")).values.map { RunFiles.norm($0.shift) }
        #expect(free.max()! > 1.5, "without --limit_trans the shifts stay small (\(free)): the test proves nothing")
        #expect(limited.allSatisfy { $0 <= 1 + 1e-6 }, "--limit_trans 1: shifts \(limited)")
    }

    // MARK: Fixed modes, mask, maxCC

    @Test func onlyAverageWritesItsVolumesFromTheInputClassesAndOrientations() async throws {
        let ws = try await dataset("only-average", snr: 2)
        _ = try await refine(ws, ["-i", "images.sel", "--doc", "truth.doc", "--oroot", "run/x", "--only_average"] + wedge)
        for k in 1 ... 2 {
            let name = String(format: "data/run/x_ref%06d.mrc", k)
            #expect(ws.exists(name), "missing \(name)")
            let average = try VolumeIO.read(ws.file(name))
            let truth = try VolumeIO.read(ws.file(String(format: "data/truth_ref%06d.mrc", k)))
            #expect(RunFiles.correlation(average, truth) > 0.6, "class \(k): the average does not resemble the truth")
        }
        #expect(!ws.exists("data/run/x_it000002.doc"), "--only_average is one pass")
        let truth = try RunFiles.rows(ws.file("data/truth.doc"))
        for (image, row) in try RunFiles.rows(ws.file("data/run/x.doc")) {
            #expect(row.classNumber == truth[image]!.classNumber, "\(image): class changed")
        }
    }

    /// Particles of a one-class set, half of them (those with an even index) carrying a strong extra
    /// blob at `blobCentre`; written next to the originals as `blobs/…` with a `blobs.sel`.
    private func addBlobs(_ ws: Workspace, centre: SIMD3<Double>) throws {
        let dir = ws.file("data")
        let sel = try MetaDataFile.readTable(dir + "/images.sel")
        let truth = try MetaDataFile.readTable(dir + "/truth.doc")
        try FileManager.default.createDirectory(atPath: dir + "/blobs/particles", withIntermediateDirectories: true)
        var doc = truth
        for row in 0 ..< sel.rowCount {
            let name = try sel.string("image", row: row)
            var v = try VolumeIO.read(dir + "/" + name)
            if row % 2 == 0 {
                let d = v.nx, c = Double(d / 2)
                let angles = EulerAngles(rot: try truth.double("angleRot", row: row), tilt: try truth.double("angleTilt", row: row),
                                         psi: try truth.double("anglePsi", row: row))
                let shift = SIMD3(try truth.double("shiftX", row: row), try truth.double("shiftY", row: row), try truth.double("shiftZ", row: row))
                // X(x) = Ref(A(x + t)): the reference-frame point y sits at x = Aᵀy − t in the image.
                let at = angles.matrix.transposed * centre - shift
                for z in 0 ..< d {
                    for y in 0 ..< d {
                        for x in 0 ..< d {
                            let r = SIMD3(Double(x) - c, Double(y) - c, Double(z) - c) - at
                            let r2 = (r * r).sum()
                            v.data[(z * d + y) * d + x] += Float(8 * Foundation.exp(-r2 / (2 * 0.36)))
                        }
                    }
                }
            }
            try MRCFile.write(v, to: dir + "/blobs/" + name)
            doc.set("image", row: row, .string("blobs/" + name))
        }
        var blobSel = MetaDataTable(name: "", labels: ["image", "enabled"])
        for row in 0 ..< sel.rowCount { blobSel.appendRow([.string("blobs/" + (try sel.string("image", row: row))), .int(1)]) }
        try MetaDataFile(blobSel).write(to: dir + "/blobs.sel")
        doc.name = ""
        try MetaDataFile(doc).write(to: dir + "/blobs.doc")
    }

    @Test func maskIgnoresEverythingOutsideIt() async throws {
        let ws = try await dataset("mask", classes: 1, snr: 2)
        let d = 24, c = 12
        // Mask: a ball of radius 2 around the centre (reference frame); the blobs (σ = 0.6) go at radius 6,
        // so even after rotating the mask (trilinear, +√3) every masked voxel is > 3.8σ from the blob
        // (leak < 0.01, against a noise σ of about 0.6). Radius 6 keeps the blob inside every shifted box.
        var mask = Volume(dim: d)
        for z in 0 ..< d { for y in 0 ..< d { for x in 0 ..< d {
            let r2 = (x - c) * (x - c) + (y - c) * (y - c) + (z - c) * (z - c)
            mask.data[(z * d + y) * d + x] = r2 <= 4 ? 1 : 0
        } } }
        try SpiderFile.write(mask, to: ws.file("data/focus.msk"))
        try addBlobs(ws, centre: SIMD3(6, 0, 0))
        let common = ["--nref", "2", "--dont_align", "--iter", "2", "--seed", "5"] + wedge
        _ = try await refine(ws, ["-i", "images.sel", "--doc", "truth.doc", "--oroot", "clean/x", "--mask", "focus.msk"] + common)
        _ = try await refine(ws, ["-i", "blobs.sel", "--doc", "blobs.doc", "--oroot", "blobs/x", "--mask", "focus.msk"] + common)
        _ = try await refine(ws, ["-i", "images.sel", "--doc", "truth.doc", "--oroot", "cleanfull/x"] + common)
        _ = try await refine(ws, ["-i", "blobs.sel", "--doc", "blobs.doc", "--oroot", "blobsfull/x"] + common)
        let clean = try RunFiles.rows(ws.file("data/clean/x.doc"))
        let blobs = try RunFiles.rows(ws.file("data/blobs/x.doc"))
        let cleanFull = try RunFiles.rows(ws.file("data/cleanfull/x.doc"))
        let blobsFull = try RunFiles.rows(ws.file("data/blobsfull/x.doc"))
        // With the mask, the blobs (outside it) change no class assignment and (almost) no likelihood.
        for (image, row) in clean {
            let other = try #require(blobs["blobs/" + image])
            #expect(other.classNumber == row.classNumber, "\(image): the masked-out blob changed the class")
            #expect(abs(other.logLikelihood - row.logLikelihood) <= 1e-3 * abs(row.logLikelihood) + 1,
                    "\(image): log-likelihood \(row.logLikelihood) → \(other.logLikelihood) with the masked-out blob")
        }
        // Without the mask the same blobs do change the result (the control: they are a real difference).
        let changed = cleanFull.filter { image, row in
            guard let other = blobsFull["blobs/" + image] else { return true }
            return other.classNumber != row.classNumber || abs(other.logLikelihood - row.logLikelihood) > 1e-3 * abs(row.logLikelihood) + 1
        }
        #expect(!changed.isEmpty, "without --mask the blobs changed nothing: the test proves nothing")
        // The references are zero outside the mask.
        let refs = try ReferenceStackFile.read(ws.file("data/blobs/x.h5")).references
        for ref in refs {
            let outside = zip(ref.data, mask.data).filter { $0.1 == 0 }.map { abs(Double($0.0)) }.max() ?? 0
            #expect(outside < 1e-6, "reference non-zero outside the mask (\(outside))")
        }
    }

    @Test func maxCCIsInvariantToTheReferenceIntensityScale() async throws {
        let ws = try await dataset("maxcc")
        var scaled = try VolumeIO.read(ws.file("data/truth_ref000001.mrc"))
        for i in 0 ..< scaled.data.count { scaled.data[i] *= 25 }
        try MRCFile.write(scaled, to: ws.file("data/scaled.mrc"))
        for (oroot, ref) in [("a/x", "truth_ref000001.mrc"), ("b/x", "scaled.mrc")] {
            // --classic: the references go in as given (the default first scales them to the particles,
            // which would make the two runs equal before the correlation is computed).
            _ = try await refine(ws, ["-i", "images.sel", "--doc", "images.doc", "--oroot", oroot, "--ref", ref, "--iter", "1",
                                      "--ang", "30", "--maxCC", "--classic"] + wedge)
        }
        let a = try RunFiles.rows(ws.file("data/a/x.doc")), b = try RunFiles.rows(ws.file("data/b/x.doc"))
        for (image, row) in a {
            let other = try #require(b[image])
            #expect(RunFiles.distance(row.angles, other.angles) < 1e-3 && RunFiles.norm(row.shift - other.shift) < 1e-4,
                    "\(image): maxCC depends on the reference scale: \(row) vs \(other)")
            #expect(row.logLikelihood == 0, "maxCC writes no log-likelihood (spec §14 item 5)")
            #expect(row.maxProbability > 0 && row.maxProbability <= 1 + 1e-9, "\(image): CC \(row.maxProbability)")
        }
    }

    /// `--ref` volumes are brought to the particles' grey scale before the first E-step, and the log says
    /// by how much: a copy 1000× weaker gets a factor 1000× larger, an inverted copy a negative one (named
    /// as such); `--classic` uses the volume as given (no such line).
    @Test func givenReferencesAreScaledToTheParticles() async throws {
        let ws = try await dataset("ref-scale")
        let truth = try VolumeIO.read(ws.file("data/truth_ref000001.mrc"))
        for (name, factor) in [("weak.mrc", Float(0.001)), ("inverted.mrc", Float(-1))] {
            var v = truth
            for i in v.data.indices { v.data[i] *= factor }
            try MRCFile.write(v, to: ws.file("data/\(name)"))
        }
        func logged(_ ref: String, _ extra: [String] = []) async throws -> (factor: Double?, stderr: String) {
            let run = try await refine(ws, ["-i", "images.sel", "--doc", "images.doc", "--oroot", "\(ref)\(extra.count)/x",
                                            "--ref", ref, "--iter", "1", "--ang", "30"] + wedge + extra)
            let line = run.stderr.split(separator: "\n").first { $0.contains("--ref: scaled to the particles' grey scale") }
            let factor = line.flatMap { $0.components(separatedBy: "reference 1 × ").last?.split(separator: " ").first }
                .flatMap { Double($0) }
            return (factor, run.stderr)
        }
        let plain = try await logged("truth_ref000001.mrc"), weak = try await logged("weak.mrc")
        let inverted = try await logged("inverted.mrc")
        let a = try #require(plain.factor, "no scale line: \(plain.stderr)")
        let b = try #require(weak.factor, "no scale line: \(weak.stderr)")
        let c = try #require(inverted.factor, "no scale line: \(inverted.stderr)")
        #expect(abs(b / a / 1000 - 1) < 2e-3, "factors \(a) and \(b) for a 1000× weaker copy")
        #expect(abs(c / a + 1) < 2e-3, "factors \(a) and \(c) for an inverted copy")
        #expect(inverted.stderr.contains("(its contrast is the particles' opposite: inverted)"), "\(inverted.stderr)")
        let classic = try await logged("weak.mrc", ["--classic"])
        #expect(classic.factor == nil && !classic.stderr.contains("--ref: scaled"), "--classic scaled the reference: \(classic.stderr)")
    }

    // MARK: The remaining options of §2.1

    @Test func fixFractionsKeepsTheWeightsAndFracSetsThem() async throws {
        let ws = try await dataset("fractions")
        var frac = MetaDataTable(name: "", labels: ["weight"])
        // Not multiples of 1/12: with sharp posteriors the re-estimated weights are counts over 12 images,
        // and 0.25 = 3/12 could come back unchanged.
        frac.appendRow([.real(0.3)])
        frac.appendRow([.real(0.7)])
        try MetaDataFile(frac).write(to: ws.file("data/frac.doc"))
        let refs = ["--ref", "refs.doc"]
        var list = MetaDataTable(name: "", labels: ["image"])
        list.appendRow([.string("truth_ref000001.mrc")])
        list.appendRow([.string("truth_ref000002.mrc")])
        try MetaDataFile(list).write(to: ws.file("data/refs.doc"))
        let common = ["-i", "images.sel", "--doc", "images.doc", "--iter", "2", "--ang", "30"] + wedge + refs
        _ = try await refine(ws, common + ["--oroot", "fixed/x", "--fix_fractions", "--frac", "frac.doc"])
        _ = try await refine(ws, common + ["--oroot", "free/x", "--frac", "frac.doc"])
        let fixed = try RunFiles.weights(ws.file("data/fixed/x_ref.doc"))
        let free = try RunFiles.weights(ws.file("data/free/x_ref.doc"))
        #expect(abs(fixed[0] - 0.3) < 1e-9 && abs(fixed[1] - 0.7) < 1e-9, "--fix_fractions --frac: \(fixed)")
        #expect(abs(free[0] - 0.3) > 1e-6, "without --fix_fractions the weights are re-estimated: \(free)")
    }

    @Test func dimGivesTheWorkingSizeInTheH5AndTheOriginalSizeInTheMRC() async throws {
        let ws = try await dataset("dim")
        _ = try await refine(ws, ["-i", "images.sel", "--doc", "images.doc", "--oroot", "run/x", "--nref", "2", "--iter", "1",
                                  "--ang", "30", "--dim", "16", "--pixel_size", "2.5"] + wedge)
        let stack = try ReferenceStackFile.read(ws.file("data/run/x.h5"))
        #expect(stack.references.count == 2 && stack.references.allSatisfy { $0.nx == 16 && $0.isCubic })
        #expect(abs(stack.voxelSize - 2.5 * 24 / 16) < 1e-9, "h5 voxel size \(stack.voxelSize)")
        let mrc = try VolumeIO.dimensions(ws.file("data/run/x_ref000001.mrc"))
        #expect(mrc.nx == 24 && mrc.ny == 24 && mrc.nz == 24)
        #expect(abs((mrc.voxelSize ?? 0) - 2.5) < 1e-4, "MRC voxel size \(String(describing: mrc.voxelSize))")
    }

    @Test func theRemainingOptionsDoWhatTheySay() async throws {
        let ws = try await dataset("remaining")
        let common = ["-i", "images.sel", "--doc", "images.doc", "--nref", "2", "--ang", "30"] + wedge
        // --istart: numbering starts there.
        _ = try await refine(ws, common + ["--oroot", "istart/x", "--istart", "3", "--iter", "4"])
        #expect(ws.exists("data/istart/x_it000003.doc") && ws.exists("data/istart/x_it000004.doc"))
        #expect(!ws.exists("data/istart/x_it000001.doc"))
        #expect(try RunFiles.logValue(ws.file("data/istart/x_it000004_log.doc"), "iterationNumber") == 4)
        // --fix_sigma_noise / --noise and --fix_sigma_offset / --offset: the values stay as given.
        _ = try await refine(ws, common + ["--oroot", "fixsig/x", "--iter", "2", "--fix_sigma_noise", "--noise", "1.7",
                                           "--fix_sigma_offset", "--offset", "2.5"])
        #expect(abs(try RunFiles.logValue(ws.file("data/fixsig/x_it000002_log.doc"), "sigmaNoise") - 1.7) < 1e-9)
        #expect(abs(try RunFiles.logValue(ws.file("data/fixsig/x_it000002_log.doc"), "sigmaOffset") - 2.5) < 1e-9)
        _ = try await refine(ws, common + ["--oroot", "freesig/x", "--iter", "2", "--noise", "1.7", "--offset", "2.5"])
        #expect(abs(try RunFiles.logValue(ws.file("data/freesig/x_it000002_log.doc"), "sigmaNoise") - 1.7) > 1e-6)
        #expect(abs(try RunFiles.logValue(ws.file("data/freesig/x_it000002_log.doc"), "sigmaOffset") - 2.5) > 1e-6)
        // --eps: a huge threshold converges after the first iteration and stops there (classic: the default
        // also waits for its resolution to stop growing and, with --nref 2, for its consensus to split).
        _ = try await refine(ws, common + ["--oroot", "eps/x", "--iter", "3", "--eps", "1e9", "--classic"])
        #expect(ws.exists("data/eps/x_it000001.doc") && !ws.exists("data/eps/x_it000002.doc") && ws.exists("data/eps/x.doc"))
        #expect(try RunFiles.logValue(ws.file("data/eps/x_it000001_log.doc"), "converged") == 1)
        // --tilt0/--tiltF: every written tilt lies in the range (exhaustive search, no perturbation).
        _ = try await refine(ws, common + ["--oroot", "tilt/x", "--iter", "1", "--tilt0", "60", "--tiltF", "120"])
        for (image, row) in try RunFiles.rows(ws.file("data/tilt/x.doc")) {
            #expect(row.angles.tilt >= 60 - 1e-6 && row.angles.tilt <= 120 + 1e-6, "\(image): tilt \(row.angles.tilt)")
        }
        // --psi_sampling: psi − 2.75° is a multiple of 90°.
        // (--grid_poses: the poses must be samples of the grid for this check.)
        _ = try await refine(ws, common + ["--oroot", "psi/x", "--iter", "1", "--psi_sampling", "90", "--grid_poses"])
        for (image, row) in try RunFiles.rows(ws.file("data/psi/x.doc")) {
            let r = (row.angles.psi - 2.75).truncatingRemainder(dividingBy: 90)
            #expect(min(abs(r), 90 - abs(r)) < 1e-3, "\(image): psi \(row.angles.psi)")
        }
        // Regularisation, imputation and filter options run and change the result; the imputation options
        // belong to the classic computation (the default MAP update does not impute) and say so otherwise.
        for mode in [[], ["--classic"]] {
            let tag = mode.isEmpty ? "" : "classic-"
            _ = try await refine(ws, common + mode + ["--oroot", "\(tag)plain/x", "--iter", "2"])
            let plain = try ReferenceStackFile.read(ws.file("data/\(tag)plain/x.h5")).references
            var variants: [(String, [String])] = [
                ("reg", ["--reg0", "5", "--regF", "0", "--reg_steps", "5"]),
                ("filter", ["--filter", "--ini_filter"]),
                ("maxres", ["--maxres", "0.25"]),
            ]
            if !mode.isEmpty {
                variants += [("noimpute", ["--dont_impute", "--noimp_threshold", "0.5"]), ("impute3", ["--impute_iter", "3"])]
            }
            for (name, flags) in variants {
                _ = try await refine(ws, common + mode + ["--oroot", "\(tag)\(name)/x", "--iter", "2"] + flags)
                let refs = try ReferenceStackFile.read(ws.file("data/\(tag)\(name)/x.h5")).references
                #expect(RunFiles.relativeDifference(plain[0], refs[0]) > 1e-4, "\(mode) \(name): \(flags) changed nothing")
            }
        }
        let ignored = try await refine(ws, common + ["--oroot", "noimputemap/x", "--iter", "1", "--dont_impute"])
        #expect(ignored.combinedOutput.contains("only change the classic computation"), "\(ignored)")
        // --trymindiff_factor is accepted (kept for compatibility) and changes nothing.
        _ = try await refine(ws, common + ["--oroot", "trymin/x", "--iter", "2", "--trymindiff_factor", "0.5"])
        #expect(try RunFiles.rows(ws.file("data/trymin/x.doc")) == RunFiles.rows(ws.file("data/plain/x.doc")))
        // --dont_limit_psirange with a local search lets psi leave ±ang_search of the start.
        _ = try await refine(ws, common + ["--oroot", "psirange/x", "--iter", "1", "--ang", "15", "--ang_search", "20",
                                           "--dont_limit_psirange"])
        #expect(ws.exists("data/psirange/x.doc"))
    }

    // MARK: Spellings

    @Test func singleDashLongOptionsWorkLikeDoubleDashOnes() async throws {
        let ws = try await dataset("single-dash")
        _ = try await refine(ws, ["-i", "images.sel", "--doc", "images.doc", "--oroot", "double/x", "--nref", "1", "--iter", "2",
                                  "--ang", "30", "--missing", "wedges.doc", "--perturb", "--no_SMALLANGLE", "--maxres", "0.4"])
        _ = try await refine(ws, ["-i", "images.sel", "-doc", "images.doc", "-oroot", "single/x", "-nref", "1", "-iter", "2",
                                  "-ang", "30", "-missing", "wedges.doc", "-perturb", "-no_SMALLANGLE", "-maxres", "0.4"])
        #expect(try RunFiles.rows(ws.file("data/single/x.doc")) == RunFiles.rows(ws.file("data/double/x.doc")))
        #expect(try ReferenceStackFile.read(ws.file("data/single/x.h5")).references
            == ReferenceStackFile.read(ws.file("data/double/x.h5")).references)
    }
}
