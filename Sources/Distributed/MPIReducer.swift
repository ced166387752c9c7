import Engine

/// Engine's `Reducer` over an MPI communicator: each reduction is one (chunked) in-place
/// `MPI_Allreduce`, so every rank ends with the same global values.
public struct MPIReducer: Reducer {
    public let communicator: Communicator

    public init(_ communicator: Communicator) {
        self.communicator = communicator
    }

    public var rank: Int { communicator.rank }
    public var size: Int { communicator.size }

    public func sumInPlace(_ values: inout [Double]) throws { try communicator.allreduceInPlace(&values, .sum) }
    public func maxInPlace(_ values: inout [Double]) throws { try communicator.allreduceInPlace(&values, .max) }
    public func minInPlace(_ values: inout [Double]) throws { try communicator.allreduceInPlace(&values, .min) }
}
