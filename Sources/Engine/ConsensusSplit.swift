import Foundation
import Numerics
import Volumes

/// Classes from an aligned consensus: the particles, aligned to one consensus reference, are split along
/// the main directions of their variation around it. Used for `--consensus_iter n`, for runs that start
/// from input poses without classes, and to re-seed an emptied class (`bisect`). Reference-free runs
/// start from random halves by default instead (`RefinementOptions.effectiveConsensusIterations`): a
/// consensus of two states that do not share a frame aligns one of them only, and then this split has
/// nothing to find.
///
/// Why not random subsets once the consensus is refined: with a random partition the class averages
/// differ by noise only, and each particle's own noise inside its class average favours that class by
/// ≈ N_dof/N_k nats, more than a small structural difference is worth at low SNR, so EM stays where it
/// started (see ../shared/research/classification-robustness.md §0). N_dof grows with the radius: at the
/// first iteration's 5 shells it is small, which is why the default random halves start there. The
/// difference between the classes is, in
/// the aligned frame, the leading direction of the particles' residuals, and it can be found when
/// D/4 > √(N_dof/N) (D: the difference in noise variances per particle), far below the random start's
/// threshold.
///
/// Each particle i is moved into the reference frame by its consensus pose (Y_i) and compared with the
/// consensus C on the components its rotated missing-region mask M_i measured: E_i = M_i ⊙ (Y_i − C),
/// whitened per shell by the residual power. K − 1 components v are fitted one after the other by
/// alternating least squares on the observed components only (a_i = ⟨M_i v, E_i⟩ / ⟨M_i v, v⟩,
/// v = Σ a_i M_i E_i / Σ a_i² M_i), which is PCA that respects the missing wedge; each is removed
/// before the next. The scores a_i then go through K-means (deterministic farthest-point start), and
/// the clusters are the starting classes. Sums over particles go through the reducer, so every rank
/// computes the same components and the same clusters.
public enum ConsensusSplit {
    /// Iterations of the alternating least squares per component.
    static let iterations = 40
    static let componentStream: UInt64 = 0x5043_4153_504C_4954  // "PCASPLIT"

