import Engine

/// Splits `count` items (global indices `0 ..< count`) over `ranks` processes: contiguous, in rank
/// order, in whole blocks of `block` consecutive indices (the last block may be shorter), balanced in
/// blocks — block counts differ by at most one, and the first ranks get the extra block. Whole blocks
/// because the E-step's pass 2 sums each block of `EStep.particleBlock` images before it rotates the sum
/// (the same bits whichever rank holds them). Depends only on `count`, `ranks` and `block`, so every
/// rank computes the same split.
///
/// - Precondition: `count >= 0`, `ranks >= 1`, `block >= 1` (programming errors, not input errors).
public func partition(count: Int, ranks: Int, block: Int = EStep.particleBlock) -> [Range<Int>] {
    (0 ..< ranks).map { partition(count: count, ranks: ranks, rank: $0, block: block) }
}

/// The slice of `0 ..< count` that `rank` owns in `partition(count:ranks:block:)`.
///
/// - Precondition: `count >= 0`, `ranks >= 1`, `block >= 1` and `0 <= rank < ranks`.
public func partition(count: Int, ranks: Int, rank: Int, block: Int = EStep.particleBlock) -> Range<Int> {
    precondition(count >= 0, "partition: negative item count \(count)")
    precondition(ranks >= 1, "partition: need at least one rank, got \(ranks)")
    precondition(block >= 1, "partition: blocks need at least one item, got \(block)")
    precondition((0 ..< ranks).contains(rank), "partition: rank \(rank) outside 0..<\(ranks)")
    let blocks = (count + block - 1) / block
    let base = blocks / ranks
    let extra = blocks % ranks
    let lower = rank * base + min(rank, extra)
    let upper = lower + base + (rank < extra ? 1 : 0)
    return min(count, lower * block) ..< min(count, upper * block)
}
