import Foundation
import Numerics
import Volumes

/// Starting references: generated from random subsets (`--nref`, spec §4.6 with §14.23 fixed) or
/// prepared from given volumes (`--ref`, spec §4.5).
public struct InitialReferences: Sendable {
    /// K references, working box.
    public var references: [Volume]
    /// Merged wedge sums per class (half-complex, d²(d/2+1)); zeros without missing data or for `--ref`.
    public var wedgeSums: [[Double]]
    /// FSC = 0.5 resolution per class from the two half-sets (0 for `--ref`).
    public var resolutions: [Double]

    /// Stream tags separating the draws of the generation from other uses of the seed.
    public static let partitionStream: UInt64 = 0x5041_5254_4954_494F  // "PARTITIO"
    public static let orientationStream: UInt64 = 0x494E_4954_4F52_4945  // "INITORIE"

    /// The subset (0-based class) of every global image: a uniformly random partition into K subsets
    /// whose sizes differ by at most one, identical on every process (keyed by the seed only).
    public static func partition(totalImages n: Int, classes k: Int, seed: UInt64) -> [Int] {
        var rng = SeededRandom(seed: seed, streams: partitionStream, UInt64(n), UInt64(k))
        var order = Array(0 ..< n)
        if n > 1 {
            for i in stride(from: n - 1, to: 0, by: -1) {
                let j = rng.nextInt(below: i + 1)
                order.swapAt(i, j)
            }
        }
        var subset = [Int](repeating: 0, count: n)
        for (position, image) in order.enumerated() { subset[image] = position * k / max(n, 1) }
        return subset
    }

    /// The input classes (0-based, one per global image) when they form a usable K-class partition: every
    /// image has a class in 0..<K and no class is empty. Otherwise nil (e.g. a one-class consensus doc
    /// feeding `--nref 3`), and the references come from the random partition.
    public static func inputPartition(_ classes: [Int?], classes k: Int) -> [Int]? {
        guard k > 1, !classes.isEmpty else { return nil }
        var counts = [Int](repeating: 0, count: k)
        var out = [Int]()
        out.reserveCapacity(classes.count)
        for c in classes {
            guard let c, c >= 0, c < k else { return nil }
            counts[c] += 1
            out.append(c)
        }
        return counts.allSatisfy { $0 > 0 } ? out : nil
    }

    /// A uniformly random rotation for image `globalIndex` (rot = 360U, tilt = acos(2U − 1), psi = 360U).
    public static func randomOrientation(seed: UInt64, globalIndex: Int) -> EulerAngles {
        var rng = SeededRandom(seed: seed, streams: orientationStream, UInt64(globalIndex))
        let rot = 360 * rng.nextUniform()
        let tilt = Foundation.acos(2 * rng.nextUniform() - 1) * 180 / Double.pi
        let psi = 360 * rng.nextUniform()
        return EulerAngles(rot: rot, tilt: tilt, psi: psi)
    }

