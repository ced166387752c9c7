import Foundation
import Formats
import Testing
import Volumes

#if canImport(Glibc)
import Glibc
#endif

/// `--restart <oroot>_itNNNNNN`: a run killed (kill -9 of the whole mpirun process group) or stopped by
/// SIGUSR1 resumes from the HDF5 state of its last finished iteration and ends with the same files as
/// a run that was never stopped.
@Suite(.serialized) struct RestartTests {
    /// 12 particles of 24³, two classes, --perturb (so the per-iteration random rotation must also be
    /// reproduced after the restart), 5 iterations. The oroot is absolute: it makes the command line
    /// unique, so the test can find this run's processes.
    private func arguments(oroot: String, iterations: Int = 5) -> [String] {
        ["-i", "images.sel", "--oroot", oroot, "--nref", "2", "--doc", "images.doc", "--missing", "wedges.doc",
         "--iter", "\(iterations)", "--ang", "30", "--perturb"]
    }

    /// The final doc rows and the HDF5 references of `a` and `b` are identical (the .doc comment holds the
    /// command line, which differs: only the data rows are compared).
    private func expectSameResult(_ a: String, _ b: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let rowsA = try RunFiles.rows(a + ".doc"), rowsB = try RunFiles.rows(b + ".doc")
        #expect(rowsA.count == 12, sourceLocation: sourceLocation)
        #expect(rowsA == rowsB, "final docs differ:\n\(rowsA)\nvs\n\(rowsB)", sourceLocation: sourceLocation)
        let tableA = try RunFiles.table(a + ".doc"), tableB = try RunFiles.table(b + ".doc")
        #expect(tableA.labels == tableB.labels && tableA.rows == tableB.rows, "doc data rows differ", sourceLocation: sourceLocation)
        let stackA = try ReferenceStackFile.read(a + ".h5"), stackB = try ReferenceStackFile.read(b + ".h5")
        #expect(stackA.references == stackB.references, "HDF5 reference arrays differ", sourceLocation: sourceLocation)
        #expect(stackA.classFractions == stackB.classFractions, sourceLocation: sourceLocation)
        #expect(stackA.sigmaNoise == stackB.sigmaNoise && stackA.sigmaOffset == stackB.sigmaOffset, sourceLocation: sourceLocation)
        #expect(try RunFiles.weights(a + "_ref.doc") == RunFiles.weights(b + "_ref.doc"), sourceLocation: sourceLocation)
    }

