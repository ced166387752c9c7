import Foundation
import Numerics
import Volumes

/// Brings given references (`--ref`) to the particles' grey scale before the first E-step.
///
/// Why: the likelihood compares each particle with the reference itself, not with a copy normalised
/// like a correlation, so a map from elsewhere (an EMDB entry, another program, another normalisation)
/// at another scale spoils the first iteration. 400 ribosome subtomograms (std 1) given their own true
/// maps (std 0.0008, about 150× too weak) searched at 0.26 particles/s instead of about 6: against a
/// nearly empty reference every pose is about equally likely, so none is pruned and the poses are noise.
///
/// Orientations are unknown then, but a map's spherical average is not: whatever its pose, every
/// particle observes the spherical average S(M) of its map through its missing-region mask (blurred by
/// its shift). So the scale of reference k is the least-squares fit of the masked FT(S(Ref_k)) to the
/// particles' spectra, a = Σ Re⟨X_i, M_i·Ŝ⟩ / Σ ‖M_i·Ŝ‖², over the shells of the first iteration (DC
/// excluded: normalisations differ there). The shift blur makes a somewhat low at the outer of these
/// shells; the first M-step sets the amplitude from the data anyway, what matters is the order of
/// magnitude and the sign. The sums are exact (`ExactScalar`), so the scale does not depend on the
/// number of ranks.
public enum ReferenceScale {
    /// The scale factor of every reference (working box), fitted on shells 1 … `radius`.
    public static func fit(references: [Volume], particles: [Particle], radius: Int, setup: RefinementSetup,
                           reducer: any Reducer) throws -> [Double] {
        let d = setup.dim
        let hx = d / 2 + 1
        let shellOf = MStep.shellIndex(dim: d)
        let averages = references.map { sphericalAverage($0).fourierTransform().data }
        var numerators = [ExactScalar](repeating: ExactScalar(), count: references.count)
        var denominators = numerators
        for p in particles {
            let mask = setup.hasMissingData ? setup.imageFrameMasks[p.region] : nil
            for (k, s) in averages.enumerated() {
                var num = 0.0, den = 0.0
                for j in 0 ..< p.spectrum.count {
                    let q = Int(shellOf[j])
                    guard q >= 1 && q <= radius else { continue }
                    let m = Double(mask?[j] ?? 1)
                    guard m != 0 else { continue }
                    // Half-complex storage: columns 0 < x < d/2 stand for their conjugate mates too.
                    let x = j % hx
                    let twice: Double = x == 0 || x == d / 2 ? 1 : 2
                    let sr = m * Double(s[j].real), si = m * Double(s[j].imaginary)
                    num += twice * (Double(p.spectrum[j].real) * sr + Double(p.spectrum[j].imaginary) * si)
                    den += twice * (sr * sr + si * si)
                }
                numerators[k].add(num)
                denominators[k].add(den)
            }
        }
        var packed = ExactScalar.packed(numerators + denominators)
        try reducer.sumInPlace(&packed)
        let sums = ExactScalar.unpacked(packed[...], count: 2 * references.count).map(\.value)
        return (0 ..< references.count).map { k in
            let den = sums[references.count + k]
            let a = sums[k] / den
            return den > 0 && a.isFinite && a != 0 ? a : 1
        }
    }

    /// The spherical average about the box centre floor(d/2): every voxel takes the mean of the voxels at
    /// its rounded distance from the centre.
    static func sphericalAverage(_ v: Volume) -> Volume {
        let d = v.nx, c = d / 2
        let shells = Int((3.0 * Double(c * c)).squareRoot()) + 2
        var sum = [Double](repeating: 0, count: shells), count = [Double](repeating: 0, count: shells)
        func shell(_ x: Int, _ y: Int, _ z: Int) -> Int {
            let dx = x - c, dy = y - c, dz = z - c
            return Int(Double(dx * dx + dy * dy + dz * dz).squareRoot().rounded())
        }
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< d {
                    let r = shell(x, y, z)
                    sum[r] += Double(v[x, y, z])
                    count[r] += 1
                }
            }
        }
        var out = Volume(dim: d)
        for z in 0 ..< d {
            for y in 0 ..< d {
                for x in 0 ..< d {
                    let r = shell(x, y, z)
                    out[x, y, z] = Float(sum[r] / count[r])
                }
            }
        }
        return out
    }
}
