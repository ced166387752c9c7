import CMPI
import Foundation

/// A thin, typed wrapper over an MPI communicator, in the spirit of mpi4py and MPI.jl.
///
/// Collective operations are methods; buffers are Swift arrays or `UnsafeMutableBufferPointer`s;
/// every MPI return code is checked and a failure is thrown as `MPIError` (the communicator runs
/// with `MPI_ERRORS_RETURN`, so MPI does not abort the job by itself).
///
/// Every collective method must be called by all ranks in the same order with matching
/// arguments (same element type and count, same root). Large buffers are split into calls of at
/// most `maxElementsPerCall` elements, because MPI counts are 32-bit `int`s.
///
/// Thread safety: MPI is initialised with `MPI_THREAD_MULTIPLE`, so any thread may call these
/// methods; the instance itself is immutable. Issuing collectives concurrently from several
/// threads on the same communicator is still an ordering error, as in MPI.
public final class Communicator: @unchecked Sendable {
    /// `MPI_COMM_WORLD` or a communicator derived from it. Immutable after `init`.
    let handle: MPI_Comm
    /// This process's rank, `0 ..< size`.
    public let rank: Int
    /// The number of processes in the communicator.
    public let size: Int
    /// The thread support level MPI granted at initialisation.
    public let threadLevel: ThreadLevel
    /// The largest number of elements passed to one MPI call; larger buffers are chunked.
    public let maxElementsPerCall: Int

    /// The default chunk size: 2^27 elements (1 GiB of doubles), far below `Int32.max`.
    public static let defaultMaxElementsPerCall = 1 << 27

    private init(handle: MPI_Comm, rank: Int, size: Int, threadLevel: ThreadLevel, maxElementsPerCall: Int) {
        self.handle = handle
        self.rank = rank
        self.size = size
        self.threadLevel = threadLevel
        self.maxElementsPerCall = maxElementsPerCall
    }

    // MARK: Initialisation and finalisation

    private static let initLock = NSLock()
    nonisolated(unsafe) private static var cachedWorld: Communicator?

    /// Initialises MPI (once per process) and returns `MPI_COMM_WORLD`.
    ///
    /// Throws `DistributedError.threadLevelNotGranted` if MPI cannot provide `required`; MPI is
    /// then initialised but unusable for this program, and the caller should finalise it.
    public static func world(requiring required: ThreadLevel = .multiple) throws -> Communicator {
        initLock.lock()
        defer { initLock.unlock() }
        if let world = cachedWorld { return world }
        if isFinalized { throw DistributedError.alreadyFinalized }

        var provided: Int32 = 0
        if isInitialized {
            // Someone else (a host program, a test harness) initialised MPI: adopt its level.
            try MPIError.check(MPI_Query_thread(&provided), "MPI_Query_thread")
        } else {
            // MPI_Init_thread reports failure through the default handler (abort): nothing to catch.
            try MPIError.check(MPI_Init_thread(nil, nil, required.mpiValue, &provided), "MPI_Init_thread")
        }
        let granted = ThreadLevel(mpiValue: provided)

        let comm = cmpi_comm_world()
        // Errors become return codes (and then Swift errors) instead of killing the job.
        try MPIError.check(MPI_Comm_set_errhandler(comm, cmpi_errors_return()), "MPI_Comm_set_errhandler")
        var rank: Int32 = 0
        var size: Int32 = 0
        try MPIError.check(MPI_Comm_rank(comm, &rank), "MPI_Comm_rank")
        try MPIError.check(MPI_Comm_size(comm, &size), "MPI_Comm_size")
        guard granted >= required else {
            throw DistributedError.threadLevelNotGranted(required: required, provided: granted)
        }
        let world = Communicator(
            handle: comm!, rank: Int(rank), size: Int(size), threadLevel: granted,
            maxElementsPerCall: defaultMaxElementsPerCall)
        cachedWorld = world
        return world
    }

    /// The same communicator, splitting buffers into calls of at most `maxElements` elements
    /// (for tests of the chunking, and for MPI libraries with smaller limits).
    public func chunking(atMost maxElements: Int) -> Communicator {
        precondition(maxElements > 0 && maxElements <= Int(Int32.max), "chunk size must be in 1...Int32.max")
        return Communicator(handle: handle, rank: rank, size: size, threadLevel: threadLevel,
                            maxElementsPerCall: maxElements)
    }

