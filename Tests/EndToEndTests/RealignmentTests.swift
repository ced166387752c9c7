import Foundation
import Formats
import Testing
import Volumes

/// `--realign_classes` through the command line, as users run it: the realignment happens after
/// iteration --iter − 4 on every rank, the log scores every candidate of every class, and the result does
/// not depend on the number of ranks (each rank realigns its own members; the sums are exact).
@Suite(.serialized) struct RealignmentTests {
    @Test func realignmentIsLoggedAndTheSameOnOneAndTwoRanks() async throws {
        let ws = try Workspace("realign")
        try await ws.simulate("data", particles: 24, size: 24, classes: 2, snr: 1)
        let data = ws.file("data")
        func run(ranks: Int) async throws -> (oroot: String, stderr: String) {
            let oroot = ws.file("r\(ranks)/x")
            let result = try await ProcessRunner.mpirun(
                ranks: ranks, ["-i", "images.sel", "--oroot", oroot, "--doc", "images.doc", "--missing", "wedges.doc",
                               "--nref", "2", "--ang", "30", "--iter", "7", "--consensus_iter", "2",
                               "--realign_classes", "1", "--realign_iter", "2", "--starts", "1"],
                currentDirectory: data, timeout: 900)
            #expect(result.status == 0, "\(ranks) rank(s): \(result)")
            return (oroot, result.stderr)
        }
        let two = try await run(ranks: 2)
        let one = try await run(ranks: 1)
        for out in [one, two] {
            #expect(out.stderr.contains("iteration 3: realigning each of the 2 class(es) alone: 1 run(s) from nothing of 2 iterations"),
                    "\(out.stderr)")
            #expect(RunFiles.count("realignment: class ", in: out.stderr) == 2, "one progress line per run: \(out.stderr)")
            #expect(out.stderr.contains("realignment: class 2, seed 2: "), "runs are seeded --seed + 1 …: \(out.stderr)")
            #expect(RunFiles.count("log-likelihood at", in: out.stderr) == 2, "one score line per class: \(out.stderr)")
            #expect(RunFiles.count("(kept)", in: out.stderr) == 2, "\(out.stderr)")
            #expect(out.stderr.contains("iterations 4–7 refine all classes from it"), "\(out.stderr)")
        }
        // The same choice and the same scores on 1 and 2 ranks: the score lines are identical.
        func scoreLines(_ text: String) -> [Substring] {
            text.split(separator: "\n").filter { $0.contains("log-likelihood at") }.map { $0.drop { $0 != "c" } }
        }
        #expect(scoreLines(one.stderr) == scoreLines(two.stderr), "\(scoreLines(one.stderr)) vs \(scoreLines(two.stderr))")
        let rows2 = try RunFiles.rows(two.oroot + ".doc"), rows1 = try RunFiles.rows(one.oroot + ".doc")
        #expect(rows2.count == 24)
        try RunFiles.expectSamePoses(rows2, as: rows1, ranks: "2-rank")
        let stack2 = try ReferenceStackFile.read(two.oroot + ".h5"), stack1 = try ReferenceStackFile.read(one.oroot + ".h5")
        for (a, b) in zip(stack2.references, stack1.references) {
            #expect(RunFiles.relativeDifference(b, a) < 1e-5, "references differ by \(RunFiles.relativeDifference(b, a))")
        }

        // Resumed from iteration 3's files (a run stopped right before its realignment), the run realigns
        // before its first iteration and ends where the uninterrupted run ended. Nothing is timed yet, so
        // the realignment line has no estimate.
        let resumedRoot = ws.file("resumed/x")
        let resumed = try await ProcessRunner.mpirun(
            ranks: 2, ["-i", "images.sel", "--oroot", resumedRoot, "--doc", "images.doc", "--missing", "wedges.doc",
                       "--nref", "2", "--ang", "30", "--iter", "7", "--consensus_iter", "2",
                       "--realign_classes", "1", "--realign_iter", "2", "--starts", "1", "--restart", two.oroot + "_it000003"],
            currentDirectory: data, timeout: 900)
        try #require(resumed.status == 0, "\(resumed)")
        #expect(resumed.stderr.contains("iteration 3: realigning each of the 2 class(es) alone: 1 run(s) from nothing of 2 iterations, then one scoring E-step per candidate\n"),
                "\(resumed.stderr)")
        #expect(scoreLines(resumed.stderr) == scoreLines(two.stderr), "\(scoreLines(resumed.stderr)) vs \(scoreLines(two.stderr))")
        #expect(try RunFiles.rows(resumedRoot + ".doc") == rows2, "the resumed run ends elsewhere")
    }
}
