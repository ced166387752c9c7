import Foundation
import Testing

/// The test harness itself: other end-to-end suites rely on it never hanging.
@Suite struct ProcessRunnerTests {
    @Test func capturesStatusAndBothStreams() async throws {
        let result = try await ProcessRunner.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(result.status == 3)
        #expect(result.signal == nil)
        #expect(result.stdout == "out\n")
        #expect(result.stderr == "err\n")
        #expect(!result.timedOut)
    }

    @Test func stdinIsEmpty() async throws {
        let result = try await ProcessRunner.run("/bin/cat", [], timeout: 20)
        #expect(result.status == 0)
        #expect(result.stdout.isEmpty)
        #expect(!result.timedOut)
    }

    /// Megabytes on both pipes at once would deadlock a runner that waits before reading.
    @Test func largeOutputOnBothStreams() async throws {
        let script = "head -c 3000000 /dev/zero | tr '\\0' y >&2 & head -c 5000000 /dev/zero | tr '\\0' x; wait"
        let result = try await ProcessRunner.run("/bin/sh", ["-c", script], timeout: 60)
        #expect(result.status == 0)
        #expect(result.stdout.utf8.count == 5_000_000)
        #expect(result.stderr.utf8.count == 3_000_000)
        #expect(result.stdout.utf8.allSatisfy { $0 == UInt8(ascii: "x") })
    }

    @Test func reportsTheSignalThatEndedTheProcess() async throws {
        let result = try await ProcessRunner.run("/bin/sh", ["-c", "kill -9 $$"])
        #expect(result.signal == 9)
        #expect(result.status == 128 + 9)
    }

    /// A hung child and its own child are killed as a group, and the timeout is reported as a
    /// test issue (expected here).
    @Test func watchdogKillsTheProcessGroup() async throws {
        var result: ProcessResult?
        await withKnownIssue("the watchdog records the timeout as a test failure") {
            result = try await ProcessRunner.run("/bin/sh", ["-c", "sleep 100 & sleep 100; wait"], timeout: 1)
        }
        let finished = try #require(result)
        #expect(finished.timedOut)
        #expect(finished.signal == SIGTERM)
        // Grandchild `sleep` held the pipes too: the run still ends well before its 100 s.
        #expect(finished.seconds < 10)
    }

    @Test func missingExecutableIsAnError() async {
        await #expect(throws: ProcessRunner.LaunchError.self) {
            _ = try await ProcessRunner.run("/nonexistent/ml_tomo", [])
        }
    }
}
