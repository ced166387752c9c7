import Foundation
import Numerics
import Volumes

/// The M-step (spec §8): runs identically on every process from the reduced sums.
public enum MStep {
    /// Stream tag of the perturbation used when re-seeding an emptied class.
    public static let reseedStream: UInt64 = 0x5245_5345_4544_2121  // "RESEED!!"

    /// New model from the model used in the E-step and the globally reduced sums.
    /// - Parameter residualScale: factor from the residual energy the E-step measured to the energy over
    ///   the whole box (V / Σ mask with `--mask`, where only the masked voxels carry residuals; else 1).
    ///   It scales the measured part of σ² only, never the imputed missing-region part, which is already
    ///   an estimate for the whole box: scaling that too multiplies σ² by (V/Σmask)·(missing fraction)
    ///   every iteration, which diverges once that product nears 1 (a ±60° wedge and a radius-14 ball
    ///   in 32³ give 0.95).
    /// - Returns: the model (references, fractions, σ, σ_off, FSC, resolutions, signal change) and
    ///   the classes that were re-seeded, each with the class whose copy it got (its donor).
    public static func run(setup: RefinementSetup, model old: Model, sums: Sums, iteration: Int,
                           residualScale: Double = 1) -> (model: Model, reseeded: [Int], donors: [Int]) {
        let o = setup.options
        let d = setup.dim
        let k = old.classCount
        let nh = d * d * (d / 2 + 1)
        let vol = Double(d * d * d)
        var m = old
        m.iteration = iteration

        // §8.1 FSC per class from the half-sets, then merge halves.
        var merged = [[Double]]()
        var wedges = [[Double]]()
        for c in 0 ..< k {
            let curve = halfSetFSC(sums.imageSums[c], sums.imageSums[k + c],
                                   wedges: setup.hasMissingData ? (sums.wedgeSums[c], sums.wedgeSums[k + c]) : nil, dim: d)
            m.fsc[c] = curve.values
            m.resolutions[c] = resolution(curve, pixelSize: o.pixelSize * Double(setup.originalDim) / Double(d))
            merged.append(zip(sums.imageSums[c], sums.imageSums[k + c]).map { $0 + $1 })
            wedges.append(zip(sums.wedgeSums[c], sums.wedgeSums[k + c]).map { $0 + $1 })
        }
        let total = sums.classWeights.reduce(0, +)
        if o.usesResolutionLimit && m.ssnr.count != k { m.ssnr = [[Double]](repeating: [], count: k) }
        if o.usesResolutionLimit && m.priorSignalToNoise.count != k {
            m.priorSignalToNoise = [[Double]](repeating: [], count: k)
        }
        // One prior for all classes: λ is 1/(T × signal-to-noise per image), a property of the
        // structure, not of a class's size. Each class's own FSC is noisier the fewer images it has;
        // with per-class λ a smaller class is shrunk harder, fits every image worse, loses images and
        // is shrunk harder still (measured: a 52/47 split drifting to 64/35 on the 16³ test phantom).
        let sharedLambda: [Double]? = o.usesResolutionLimit && k > 1 ? {
            let live = (0 ..< k).filter { sums.classWeights[$0] > 0 }
            guard live.count > 1 else { return nil }
            var half1 = [Double](repeating: 0, count: sums.imageSums[0].count), half2 = half1
            var w1 = [Double](repeating: 0, count: sums.wedgeSums[0].count), w2 = w1
            for c in live {
                for j in half1.indices { half1[j] += sums.imageSums[c][j]; half2[j] += sums.imageSums[k + c][j] }
                for j in w1.indices { w1[j] += sums.wedgeSums[c][j]; w2[j] += sums.wedgeSums[k + c][j] }
            }
            let pooled = halfSetFSC(half1, half2, wedges: setup.hasMissingData ? (w1, w2) : nil, dim: d)
            return mapLambda(wedges: zip(w1, w2).map { $0 + $1 }, fsc: pooled.values, dim: d, fudge: o.tau2Fudge).lambda
        }() : nil

        // §8.2 reference update.
        for c in 0 ..< k {
            let n = sums.classWeights[c]
            if n <= 0 { continue }  // empty class keeps its reference (fix of §14.6)
            let s = Volume(nx: d, ny: d, nz: d, data: merged[c].map { Float($0) }).fourierTransform().data
            let w = wedges[c]
            var f = old.references[c].fourierTransform().data
            if o.usesResolutionLimit {
                let own = mapLambda(wedges: w, fsc: m.fsc[c], dim: d, fudge: o.tau2Fudge)
                let lambda = sharedLambda ?? own.lambda
                f = mapUpdate(sums: s, wedges: w, lambda: lambda, dim: d, images: n)
                m.ssnr[c] = own.ssnr
                m.priorSignalToNoise[c] = lambda.map { $0.isFinite ? 1 / $0 : 0 }
            } else if o.imputes {
                for _ in 0 ..< o.imputeIterations {
                    for j in 0 ..< nh {
                        // S is zeroed where nothing was measured (replaces the per-image re-masking of
                        // the original, see DEVIATIONS.md).
                        guard w[j] > 0 else { continue }
                        let frac = Float(min(1, w[j] / n))
                        f[j] = f[j].multiplied(by: 1 - frac) + s[j].multiplied(by: Float(1 / n))
                    }
                }
            } else {
                for j in 0 ..< nh {
                    f[j] = w[j] > o.noimpThreshold ? s[j].multiplied(by: Float(1 / w[j])) : .zero
                }
            }
            m.references[c] = FourierVolume(nx: d, ny: d, nz: d, data: f).inverseTransform()
        }

        // §8.3 fractions.
        if !o.fixFractions && total > 0 {
            m.fractions = sums.classWeights.map { $0 / total }
        }
        // §8.4 σ_offset (3·N_tot: E|s|² = 3σ² for a 3-D Gaussian, fix of §14.11) and σ noise.
        if !o.fixSigmaOffset && total > 0 && o.usesMaximumLikelihood {
            m.sigmaOffset = (sums.sigmaOffsetSum / (3 * total)).squareRoot()
        }
        if !o.fixSigmaNoise && total > 0 && o.usesMaximumLikelihood {
            var sumW = 0.0
            for c in 0 ..< k {
                for j in 0 ..< nh { sumW += Double(setup.multiplicity[j]) * wedges[c][j] }
            }
            let nf = Double(setup.resolutionCount)
            var s2 = old.sigmaNoise * old.sigmaNoise
            let residual = sums.sigmaNoiseSum * residualScale
            if o.imputes {
                for _ in 0 ..< o.imputeIterations {
                    s2 = (s2 * max(0, total * nf - sumW) + residual) / (total * nf)
                }
            } else if sumW > 0 {
                s2 = residual / sumW
            }
            m.sigmaNoise = s2.squareRoot()
        }

        // Keep classes alive: a class that lost (almost) all its images is re-seeded from the
        // largest class (see DEVIATIONS.md); in the default computation also one that fell below
        // `minimumClassFraction` of the images.
        var reseeded: [Int] = [], donors: [Int] = []
        if o.reseedEmptyClasses && !o.fixFractions && k > 1 && total > 0 && o.usesMaximumLikelihood {
            let smallest = max(0.5, o.usesResolutionLimit ? minimumClassFraction / Double(k) * total : 0)
            for c in 0 ..< k where sums.classWeights[c] < smallest {
                guard let donor = (0 ..< k).filter({ !reseeded.contains($0) && $0 != c })
                    .max(by: { m.fractions[$0] < m.fractions[$1] }), m.fractions[donor] > 0 else { continue }
                m.references[c] = perturbedCopy(of: m.references[donor], seed: o.seed, iteration: iteration, klass: c)
                // The two share what both held, so the fractions still sum to one (the re-seeded class may
                // have held up to 1/(8K) of the images).
                let share = (m.fractions[donor] + m.fractions[c]) / 2
                m.fractions[donor] = share
                m.fractions[c] = share
                reseeded.append(c)
                donors.append(donor)
            }
        }

        // §8.5 post-processing.
        for c in 0 ..< k {
            m.references[c] = postProcess(m.references[c], setup: setup,
                                          lowPass: o.filter ? m.resolutions[c] * o.pixelSize : nil)
        }
        // §8.7 regularisation.
        regularise(&m, setup: setup, iteration: iteration, totalImages: total)

        // §8.8 convergence.
        for c in 0 ..< k {
            if m.fractions[c] <= 0 {
                m.signalChange[c] = -1
                continue
            }
            var diff = 0.0, norm = 0.0
            for j in 0 ..< Int(vol) {
                let a = Double(old.references[c].data[j])
                let b = Double(m.references[c].data[j])
                diff += (a - b) * (a - b)
                norm += a * a
            }
            m.signalChange[c] = norm > 0 ? diff / norm : 1
        }
        return (m, reseeded, donors)
    }

