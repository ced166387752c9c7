import Foundation

/// A small, fully specified pseudo-random generator: xoshiro256** (Blackman & Vigna, 2018) whose
/// 256-bit state is filled by SplitMix64 from a 64-bit key.
///
/// Why our own generator: every random decision of the program (perturbation of the angular grid,
/// half-set assignment, initial subsets, …) must give the same result on every MPI rank and for any
/// number of threads. We therefore never share a generator: each use derives its own generator from a
/// *key* — the user seed plus a few stream numbers such as (iteration, global image index) — so the
/// draws depend only on that key (spec §14.18, §14.24 are fixed this way). The algorithm is written
/// out here so the sequence cannot change with the Swift standard library.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// SplitMix64 finaliser (Stafford variant 13): a bijective 64-bit mixer.
    @inlinable
    public static func mix(_ z0: UInt64) -> UInt64 {
        var z = z0
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static let golden: UInt64 = 0x9E37_79B9_7F4A_7C15

    /// A generator keyed by a seed and any number of stream numbers, e.g.
    /// `SeededRandom(seed: s, streams: iteration, imageIndex)`. Different keys give independent-looking
    /// sequences; the same key always gives the same sequence.
    public init(seed: UInt64, streams: UInt64...) {
        self.init(seed: seed, streams: streams)
    }

    public init(seed: UInt64, streams: [UInt64]) {
        // Chain the key through the mixer; the position of each stream number matters, so
        // (1, 2) and (2, 1) are different keys. The count is folded in so that (s) ≠ (s, 0).
        var key = Self.mix(seed &+ Self.golden)
        for s in streams {
            key = Self.mix(key ^ Self.mix(s &+ Self.golden)) &+ Self.golden
        }
        key = Self.mix(key ^ UInt64(streams.count))
        // SplitMix64 sequence to fill the xoshiro state (never all zero in practice; guarded anyway).
        var sm = key
        func nextSplitMix() -> UInt64 {
            sm = sm &+ Self.golden
            return Self.mix(sm)
        }
        s0 = nextSplitMix()
        s1 = nextSplitMix()
        s2 = nextSplitMix()
        s3 = nextSplitMix()
        if s0 | s1 | s2 | s3 == 0 { s0 = Self.golden }
    }

    /// Next raw 64-bit output of xoshiro256**.
    @inlinable
    public mutating func next() -> UInt64 {
        nextRaw()
    }

    @usableFromInline
    mutating func nextRaw() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// Uniform Double in [0, 1) with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(nextRaw() >> 11) * 0x1.0p-53
    }

    /// Uniform Double in [a, b).
    public mutating func nextUniform(in a: Double, _ b: Double) -> Double {
        a + (b - a) * nextUniform()
    }

    /// Standard normal draw by the Box–Muller transform (one draw per call, the partner value is
    /// discarded so that the sequence depends on nothing but the number of calls).
    public mutating func nextGaussian() -> Double {
        // u1 in (0, 1] so that log(u1) is finite.
        let u1 = Double((nextRaw() >> 11) + 1) * 0x1.0p-53
        let u2 = nextUniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }

    /// Normal draw with the given mean and standard deviation.
    public mutating func nextGaussian(mean: Double, standardDeviation: Double) -> Double {
        mean + standardDeviation * nextGaussian()
    }

    /// Uniform integer in 0..<n (n > 0) by rejection, so no modulo bias.
    public mutating func nextInt(below n: Int) -> Int {
        precondition(n > 0, "nextInt(below:) needs a positive bound")
        let bound = UInt64(n)
        let limit = UInt64.max - (UInt64.max % bound)
        while true {
            let r = nextRaw()
            if r < limit { return Int(r % bound) }
        }
    }
}