    /// Spec §4.6: every process sums its own images into 2 half-sets × K subsets (image rotated by
    /// its random or input orientation, wedge masks rotated alike), one reduction sums across
    /// processes, then per class: FSC, merge, division by the wedge sums (or the subset size without
    /// missing data) and post-processing.
    /// - Parameters:
    ///   - totalImages: N over all processes (the partition is drawn over global indices).
    ///   - inputClasses: the K-class partition of the input metadata (`inputPartition`, global indices),
    ///     used instead of the random one when the input orientations are used too (`--keep_angles`,
    ///     `--dont_align`, `--dont_rotate`): a run that continues a classification at a finer sampling
    ///     (the seed's second 3-class line) starts from its classes instead of discarding them.
    public static func generate(particles: [Particle], totalImages: Int, setup: RefinementSetup,
                                inputClasses: [Int]? = nil, reducer: any Reducer) throws -> InitialReferences {
        let o = setup.options
        // Classes that start from a consensus split start as K copies of one reference; given input
        // classes (used with the input poses) start K references whatever `inputHasClasses` says.
        let useInput = o.startsFromInputPoses
        let givenClasses = useInput ? inputClasses : nil
        let k = o.splitsConsensus && givenClasses == nil ? 1 : o.nref
        let d = setup.dim
        let nh = d * d * (d / 2 + 1)
        guard totalImages >= o.nref else {
            throw EngineError("--nref \(o.nref) needs at least \(o.nref) images, got \(totalImages)")
        }
        let subset: [Int]
        if let given = givenClasses {
            guard given.count == totalImages, given.allSatisfy({ (0 ..< k).contains($0) }) else {
                throw EngineError("\(given.count) input classes in 0..<\(k) needed for \(totalImages) images")
            }
            subset = given
        } else {
            subset = partition(totalImages: totalImages, classes: k, seed: o.seed)
        }
        let scale = try SumScale.agreed(particles, totalImages: totalImages, reducer: reducer)
        var sums = Sums(dim: d, classCount: k)
        var mask = [Float](repeating: 0, count: nh)
        for p in particles {
            guard p.globalIndex >= 0 && p.globalIndex < totalImages else {
                throw EngineError("image index \(p.globalIndex) is outside 0..<\(totalImages)")
            }
            let c = subset[p.globalIndex]
            let angles = useInput ? p.inputAngles : randomOrientation(seed: o.seed, globalIndex: p.globalIndex)
            let a = angles.matrix
            sums.addAligned(p.aligned(rotation: a, shift: useInput ? p.inputShift : .zero, setup: setup), rotation: a,
                            region: p.region, halfSet: p.halfSet, klass: c, setup: setup, scale: scale, mask: &mask)
        }
        var packed = sums.packed()
        try reducer.sumInPlace(&packed)
        sums = try Sums(unpacking: packed, dim: d, classCount: k)

        var refs = [Volume]()
        var wedgeOut = [[Double]]()
        var resolutions = [Double]()
        for c in 0 ..< k {
            let fsc = MStep.halfSetFSC(sums.imageSums[c], sums.imageSums[k + c],
                                       wedges: setup.hasMissingData ? (sums.wedgeSums[c], sums.wedgeSums[k + c]) : nil, dim: d)
            let resolution = MStep.resolution(fsc, pixelSize: o.pixelSize)
            resolutions.append(resolution)
            let image = zip(sums.imageSums[c], sums.imageSums[k + c]).map { $0 + $1 }
            let wedge = zip(sums.wedgeSums[c], sums.wedgeSums[k + c]).map { $0 + $1 }
            let count = sums.classWeights[c]
            var f = Volume(nx: d, ny: d, nz: d, data: image.map { Float($0) }).fourierTransform().data
            if setup.hasMissingData {
                for j in 0 ..< nh { f[j] = wedge[j] > o.noimpThreshold ? f[j].multiplied(by: Float(1 / wedge[j])) : .zero }
            } else {
                // Divide by the subset's actual size (fix of §14.23's round(N/K)).
                let s = Float(1 / max(count, 1))
                for j in 0 ..< nh { f[j] = f[j].multiplied(by: s) }
            }
            let ref = FourierVolume(nx: d, ny: d, nz: d, data: f).inverseTransform()
            refs.append(MStep.postProcess(ref, setup: setup, lowPass: o.iniFilter ? resolution * o.pixelSize : nil))
            wedgeOut.append(wedge)
        }
        if k < o.nref {
            return InitialReferences(references: [Volume](repeating: refs[0], count: o.nref),
                                     wedgeSums: [[Double]](repeating: wedgeOut[0], count: o.nref),
                                     resolutions: [Double](repeating: resolutions[0], count: o.nref))
        }
        return InitialReferences(references: refs, wedgeSums: wedgeOut, resolutions: resolutions)
    }

    /// Spec §4.5 for `--ref` volumes (original size): Fourier crop to d and spherical average outside.
    /// The original's 32°/61°/53° rotate-and-back smoothing only compensated real-space interpolation
    /// losses; the E-step rotates in Fourier space, so it is optional (`smooth`, default off).
    public static func prepare(loaded volumes: [Volume], setup: RefinementSetup,
                               smooth: Bool = false) throws -> InitialReferences {
        let d = setup.dim
        var refs = [Volume]()
        for (i, v) in volumes.enumerated() {
            guard v.isCubic, v.nx == setup.originalDim else {
                throw EngineError("reference \(i + 1) is \(v.nx)x\(v.ny)x\(v.nz), expected \(setup.originalDim)³ like the images")
            }
            var r = v.nx == d ? v : v.fourierResized(to: d)
            setup.realMasks.maskSphericalAverageOutside(&r)
            if smooth {
                let a = EulerAngles(rot: 32, tilt: 61, psi: 53).matrix
                r = r.rotated(by: a, outside: r.cornerValue)
                r = r.rotated(by: a.transposed, outside: r.cornerValue)
            }
            refs.append(r)
        }
        let nh = d * d * (d / 2 + 1)
        return InitialReferences(references: refs,
                                 wedgeSums: [[Double]](repeating: [Double](repeating: 0, count: nh), count: refs.count),
                                 resolutions: [Double](repeating: 0, count: refs.count))
    }
}
