import Foundation
import Formats
import Testing
import Volumes

/// Ranks and particles in any proportion (issue 20, item 6): 2 particles on 3 ranks, so rank 2 holds none
/// (contiguous blocks of sizes 1, 1, 0), in every mode. Each run must succeed and give the classes, angles
/// and shifts of the same run on 1 rank, and the same references up to the order of the sums (item 7).
@Suite(.serialized) struct ZeroParticleRankTests {
    enum Mode: String, CaseIterable, Sendable {
        case nref, ref, dontAlign, onlyAverage

        var arguments: [String] {
            switch self {
            case .nref: ["--doc", "images.doc", "--nref", "2", "--iter", "2", "--ang", "30"]
            case .ref: ["--doc", "images.doc", "--ref", "truth_ref000001.mrc", "--iter", "2", "--ang", "30"]
            case .dontAlign: ["--doc", "truth.doc", "--nref", "2", "--dont_align", "--iter", "2"]
            case .onlyAverage: ["--doc", "truth.doc", "--only_average"]
            }
        }
    }

    @Test(arguments: Mode.allCases)
    func aRankWithoutParticlesTakesPart(mode: Mode) async throws {
        let ws = try Workspace("zero-\(mode.rawValue)")
        try await ws.simulate("data", particles: 2, size: 24, classes: 2, snr: 1)
        let data = ws.file("data")
        try RunFiles.writeTruthDoc(in: data)
        func run(ranks: Int) async throws -> String {
            let oroot = ws.file("r\(ranks)/x")
            let result = try await ProcessRunner.mpirun(
                ranks: ranks, ["-i", "images.sel", "--oroot", oroot, "--missing", "wedges.doc"] + mode.arguments,
                currentDirectory: data, timeout: 600)
            #expect(result.status == 0, "\(mode) on \(ranks) rank(s): \(result)")
            #expect(!result.stderr.contains("error"), "\(result)")
            return oroot
        }
        let three = try await run(ranks: 3)
        let one = try await run(ranks: 1)
        let rows3 = try RunFiles.rows(three + ".doc"), rows1 = try RunFiles.rows(one + ".doc")
        #expect(rows3.count == 2, "\(rows3)")
        try RunFiles.expectSamePoses(rows3, as: rows1, ranks: "3-rank", context: "\(mode) ", shifts: true)
        let stack3 = try ReferenceStackFile.read(three + ".h5"), stack1 = try ReferenceStackFile.read(one + ".h5")
        #expect(stack3.references.count == stack1.references.count)
        for (a, b) in zip(stack3.references, stack1.references) {
            #expect(RunFiles.relativeDifference(b, a) < 1e-5, "\(mode): references differ by \(RunFiles.relativeDifference(b, a))")
        }
    }
}
