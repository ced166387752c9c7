import Foundation
import Logging

/// A swift-log handler for cluster runs: rank 0 prints progress to standard error, other ranks only
/// their warnings and errors (prefixed with the rank), so a 64-rank job does not print everything 64 times.
struct RankAwareLogHandler: LogHandler {
    let rank: Int
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let level = event.level
        let message = event.message
        guard rank == 0 || level >= .warning else { return }
        let prefix: String
        switch level {
        case .warning: prefix = rank == 0 ? "warning: " : "warning (rank \(rank)): "
        case .error, .critical: prefix = rank == 0 ? "error: " : "error (rank \(rank)): "
        default: prefix = ""
        }
        // Through the status line's console: a progress bar on the last line is erased first.
        StatusLineConsole.shared.writeLines("ml_tomo: \(prefix)\(message)\n")
    }
}

enum ConsoleLog {
    /// A logger for this rank; `verbosity` 0 keeps warnings and errors only, 2 adds details.
    static func make(rank: Int, verbosity: Int) -> Logger {
        let level: Logger.Level = verbosity <= 0 ? .warning : (verbosity == 1 ? .info : .debug)
        return Logger(label: "ml_tomo") { _ in RankAwareLogHandler(rank: rank, logLevel: level) }
    }
}

/// Wall-clock timing helper for progress figures and the per-iteration breakdown.
struct Stopwatch {
    private var start = DispatchTime.now().uptimeNanoseconds
    init() {}
    var seconds: Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
    mutating func restart() -> Double {
        let now = DispatchTime.now().uptimeNanoseconds
        defer { start = now }
        return Double(now - start) / 1e9
    }
}

/// "1 h 02 min", "3 min 05 s", "12.3 s": durations as a scientist reads them in a log.
func formatDuration(_ seconds: Double) -> String {
    if !seconds.isFinite || seconds < 0 { return "?" }
    if seconds < 60 { return String(format: "%.1f s", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%d min %02d s", s / 60, s % 60) }
    return String(format: "%d h %02d min", s / 3600, (s % 3600) / 60)
}
