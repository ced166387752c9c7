import Engine
import Testing

/// The exact sums behind rank-independent results: any order and any grouping of the same terms gives
/// the same bits (ordinary Double sums do not, which is why they are not used).
@Suite struct ExactSumTests {
    /// Terms of very different sizes and signs (a log-likelihood's, a weight's), deterministic.
    private func terms(_ n: Int) -> [Double] {
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        return (0 ..< n).map { i in
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let u = Double(x >> 11) / Double(1 << 53)
            return (u - 0.3) * [1e-6, 1, 3e4, -2e7][i % 4]
        }
    }

    @Test func exactScalarIgnoresOrderAndGrouping() {
        let t = terms(1000)
        var forward = ExactScalar(), backward = ExactScalar()
        for v in t { forward.add(v) }
        for v in t.reversed() { backward.add(v) }
        // Three "ranks" of uneven size, merged.
        var parts = [ExactScalar(), ExactScalar(), ExactScalar()]
        for (i, v) in t.enumerated() { parts[i < 100 ? 0 : (i < 700 ? 1 : 2)].add(v) }
        var merged = parts[2]
        merged.add(parts[0])
        merged.add(parts[1])
        #expect(forward.value.bitPattern == backward.value.bitPattern)
        #expect(forward.value.bitPattern == merged.value.bitPattern)
        // And it is the sum (to within a rounding of the total).
        let plain = t.reduce(0, +)
        #expect(abs(forward.value - plain) <= 1e-12 * t.reduce(0) { $0 + abs($1) })
        // The ordinary sum of the same terms does depend on the order here (else this test proves nothing).
        #expect(plain != t.reversed().reduce(0, +))
    }

    @Test func quantisedTermsAddExactly() {
        let t = terms(1000).map { $0 * 1e-3 }
        let q = Quantum(bound: t.reduce(0) { $0 + abs($1) })
        let rounded = t.map { q($0) }
        #expect(zip(t, rounded).allSatisfy { abs($0 - $1) <= q.q / 2 })
        let forward = rounded.reduce(0, +), backward = rounded.reversed().reduce(0, +)
        let grouped = rounded[..<300].reduce(0, +) + rounded[300...].reduce(0, +)
        #expect(forward.bitPattern == backward.bitPattern && forward.bitPattern == grouped.bitPattern)
    }
}
