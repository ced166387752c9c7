import Foundation
import Testing

/// `ml_tomo bench --smoke`: CI keeps the benchmark harness working with one tiny workload (its figures
/// mean nothing); the JSON it writes must carry a refinement with a measured floor.
@Suite(.serialized) struct BenchSmokeTests {
    @Test func smokeRunWritesItsJSON() async throws {
        let ws = try Workspace("bench")
        let run = try await ProcessRunner.mlTomo(["bench", "--smoke", "--output", ws.file("results")], timeout: 600)
        try #require(run.status == 0, "\(run)")
        let files = ws.files(under: "results").filter { $0.hasSuffix(".json") }
        try #require(files.count == 1, "\(files)")
        let json = try #require(try JSONSerialization.jsonObject(with: ws.read("results/" + files[0])) as? [String: Any])
        let refinements = try #require(json["refinements"] as? [[String: Any]])
        #expect(refinements.count == 1)
        let smoke = try #require(refinements.first)
        #expect((smoke["triples"] as? Int ?? 0) > 0, "\(smoke)")
        #expect((smoke["fftC2RSeconds"] as? Double ?? 0) > 0, "\(smoke)")
        #expect((smoke["eStepRatioToFloor"] as? Double ?? 0) > 0, "\(smoke)")
        // The floor as the E-step met it: its own c2r calls, timed where they ran. Every triple runs one
        // c2r, so the E-step cannot take less than that floor (ratio ≥ 1 up to clock granularity).
        let inEStep = smoke["c2rInEStepSeconds"] as? Double ?? 0
        #expect(inEStep > 0 && inEStep < 0.1, "\(smoke)")
        #expect((smoke["eStepRatioToFloorInEStep"] as? Double ?? 0) >= 0.99, "\(smoke)")
        // The memory yardstick: the runtime's RSS before loading and the data budget, both from the run.
        #expect((smoke["baselineRSSMiB"] as? Double ?? 0) > 0, "\(smoke)")
        #expect((smoke["budgetMiB"] as? Double ?? 0) > 0, "\(smoke)")
        #expect(run.stdout.contains("| smoke |"), "\(run.stdout)")
    }
}