    /// In the default computation a class with fewer than this fraction of 1/K of the images is re-seeded
    /// (by bisecting the largest class), not only an empty one. The acceptance calls a class under
    /// 1/(4K) a failure when the truth has none; at 1/(8K) no run of the matrix but the collapsing one was
    /// touched (in every other run the smallest class held at least 0.143 of the images at every
    /// iteration at K = 2 and 0.144 at K = 3, apart from one class that emptied at once and was re-seeded
    /// under the old rule too), while on 200 ribosome particles with the subtle difference (r 4.5 px) at SNR 0.1
    /// one class shrank 0.066 → 0.041 → … → 0.020 from iteration 4 and the run ended at chance. A class
    /// that real data hold at under 1/(8K) is lost: ask for fewer classes.
    public static let minimumClassFraction = 0.125

    /// The MAP (Wiener) reference update of the resolution-limited mode, per Fourier component ν of
    /// shell q:  V(ν) = S(ν) / max(W(ν) + λ_q, 0.1 N),  λ_q = max(1, W̄_q · (1 − FSC′_q) / (T · FSC′_q)),
    /// with S the merged weighted image sum, W the merged wedge sum (posterior-weighted count of the
    /// images that measured ν), W̄_q its shell mean, FSC′ = √(2·FSC/(1 + FSC)) the FSC of the merged
    /// reference implied by the half-set FSC, T = `--tau2_fudge` and N the class's image count
    /// (`minimumCoverage`). This is the posterior mean under a
    /// Gaussian prior whose per-shell signal power is T × what the half-sets support (RELION's
    /// τ² from the FSC), so shells and wedge regions the data barely measure shrink towards 0 instead of
    /// carrying noise or the previous reference forward; where FSC ≤ 0 the component is 0.
    /// - Returns: the new spectrum and the per-shell SSNR FSC′/(1 − FSC′).
    /// - Parameter images: the class's posterior-weighted image count (sets `minimumCoverage`'s floor).
    public static func mapUpdate(sums s: [Complex<Float>], wedges w: [Double], fsc: [Double], dim d: Int,
                                 fudge: Double, images: Double) -> ([Complex<Float>], [Double]) {
        let (lambda, ssnr) = mapLambda(wedges: w, fsc: fsc, dim: d, fudge: fudge)
        return (mapUpdate(sums: s, wedges: w, lambda: lambda, dim: d, images: images), ssnr)
    }

