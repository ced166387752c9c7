/// Sums whose bits do not depend on the order of their terms, so that any number of ranks (and threads)
/// gives the same result: every addition is exact, hence associative.
///
/// Floating-point addition rounds, so Σ over a rank's particles then over ranks (MPI's order) gives
/// other bits for another partition. Two exact forms are used instead:
/// - `Quantum` (the image and wedge sums): every term is rounded to a multiple of one power of two q,
///   identical on every rank and chosen from a global bound B on |Σ terms| so that every partial sum
///   is an integer multiple of q below 2^53·q — exactly representable, so each `+` is exact.
/// - `ExactScalar` (the few scalar sums: log-likelihood, σ sums, class weights): no bound is known in
///   advance (a log-likelihood can be anything), so each term is split into 32-bit digits of a fixed
///   fixed-point grid (2^-128 … 2^149) held in Doubles; digit sums are integers, exact until 2^53.

/// Rounding to multiples of a power of two q; sums of such values below 2^53·q are exact.
public struct Quantum: Sendable, Equatable {
    /// The quantum q = 2^exponent.
    public let q: Double
    let inverse: Double

    /// The quantum that keeps any sum of at most `bound` (in magnitude, the terms' Σ|·|) exact: the
    /// smallest power of two with 2^53·q ≥ 4·bound (a factor 4 of headroom for the rounding of terms
    /// and of the bound itself). A zero or non-finite bound gives q = 1 (nothing to keep).
    public init(bound: Double) {
        guard bound > 0, bound.isFinite else { q = 1; inverse = 1; return }
        let e = Int((4 * bound).exponent) + 1 - 53
        q = Double(sign: .plus, exponent: e, significand: 1)
        inverse = Double(sign: .plus, exponent: -e, significand: 1)
    }

    /// x rounded to the nearest multiple of q (exact scaling by powers of two, one rounding).
    @inline(__always)
    public func callAsFunction(_ x: Double) -> Double { (x * inverse).rounded(.toNearestOrEven) * q }
}

/// A sum of Doubles kept exactly in fixed-point digits: order-independent. Terms are rounded to
/// multiples of 2^-128 (far below any quantity summed here); |sum| must stay below 2^149.
public struct ExactScalar: Sendable, Equatable {
    /// Digit c holds an integer multiple of 2^(−128 + 32c).
    static let digitCount = 8
    static let radix = 4_294_967_296.0  // 2^32
    static let lowest = -128
    /// Terms added since the last carry: every digit of a term is below 2^32 in magnitude, so 2^20
    /// terms keep each digit below 2^52.
    static let carryEvery = 1 << 20

    var digits = [Double](repeating: 0, count: ExactScalar.digitCount)
    private var terms = 0

    public init() {}

    public init(_ x: Double) { add(x) }

    /// Adds `x` exactly (after its rounding to a multiple of 2^-128). A non-finite term makes the
    /// sum non-finite, as an ordinary sum would.
    public mutating func add(_ x: Double) {
        guard x.isFinite else { digits[0] += x; return }
        var m = (x * Double(sign: .plus, exponent: -Self.lowest, significand: 1)).rounded(.toNearestOrEven)
        for c in stride(from: Self.digitCount - 1, to: 0, by: -1) where m != 0 {
            let s = Double(sign: .plus, exponent: 32 * c, significand: 1)
            let digit = (m / s).rounded(.towardZero)
            m -= digit * s
            digits[c] += digit
        }
        digits[0] += m
        terms += 1
        if terms >= Self.carryEvery { carry() }
    }

    public mutating func add(_ other: ExactScalar) {
        for c in digits.indices { digits[c] += other.digits[c] }
        terms += other.terms + 1
        carry()
    }

    /// Canonical digits: 0 ≤ digit < 2^32 except the top one (signed). All steps are exact.
    mutating func carry() {
        for c in 0 ..< Self.digitCount - 1 {
            let over = (digits[c] / Self.radix).rounded(.down)
            digits[c] -= over * Self.radix
            digits[c + 1] += over
        }
        terms = 0
    }