    /// The class (0-based) of every local particle.
    /// - Parameters:
    ///   - particles: the local particles, in the box of `setup` (possibly Fourier-cropped).
    ///   - poses: their consensus results (orientation, shift in original pixels), same order.
    ///   - consensus: the consensus reference in the box of `setup`.
    ///   - radius: the shells (of the box of `setup`) the consensus supports; only they are compared.
    ///     Beyond it the residuals are the interpolation error of the rotation, orientation-dependent,
    ///     and whitening would make those many components the main direction of variation.
    ///   - totalImages: N over all ranks (scores are exchanged by global index); `particles` may be a
    ///     subset of them over all ranks (the members of one class), and only that subset is clustered.
    public static func classes(particles: [Particle], poses: [ParticleResult], consensus: Volume,
                               setup: RefinementSetup, radius: Int, classes k: Int, totalImages: Int, seed: UInt64,
                               reducer: any Reducer) throws -> [Int] {
        guard poses.count == particles.count else {
            throw EngineError("the consensus split needs one pose per particle (\(poses.count) for \(particles.count))")
        }
        let d = setup.dim
        let nh = d * d * (d / 2 + 1)
        let h = d / 2
        let c = consensus.fourierTransform().data
        let shellOf = shells(dim: d)
        let weight = setup.multiplicity
        var inside = setup.resolution.binary
        for j in 0 ..< nh where Int(shellOf[j]) > radius { inside[j] = 0 }

        // Residuals in the reference frame, on measured components within the resolution mask.
        var residuals: [[Complex<Float>]] = []
        var masks: [[Float]] = []
        var noise = [Double](repeating: 0, count: 2 * (h + 1))
        for (p, pose) in zip(particles, poses) {
            let a = pose.angles.matrix
            let y = p.aligned(rotation: a, shift: pose.shift, setup: setup).fourierTransform().data
            var m = [Float](repeating: 0, count: nh)
            m.withUnsafeMutableBufferPointer { setup.fillReferenceFrameMask(region: p.region, rotation: a, into: $0) }
            var e = [Complex<Float>](repeating: .zero, count: nh)
            for j in 0 ..< nh where m[j] > 0.5 && inside[j] > 0 {
                m[j] = 1
                e[j] = y[j] - c[j]
                let q = Int(shellOf[j])
                noise[q] += Double(weight[j]) * Double(e[j].lengthSquared)
                noise[h + 1 + q] += Double(weight[j])
            }
            for j in 0 ..< nh where !(m[j] == 1 && inside[j] > 0) { m[j] = 0 }
            residuals.append(e)
            masks.append(m)
        }
        try reducer.sumInPlace(&noise)
        // Whiten: every shell's residual power to 1, so the components are not just the strongest shells.
        var scale = [Float](repeating: 0, count: h + 1)
        for q in 0 ... h where noise[h + 1 + q] > 0 && noise[q] > 0 {
            scale[q] = Float((noise[h + 1 + q] / noise[q]).squareRoot())
        }
        for i in residuals.indices {
            for j in 0 ..< nh where masks[i][j] > 0 { residuals[i][j] = residuals[i][j].multiplied(by: scale[Int(shellOf[j])]) }
        }

        let components = max(1, k - 1)
        var scores = [[Double]](repeating: [Double](repeating: 0, count: components), count: particles.count)
        for comp in 0 ..< components {
            var v = randomStart(count: nh, mask: inside, seed: seed, component: comp)
            var a = [Double](repeating: 0, count: particles.count)
            for _ in 0 ..< iterations {
                for i in particles.indices { a[i] = projection(residuals[i], masks[i], v, weight) }
                // v = Σ a_i M_i E_i / Σ a_i² M_i, summed over ranks in one reduction.
                var sums = [Double](repeating: 0, count: 3 * nh)
                for i in particles.indices where a[i] != 0 {
                    let ai = a[i]
                    for j in 0 ..< nh where masks[i][j] > 0 {
                        sums[2 * j] += ai * Double(residuals[i][j].real)
                        sums[2 * j + 1] += ai * Double(residuals[i][j].imaginary)
                        sums[2 * nh + j] += ai * ai
                    }
                }
                try reducer.sumInPlace(&sums)
                var norm = 0.0
                for j in 0 ..< nh {
                    let den = sums[2 * nh + j]
                    v[j] = den > 0 ? Complex(Float(sums[2 * j] / den), Float(sums[2 * j + 1] / den)) : .zero
                    norm += Double(weight[j]) * Double(v[j].lengthSquared)
                }
                guard norm > 0 else { break }
                let inv = Float(1 / norm.squareRoot())
                for j in 0 ..< nh { v[j] = v[j].multiplied(by: inv) }
            }
            for i in particles.indices {
                a[i] = projection(residuals[i], masks[i], v, weight)
                scores[i][comp] = a[i]
                for j in 0 ..< nh where masks[i][j] > 0 { residuals[i][j] = residuals[i][j] - v[j].multiplied(by: Float(a[i])) }
            }
        }

        // Every rank needs every score for the clustering: place them by global index and sum. The last
        // column marks the images taking part (the particles given may be a subset of the N images:
        // one class being split in two).
        let columns = components + 1
        var all = [Double](repeating: 0, count: totalImages * columns)
        for (i, p) in particles.enumerated() {
            for comp in 0 ..< components { all[p.globalIndex * columns + comp] = scores[i][comp] }
            all[p.globalIndex * columns + components] = 1
        }
        try reducer.sumInPlace(&all)
        let present = (0 ..< totalImages).filter { all[$0 * columns + components] > 0.5 }
        guard present.count >= k else { return particles.map { _ in 0 } }
        let points = present.map { Array(all[($0 * columns) ..< ($0 * columns + components)]) }
        let labels = kMeans(points, clusters: k)
        var labelOf = [Int: Int](minimumCapacity: present.count)
        for (n, g) in present.enumerated() { labelOf[g] = labels[n] }
        return particles.map { labelOf[$0.globalIndex] ?? 0 }
    }

