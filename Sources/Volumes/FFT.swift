import CFFTW
import Numerics
import Foundation

/// A pair of single-precision FFTW plans (r2c forward, c2r inverse) for one volume size.
///
/// Plans are made once per size and shared: `FFTPlan.shared(nx:ny:nz:)` serialises planning (FFTW's
/// planner is not thread-safe) and caches the result. Execution uses FFTW's new-array functions, which
/// are thread-safe, so many threads can transform different volumes with one plan.
///
/// Normalisation follows Xmipp (spec §0.3): the forward transform is scaled by 1/V, the inverse is not,
/// so `inverse(forward(x)) == x`.
///
/// Plans use FFTW_ESTIMATE on purpose: a measured plan depends on timings, so two runs (or two ranks)
/// could pick different algorithms and round differently; ESTIMATE keeps results bit-reproducible.
public final class FFTPlan: @unchecked Sendable {
    public let nx: Int
    public let ny: Int
    public let nz: Int
    public var realCount: Int { nx * ny * nz }
    public var complexCount: Int { nz * ny * (nx / 2 + 1) }
    private let forwardPlan: fftwf_plan
    private let inversePlan: fftwf_plan

    nonisolated(unsafe) private static var cache: [String: FFTPlan] = [:]
    private static let lock = NSLock()

    /// The cached plan for this size, made on first use (thread-safe).
    public static func shared(nx: Int, ny: Int, nz: Int) -> FFTPlan {
        lock.lock()
        defer { lock.unlock() }
        let key = "\(nx)x\(ny)x\(nz)"
        if let plan = cache[key] { return plan }
        let plan = FFTPlan(lockedNx: nx, ny: ny, nz: nz)
        cache[key] = plan
        return plan
    }

    public static func shared(dim: Int) -> FFTPlan { shared(nx: dim, ny: dim, nz: dim) }

    /// Planning happens only under `lock`.
    private init(lockedNx nx: Int, ny: Int, nz: Int) {
        precondition(nx > 0 && ny > 0 && nz > 0)
        self.nx = nx
        self.ny = ny
        self.nz = nz
        let real = AlignedBuffer<Float>(count: nx * ny * nz)
        let spectrum = AlignedBuffer<Complex<Float>>(count: nz * ny * (nx / 2 + 1))
        let flags = cfftw_estimate()
        let c = UnsafeMutableRawPointer(spectrum.pointer).assumingMemoryBound(to: fftwf_complex.self)
        guard let f = fftwf_plan_dft_r2c_3d(Int32(nz), Int32(ny), Int32(nx), real.pointer, c, flags),
              let i = fftwf_plan_dft_c2r_3d(Int32(nz), Int32(ny), Int32(nx), c, real.pointer, flags | cfftw_destroy_input())
        else { fatalError("FFTW could not plan a \(nx)x\(ny)x\(nz) transform") }
        forwardPlan = f
        inversePlan = i
    }

    deinit {
        fftwf_destroy_plan(forwardPlan)
        fftwf_destroy_plan(inversePlan)
    }

    /// Unnormalised r2c: `output` receives Σ_x in(x)·e^{-2πiκx}. Pointers must be 32-byte aligned
    /// (AlignedBuffer). `input` is preserved.
    public func forwardUnnormalised(_ input: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Complex<Float>>) {
        let c = UnsafeMutableRawPointer(output).assumingMemoryBound(to: fftwf_complex.self)
        fftwf_execute_dft_r2c(forwardPlan, input, c)
    }

    /// Unnormalised c2r. Destroys `input` (FFTW's c2r overwrites its input).
    public func inverseDestroyingInput(_ input: UnsafeMutablePointer<Complex<Float>>, _ output: UnsafeMutablePointer<Float>) {
        let c = UnsafeMutableRawPointer(input).assumingMemoryBound(to: fftwf_complex.self)
        fftwf_execute_dft_c2r(inversePlan, c, output)
    }

    /// Xmipp-normalised forward transform (scaled by 1/V) of a real volume.
    public func forward(_ volume: Volume) -> FourierVolume {
        precondition(volume.nx == nx && volume.ny == ny && volume.nz == nz, "FFT plan size mismatch")
        let real = AlignedBuffer<Float>(count: realCount)
        volume.data.withUnsafeBufferPointer { real.copy(from: $0) }
        let spectrum = AlignedBuffer<Complex<Float>>(count: complexCount)
        forwardUnnormalised(real.pointer, spectrum.pointer)
        let scale = 1 / Float(realCount)
        var out = FourierVolume(nx: nx, ny: ny, nz: nz)
        out.data.withUnsafeMutableBufferPointer { dst in
            for i in 0..<complexCount { dst[i] = spectrum[i].multiplied(by: scale) }
        }
        return out
    }

    /// Unnormalised inverse transform (Xmipp convention), so `inverse(forward(v)) == v`.
    public func inverse(_ spectrum: FourierVolume) -> Volume {
        precondition(spectrum.nx == nx && spectrum.ny == ny && spectrum.nz == nz, "FFT plan size mismatch")
        let work = AlignedBuffer<Complex<Float>>(count: complexCount)
        spectrum.data.withUnsafeBufferPointer { work.copy(from: $0) }
        let real = AlignedBuffer<Float>(count: realCount)
        inverseDestroyingInput(work.pointer, real.pointer)
        return Volume(nx: nx, ny: ny, nz: nz, data: real.toArray())
    }
}

extension Volume {
    /// Xmipp-normalised forward FFT (scaled by 1/V), with the cached plan for this size.
    public func fourierTransform() -> FourierVolume { FFTPlan.shared(nx: nx, ny: ny, nz: nz).forward(self) }
}

extension FourierVolume {
    /// Unnormalised inverse FFT back to real space.
    public func inverseTransform() -> Volume { FFTPlan.shared(nx: nx, ny: ny, nz: nz).inverse(self) }
}

/// The FFTW library version string (for `ml_tomo doctor`).
public var fftwVersionString: String { String(cString: cfftw_version()) }
