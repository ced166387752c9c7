import Foundation

/// The exit status of a process; every rank of a failed job exits with the same one.
public struct ExitStatus: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Normal completion.
    public static let success = ExitStatus(rawValue: 0)
    /// A run-time failure: an error writing the outputs, a numerical breakdown, MPI.
    public static let failure = ExitStatus(rawValue: 1)
    /// The command line is wrong: an unknown option, a bad value or combination of values (EX_USAGE, the
    /// status the argument parser gives its own errors, so that every usage error has this one).
    public static let usage = ExitStatus(rawValue: 64)
    /// An input file named on the command line is missing, unreadable, or inconsistent with the options or
    /// with the other inputs (EX_DATAERR).
    public static let input = ExitStatus(rawValue: 65)
    /// The run stopped on request (SIGTERM, SIGUSR1) after a complete iteration; resume with `--restart`
    /// (EX_TEMPFAIL: "try again").
    public static let interrupted = ExitStatus(rawValue: 75)

    public static func < (lhs: ExitStatus, rhs: ExitStatus) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { "\(rawValue)" }
}

/// An error that knows which exit status it should cause. Errors without this conformance exit
/// with `ExitStatus.failure`.
public protocol ExitStatusProviding: Error {
    var exitStatus: ExitStatus { get }
}

/// Thrown on *every* rank when any rank failed before an agreement point.
///
/// All ranks hold the same value (it is broadcast from rank 0), so they all take the same path
/// out of the program and exit with the same `status`.
public struct CollectiveFailure: Error, CustomStringConvertible, Sendable {
    /// The exit status every rank should use: the largest status among the failing ranks.
    public let status: ExitStatus
    /// All ranks that failed at this agreement point, ascending.
    public let failingRanks: [Int]
    /// The message of the lowest failing rank.
    public let message: String

    public init(status: ExitStatus, failingRanks: [Int], message: String) {
        self.status = status
        self.failingRanks = failingRanks
        self.message = message
    }

    /// The lowest failing rank, whose message is reported.
    public var firstFailingRank: Int { failingRanks.first ?? 0 }

    /// The text rank 0 prints once to stderr, e.g. `ml_tomo: error (rank 1): cannot read x.mrc`.
    public func report(programName: String) -> String {
        var text = "\(programName): error (rank \(firstFailingRank)): \(message)"
        let others = failingRanks.dropFirst()
        if !others.isEmpty {
            let list = others.map(String.init).joined(separator: ", ")
            text += "\n\(programName): rank\(others.count == 1 ? "" : "s") \(list) also failed at the same point"
        }
        return text
    }

    public var description: String { report(programName: "ml_tomo") }
}

extension Communicator {
    /// Runs `work` on this rank, then makes every rank agree on whether any rank failed.
    ///
    /// If `work` succeeded everywhere, returns its result. If it threw on any rank, every rank
    /// throws the same `CollectiveFailure` (rank 0 knows the messages). Call it around each local
    /// phase *before* the next collective operation, so that ranks never end up waiting in
    /// mismatched collectives for a peer that has given up.
    ///
    /// `work` must be local: a collective inside it would leave the ranks that succeeded
    /// waiting for a rank that already failed and went to the agreement instead.
    ///
    /// A `CollectiveFailure` thrown by a nested `agree` is already known to every rank and
    /// passes through without another round of communication.
    public func agree<T>(_ work: () throws -> T) throws -> T {
        let outcome: Result<T, any Error>
        do { outcome = .success(try work()) } catch { outcome = .failure(error) }
        try agreeOnError(outcome.failure)
        return try outcome.get()
    }

    /// The agreement step on its own: every rank passes its local error (or `nil`); returns
    /// normally only if no rank failed, otherwise throws the same `CollectiveFailure` everywhere.
    ///
    /// Cost when nothing failed: one `MPI_Allreduce` of one integer.
    ///
    /// An `MPIError` means this rank's communication layer broke; agreeing would need that same
    /// layer and might never complete, so the job is aborted instead (`MPI_Abort` ends every rank).
    public func agreeOnError(_ error: (any Error)?) throws {
        if let failure = error as? CollectiveFailure { throw failure }
        if let mpiError = error as? MPIError {
            StandardStreams.writeError("ml_tomo: fatal MPI error (rank \(rank)): \(mpiError)\n")
            abort(status: ExitStatus.failure.rawValue)
        }

        let localStatus = error.map(Self.exitStatus(of:)) ?? .success
        let agreedStatus = try allreduce(Int64(localStatus.rawValue), .max)
        if agreedStatus == 0 { return }

        // Some rank failed: collect "<failed flag><message>" on rank 0, which summarises and
        // broadcasts the failing ranks and the first message so every rank throws the same value.
        let local: [UInt8] = error.map { [1] + Array(Self.message(of: $0).utf8) } ?? [0]
        let gathered = try gatherBytes(local, root: 0)
        var failingRanks: [Int64] = []
        var firstMessage = ""
        if let gathered {
            for (r, bytes) in gathered.enumerated() where bytes.first == 1 {
                if failingRanks.isEmpty { firstMessage = String(decoding: bytes.dropFirst(), as: UTF8.self) }
                failingRanks.append(Int64(r))
            }
        }
        try broadcast(&failingRanks, root: 0)
        firstMessage = try broadcast(firstMessage, root: 0)
        throw CollectiveFailure(
            status: ExitStatus(rawValue: Int32(clamping: agreedStatus)),
            failingRanks: failingRanks.map(Int.init),
            message: firstMessage)
    }

    static func exitStatus(of error: any Error) -> ExitStatus {
        let status = (error as? any ExitStatusProviding)?.exitStatus ?? .failure
        // A failure must never agree on "success".
        return status == .success ? .failure : status
    }

    /// The text a scientist should see for `error`.
    static func message(of error: any Error) -> String {
        if let localized = (error as? any LocalizedError)?.errorDescription { return localized }
        return String(describing: error)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case let .failure(error) = self { return error }
        return nil
    }
}
