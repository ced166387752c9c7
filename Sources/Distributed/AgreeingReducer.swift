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
public final class AgreeingReducer: Reducer, @unchecked Sendable {
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

    public func maxInPlace(_ values: inout [Double]) throws {
        try communicator.agreeOnError(nil)
        try communicator.allreduceInPlace(&values, .max)
    }

    public func minInPlace(_ values: inout [Double]) throws {
        try communicator.agreeOnError(nil)
        try communicator.allreduceInPlace(&values, .min)
    }
}
