import Foundation

/// Process-wide output helpers that avoid touching C's global `stdout`/`stderr` variables
/// (not concurrency-safe in Swift 6).
enum StandardStreams {
    /// Writes `text` to stderr immediately (unbuffered `write(2)`), so it survives an abort.
    static func writeError(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }

    /// Flushes every C stdio stream (Swift's `print` writes through stdio), before an exit path
    /// that might skip the normal flush (`MPI_Abort`).
    static func flushAll() {
        fflush(nil)
    }
}
