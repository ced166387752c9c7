import CMPI
import Engine

/// MPI communicator, partitioning and collective error agreement.
public enum DistributedInfo {
    public static let moduleName = "Distributed"
}
