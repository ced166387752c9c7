import Foundation

/// Counts of (estimated class, true class) pairs; labels are 0-based.
public struct ContingencyTable: Sendable, Equatable {
    public let estimatedCount: Int
    public let trueCount: Int
    /// counts[e][t]
    public let counts: [[Int]]

    public init(estimated: [Int], truth: [Int], estimatedCount: Int, trueCount: Int) {
        precondition(estimated.count == truth.count)
        var c = [[Int]](repeating: [Int](repeating: 0, count: trueCount), count: estimatedCount)
        for (e, t) in zip(estimated, truth) { c[e][t] += 1 }
        self.estimatedCount = estimatedCount
        self.trueCount = trueCount
        counts = c
    }

    public var total: Int { counts.reduce(0) { $0 + $1.reduce(0, +) } }
}

/// The one-to-one map from estimated to true labels that maximises the number of agreeing particles
/// (an assignment problem). Solved exactly by dynamic programming over subsets of the smaller label
/// set (fine up to 16 labels); beyond that a greedy matching on the largest counts is used.
public struct LabelMatching: Sendable, Equatable {
    /// estimatedToTrue[e] = matched true label, or nil if estimated class e is left unmatched
    /// (more estimated than true classes).
    public let estimatedToTrue: [Int?]
    /// Particles whose estimated label maps to their true label.
    public let agreeing: Int
    public let total: Int

    public var accuracy: Double { total > 0 ? Double(agreeing) / Double(total) : 0 }

    public init(_ table: ContingencyTable) {
        let ke = table.estimatedCount, kt = table.trueCount
        var map = [Int?](repeating: nil, count: ke)
        if min(ke, kt) <= 16 {
            // Let S be the smaller side; DP over rows of the larger side, mask = used labels of S.
            let transposed = kt > ke
            let rows = transposed ? kt : ke
            let cols = transposed ? ke : kt
            func w(_ r: Int, _ c: Int) -> Int { transposed ? table.counts[c][r] : table.counts[r][c] }
            let states = 1 << cols
            var best = [Int](repeating: Int.min, count: states)
            best[0] = 0
            // choice[r][mask] = column chosen for row r reaching mask (-1 = none)
            var choice = [[Int]](repeating: [Int](repeating: -2, count: states), count: rows)
            var prevFrom = [[Int]](repeating: [Int](repeating: -1, count: states), count: rows)
            for r in 0..<rows {
                var next = best
                for m in 0..<states where best[m] != Int.min {
                    choice[r][m] = -1  // row r left unmatched
                    prevFrom[r][m] = m
                }
                for m in 0..<states where best[m] != Int.min {
                    for c in 0..<cols where m & (1 << c) == 0 {
                        let m2 = m | (1 << c)
                        let v = best[m] + w(r, c)
                        if v > next[m2] {
                            next[m2] = v
                            choice[r][m2] = c
                            prevFrom[r][m2] = m
                        }
                    }
                }
                best = next
            }
            var m = (0..<states).max { best[$0] < best[$1] }!
            var pairs: [(row: Int, col: Int)] = []
            for r in stride(from: rows - 1, through: 0, by: -1) {
                let c = choice[r][m]
                if c >= 0 { pairs.append((r, c)) }
                m = prevFrom[r][m]
            }
            for p in pairs {
                if transposed { map[p.col] = p.row } else { map[p.row] = p.col }
            }
        } else {
            var usedE = Set<Int>(), usedT = Set<Int>()
            var cells: [(e: Int, t: Int, n: Int)] = []
            for e in 0..<ke {
                for t in 0..<kt { cells.append((e, t, table.counts[e][t])) }
            }
            // Largest counts first; ties in index order, so the result is deterministic.
            cells.sort { a, b in
                if a.n != b.n { return a.n > b.n }
                return a.e != b.e ? a.e < b.e : a.t < b.t
            }
            for (e, t, _) in cells where !usedE.contains(e) && !usedT.contains(t) {
                map[e] = t
                usedE.insert(e)
                usedT.insert(t)
            }
        }
        estimatedToTrue = map
        agreeing = (0..<ke).reduce(0) { s, e in s + (map[e].map { table.counts[e][$0] } ?? 0) }
        total = table.total
    }
}

/// Adjusted Rand index (Hubert & Arabie 1985) of two labellings given by their contingency table:
/// 1 for identical partitions, ≈ 0 for independent ones.
public func adjustedRandIndex(_ table: ContingencyTable) -> Double {
    func pairs(_ n: Int) -> Double { Double(n) * Double(n - 1) / 2 }
    let n = table.total
    guard n > 1 else { return 1 }
    var index = 0.0
    var rowSums = [Int](repeating: 0, count: table.estimatedCount)
    var colSums = [Int](repeating: 0, count: table.trueCount)
    for e in 0..<table.estimatedCount {
        for t in 0..<table.trueCount {
            let c = table.counts[e][t]
            index += pairs(c)
            rowSums[e] += c
            colSums[t] += c
        }
    }
    let a = rowSums.reduce(0) { $0 + pairs($1) }
    let b = colSums.reduce(0) { $0 + pairs($1) }
    let expected = a * b / pairs(n)
    let maxIndex = (a + b) / 2
    let denominator = maxIndex - expected
    // Both partitions trivial (all in one class, or all singletons): identical ⇒ 1.
    guard abs(denominator) > 1e-12 else { return index == expected ? 1 : 0 }
    return (index - expected) / denominator
}
