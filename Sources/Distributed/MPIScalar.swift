import CMPI

/// The element types that `Communicator` can broadcast and reduce.
///
/// Only trivial, fixed-size types whose memory is exactly one element of the MPI datatype may
/// conform (MPI reads and writes their bytes directly).
///
/// The mapping to MPI datatypes stays inside this module (`MPIScalarKind`), so users of
/// `Distributed` never see `MPI_Datatype` and never need to import the C module.
public protocol MPIScalar: Sendable {
    static var mpiScalarKind: MPIScalarKind { get }
}

/// The MPI datatype behind an `MPIScalar`.
public enum MPIScalarKind: Sendable {
    case double, float, int64, int32, byte

    var datatype: MPI_Datatype {
        switch self {
        case .double: cmpi_double()
        case .float: cmpi_float()
        case .int64: cmpi_int64()
        case .int32: cmpi_int32()
        case .byte: cmpi_byte()
        }
    }
}

/// The element types that `Communicator` can also reduce (sum, max, min). Bytes are excluded:
/// MPI defines no arithmetic on `MPI_BYTE`.
public protocol MPIReducible: MPIScalar {}

extension Double: MPIReducible { public static var mpiScalarKind: MPIScalarKind { .double } }
extension Float: MPIReducible { public static var mpiScalarKind: MPIScalarKind { .float } }
extension Int64: MPIReducible { public static var mpiScalarKind: MPIScalarKind { .int64 } }
extension Int32: MPIReducible { public static var mpiScalarKind: MPIScalarKind { .int32 } }
extension UInt8: MPIScalar { public static var mpiScalarKind: MPIScalarKind { .byte } }

/// The element-wise operation of a reduction.
public enum ReductionOp: Sendable, CustomStringConvertible {
    case sum, max, min

    var mpiOp: MPI_Op {
        switch self {
        case .sum: cmpi_op_sum()
        case .max: cmpi_op_max()
        case .min: cmpi_op_min()
        }
    }

    public var description: String {
        switch self {
        case .sum: "sum"
        case .max: "max"
        case .min: "min"
        }
    }
}
