import Distributed
import Testing

@Suite struct PartitionTests {
    /// Every count 0…1000 over every rank count 1…64, in blocks of one: each index exactly once, in
    /// order, contiguous, sizes differing by at most one with the larger slices first.
    @Test func coversEveryIndexOnceContiguousAndBalanced() {
        var failures = 0
        for ranks in 1 ... 64 {
            for count in 0 ... 1000 {
                let slices = partition(count: count, ranks: ranks, block: 1)
                guard slices.count == ranks else { failures += 1; continue }
                var next = 0
                var ok = true
                for (rank, slice) in slices.enumerated() {
                    // Contiguous and in rank order: each slice starts where the previous ended.
                    if slice.lowerBound != next { ok = false }
                    next = slice.upperBound
                    let expectedSize = count / ranks + (rank < count % ranks ? 1 : 0)
                    if slice.count != expectedSize { ok = false }
                    if partition(count: count, ranks: ranks, rank: rank, block: 1) != slice { ok = false }
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
        #expect(partition(count: 10, ranks: 3, block: 1) == [0 ..< 4, 4 ..< 7, 7 ..< 10])
        #expect(partition(count: 2, ranks: 4, block: 1) == [0 ..< 1, 1 ..< 2, 2 ..< 2, 2 ..< 2])
        #expect(partition(count: 5, ranks: 1, block: 1) == [0 ..< 5])
    }

    /// In blocks: every slice starts on a block boundary (the E-step's sums depend on it), block counts
    /// differ by at most one, and every index is covered once.
    @Test func wholeBlocks() {
        #expect(partition(count: 200, ranks: 2, block: 8) == [0 ..< 104, 104 ..< 200])
        #expect(partition(count: 20, ranks: 3, block: 8) == [0 ..< 8, 8 ..< 16, 16 ..< 20])
        #expect(partition(count: 1, ranks: 3, block: 8) == [0 ..< 1, 1 ..< 1, 1 ..< 1])
        for ranks in 1 ... 9 {
            for count in 0 ... 300 {
                let slices = partition(count: count, ranks: ranks, block: 8)
                #expect(slices.first?.lowerBound == 0 && slices.last?.upperBound == count)
                #expect(zip(slices, slices.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
                #expect(slices.allSatisfy { $0.lowerBound % 8 == 0 || $0.isEmpty })
                let blocks = slices.map { ($0.count + 7) / 8 }
                #expect(blocks.max()! - blocks.min()! <= 1)
            }
        }
    }
}
