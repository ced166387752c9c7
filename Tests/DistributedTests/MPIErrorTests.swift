import Distributed
import Testing

@Suite struct MPIErrorTests {
    /// MPI return codes become errors that carry the function name and the code. This process
    /// never initialises MPI, and Open MPI aborts if `MPI_Error_string` is called then: the
    /// error must notice and fall back to the bare code instead of killing the test runner.
    @Test func describesTheFailedCallEvenWithoutMPIInitialised() {
        #expect(!Communicator.isInitialized)
        let error = MPIError(function: "MPI_Bcast", code: 1)
        #expect(error.description.hasPrefix("MPI_Bcast failed: "))
        #expect(error.description.hasSuffix("(MPI error code 1)"))
        #expect(error.message.contains("MPI error 1"))
    }

    @Test func threadLevelsAreOrderedAndNamed() {
        #expect(ThreadLevel.single < .funneled && ThreadLevel.funneled < .serialized && ThreadLevel.serialized < .multiple)
        #expect(ThreadLevel.multiple.description == "MPI_THREAD_MULTIPLE")
        let refusal = DistributedError.threadLevelNotGranted(required: .multiple, provided: .serialized)
        #expect(refusal.description.contains("MPI_THREAD_SERIALIZED"))
    }
}
