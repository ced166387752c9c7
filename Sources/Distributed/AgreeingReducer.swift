import Engine

/// Engine's `Reducer` over an MPI communicator, and the agreement point of the refinement: every sum
/// carries two flags in the same `MPI_Allreduce` (whether a rank failed, whether a rank was asked to
/// stop), so agreeing costs no collective of its own.
///
/// When a rank failed (its E-step threw, or rank 0's background write of the previous iteration did)
/// the flags say so to every rank at once, and every rank then throws the same `CollectiveFailure`
/// (`Communicator.agreeOnError`, which only runs on that path). A rank that failed therefore never
/// leaves the others waiting in a collective it will not enter.
///
/// One instance per rank and run; not for concurrent use (the reductions of a rank are sequential).
public final class AgreeingReducer: IterationCollectives, @unchecked Sendable {
    public let communicator: Communicator
    /// Whether any rank had been asked to stop (`localStop`) at the last reduction.
    public private(set) var stopRequested = false
    /// This rank's stop request, read at every reduction.
    private let localStop: () -> Bool
    private var beforeNextReduction: (() -> (any Error)?)?

    public init(_ communicator: Communicator, localStop: @escaping () -> Bool = { false }) {
        self.communicator = communicator
        self.localStop = localStop
    }

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    /// Work this rank does just before its next reduction, whose error (if any) that reduction reports
    /// to every rank: rank 0 waits there for the previous iteration's files, while the other ranks
    /// arrive from their E-steps.
    public func runBeforeNextReduction(_ work: @escaping () -> (any Error)?) { beforeNextReduction = work }

    public func sumInPlace(_ values: inout [Double]) throws { try sumInPlace(&values, localFailure: nil) }

    public func sumInPlace(_ values: inout [Double], localFailure: (any Error)?) throws {
        let pending = beforeNextReduction?()
        beforeNextReduction = nil
        let failure = localFailure ?? pending
        let count = values.count
        values.append(failure == nil ? 0 : 1)
        values.append(localStop() ? 1 : 0)
        try communicator.allreduceInPlace(&values, .sum)
        let failedRanks = values[count]
        stopRequested = values[count + 1] > 0
        values.removeLast(2)
        if failedRanks > 0 {
            // Every rank takes this path (the flags are the same everywhere): agree on who failed and why.
            try communicator.agreeOnError(failure)
        }
    }

    public func gather(_ values: [Double], counts: [Int]) throws -> [[Double]]? {
        try communicator.gather(values, counts: counts, root: 0)
    }

    public func agree(_ work: () throws -> Void) throws { try communicator.agree(work) }

    public func agreeOnError(_ error: (any Error)?) throws { try communicator.agreeOnError(error) }

    public func maxInPlace(_ values: inout [Double]) throws {
        try communicator.agreeOnError(nil)
        try communicator.allreduceInPlace(&values, .max)
    }

    public func minInPlace(_ values: inout [Double]) throws {
        try communicator.agreeOnError(nil)
        try communicator.allreduceInPlace(&values, .min)
    }
}

/// The collective operations `RefinementDriver` needs: sums that carry the agreement on failures and on
/// stop requests, a gather to rank 0 whose counts every rank knows, and agreements. `AgreeingReducer` does
/// them over MPI; `SingleProcessCollectives` in one process (the driver's unit tests).
public protocol IterationCollectives: Reducer, AnyObject {
    /// Whether any rank had been asked to stop at the last reduction.
    var stopRequested: Bool { get }
    /// Work this rank does just before its next reduction; an error it returns fails that reduction.
    func runBeforeNextReduction(_ work: @escaping () -> (any Error)?)
    /// One array per rank on rank 0 (`counts[r]` values from rank r), nil elsewhere.
    func gather(_ values: [Double], counts: [Int]) throws -> [[Double]]?
    /// Runs rank-local `work`, then every rank learns whether it failed anywhere (`Communicator.agree`).
    func agree(_ work: () throws -> Void) throws
    /// Every rank passes its error or nil; throws everywhere if any rank failed.
    func agreeOnError(_ error: (any Error)?) throws
}

/// `IterationCollectives` of a single process: the local values are the global ones, and a failure is
/// this process's own.
public final class SingleProcessCollectives: IterationCollectives, @unchecked Sendable {
    public private(set) var stopRequested = false
    private let localStop: () -> Bool
    private var beforeNextReduction: (() -> (any Error)?)?

    public init(localStop: @escaping () -> Bool = { false }) { self.localStop = localStop }

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func runBeforeNextReduction(_ work: @escaping () -> (any Error)?) { beforeNextReduction = work }

    public func sumInPlace(_ values: inout [Double]) throws { try sumInPlace(&values, localFailure: nil) }

    public func sumInPlace(_ values: inout [Double], localFailure: (any Error)?) throws {
        let pending = beforeNextReduction?()
        beforeNextReduction = nil
        stopRequested = localStop()
        if let failure = localFailure ?? pending { throw failure }
    }

    public func maxInPlace(_ values: inout [Double]) throws {}
    public func minInPlace(_ values: inout [Double]) throws {}

    public func gather(_ values: [Double], counts: [Int]) throws -> [[Double]]? {
        precondition(counts == [values.count], "gather(_:counts:): one process sends \(values.count) values, counts say \(counts)")
        return [values]
    }

    public func agree(_ work: () throws -> Void) throws { try work() }
    public func agreeOnError(_ error: (any Error)?) throws { if let error { throw error } }
}
