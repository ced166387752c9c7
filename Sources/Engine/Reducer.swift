/// Element-wise reductions across the processes that share one refinement.
///
/// Engine computes partial sums (weighted image sums, wedge sums, log-likelihood, sigma statistics)
/// over the images one process owns; a `Reducer` turns them into global sums that every process
/// then holds identically. Engine declares the protocol so that it never imports MPI: the MPI
/// implementation lives in `Distributed` (`MPIReducer`), and `SingleProcessReducer` lets every
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
    /// Replaces each element by its maximum over all processes.
    func maxInPlace(_ values: inout [Double]) throws
    /// Replaces each element by its minimum over all processes.
    func minInPlace(_ values: inout [Double]) throws
}

/// The reducer of a run with a single process: the local values already are the global ones.
public struct SingleProcessReducer: Reducer {
    public init() {}

    public var rank: Int { 0 }
    public var size: Int { 1 }

    public func sumInPlace(_ values: inout [Double]) throws {}
    public func maxInPlace(_ values: inout [Double]) throws {}
    public func minInPlace(_ values: inout [Double]) throws {}
}
