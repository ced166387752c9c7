import Distributed
import Engine
import Foundation
import Testing
import Volumes

/// The driver in one process (`SingleProcessCollectives`): it must add nothing to the Engine's
/// iterations, hand rank 0 every iteration, and stop, fail and finish as documented. Under mpirun it
/// runs in every `ml_tomo refine` of the end-to-end tests (1, 2 and 3 ranks give identical files).
@Suite struct RefinementDriverTests {
    /// 12 random 8³ particles with input classes and poses, classified with fixed orientations (fast).
    private static func refinement() throws -> (Refinement, [Particle], Model) {
        var o = RefinementOptions()
        o.nref = 2
        o.iterations = 3
        o.dontAlign = true
        let setup = try RefinementSetup(options: o, originalDim: 8, sampling: nil)
        let refinement = Refinement(setup: setup)
        let inputs = (0 ..< 12).map { i in
            var v = Volume(dim: 8)
            for j in 0 ..< v.data.count { v.data[j] = Float(sin(Double(j * (i + 3)) * 0.37)) }
            return ParticleInput(globalIndex: i, volume: v, classIndex: i % 2)
        }
        let particles = try refinement.prepare(inputs)
        var references = [Volume(dim: setup.dim), Volume(dim: setup.dim)]
        for j in 0 ..< references[0].data.count { references[0].data[j] = Float(j % 7); references[1].data[j] = Float(j % 5) }
        return (refinement, particles, try refinement.initialModel(references: references))
    }

    private static func start(_ model: Model) -> RefinementDriver.Start {
        .init(model: model, previous: nil, results: [])
    }

    /// Records what rank 0 is handed; fails the write of one iteration when asked to.
    final class RecordingSink: IterationSink, @unchecked Sendable {
        let failWriteOf: Int?
        private let lock = NSLock()
        private(set) var written: [IterationReport] = []
        private(set) var progressed: [Int] = []
        init(failWriteOf: Int? = nil) { self.failWriteOf = failWriteOf }
        struct WriteFailed: Error, Equatable { let iteration: Int }
        func write(_ report: IterationReport) throws {
            if report.iteration == failWriteOf { throw WriteFailed(iteration: report.iteration) }
            lock.withLock { written.append(report) }
        }
        func progress(_ report: IterationReport, last: Int, secondsSoFar: [Double]) {
            lock.withLock { progressed.append(report.iteration) }
        }
    }

    @Test func iteratesExactlyAsTheEngineAndHandsRankZeroEveryIteration() throws {
        let (refinement, particles, model) = try Self.refinement()
        // The Engine's own loop in one process.
        var expected = model
        var previous: [ParticleResult]?
        var expectedStatistics: [IterationStatistics] = []
        for it in 1 ... 3 {
            let step = try refinement.runIteration(it, model: expected, particles: particles, previous: previous,
                                                   reducer: SingleProcessReducer())
            expected = step.model
            previous = step.results
            expectedStatistics.append(step.statistics)
            if step.statistics.converged { break }
        }
        let sink = RecordingSink()
        var finals = 0
        let driver = RefinementDriver(collectives: SingleProcessCollectives(), refinement: refinement, particles: particles,
                                      totalImages: particles.count)
        let outcome = try driver.run(from: Self.start(model), first: 1, last: 3, sink: sink) { _ in finals += 1 }
        #expect(outcome.model == expected)
        #expect(outcome.results == previous)
        #expect(finals == 1)
        #expect(sink.progressed == expectedStatistics.map(\.iteration))
        #expect(sink.written.map(\.iteration) == expectedStatistics.map(\.iteration))
        for (report, statistics) in zip(sink.written, expectedStatistics) {
            #expect(report.results.map(\.globalIndex) == Array(0 ..< 12))
            #expect(report.statistics.logLikelihood == statistics.logLikelihood)
            #expect(report.statistics.triples == statistics.triples && statistics.triples > 0)
            #expect(report.timing.ranks == 1 && report.timing.eStepMax == report.timing.eStepMin)
        }
        let converged = expectedStatistics.last!.converged
        #expect(outcome.end == (converged ? .converged(iteration: expectedStatistics.count) : .completed))
    }

    @Test func aStopRequestEndsTheRunAfterTheIterationWithTheFinalFiles() throws {
        let (refinement, particles, model) = try Self.refinement()
        let sink = RecordingSink()
        var finalEnd: RefinementEnd?
        let driver = RefinementDriver(collectives: SingleProcessCollectives(localStop: { true }), refinement: refinement,
                                      particles: particles, totalImages: particles.count)
        let outcome = try driver.run(from: Self.start(model), first: 1, last: 3, sink: sink) { finalEnd = $0.end }
        #expect(outcome.end == .stopped(afterIteration: 1))
        #expect(finalEnd == .stopped(afterIteration: 1))
        #expect(sink.written.map(\.iteration) == [1])
    }

    @Test func aFailedWriteStopsTheRunAtTheNextReduction() throws {
        let (refinement, particles, model) = try Self.refinement()
        let sink = RecordingSink(failWriteOf: 1)
        var finals = 0
        let driver = RefinementDriver(collectives: SingleProcessCollectives(), refinement: refinement, particles: particles,
                                      totalImages: particles.count)
        #expect(throws: RecordingSink.WriteFailed(iteration: 1)) {
            _ = try driver.run(from: Self.start(model), first: 1, last: 3, sink: sink) { _ in finals += 1 }
        }
        // Iteration 2's reduction reported the failure: no iteration after 1 reached rank 0, no final files.
        #expect(sink.progressed == [1])
        #expect(finals == 0)
    }

    @Test func aFailedEStepIsReportedThroughTheReduction() throws {
        let (refinement, particles, model) = try Self.refinement()
        var broken = model
        broken.sigmaNoise = 0
        nonisolated(unsafe) var reductions = 0
        let collectives = SingleProcessCollectives(localStop: { reductions += 1; return false })
        let driver = RefinementDriver(collectives: collectives, refinement: refinement, particles: particles,
                                      totalImages: particles.count)
        #expect {
            _ = try driver.run(from: Self.start(broken), first: 1, last: 3, sink: RecordingSink()) { _ in }
        } throws: { error in
            (error as? EngineError)?.message.contains("noise σ is zero") == true
        }
        // The failing step still reached the reduction (where the failure is agreed between ranks).
        #expect(reductions == 1)
    }
}