    /// The sum, rounded once from its canonical digits (so equal sums give equal bits).
    public var value: Double {
        var canonical = self
        canonical.carry()
        var v = 0.0
        for c in stride(from: Self.digitCount - 1, through: 0, by: -1) {
            v += canonical.digits[c] * Double(sign: .plus, exponent: Self.lowest + 32 * c, significand: 1)
        }
        return v
    }

    /// Rebuilds a sum from `digits` (e.g. after a reduction added the digits of every rank).
    init(digits: ArraySlice<Double>) {
        self.digits = Array(digits)
        carry()
    }

    /// The canonical digits of `sums`, one after the other: a reduction that adds such arrays of every
    /// rank adds the sums exactly.
    static func packed(_ sums: [ExactScalar]) -> [Double] {
        var out = [Double]()
        out.reserveCapacity(sums.count * digitCount)
        for var s in sums {
            s.carry()
            out.append(contentsOf: s.digits)
        }
        return out
    }

    /// The `count` sums of `packed(_:)` output (e.g. after a reduction), read from the start of `values`.
    static func unpacked(_ values: ArraySlice<Double>, count: Int) -> [ExactScalar] {
        let start = values.startIndex, n = digitCount
        return (0 ..< count).map { ExactScalar(digits: values[(start + $0 * n) ..< (start + $0 * n + n)]) }
    }

    public static func == (a: ExactScalar, b: ExactScalar) -> Bool {
        var x = a, y = b
        x.carry()
        y.carry()
        return x.digits == y.digits
    }
}

/// The quanta of the image and wedge sums of one run, identical on every rank: from the number of
/// images N and the largest particle bound b (`Particle.magnitudeBound`) over all ranks.
///
/// Why these bounds hold: an image's posterior weights sum to 1 (≤ 1 + rounding) over all its
/// (orientation, class, shift) samples, every real-space voxel of a weighted image is at most b in
/// magnitude (shifts, masking, the spherical average outside and trilinear rotation never exceed the
/// largest voxel), and the rotated region masks are at most 1. So |image sums| ≤ N·b and
/// |wedge sums| ≤ N (times 2 for the weights' rounding); `Quantum` adds a factor 4 of headroom.
public struct SumScale: Sendable, Equatable {
    public let images: Int
    public let particleBound: Double

    public init(images: Int, particleBound: Double) {
        self.images = images
        self.particleBound = particleBound
    }

    var image: Quantum { Quantum(bound: Double(images) * particleBound) }
    var wedge: Quantum { Quantum(bound: 2 * Double(images)) }

    /// The scale of `particles` alone (one process holding every image).
    public static func local(_ particles: [Particle]) -> SumScale {
        SumScale(images: particles.count, particleBound: particles.map(\.magnitudeBound).max() ?? 0)
    }

    /// The scale over every rank's `particles` (collective: one maximum). N = `totalImages`, or
    /// without it ranks × the largest rank's count (an upper bound, the same on every rank).
    public static func agreed(_ particles: [Particle], totalImages: Int? = nil, reducer: any Reducer) throws -> SumScale {
        var bound = [particles.map(\.magnitudeBound).max() ?? 0, Double(particles.count)]
        try reducer.maxInPlace(&bound)
        return SumScale(images: totalImages ?? reducer.size * Int(bound[1]), particleBound: bound[0])
    }
}

extension Particle {
    /// A bound on every real-space voxel of the masked image, in any Fourier-cropped box too:
    /// |x(r)| ≤ Σ over the full spectrum |F| ≤ 2·Σ_half (|Re F| + |Im F|) (1/V normalisation; cropping
    /// only drops components).
    public var magnitudeBound: Double {
        var s = 0.0
        for z in spectrum { s += Double(abs(z.real)) + Double(abs(z.imaginary)) }
        return 2 * s
    }
}
