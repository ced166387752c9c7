import Distributed
import Foundation

/// Standard error with at most one live status line at its bottom (rank 0's progress bar). Every log
/// line goes through here: it erases the bar first, so a log line and the bar never share a line.
final class StatusLineConsole: @unchecked Sendable {
    static let shared = StatusLineConsole()

    private let lock = NSLock()
    private var statusShown = false
    private var othersShowStatus = false
    /// "Erase the current line": carriage return, then ANSI "erase to the end of the line".
    static let erase = "\r\u{1B}[K"

    /// On the other ranks of a job whose rank 0 draws a bar on the same terminal: their lines erase
    /// whatever bar is on the last line first (rank 0 redraws it at its next tick).
    func setOthersShowStatus() {
        lock.lock()
        defer { lock.unlock() }
        othersShowStatus = true
    }

    /// Writes whole lines (ending in "\n"), below or instead of the status line.
    func writeLines(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        write((statusShown || othersShowStatus ? Self.erase : "") + text)
        statusShown = false
    }

    /// Replaces the status line with `text` (one line, shorter than the terminal is wide).
    func showStatus(_ text: String) {
        lock.lock()
        defer { lock.unlock() }
        write("\r" + text + "\u{1B}[K")
        statusShown = true
    }

    func clearStatus() {
        lock.lock()
        defer { lock.unlock() }
        if statusShown { write(Self.erase) }
        statusShown = false
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// Rank 0's view of an iteration while it runs: particles done over all ranks (`ClusterProgress`), the
/// rate and the time left in the iteration and the run.
///
/// On a terminal, a bar on the last line of standard error, redrawn a few times per second and erased
/// before the iteration's own line is printed. Without one (a Slurm log, a file), a plain line at most
/// every `ML_TOMO_PROGRESS_SECONDS` (30 s), and, in an iteration that printed one, a last one when every
/// rank has finished its E-step: short iterations print nothing more than before.
///
/// It only reads counters (its own thread, no MPI): it cannot change a result.
final class ProgressDisplay: @unchecked Sendable {
    enum Mode: Equatable {
        /// A live bar (standard error is a terminal).
        case bar
        /// A line at most every `seconds`.
        case lines(seconds: Double)
    }

    /// The variable that sets the interval between plain progress lines.
    static let intervalVariable = "ML_TOMO_PROGRESS_SECONDS"
    /// The variable that chooses the form (`bar`, `lines`, `off`) instead of the detection.
    static let modeVariable = "ML_TOMO_PROGRESS"
    static let defaultInterval = 30.0
    /// How often the bar is redrawn (the counts of other ranks change once per heartbeat, 1 s; a line
    /// of another rank may have erased it).
    static let barPeriod = 0.25

    /// The form of the progress for this process's standard error and environment (nil: none). A bad
    /// value does not stop a run over its progress output: the default is used and the warning says why.
    ///
    /// A terminal is detected on standard error, or, under mpirun, on mpirun's: Open MPI hands the ranks
    /// a pipe for standard error (and a pseudo-terminal for standard output, whatever mpirun's own
    /// output is), so neither of the rank's own descriptors tells whether a person is watching.
    static func mode(environment: [String: String] = ProcessInfo.processInfo.environment) -> (mode: Mode?, warnings: [String]) {
        var warnings: [String] = []
        var interval = defaultInterval
        if let text = environment[intervalVariable], !text.isEmpty {
            if let seconds = Double(text), seconds > 0, seconds.isFinite {
                interval = seconds
            } else {
                warnings.append("\(intervalVariable)=\(text) is not a positive number of seconds; progress lines every \(Int(defaultInterval)) s")
            }
        }
        switch environment[modeVariable] ?? "" {
        case "bar": return (.bar, warnings)
        case "lines": return (.lines(seconds: interval), warnings)
        case "off": return (nil, warnings)
        case "": break
        case let other: warnings.append("\(modeVariable)=\(other) is not one of bar, lines, off; detecting the terminal instead")
        }
        let terminal = isatty(2) != 0 || launcherHasTerminal(environment)
        return (terminal && environment["TERM"] != "dumb" ? .bar : .lines(seconds: interval), warnings)
    }

    /// Whether this rank was started by mpirun (Open MPI) whose standard error is a terminal: mpirun is
    /// the parent of the ranks on its own node, rank 0's among them.
    static func launcherHasTerminal(_ environment: [String: String]) -> Bool {
        guard environment["OMPI_COMM_WORLD_RANK"] != nil else { return false }
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(getppid())/fd/2") else {
            return false
        }
        return target.hasPrefix("/dev/pts/") || target.hasPrefix("/dev/tty")
    }

    private let source: ClusterProgress
    private let last: Int
    private let mode: Mode
    private let console: StatusLineConsole

    private let lock = NSLock()
    private var running = false
    private var stopped = false
    /// The last iteration whose line was printed: nothing is shown for it any more.
    private var ended = 0
    /// Seconds of every finished iteration (the run's time left assumes the next ones take as long).
    private var durations: [Double] = []
    private var current = 0
    private var startedAt = 0.0
    private var lastLineAt = 0.0
    private var linesThisIteration = 0
    private let done = DispatchSemaphore(value: 0)

    init(source: ClusterProgress, last: Int, mode: Mode, console: StatusLineConsole = .shared) {
        self.source = source
        self.last = last
        self.mode = mode
        self.console = console
    }

    func start() {
        lock.lock()
        running = true
        lock.unlock()
        let thread = Thread { [self] in loop() }
        thread.stackSize = 1 << 18
        thread.start()
    }

    /// Rank 0, before iteration `iteration`'s own line: the bar shows the total and is erased (on a
    /// terminal), or the last plain line says the E-step is done (if this iteration printed one).
    func iterationEnded(_ iteration: Int, secondsSoFar: [Double]) {
        lock.lock()
        defer { lock.unlock() }
        let total = source.snapshot().total
        if current == iteration {
            let now = Self.now()
            let figures = ProgressFigures(iteration: iteration, last: last, done: total, total: total, elapsed: now - startedAt,
                                  durations: durations, eStepDone: true)
            switch mode {
            case .bar:
                console.showStatus(figures.bar(width: Self.terminalWidth()))
                console.clearStatus()
            case .lines:
                if linesThisIteration > 0 { console.writeLines("ml_tomo: " + figures.line + "\n") }
            }
        }
        ended = max(ended, iteration)
        durations = secondsSoFar
    }

    /// Ends the display (the bar is erased): at the end of the run, or on the way out of a failure.
    func stop() {
        lock.lock()
        let wasRunning = running && !stopped
        stopped = true
        lock.unlock()
        if wasRunning { done.wait() }
        console.clearStatus()
    }

    private func loop() {
        let period = switch mode {
        case .bar: Self.barPeriod
        case .lines(let seconds): min(1, seconds / 4)
        }
        while true {
            lock.lock()
            if stopped {
                lock.unlock()
                break
            }
            tick()
            lock.unlock()
            Thread.sleep(forTimeInterval: period)
        }
        done.signal()
    }

    /// One look at the counts (lock held).
    private func tick() {
        let s = source.snapshot()
        guard s.iteration > ended else { return }
        let now = Self.now()
        if s.iteration != current {
            current = s.iteration
            startedAt = now
            lastLineAt = now
            linesThisIteration = 0
        }
        let figures = ProgressFigures(iteration: s.iteration, last: last, done: s.done, total: s.total, elapsed: now - startedAt,
                              durations: durations, eStepDone: false)
        switch mode {
        case .bar:
            console.showStatus(figures.bar(width: Self.terminalWidth()))
        case .lines(let seconds):
            if now - lastLineAt >= seconds {
                console.writeLines("ml_tomo: " + figures.line + "\n")
                lastLineAt = now
                linesThisIteration += 1
            }
        }
    }

    /// The columns of the terminal on standard error (80 if it does not say).
    static func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(2, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return 80 }
        return Int(size.ws_col)
    }