    @Test func killNineDuringIterationThreeThenRestartGivesTheSameFiles() async throws {
        let ws = try Workspace("restart-kill")
        try await ws.simulate("data", particles: 12, size: 24, classes: 2, snr: 1)
        let data = ws.file("data")

        let full = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: ws.file("full/x")), currentDirectory: data, timeout: 900)
        try #require(full.status == 0, "\(full)")

        // Interrupted run: kill -9 the whole mpirun process group as soon as iteration 2 is on disk.
        let cut = ws.file("cut/x")
        let killer = Task { () -> Bool in
            guard await RunFiles.waitForFile(cut + "_it000002.h5", timeout: 600) else { return false }
            let launchers = RunFiles.processes(containing: "mpirun", also: cut)
            let ranks = RunFiles.processes(containing: "ml_tomo", also: cut)
            for pid in launchers {
                if let group = RunFiles.processGroup(pid) { kill(-group, SIGKILL) }
            }
            for pid in ranks { kill(pid, SIGKILL) }
            return !launchers.isEmpty
        }
        let interrupted = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: cut), currentDirectory: data, timeout: 900)
        let killed = await killer.value
        try #require(killed, "the interrupted run never reached iteration 2, or mpirun was not found")
        #expect(interrupted.status != 0, "the run should have been killed: \(interrupted)")
        #expect(!ws.exists("cut/x_it000005.doc"), "the kill came too late: the run had already finished")
        #expect(!ws.exists("cut/x.doc") || !ws.exists("cut/x_it000005.h5"))

        let resumed = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: cut) + ["--restart", cut + "_it000002"],
                                                     currentDirectory: data, timeout: 900)
        try #require(resumed.status == 0, "\(resumed)")
        #expect(resumed.combinedOutput.contains("resuming after iteration 2"), "\(resumed)")
        try expectSameResult(ws.file("full/x"), cut)
        // The iterations after the restart point are the same too.
        for it in ["_it000003", "_it000004", "_it000005"] {
            #expect(try RunFiles.rows(ws.file("full/x") + it + ".doc") == RunFiles.rows(cut + it + ".doc"), "\(it)")
        }
    }

    /// kill -9 of one rank (rank 1 only, as when a node dies) during iteration 3: mpirun ends the job within
    /// seconds, rank 0 prints the exact `--restart` argument of the last complete iteration (mpirun sends it
    /// SIGTERM before killing it), the files of that iteration are complete, and resuming from it ends with
    /// the same files as a run never interrupted.
    @Test func killNineOfOneRankPrintsTheRestartArgumentAndResumesIdentically() async throws {
        let ws = try Workspace("restart-kill-rank")
        try await ws.simulate("data", particles: 12, size: 24, classes: 2, snr: 1)
        let data = ws.file("data")
        let cut = ws.file("cut/x")
        let killer = Task { () -> Date? in
            guard await RunFiles.waitForFile(cut + "_it000002_log.doc", timeout: 600),
                  let pid = RunFiles.rankProcess(1, also: cut) else { return nil }
            kill(pid, SIGKILL)
            return Date()
        }
        let interrupted = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: cut), currentDirectory: data, timeout: 900)
        let ended = Date()
        let killedAt = await killer.value
        try #require(killedAt != nil, "the run never reached iteration 2, or rank 1 was not found: \(interrupted)")
        print("kill -9 of rank 1 → job ended after \(String(format: "%.2f", ended.timeIntervalSince(killedAt!))) s")
        #expect(interrupted.status != 0, "\(interrupted)")
        #expect(ended.timeIntervalSince(killedAt!) < 15, "\(interrupted)")
        #expect(!ws.exists("cut/x.doc"), "the kill came too late: the run had already finished")
        // The last iteration whose log doc (written last) exists; the message names exactly it.
        let done = (1 ... 5).filter { ws.exists("cut/x_it\(String(format: "%06d", $0))_log.doc") }.max() ?? 0
        #expect(done >= 2 && done < 5, "\(interrupted)")
        let restart = "\(cut)_it\(String(format: "%06d", done))"
        #expect(RunFiles.count("resumes with the same command plus --restart \(restart)\n", in: interrupted.stderr) == 1,
                "the message must name --restart \(restart): \(interrupted)")
        #expect(!ws.files(under: "cut").contains { $0.contains(".tmp.") }, "a temporary file was left behind")

        let resumed = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: cut) + ["--restart", restart],
                                                     currentDirectory: data, timeout: 900)
        try #require(resumed.status == 0, "\(resumed)")
        #expect(resumed.combinedOutput.contains("resuming after iteration \(done)"), "\(resumed)")
        let full = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: ws.file("full/x")), currentDirectory: data, timeout: 900)
        try #require(full.status == 0, "\(full)")
        try expectSameResult(ws.file("full/x"), cut)
    }

    @Test func sigusr1StopsAfterTheCurrentIterationWithStatus75AndTheRestartArgument() async throws {
        let ws = try Workspace("restart-usr1")
        try await ws.simulate("data", particles: 12, size: 24, classes: 2, snr: 1)
        let data = ws.file("data")
        let oroot = ws.file("stop/x")
        let signaller = Task { () -> Int in
            guard await RunFiles.waitForFile(oroot + "_it000001.h5", timeout: 600) else { return 0 }
            // The ranks only (not mpirun): every rank gets the signal, as from `scancel --signal=USR1`.
            let ranks = RunFiles.processes(containing: "ml_tomo", also: oroot).filter {
                !RunFiles.processes(containing: "mpirun", also: oroot).contains($0)
            }
            for pid in ranks { kill(pid, SIGUSR1) }
            return ranks.count
        }
        let run = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: oroot), currentDirectory: data, timeout: 900)
        let signalled = await signaller.value
        try #require(signalled == 2, "expected to signal 2 ranks, signalled \(signalled)")
        #expect(run.status == 75, "\(run)")
        // The last complete iteration N: its files exist, the later ones do not.
        let done = (1 ... 5).filter { ws.exists("stop/x_it\(String(format: "%06d", $0)).h5") }.max() ?? 0
        #expect(done >= 1 && done < 5, "the run should stop early, it wrote up to iteration \(done)")
        let restartArgument = "--restart \(oroot)_it\(String(format: "%06d", done))"
        #expect(RunFiles.count(restartArgument, in: run.combinedOutput) == 1,
                "the message must name \(restartArgument) once: \(run)")

        let resumed = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: oroot) + ["--restart", "\(oroot)_it\(String(format: "%06d", done))"],
                                                     currentDirectory: data, timeout: 900)
        try #require(resumed.status == 0, "\(resumed)")
        let full = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: ws.file("full/x")), currentDirectory: data, timeout: 900)
        try #require(full.status == 0, "\(full)")
        try expectSameResult(ws.file("full/x"), oroot)
    }

    @Test func restartRejectsAMissingStateAndADifferentInput() async throws {
        let ws = try Workspace("restart-bad")
        try await ws.simulate("data", particles: 8, size: 24, classes: 2, snr: 1)
        let data = ws.file("data")
        let missing = try await ProcessRunner.mpirun(ranks: 2, arguments(oroot: "out/x", iterations: 2) + ["--restart", "nothere_it000002"],
                                                     currentDirectory: data, timeout: 300)
        #expect(missing.status != 0)
        #expect(RunFiles.count("nothere_it000002.h5 does not exist", in: missing.combinedOutput) == 1, "\(missing)")
        #expect(!ws.exists("data/out"))
    }
}
