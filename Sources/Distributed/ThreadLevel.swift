import CMPI

/// MPI thread support levels, ordered from least to most permissive.
public enum ThreadLevel: Int, Comparable, CustomStringConvertible, Sendable, CaseIterable {
    /// Only one thread exists.
    case single
    /// Only the main thread makes MPI calls.
    case funneled
    /// Any thread may call MPI, but never two at once.
    case serialized
    /// Any thread may call MPI at any time.
    case multiple

    public static func < (lhs: ThreadLevel, rhs: ThreadLevel) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .single: "MPI_THREAD_SINGLE"
        case .funneled: "MPI_THREAD_FUNNELED"
        case .serialized: "MPI_THREAD_SERIALIZED"
        case .multiple: "MPI_THREAD_MULTIPLE"
        }
    }

    var mpiValue: Int32 {
        switch self {
        case .single: cmpi_thread_single()
        case .funneled: cmpi_thread_funneled()
        case .serialized: cmpi_thread_serialized()
        case .multiple: cmpi_thread_multiple()
        }
    }

    init(mpiValue: Int32) {
        // The MPI standard guarantees the constants are monotone; map anything unknown conservatively.
        if mpiValue >= cmpi_thread_multiple() { self = .multiple }
        else if mpiValue >= cmpi_thread_serialized() { self = .serialized }
        else if mpiValue >= cmpi_thread_funneled() { self = .funneled }
        else { self = .single }
    }
}