    /// Monotonic seconds.
    private static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }
}

/// The figures of one progress update and their two renderings.
struct ProgressFigures {
    let iteration: Int
    let last: Int
    let done: Int
    let total: Int
    /// Seconds since the iteration started.
    let elapsed: Double
    /// Seconds of the finished iterations.
    let durations: [Double]
    let eStepDone: Bool

    /// Particles per second in this iteration so far (nil until there is something to divide).
    var rate: Double? { done > 0 && elapsed > 0 ? Double(done) / elapsed : nil }

    /// Seconds until every particle is done in this iteration.
    var iterationLeft: Double? {
        if done >= total { return 0 }
        return rate.map { Double(total - done) / $0 }
    }

    /// Seconds until the last iteration ends: this one's E-step, then the others at the mean duration of
    /// the finished ones (or this one's estimated duration, in the first iteration).
    var runLeft: Double? {
        guard let left = iterationLeft else { return nil }
        let perIteration = durations.isEmpty ? elapsed + left : durations.reduce(0, +) / Double(durations.count)
        return left + Double(max(0, last - iteration)) * perIteration
    }

    private var percent: Int { total > 0 ? Int((100 * Double(done) / Double(total)).rounded(.down)) : 100 }

    private var rateText: String { rate.map { String(format: "%.3g particles/s", $0) } ?? "– particles/s" }

    /// The plain line of a log: "iteration 3/10: 512/1000 particles (51 %), 12.3 particles/s, about 40.0 s
    /// left in this iteration, 5 min 10 s in the run".
    var line: String {
        let head = "iteration \(iteration)/\(last): \(done)/\(total) particles (\(percent) %), \(rateText)"
        if eStepDone { return head + ", E-step done on every rank" }
        let left = iterationLeft.map { "about \(formatDuration($0)) left in this iteration" } ?? "time left not known yet"
        let run = runLeft.map { ", \(formatDuration($0)) in the run" } ?? ""
        return head + ", " + left + run
    }

    /// The terminal's bar, "iteration 2/10 [=========           ] 512/1000 12.3/s ETA 40.0 s, run 5 min 10 s",
    /// cut to `width` - 1 columns (a line that wraps could not be redrawn in place).
    func bar(width: Int) -> String {
        let cells = 20
        let filled = total > 0 ? min(cells, done * cells / total) : cells
        let gauge = "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: cells - filled) + "]"
        var text = "iteration \(iteration)/\(last) \(gauge) \(done)/\(total) " + (rate.map { String(format: "%.3g/s", $0) } ?? "–/s")
        if eStepDone {
            text += " E-step done"
        } else if let left = iterationLeft {
            text += " ETA \(formatDuration(left))"
            if let run = runLeft, iteration < last { text += ", run \(formatDuration(run))" }
        }
        return String(text.prefix(max(10, width - 1)))
    }
}
