import Foundation
import Formats
import Testing
import Volumes

/// The start selection through the command line, as users run it: a reference-free run scores its own
/// start against two others after iteration 3, logs every score and the one kept, and ends the same on 1
/// and 2 ranks; `--starts 1` and `--classic` run no selection.
@Suite(.serialized) struct StartSelectionCommandTests {
    @Test func theSelectionIsLoggedAndTheSameOnOneAndTwoRanks() async throws {
        let ws = try Workspace("starts")
        try await ws.simulate("data", particles: 24, size: 24, classes: 2, snr: 1)
        let data = ws.file("data")
        func run(ranks: Int, _ extra: [String] = [], name: String) async throws -> (oroot: String, stderr: String) {
            let oroot = ws.file("\(name)/x")
            let result = try await ProcessRunner.mpirun(
                ranks: ranks, ["-i", "images.sel", "--oroot", oroot, "--doc", "images.doc", "--missing", "wedges.doc",
                               "--nref", "2", "--ang", "30", "--iter", "5"] + extra,
                currentDirectory: data, timeout: 900)
            #expect(result.status == 0, "\(ranks) rank(s): \(result)")
            return (oroot, result.stderr)
        }
        let two = try await run(ranks: 2, name: "r2")
        let one = try await run(ranks: 1, name: "r1")
        for out in [one, two] {
            #expect(out.stderr.contains("iteration 3: scoring this start against 2 more from other seeds (3 iterations each, then one E-step per start at one common resolution); about "),
                    "with a time estimate: \(out.stderr)")
            #expect(out.stderr.contains("start selection: the start of seed 2 reached")
                    && out.stderr.contains("start selection: the start of seed 3 reached"), "\(out.stderr)")
            #expect(RunFiles.count("(kept)", in: out.stderr) == 1, "\(out.stderr)")
        }
        func scoreLine(_ text: String) -> [Substring] {
            text.split(separator: "\n").filter { $0.contains("start selection at") }.map { $0.drop { $0 != "s" } }
        }
        #expect(scoreLine(one.stderr).count == 1)
        #expect(scoreLine(one.stderr) == scoreLine(two.stderr), "\(scoreLine(one.stderr)) vs \(scoreLine(two.stderr))")
        let rows2 = try RunFiles.rows(two.oroot + ".doc"), rows1 = try RunFiles.rows(one.oroot + ".doc")
        #expect(rows2.count == 24)
        try RunFiles.expectSamePoses(rows2, as: rows1, ranks: "2-rank")
        for (name, extra) in [("single", ["--starts", "1"]), ("classic", ["--classic"])] {
            let out = try await run(ranks: 2, extra, name: name)
            #expect(!out.stderr.contains("start selection"), "\(name): \(out.stderr)")
        }
    }
}
