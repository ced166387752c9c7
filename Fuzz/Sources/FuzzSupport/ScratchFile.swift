#if canImport(Glibc)
import Glibc
#endif

/// The readers under test open paths, so each input is written to one scratch file per fuzzing process, in
/// /dev/shm (memory) when it exists: a write and a read per execution, no disk traffic.
public enum ScratchFile {
    nonisolated(unsafe) private static var path: String?

    /// Replaces the scratch file's content with `size` bytes at `data`; returns its path (ending in `suffix`).
    public static func write(_ data: UnsafePointer<UInt8>, _ size: Int, suffix: String) -> String {
        let p = path ?? {
            let directory = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp"
            let made = "\(directory)/ml_tomo-fuzz-\(getpid())\(suffix)"
            path = made
            return made
        }()
        let fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        precondition(fd >= 0, "cannot write the scratch file \(p)")
        var written = 0
        while written < size {
            let n = Glibc.write(fd, data + written, size - written)
            precondition(n > 0, "cannot write the scratch file \(p)")
            written += n
        }
        close(fd)
        return p
    }
}
