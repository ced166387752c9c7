import ArgumentParser
import CHDF5
import Distributed
import Foundation
import Volumes

/// `ml_tomo doctor`: what each rank of an mpirun job sees, printed by rank 0 in rank order.
/// The first thing to run on a new cluster or container.
struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show, for every MPI rank: host, rank, MPI thread support, threads and library versions.",
        discussion: """
            Run it the way a refinement will run, e.g. `mpirun -np 4 --bind-to none ml_tomo doctor`; \
            without mpirun it reports a single rank.
            """
    )

    func run() throws {
        MPIJob.run { comm in
            let line = try comm.agree { try RankEnvironment(comm).report }
            if let lines = try comm.gather(line, root: 0) {
                print("ml_tomo doctor: \(comm.size) rank\(comm.size == 1 ? "" : "s"), MPI standard \(Communicator.standardVersion)")
                for line in lines { print(line) }
            }
        }
    }
}

/// The facts one rank reports about itself.
struct RankEnvironment {
    let rank: Int
    let size: Int
    let host: String
    let threadLevel: ThreadLevel
    let threadsAvailable: Int
    let mpiVersion: String
    let fftwVersion: String
    let hdf5Version: String

    init(_ comm: Communicator) throws {
        rank = comm.rank
        size = comm.size
        host = try comm.processorName()
        threadLevel = comm.threadLevel
        threadsAvailable = ProcessInfo.processInfo.activeProcessorCount
        // The MPI version string may span lines; keep the report one line per library.
        mpiVersion = Communicator.libraryVersion
            .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
        fftwVersion = fftwVersionString
        hdf5Version = Self.hdf5LibraryVersion()
    }

    var report: String {
        """
        rank \(rank) of \(size): host \(host), thread level \(threadLevel), \(threadsAvailable) threads available
          MPI:  \(mpiVersion)
          FFTW: \(fftwVersion)
          HDF5: \(hdf5Version)
        """
    }

    static func hdf5LibraryVersion() -> String {
        var major: UInt32 = 0
        var minor: UInt32 = 0
        var release: UInt32 = 0
        guard chdf5_get_libversion(&major, &minor, &release) >= 0 else { return "unknown (H5get_libversion failed)" }
        return "\(major).\(minor).\(release)"
    }
}
