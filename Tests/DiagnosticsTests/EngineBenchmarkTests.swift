import Diagnostics
import Foundation
import Testing

@Suite struct EngineBenchmarkTests {
    /// The workload evaluates every (particle, orientation, class) triple once, and both clocks read
    /// something: the E-step's wall time and the FFT's CPU time (clamped at 1e-9 when a timer reads nothing).
    @Test func benchmarkReportsTheWorkload() throws {
        let env = ProcessInfo.processInfo.environment
        let n = Int(env["ENGINE_BENCH_PARTICLES"] ?? "") ?? 8
        let ang = Double(env["ENGINE_BENCH_ANG"] ?? "") ?? 30
        let r = try EngineBenchmark.refinementWorkload(particles: n, dim: 32, classes: 2, angularStep: ang, threads: 2)
        print(r)
        #expect(r.triples == n * 2 * r.orientations)
        #expect(r.eStepSeconds > 0 && r.fftSeconds > 1e-9)
    }

    @Test func kernelTimesAreMeasured() {
        #expect(KernelTiming.c2rSeconds(dim: 16, repetitions: 20) > 1e-9)
        #expect(KernelTiming.rotationSeconds(dim: 16, padding: 2) > 0)
    }
}
