import CMPI

/// A failed MPI call, reported as a Swift error instead of the default MPI behaviour (abort).
///
/// `Communicator` installs `MPI_ERRORS_RETURN` on its communicator, so every MPI call returns a
/// code; a code other than `MPI_SUCCESS` becomes this error, carrying the library's own text.
public struct MPIError: Error, CustomStringConvertible, Sendable {
    /// The MPI function that failed, e.g. `"MPI_Allreduce"`.
    public let function: String
    /// The return code of the call.
    public let code: Int32
    /// `MPI_Error_string` for `code`.
    public let message: String

    public init(function: String, code: Int32) {
        self.function = function
        self.code = code
        self.message = MPIError.errorString(code)
    }

    public var description: String { "\(function) failed: \(message) (MPI error code \(code))" }

    /// Throws an `MPIError` unless `code` is `MPI_SUCCESS`.
    @inline(__always)
    static func check(_ code: Int32, _ function: @autoclosure () -> String) throws {
        if code != cmpi_success() { throw MPIError(function: function(), code: code) }
    }

    static func errorString(_ code: Int32) -> String {
        // Open MPI aborts the process if MPI_Error_string is called outside Init...Finalize.
        guard Communicator.isInitialized, !Communicator.isFinalized else {
            return "MPI error \(code) (no text: MPI is not active in this process)"
        }
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_error_string()) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == cmpi_success() else {
            return "unknown MPI error"
        }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Misuse of the distributed layer that MPI itself would not diagnose clearly.
public enum DistributedError: Error, CustomStringConvertible, Sendable {
    /// MPI granted a lower thread support level than the program needs.
    case threadLevelNotGranted(required: ThreadLevel, provided: ThreadLevel)
    /// A root rank outside `0 ..< size`.
    case invalidRoot(Int, size: Int)
    /// A gather whose total byte count does not fit MPI's 32-bit counts and displacements.
    case gatherTooLarge(totalBytes: Int)
    /// MPI was already finalised; no further MPI call is possible in this process.
    case alreadyFinalized

    public var description: String {
        switch self {
        case let .threadLevelNotGranted(required, provided):
            return "the MPI library granted thread support \(provided) but ml_tomo needs \(required); "
                + "use an MPI build with thread support (Open MPI: --enable-mpi-thread-multiple)"
        case let .invalidRoot(root, size):
            return "root rank \(root) is outside 0..<\(size)"
        case let .gatherTooLarge(totalBytes):
            return "cannot gather \(totalBytes) bytes in one call: MPI_Gatherv counts are 32-bit"
        case .alreadyFinalized:
            return "MPI has already been finalised in this process"
        }
    }
}
