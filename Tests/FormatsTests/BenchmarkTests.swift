import Foundation
import Formats
import Testing

/// Runs the benchmark (small by default; `FORMATS_BENCH_FULL=1` for the 10,000-file figures) and checks
/// that it did the work it reports. Timing is printed, never asserted.
@Suite struct BenchmarkTests {
    @Test func benchmarkRunsAndReportsItsWork() throws {
        let full = ProcessInfo.processInfo.environment["FORMATS_BENCH_FULL"] == "1"
        let r = try FormatsBenchmark.run(reads: full ? 10_000 : 300, box: 32, distinctFiles: full ? 1_000 : 30,
                                         docRows: full ? 10_000 : 500)
        print("FormatsBenchmark: \(r)")
        #expect(r.mrcReads == (full ? 10_000 : 300))
        #expect(r.mrcDistinctFiles == (full ? 1_000 : 30))
        #expect(r.docRows == (full ? 10_000 : 500))
        #expect(r.mrcReadSeconds > 0 && r.docWriteSeconds > 0 && r.docReadSeconds > 0)
    }
}
