/// Element-wise reductions across the processes that share one refinement.
///
/// Engine computes partial sums (weighted image sums, wedge sums, log-likelihood, sigma statistics)
/// over the images one process owns; a `Reducer` turns them into global sums that every process
/// then holds identically. Engine declares the protocol so that it never imports MPI: the MPI
/// implementation lives in `Distributed` (`AgreeingReducer`), and `SingleProcessReducer` lets every
/// Engine computation and test run in one process.
///
/// Every method is collective: all processes must call it in the same order with buffers of the
/// same length, and after it returns every process holds the same values.
public protocol Reducer: Sendable {
    /// This process's index, `0 ..< size`.
    var rank: Int { get }
    /// The number of processes taking part.
    var size: Int { get }
    /// Replaces each element by its sum over all processes.
    func sumInPlace(_ values: inout [Double]) throws
    /// The sum of a step whose local part may have failed: a process whose part failed passes zeros of
    /// the same length and its error, so that it still takes part, and then every process throws (the
    /// distributed reducer agrees on the failure inside the same reduction; nothing waits for a process
    /// that has given up).
    func sumInPlace(_ values: inout [Double], localFailure: (any Error)?) throws
    /// Replaces each element by its maximum over all processes.
    func maxInPlace(_ values: inout [Double]) throws
    /// Replaces each element by its minimum over all processes.
    func minInPlace(_ values: inout [Double]) throws
}

/// Values a reducer may append to a buffer for the length of one reduction (its agreement flags): buffers
/// built for a reduction (`Sums.packed()`) reserve room for them, so that appending never copies the sums.
public let reducerTrailingCapacity = 4

/// The reducer of a run with a single process: the local values already are the global ones.
public struct SingleProcessReducer: Reducer {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func sumInPlace(_ values: inout [Double]) throws {}
    public func sumInPlace(_ values: inout [Double], localFailure: (any Error)?) throws {
        if let localFailure { throw localFailure }
    }
    public func maxInPlace(_ values: inout [Double]) throws {}
    public func minInPlace(_ values: inout [Double]) throws {}
}