    /// Smallest λ of the MAP update, in images (W counts posterior-weighted images).
    public static let minimumLambda = 1.0

    /// Smallest denominator W + λ of the MAP update, as a fraction of the class's image count.
    /// The image sums S reach a component through the real-space spherical mask and the real-space
    /// rotation into the reference frame, both of which spread each component over its neighbours
    /// (at shell 1 of a 32³ box the mask's kernel is as wide as a shell), while W is the exactly
    /// rotated wedge mask. Where the class's poses put every member's missing region over a
    /// component, W falls to 0 while S keeps its neighbours' leakage, and S/(W + 1) is tens of times
    /// its neighbours. The E-step then favours poses that hide the inflated component in the missing region,
    /// which lowers W further (measured: the shell-1 power of a realignment run from nothing went
    /// 0.08 → 12.6 in five iterations, W at κ = (1,0,0) 18.8 → 0, |S| ≈ 2). With the floor a
    /// component that fewer than this fraction of the class measured is shrunk in proportion to its
    /// coverage, as an unmeasured one is; components measured by more are unchanged.
    public static let minimumCoverage = 0.1

    /// Per shell q: λ_q of the MAP update (∞ where the FSC is ≤ 0) and the SSNR FSC′/(1 − FSC′).
    public static func mapLambda(wedges w: [Double], fsc: [Double], dim d: Int,
                                 fudge: Double) -> (lambda: [Double], ssnr: [Double]) {
        let h = d / 2
        let shellOf = shellIndex(dim: d)
        var wSum = [Double](repeating: 0, count: h + 1)
        var wCount = [Double](repeating: 0, count: h + 1)
        for j in 0 ..< w.count where shellOf[j] > 0 {
            wSum[Int(shellOf[j])] += w[j]
            wCount[Int(shellOf[j])] += 1
        }
        var ssnr = [Double](repeating: 0, count: h + 1)
        var lambda = [Double](repeating: .infinity, count: h + 1)
        for q in 1 ... max(1, h) where q <= h && q < fsc.count {
            let f = min(0.999, fsc[q])
            guard f > 0 else { continue }
            let merged = min(0.9995, (2 * f / (1 + f)).squareRoot())
            ssnr[q] = merged / (1 - merged)
            let mean = wCount[q] > 0 ? wSum[q] / wCount[q] : 0
            // Never below one image's worth: a component that only the edge of a few rotated wedges
            // measured (W ≪ 1) would otherwise divide interpolation leakage by almost nothing (seen as
            // a reference blowing up where the half-sets agree and λ → 0).
            lambda[q] = max(minimumLambda, mean / (fudge * ssnr[q]))
        }
        return (lambda, ssnr)
    }

