/// Splits `count` items (global indices `0 ..< count`) over `ranks` processes: contiguous,
/// in rank order, balanced — sizes differ by at most one, and the first `count % ranks` ranks
/// get the extra item. Depends only on `count` and `ranks`, so every rank computes the same split.
///
/// - Precondition: `count >= 0` and `ranks >= 1` (programming errors, not input errors).
public func partition(count: Int, ranks: Int) -> [Range<Int>] {
    (0 ..< ranks).map { partition(count: count, ranks: ranks, rank: $0) }
}

/// The slice of `0 ..< count` that `rank` owns in `partition(count:ranks:)`.
///
/// - Precondition: `count >= 0`, `ranks >= 1` and `0 <= rank < ranks`.
public func partition(count: Int, ranks: Int, rank: Int) -> Range<Int> {
    precondition(count >= 0, "partition: negative item count \(count)")
    precondition(ranks >= 1, "partition: need at least one rank, got \(ranks)")
    precondition((0 ..< ranks).contains(rank), "partition: rank \(rank) outside 0..<\(ranks)")
    let base = count / ranks
    let extra = count % ranks
    let lower = rank * base + min(rank, extra)
    return lower ..< lower + base + (rank < extra ? 1 : 0)
}