    /// Finalises MPI. Call once on normal exit, after the last collective, on every rank.
    ///
    /// Deliberately not registered with `atexit`: `MPI_Finalize` waits for every rank, so a rank
    /// leaving through an unexpected path must *not* finalise (mpirun then sees a rank exit
    /// without finalising and tears the job down) instead of waiting forever for its peers.
    public static func finalize() throws {
        initLock.lock()
        defer { initLock.unlock() }
        guard isInitialized, !isFinalized else { return }
        if let bound = Watchdog.stopCurrent() {
            // MPI_Finalize waits for every rank: a peer that stops now would hang this rank with no
            // watchdog left to notice. This guard needs no MPI; the process exits right after finalising.
            let thread = Thread {
                Thread.sleep(forTimeInterval: bound)
                StandardStreams.writeError("ml_tomo: watchdog: MPI_Finalize did not complete within \(Int(bound)) s "
                    + "(a peer stopped while the job was finishing); exiting\n")
                AbortCleanup.run()
                _exit(Watchdog.abortStatus)
            }
            thread.stackSize = 1 << 16
            thread.start()
        }
        try MPIError.check(MPI_Finalize(), "MPI_Finalize")
    }

    /// Whether `MPI_Init_thread` has been called in this process.
    public static var isInitialized: Bool {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        return flag != 0
    }

    /// Whether `MPI_Finalize` has been called in this process.
    public static var isFinalized: Bool {
        var flag: Int32 = 0
        MPI_Finalized(&flag)
        return flag != 0
    }

    /// The rank in `MPI_COMM_WORLD`, for error paths before a `Communicator` exists.
    static func worldRank() -> Int? {
        var rank: Int32 = 0
        guard MPI_Comm_rank(cmpi_comm_world(), &rank) == cmpi_success() else { return nil }
        return Int(rank)
    }

    // MARK: Environment