    /// a = ⟨M v, E⟩ / ⟨M v, v⟩ over the measured components (Hermitian multiplicity as weight).
    static func projection(_ e: [Complex<Float>], _ m: [Float], _ v: [Complex<Float>], _ weight: [Float]) -> Double {
        var num = 0.0, den = 0.0
        for j in 0 ..< e.count where m[j] > 0 {
            let w = Double(weight[j])
            num += w * (Double(v[j].real) * Double(e[j].real) + Double(v[j].imaginary) * Double(e[j].imaginary))
            den += w * Double(v[j].lengthSquared)
        }
        return den > 0 ? num / den : 0
    }

    /// Shell index round(|κ|) of every half-complex component.
    static func shells(dim d: Int) -> [Int32] {
        let hx = d / 2 + 1
        var out = [Int32](repeating: 0, count: d * d * hx)
        for z in 0 ..< d {
            let fz = FourierVolume.frequency(z, d)
            for y in 0 ..< d {
                let fy = FourierVolume.frequency(y, d)
                for x in 0 ..< hx {
                    out[(z * d + y) * hx + x] = Int32(min(d / 2, Int(Double(x * x + fy * fy + fz * fz).squareRoot().rounded())))
                }
            }
        }
        return out
    }

    /// A seeded random start, identical on every rank.
    static func randomStart(count: Int, mask: [Float], seed: UInt64, component: Int) -> [Complex<Float>] {
        var rng = SeededRandom(seed: seed, streams: componentStream, UInt64(component))
        return (0 ..< count).map { j in
            let re = Float(rng.nextGaussian()), im = Float(rng.nextGaussian())
            return mask[j] > 0 ? Complex(re, im) : .zero
        }
    }

    /// A cluster smaller than this fraction of the equal share (n/K) is no class: the scores had no
    /// cluster structure and K-means ran to a few outliers (at SNR 0.01, 2 of 200 ribosome particles,
    /// and that class stayed at 1 % for the rest of the run).
    public static let smallestClusterShare = 0.25

    /// K-means on score vectors, started from the K groups of equal size along the first score (its
    /// quantiles: robust to the outliers a farthest-point start picks), then Lloyd iterations until
    /// nothing moves. If a cluster ends under `smallestClusterShare` of n/K, the quantile groups
    /// themselves are the answer: an even split along the main direction, which EM can still sort,
    /// instead of a class of outliers it cannot.
    public static func kMeans(_ points: [[Double]], clusters k: Int) -> [Int] {
        let n = points.count
        guard n > 0, k > 1 else { return [Int](repeating: 0, count: n) }
        let groups = quantileGroups(points, clusters: k)
        let labels = lloyd(points, start: groups)
        let sizes = (0 ..< k).map { c in labels.lazy.filter { $0 == c }.count }
        guard Double(sizes.min()!) < smallestClusterShare * Double(n) / Double(k) else { return labels }
        var quantiles = [Int](repeating: 0, count: n)
        for (c, group) in groups.enumerated() { for i in group { quantiles[i] = c } }
        return quantiles
    }

    /// The K groups of (nearly) equal size along the first score, as point indices.
    static func quantileGroups(_ points: [[Double]], clusters k: Int) -> [ArraySlice<Int>] {
        let n = points.count
        let order = points.indices.sorted { (points[$0][0], $0) < (points[$1][0], $1) }
        return (0 ..< min(k, n)).map { c in order[(c * n / k) ..< max(c * n / k + 1, (c + 1) * n / k)] }
    }

    /// Lloyd's K-means started from the mean of each of the `start` groups (see `kMeans`).
    static func lloyd(_ points: [[Double]], start: [ArraySlice<Int>]) -> [Int] {
        let n = points.count
        let dims = points[0].count
        func dist2(_ a: [Double], _ b: [Double]) -> Double {
            var s = 0.0
            for t in 0 ..< dims { s += (a[t] - b[t]) * (a[t] - b[t]) }
            return s
        }
        var centres: [[Double]] = start.map { group in
            var m = [Double](repeating: 0, count: dims)
            for i in group { for t in 0 ..< dims { m[t] += points[i][t] / Double(group.count) } }
            return m
        }
        var labels = [Int](repeating: -1, count: n)
        for _ in 0 ..< 100 {
            var changed = false
            for i in 0 ..< n {
                let best = centres.indices.min { dist2(points[i], centres[$0]) < dist2(points[i], centres[$1]) }!
                if best != labels[i] { labels[i] = best; changed = true }
            }
            if !changed { break }
            for c in centres.indices {
                let members = labels.indices.filter { labels[$0] == c }
                guard !members.isEmpty else { continue }
                // The coordinate-wise median, not the mean: one far particle (a bad pose) cannot pull a
                // centre to itself and make a class of one.
                centres[c] = (0 ..< dims).map { t in
                    let v = members.map { points[$0][t] }.sorted()
                    return v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
                }
            }
        }
        return labels
    }
}

