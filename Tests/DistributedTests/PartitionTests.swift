import Distributed
import Testing

@Suite struct PartitionTests {
    /// Every count 0…1000 over every rank count 1…64: each index exactly once, in order,
    /// contiguous, sizes differing by at most one with the larger slices first.
    @Test func coversEveryIndexOnceContiguousAndBalanced() {
        var failures = 0
        for ranks in 1 ... 64 {
            for count in 0 ... 1000 {
                let slices = partition(count: count, ranks: ranks)
                guard slices.count == ranks else { failures += 1; continue }
                var next = 0
                var ok = true
                for (rank, slice) in slices.enumerated() {
                    // Contiguous and in rank order: each slice starts where the previous ended.
                    if slice.lowerBound != next { ok = false }
                    next = slice.upperBound
                    let expectedSize = count / ranks + (rank < count % ranks ? 1 : 0)
                    if slice.count != expectedSize { ok = false }
                    if partition(count: count, ranks: ranks, rank: rank) != slice { ok = false }
                }
                // Ends at `count`: with the above, every index 0..<count is covered exactly once.
                if next != count { ok = false }
                let sizes = slices.map(\.count)
                if (sizes.max() ?? 0) - (sizes.min() ?? 0) > 1 { ok = false }
                if !ok {
                    failures += 1
                    if failures <= 5 { Issue.record("bad partition of \(count) over \(ranks): \(slices)") }
                }
            }
        }
        #expect(failures == 0)
    }

    @Test func coverageCountedIndexByIndex() {
        // An independent check: count how often each index is owned.
        for (count, ranks) in [(0, 3), (1, 4), (7, 3), (1000, 64), (999, 7)] {
            var owners = [Int](repeating: 0, count: count)
            for slice in partition(count: count, ranks: ranks) {
                for index in slice { owners[index] += 1 }
            }
            #expect(owners.allSatisfy { $0 == 1 }, "count \(count), ranks \(ranks)")
        }
    }

    @Test func knownSplits() {
        #expect(partition(count: 10, ranks: 3) == [0 ..< 4, 4 ..< 7, 7 ..< 10])
        #expect(partition(count: 2, ranks: 4) == [0 ..< 1, 1 ..< 2, 2 ..< 2, 2 ..< 2])
        #expect(partition(count: 5, ranks: 1) == [0 ..< 5])
    }
}
