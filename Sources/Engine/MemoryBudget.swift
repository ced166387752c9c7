import Numerics
import Volumes

/// What one rank's refinement data should occupy, from the sizes of what it allocates (bytes): the
/// yardstick for its peak resident set size (`peak RSS ≤ 1.2 × (runtime baseline + this)`, issue 9).
/// The runtime baseline (Swift, Open MPI, HDF5, FFTW) is not part of it: it is measured by the
/// program before it loads any image.
public struct MemoryBudget: Sendable {
    /// Local images: one half-complex Float spectrum each (the real-space volume is dropped after the FFT).
    public var images: Int
    /// References, the reduced sums with their Allreduce copy, and the Fourier-rotation tables of the
    /// live classes (with the padded FFT one table needs while it is built).
    public var model: Int
    /// Scratch of all threads: pass 1 (rotated references, product, correlation) or pass 2 (one slot's
    /// sums and image-frame accumulators, weight volume and spectra), whichever is larger, per thread.
    public var perThread: Int
    public var threads: Int

    public var total: Int { images + model + threads * perThread }

    public init(dim d: Int, classes k: Int, localImages: Int, threads: Int, rotationPadding p: Int) {
        let real = d * d * d
        let half = d * d * (d / 2 + 1)
        let complexBytes = MemoryLayout<Complex<Float>>.size
        let sumsBytes = 2 * k * (real + half) * MemoryLayout<Double>.size
        images = localImages * half * complexBytes
        let paddedDim = p * d
        let paddedFFT = paddedDim * paddedDim * paddedDim * 4 + paddedDim * paddedDim * (paddedDim / 2 + 1) * complexBytes
        model = k * real * 4 + 2 * sumsBytes + k * FourierRotator.tableBytes(dim: d, padding: p) + paddedFFT
        let passOne = (k + 1) * half * complexBytes + real * 4
        let passTwo = passOne + sumsBytes + 2 * k * 2 * half * MemoryLayout<Double>.size
            + 2 * real * 4 + 2 * half * complexBytes + half * 4
        perThread = max(passOne, passTwo)
        self.threads = max(1, threads)
    }
}
