import Foundation
import Numerics
import Volumes

/// What `--missing` asks for: one region type for every particle, or `mixed` (several region rows,
/// used in turn).
public enum MissingRegionChoice: String, Sendable, CaseIterable {
    case wedgeY = "wedge_y"
    case wedgeX = "wedge_x"
    case pyramid
    case cone
    case mixed
    /// Nothing missing: no wedges.doc, no missingRegionNumber column (run the refinement without --missing).
    case none
}

/// The rows of `wedges.doc` and which row each particle uses.
///
/// A tilt range T (degrees, `--tilt-range`) means the data were measured from −T to +T:
/// wedge_y/wedge_x rows use θ0 = −T, θF = +T; pyramid uses both; cone uses θ_y0 = T (missing = double
/// cone of half-angle 90° − T around z, spec §3.3). `mixed` writes one row of each of the four types
/// and particle i (0-based) uses row i mod 4. `none` has no rows. T = 90 is excluded: there the
/// region's boundary tangents are ±1e-16 instead of 0 and the "full" wedge would drop half a plane.
public struct MissingRegionPlan: Sendable, Equatable {
    public let regions: [MissingRegion]

    public init(regions: [MissingRegion]) {
        self.regions = regions
    }

    public init(choice: MissingRegionChoice, tiltRange t: Double) throws {
        if choice == .none {
            regions = []
            return
        }
        guard t.isFinite, t > 0, t < 90 else {
            throw SimulationError("--tilt-range \(t) must be in (0, 90) degrees (the data cover −T…+T; use --missing none for complete data)")
        }
        func wedgeY() throws -> MissingRegion { try MissingRegion(kind: .wedgeY, thetaY0: -t, thetaYF: t) }
        func wedgeX() throws -> MissingRegion { try MissingRegion(kind: .wedgeX, thetaX0: -t, thetaXF: t) }
        func pyramid() throws -> MissingRegion {
            try MissingRegion(kind: .pyramid, thetaY0: -t, thetaYF: t, thetaX0: -t, thetaXF: t)
        }
        func cone() throws -> MissingRegion { try MissingRegion(kind: .cone, thetaY0: t) }
        switch choice {
        case .wedgeY: regions = [try wedgeY()]
        case .wedgeX: regions = [try wedgeX()]
        case .pyramid: regions = [try pyramid()]
        case .cone: regions = [try cone()]
        case .mixed: regions = [try wedgeY(), try wedgeX(), try pyramid(), try cone()]
        case .none: regions = []
        }
    }

    /// 0-based region row of particle i (0-based); nil when nothing is missing.
    public func regionIndex(forParticle i: Int) -> Int? { regions.isEmpty ? nil : i % regions.count }

    /// The region of a particle's truth (nil: complete data).
    public func region(_ index: Int?) -> MissingRegion? { index.map { regions[$0] } }
}

extension MissingRegion {
    /// Zeroes every half-complex coefficient whose frequency, taken in the image frame, lies in the
    /// missing region (spec §3.3 step 3 with A = identity). No resolution limit is applied: the
    /// simulated data keep everything up to Nyquist that the tilt geometry measured. The DC term lies
    /// on the always-measured plane z' = 0.
    public func removeUnmeasured(from spectrum: inout FourierVolume) {
        let ny = spectrum.ny, nz = spectrum.nz, hx = spectrum.hx
        spectrum.data.withUnsafeMutableBufferPointer { f in
            for z in 0..<nz {
                let kz = Double(FourierVolume.frequency(z, nz))
                for y in 0..<ny {
                    let ky = Double(FourierVolume.frequency(y, ny))
                    let row = (z * ny + y) * hx
                    for x in 0..<hx where !isMeasured(SIMD3(Double(x), ky, kz)) {
                        f[row + x] = .zero
                    }
                }
            }
        }
    }

    /// The volume with its unmeasured frequencies removed (forward FFT, mask, inverse FFT).
    public func filtered(_ v: Volume) -> Volume {
        var f = v.fourierTransform()
        removeUnmeasured(from: &f)
        return f.inverseTransform()
    }
}

/// Errors of the simulation and evaluation commands: a message naming the option or file at fault.
public struct SimulationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
