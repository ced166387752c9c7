import Foundation

/// Runs one job at a time on its own thread: rank 0's file writes overlap the next E-step. `wait()`
/// blocks until the job is done and rethrows its error.
public final class BackgroundWriter: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var running = false
    private var failure: (any Error)?

    public init() {}

    public func start(_ job: @escaping @Sendable () throws -> Void) {
        precondition(!running, "BackgroundWriter: start() while a job is running")
        running = true
        let thread = Thread { [self] in
            do { try job() } catch { failure = error }
            done.signal()
        }
        thread.stackSize = 8 << 20
        thread.start()
    }

    public func wait() throws {
        guard running else { return }
        done.wait()
        running = false
        if let error = failure {
            failure = nil
            throw error
        }
    }
}