    /// V = S / max(W + λ_q, `minimumCoverage` × images) per component; 0 where λ_q is infinite and at
    /// shell 0 (and beyond d/2).
    public static func mapUpdate(sums s: [Complex<Float>], wedges w: [Double], lambda: [Double], dim d: Int,
                                 images: Double) -> [Complex<Float>] {
        let shellOf = shellIndex(dim: d)
        let floor = minimumCoverage * images
        var out = [Complex<Float>](repeating: .zero, count: s.count)
        for j in 0 ..< s.count {
            let q = Int(shellOf[j])
            guard q > 0, q < lambda.count, lambda[q].isFinite else { continue }
            let denominator = max(w[j] + lambda[q], floor)
            if denominator > 0 { out[j] = s[j].multiplied(by: Float(1 / denominator)) }
        }
        return out
    }

    /// The FSC of two half-set sums (real, d³), cross-weighted by their wedge sums when the data have
    /// missing regions (spec §8.6).
    static func halfSetFSC(_ m1: [Double], _ m2: [Double], wedges: ([Double], [Double])?, dim d: Int) -> FSCCurve {
        func spectrum(_ m: [Double]) -> FourierVolume { Volume(nx: d, ny: d, nz: d, data: m.map { Float($0) }).fourierTransform() }
        return FSCCurve(spectrum(m1), spectrum(m2), crossWeights: wedges)
    }

    /// The resolution (1/Å) of a half-set FSC: the frequency of its last shell before it first drops
    /// below 0.5 (spec §8.6), with the working box's pixel size.
    static func resolution(_ curve: FSCCurve, pixelSize: Double) -> Double {
        Double(curve.lastShellAbove(threshold: 0.5)) / (Double(curve.dim) * pixelSize)
    }

    /// Shell round(|κ|) of every half-complex component, −1 beyond d/2.
    static func shellIndex(dim d: Int) -> [Int32] {
        let h = d / 2
        let hx = h + 1
        var shellOf = [Int32](repeating: -1, count: d * d * hx)
        for z in 0 ..< d {
            let fz = FourierVolume.frequency(z, d)
            for y in 0 ..< d {
                let fy = FourierVolume.frequency(y, d)
                for x in 0 ..< hx {
                    let q = Int((Double(x * x + fy * fy + fz * fz)).squareRoot().rounded())
                    if q <= h { shellOf[(z * d + y) * hx + x] = Int32(q) }
                }
            }
        }
        return shellOf
    }

    /// Whether every live class changed by at most `eps` (spec §8.8).
    public static func converged(_ model: Model, eps: Double, reseeded: [Int] = []) -> Bool {
        reseeded.isEmpty && zip(model.fractions, model.signalChange).allSatisfy { $0.0 <= 0 || $0.1 <= eps }
    }

