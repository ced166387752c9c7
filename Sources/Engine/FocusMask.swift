import Foundation
import Volumes

/// The focussed-classification mask of `--mask` (spec §9.4; only with `--dont_align`): 1 = classify,
/// 0 = ignore, soft values allowed. Given in the reference frame.
///
/// How it enters the computation, without touching the E- or M-step:
/// - every image is multiplied, in its own frame, by the mask rotated by its fixed orientation
///   (Mask_i(r) = Mask(A_i·r), spec §6.3 step 2) — done on the input volume, before `Particle` prepares
///   it, so differences outside the mask never reach the E-step;
/// - the references are multiplied by the mask (at the working size, times the binary sphere) when
///   the run starts and after every M-step, so a class cannot differ from another outside the mask;
/// - the measured residual energy, of which only the masked voxels carry any, is scaled by V / Σ mask
///   (`residualScale`, applied by the M-step to the measured part of σ², not to the imputed missing-
///   region part; the original scales σ itself, spec §14 item 12, and with it the imputed part).
public struct FocusMask: Sendable {
    /// The mask at the input box size (applied to the images before cropping).
    public let original: Volume
    /// The mask at the working size times the binary sphere of radius d/2 (applied to references).
    public let working: Volume
    /// Σ working mask: the number of voxels that take part in the classification.
    public let pixelCount: Double

    /// - Parameters:
    ///   - mask: the mask volume at the input box size; values must lie in [0, 1].
    ///   - setup: the run's setup (sizes, options); `--dont_align` is required.
    ///   - name: what to call the mask in messages (its file name).
    public init(_ mask: Volume, setup: RefinementSetup, name: String = "--mask") throws {
        guard setup.options.dontAlign else {
            throw EngineError("--mask (focussed classification) is only valid together with --dont_align")
        }
        guard mask.isCubic, mask.nx == setup.originalDim else {
            throw EngineError("\(name) is \(mask.nx)x\(mask.ny)x\(mask.nz), the input subtomograms are \(setup.originalDim)³")
        }
        guard let lo = mask.data.min(), let hi = mask.data.max(), lo >= 0, hi <= 1 else {
            throw EngineError("\(name): mask values must lie in [0, 1] (found \(mask.data.min() ?? .nan) … \(mask.data.max() ?? .nan))")
        }
        let d = setup.dim
        var w = mask.nx == d ? mask : mask.fourierResized(to: d)
        let sphere = RealSpaceMasks.binarySphere(dim: d, radius: Double(d) / 2)
        for i in 0 ..< w.data.count { w.data[i] = min(max(w.data[i], 0), 1) * sphere.data[i] }
        let n = w.data.reduce(0.0) { $0 + Double($1) }
        guard n >= 1 else { throw EngineError("\(name) selects no voxel inside the sphere of radius \(d / 2)") }
        original = mask
        working = w
        pixelCount = n
    }

    /// The image multiplied by the mask in its own frame. `Particle` pre-shifts a `--dont_align` image
    /// by its input shift t; the mask is therefore shifted by −t here, so that after the pre-shift the
    /// image carries exactly Mask(A·r).
    public func apply(to input: ParticleInput) -> ParticleInput {
        var imageFrame = original.rotated(by: input.angles.matrix.transposed, outside: 0)
        if input.shift != .zero { imageFrame = imageFrame.translated(by: -input.shift) }
        var out = input
        for i in 0 ..< out.volume.data.count { out.volume.data[i] *= imageFrame.data[i] }
        return out
    }

    /// V / Σ mask: the factor from the residual energy measured inside the mask to the whole box.
    public var residualScale: Double { Double(working.data.count) / pixelCount }

    /// The model with masked references. Call once on the starting model and after every M-step.
    public func apply(to model: Model) -> Model {
        var m = model
        for k in m.references.indices {
            for i in 0 ..< m.references[k].data.count { m.references[k].data[i] *= working.data[i] }
        }
        return m
    }
}