extension ConsensusSplit {
    /// Re-seeds an emptied class by bisecting the class that gave it its copy (`MStep`'s donor): the
    /// donor's members (by their most probable class this iteration) are split in two along their main
    /// direction of variation in the donor's frame, and each half's aligned images, through the MAP
    /// update with the donor's FSC, become the references of `donor` and `target`; the donor's and the
    /// target's fractions are shared in proportion to the halves. A copy of the donor plus noise (what
    /// `MStep` re-seeds with) starts no real alternative: measured on the seed's reference-free 3-class
    /// line under `--map`, the re-seeded class took half the donor for one iteration and emptied again
    /// at the next, eight times over, with two true classes merged in the donor.
    /// Every rank calls this with the same model and its own particles (collective: reductions).
    /// Returns the model unchanged when a half would be empty.
    public static func bisect(donor: Int, into target: Int, model: Model, particles: [Particle],
                              results: [ParticleResult], setup: RefinementSetup, radius: Int, totalImages: Int,
                              reducer: any Reducer) throws -> Model {
        let o = setup.options
        let d = setup.dim
        let nh = d * d * (d / 2 + 1)
        let members = results.indices.filter { results[$0].classNumber == donor + 1 }
        let memberParticles = members.map { particles[$0] }, memberPoses = members.map { results[$0] }
        let halves = try classes(particles: memberParticles, poses: memberPoses, consensus: model.references[donor],
                                 setup: setup, radius: radius, classes: 2, totalImages: totalImages,
                                 seed: o.seed &+ UInt64(target), reducer: reducer)
        let scale = try SumScale.agreed(memberParticles, totalImages: totalImages, reducer: reducer)
        var sums = Sums(dim: d, classCount: 2)
        var mask = [Float](repeating: 0, count: nh)
        for (n, (p, pose)) in zip(memberParticles, memberPoses).enumerated() {
            let a = pose.angles.matrix
            sums.addAligned(p.aligned(rotation: a, shift: pose.shift, setup: setup), rotation: a, region: p.region,
                            halfSet: p.halfSet, klass: halves[n], setup: setup, scale: scale,
                            mask: &mask)
        }
        var packed = sums.packed()
        try reducer.sumInPlace(&packed)
        sums = try Sums(unpacking: packed, dim: d, classCount: 2)
        let counts = sums.classWeights
        guard counts.allSatisfy({ $0 >= 1 }) else { return model }
        var m = model
        let fraction = model.fractions[donor] + model.fractions[target]
        for (g, klass) in [donor, target].enumerated() {
            let image = Volume(nx: d, ny: d, nz: d, data: zip(sums.imageSums[g], sums.imageSums[2 + g]).map { Float($0 + $1) })
            let wedge: [Double] = setup.hasMissingData
                ? zip(sums.wedgeSums[g], sums.wedgeSums[2 + g]).map { $0 + $1 }
                : [Double](repeating: counts[g], count: nh)
            let (f, _) = MStep.mapUpdate(sums: image.fourierTransform().data, wedges: wedge, fsc: model.fsc[donor],
                                         dim: d, fudge: o.tau2Fudge, images: counts[g])
            m.references[klass] = MStep.postProcess(FourierVolume(nx: d, ny: d, nz: d, data: f).inverseTransform(),
                                                    setup: setup, lowPass: nil)
            m.fractions[klass] = fraction * counts[g] / (counts[0] + counts[1])
        }
        return m
    }
}