    /// A copy of `v` with a little band-limited noise (10 % of its standard deviation), keyed by
    /// (seed, iteration, class) so every process makes the same copy.
    static func perturbedCopy(of v: Volume, seed: UInt64, iteration: Int, klass: Int) -> Volume {
        var rng = SeededRandom(seed: seed, streams: reseedStream, UInt64(bitPattern: Int64(iteration)), UInt64(klass))
        let n = Double(v.count)
        let mean = v.data.reduce(0.0) { $0 + Double($1) } / n
        let sd = (v.data.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / n).squareRoot()
        var out = v
        for j in 0 ..< out.count { out.data[j] += Float(0.1 * sd * rng.nextGaussian()) }
        return out
    }

    /// Spec §8.5: soft Fourier band limit (DC removed), optional raised-cosine low-pass at digital
    /// frequency `lowPass`, spherical average outside, symmetrisation over the point group.
    public static func postProcess(_ v: Volume, setup: RefinementSetup, lowPass: Double?) -> Volume {
        let d = setup.dim
        let hx = d / 2 + 1
        var f = v.fourierTransform().data
        let soft = setup.resolution.soft
        func digital(_ i: Int) -> Double { i <= d / 2 ? Double(i) / Double(d) : Double(i - d) / Double(d) }
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< hx {
                    let j = (z * d + y) * hx + x
                    var g = Double(soft[j])
                    if let res = lowPass, res > 0 {
                        let fx = digital(x), fy = digital(y), fz = digital(z)
                        let r = (fx * fx + fy * fy + fz * fz).squareRoot()
                        if r > res + 0.02 {
                            g = 0
                        } else if r > res && r < res + 0.02 {
                            g *= 0.5 * (1 + Foundation.cos(Double.pi * (r - res) / 0.02))
                        }
                    }
                    f[j] = f[j].multiplied(by: Float(g))
                }
            }
        }
        var out = FourierVolume(nx: d, ny: d, nz: d, data: f).inverseTransform()
        setup.realMasks.maskSphericalAverageOutside(&out)
        return symmetrised(out, setup: setup)
    }

    /// The average of `v` over the point group of `--sym` (identity when there is none).
    public static func symmetrised(_ v: Volume, setup: RefinementSetup) -> Volume {
        let elements = setup.symmetry.nonIdentityElements
        guard !elements.isEmpty else { return v }
        var acc = v.data.map { Double($0) }
        for g in elements {
            let r = v.rotated(by: g.transposed, outside: v.cornerValue)
            for j in 0 ..< acc.count { acc[j] += Double(r.data[j]) }
        }
        let scale = 1 / Double(elements.count + 1)
        var out = v
        out.data = acc.map { Float($0 * scale) }
        return out
    }

    /// Spec §8.7: pull every class towards the class mean, and add the spread to σ².
    public static func regularise(_ m: inout Model, setup: RefinementSetup, iteration: Int, totalImages: Double) {
        let o = setup.options
        let reg = o.regularisation(at: iteration)
        m.regularisation = reg
        let k = m.classCount
        guard reg > 0, k > 1 else { return }
        let count = m.references[0].count
        var mean = [Double](repeating: 0, count: count)
        for r in m.references { for j in 0 ..< count { mean[j] += Double(r.data[j]) / Double(k) } }
        var spread = 0.0
        for a in 0 ..< k {
            for b in 0 ..< k where a != b {
                for j in 0 ..< count {
                    let x = Double(m.references[a].data[j]) - Double(m.references[b].data[j])
                    spread += x * x
                }
            }
        }
        for c in 0 ..< k {
            let alpha = m.fractions[c]
            for j in 0 ..< count {
                m.references[c].data[j] = Float((alpha * Double(m.references[c].data[j]) + reg * mean[j]) / (alpha + reg))
            }
        }
        if !o.fixSigmaNoise {
            let s2 = m.sigmaNoise * m.sigmaNoise + reg * spread / (Double(k) * Double(count))
            m.sigmaNoise = s2.squareRoot()
        }
        _ = totalImages
    }
}