    /// `MPI_Get_library_version`: the implementation's name and version (may span several lines).
    /// Valid before initialisation.
    public static var libraryVersion: String {
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_library_version_string()) + 1)
        var length: Int32 = 0
        guard MPI_Get_library_version(&buffer, &length) == cmpi_success() else { return "unknown" }
        return decodeCString(buffer, length: length).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `MPI_Get_version`: the version of the MPI standard the library implements, e.g. "3.1".
    public static var standardVersion: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        guard MPI_Get_version(&major, &minor) == cmpi_success() else { return "unknown" }
        return "\(major).\(minor)"
    }

    /// `MPI_Get_processor_name`: the name of the node this rank runs on.
    public func processorName() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(cmpi_max_processor_name()) + 1)
        var length: Int32 = 0
        try MPIError.check(MPI_Get_processor_name(&buffer, &length), "MPI_Get_processor_name")
        return Self.decodeCString(buffer, length: length)
    }

    private static func decodeCString(_ buffer: [CChar], length: Int32) -> String {
        // Some implementations count the terminating NUL in `length`; stop at the first NUL.
        let count = min(max(Int(length), 0), buffer.firstIndex(of: 0) ?? buffer.count)
        return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: Synchronisation and abort

    /// `MPI_Barrier`.
    public func barrier() throws {
        try CollectiveProgress.tracked {
            try MPIError.check(MPI_Barrier(handle), "MPI_Barrier")
        }
    }

    /// `MPI_Abort`: ends every process of the job with `status`. For failures after which the
    /// ranks can no longer agree (a broken communication layer); everything else should go
    /// through `agree` so that every rank exits cleanly with the same status.
    public func abort(status: Int32) -> Never {
        StandardStreams.flushAll()
        AbortCleanup.run()
        MPI_Abort(handle, status)
        // MPI_Abort should not return; if it does, leave without finalising so mpirun ends the job.
        exit(status)
    }

    // MARK: Reductions

    /// `MPI_Allreduce` in place: every element becomes `op` over all ranks.
    public func allreduceInPlace<T: MPIReducible>(_ buffer: UnsafeMutableBufferPointer<T>, _ op: ReductionOp) throws {
        try CollectiveProgress.tracked {
            guard let base = buffer.baseAddress else { return }
            let datatype = T.mpiScalarKind.datatype
            var offset = 0
            while offset < buffer.count {
                let n = min(maxElementsPerCall, buffer.count - offset)
                try MPIError.check(
                    MPI_Allreduce(UnsafeRawPointer(cmpi_in_place()), base + offset, Int32(n), datatype, op.mpiOp, handle),
                    "MPI_Allreduce(\(op), \(n) × \(T.self))")
                offset += n
            }
        }
    }

    /// `MPI_Allreduce` in place over a Swift array.
    public func allreduceInPlace<T: MPIReducible>(_ values: inout [T], _ op: ReductionOp) throws {
        try values.withUnsafeMutableBufferPointer { try allreduceInPlace($0, op) }
    }

    /// `MPI_Allreduce` of one value; returns `op` of the values of all ranks.
    public func allreduce<T: MPIReducible>(_ value: T, _ op: ReductionOp) throws -> T {
        var values = [value]
        try allreduceInPlace(&values, op)
        return values[0]
    }

    // MARK: Broadcast

    /// `MPI_Bcast` of a buffer whose length every rank already knows.
    public func broadcast<T: MPIScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int = 0) throws {
        try CollectiveProgress.tracked {
            try checkRoot(root)
            guard let base = buffer.baseAddress else { return }
            let datatype = T.mpiScalarKind.datatype
            var offset = 0
            while offset < buffer.count {
                let n = min(maxElementsPerCall, buffer.count - offset)
                try MPIError.check(MPI_Bcast(base + offset, Int32(n), datatype, Int32(root), handle),
                                   "MPI_Bcast(\(n) × \(T.self))")
                offset += n
            }
        }
    }

    /// Broadcasts `values` from `root`: on return every rank holds root's array (the length is
    /// sent first, so the other ranks may pass any array, e.g. an empty one).
    public func broadcast<T: MPIScalar>(_ values: inout [T], root: Int = 0) throws {
        try CollectiveProgress.tracked {
            try checkRoot(root)
            var count = [Int64(values.count)]
            try count.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
            let n = Int(count[0])
            if rank != root {
                // Trivial element types: the storage is fully written by the broadcast below.
                values = [T](unsafeUninitializedCapacity: n) { _, initialised in initialised = n }
            }
            try values.withUnsafeMutableBufferPointer { try broadcast($0, root: root) }
        }
    }

    /// Broadcasts a string (as UTF-8) from `root`; returns root's string on every rank.
    public func broadcast(_ string: String, root: Int = 0) throws -> String {
        var bytes = Array(string.utf8)
        try broadcast(&bytes, root: root)
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: Gather

    /// Gathers a variable-length byte buffer from every rank to `root`.
    ///
    /// Returns, on `root`, one buffer per rank in rank order; `nil` on the other ranks.
    /// The lengths are exchanged first with `MPI_Allgather`, so that every rank agrees on whether
    /// the total fits MPI's 32-bit `MPI_Gatherv` displacements before anyone enters it.
    public func gatherBytes(_ bytes: [UInt8], root: Int = 0) throws -> [[UInt8]]? {
        try CollectiveProgress.tracked { () throws -> [[UInt8]]? in
            try checkRoot(root)
            var myCount = Int64(bytes.count)
            var counts = [Int64](repeating: 0, count: size)
            try counts.withUnsafeMutableBufferPointer { all in
                try MPIError.check(
                    MPI_Allgather(&myCount, 1, cmpi_int64(), all.baseAddress, 1, cmpi_int64(), handle),
                    "MPI_Allgather(lengths)")
            }
            let total = counts.reduce(0, +)
            guard total <= Int64(Int32.max) else { throw DistributedError.gatherTooLarge(totalBytes: Int(total)) }

            let recvCounts = counts.map { Int32($0) }
            var displacements = [Int32](repeating: 0, count: size)
            for r in 1 ..< max(size, 1) { displacements[r] = displacements[r - 1] + recvCounts[r - 1] }
            var received = [UInt8](repeating: 0, count: rank == root ? Int(total) : 0)

            try bytes.withUnsafeBufferPointer { send in
                try received.withUnsafeMutableBufferPointer { recv in
                    // Zero-length buffers have no base address; MPI still needs a valid pointer.
                    var dummy: UInt8 = 0
                    try withUnsafeMutablePointer(to: &dummy) { dummyPointer in
                        let sendPointer = UnsafeRawPointer(send.baseAddress ?? UnsafePointer(dummyPointer))
                        let recvPointer = UnsafeMutableRawPointer(recv.baseAddress ?? dummyPointer)
                        try MPIError.check(
                            MPI_Gatherv(sendPointer, Int32(bytes.count), cmpi_byte(),
                                        recvPointer, recvCounts, displacements, cmpi_byte(),
                                        Int32(root), handle),
                            "MPI_Gatherv(\(bytes.count) bytes)")
                    }
                }
            }
            guard rank == root else { return nil }
            return (0 ..< size).map { r in
                let start = Int(displacements[r])
                return Array(received[start ..< start + Int(recvCounts[r])])
            }
        }
    }

    /// Gathers `values` from every rank to `root` in one `MPI_Gatherv`, when every rank already knows how
    /// many values each rank sends (`counts[r]` for rank r; this rank's must equal `values.count`).
    ///
    /// Returns, on `root`, one array per rank in rank order; `nil` on the other ranks.
    public func gather(_ values: [Double], counts: [Int], root: Int = 0) throws -> [[Double]]? {
        try CollectiveProgress.tracked { () throws -> [[Double]]? in
            try checkRoot(root)
            precondition(counts.count == size && counts[rank] == values.count,
                         "gather(_:counts:): rank \(rank) sends \(values.count) values, counts say \(counts)")
            let total = counts.reduce(0, +)
            guard total <= Int(Int32.max) else { throw DistributedError.gatherTooLarge(totalBytes: total * 8) }
            let recvCounts = counts.map { Int32($0) }
            var displacements = [Int32](repeating: 0, count: size)
            for r in 1 ..< max(size, 1) { displacements[r] = displacements[r - 1] + recvCounts[r - 1] }
            var received = [Double](repeating: 0, count: rank == root ? total : 0)
            try values.withUnsafeBufferPointer { send in
                try received.withUnsafeMutableBufferPointer { recv in
                    // Zero-length buffers have no base address; MPI still needs a valid pointer.
                    var dummy = 0.0
                    try withUnsafeMutablePointer(to: &dummy) { dummyPointer in
                        try MPIError.check(
                            MPI_Gatherv(UnsafeRawPointer(send.baseAddress ?? UnsafePointer(dummyPointer)), Int32(values.count),
                                        Double.mpiScalarKind.datatype,
                                        UnsafeMutableRawPointer(recv.baseAddress ?? dummyPointer), recvCounts, displacements,
                                        Double.mpiScalarKind.datatype, Int32(root), handle),
                            "MPI_Gatherv(\(values.count) × Double)")
                    }
                }
            }
            guard rank == root else { return nil }
            return (0 ..< size).map { r in
                let start = Int(displacements[r])
                return Array(received[start ..< start + counts[r]])
            }
        }
    }

    /// Gathers one string per rank (as UTF-8) to `root`; `nil` on the other ranks.
    public func gather(_ string: String, root: Int = 0) throws -> [String]? {
        try gatherBytes(Array(string.utf8), root: root)?.map { String(decoding: $0, as: UTF8.self) }
    }

    private func checkRoot(_ root: Int) throws {
        guard (0 ..< size).contains(root) else { throw DistributedError.invalidRoot(root, size: size) }
    }
}

/// What a rank must undo before it ends the job from a thread that is not the one doing the work
/// (`MPI_Abort` from the watchdog or after an unagreed error): the program registers, once, the removal
/// of the temporary files its writes (on the main thread or the background writer) have not yet renamed
/// into place. Distributed knows nothing of file formats, hence a hook.
public enum AbortCleanup {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var actions: [@Sendable () -> Void] = []

    public static func register(_ action: @escaping @Sendable () -> Void) {
        lock.lock()
        defer { lock.unlock() }
        actions.append(action)
    }

    /// Runs the registered actions (each at most once per process: the list is emptied first).
    static func run() {
        lock.lock()
        let pending = actions
        actions = []
        lock.unlock()
        for action in pending { action() }
    }
}
