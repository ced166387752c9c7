import Dispatch
import Numerics
import Volumes

/// The two kernels the cost model counts, timed on this machine on one thread: the unit of the floor
/// in a run's iteration events (`fft_c2r_seconds`) and of a dry run's prediction. Instrumentation, so
/// it lives here and not in the Engine, which computes without reading clocks.
public enum KernelTiming {
    /// Seconds of one d³ c2r FFT (FFTPlan, new-array execute) on this thread, measured the way W4 does:
    /// thread CPU time (other processes on the machine do not count), the copy that restores the
    /// destroyed input timed alone and subtracted, the best of `repetitions / 10` batches of 10. This is
    /// the strictest floor; a wall-clock median including the copy read ≈ 1.5 × higher in refinements.
    public static func c2rSeconds(dim d: Int, repetitions: Int = 200) -> Double {
        let plan = FFTPlan.shared(dim: d)
        let spectrum = AlignedBuffer<Complex<Float>>(count: plan.complexCount)
        let work = AlignedBuffer<Complex<Float>>(count: plan.complexCount)
        let real = AlignedBuffer<Float>(count: plan.realCount)
        for j in 0 ..< spectrum.count { spectrum[j] = Complex(Float(j % 7) - 3, Float(j % 5) - 2) }
        for _ in 0 ..< 5 { work.pointer.update(from: spectrum.pointer, count: spectrum.count); plan.inverseDestroyingInput(work.pointer, real.pointer) }
        let batch = 10
        var best = Double.infinity
        for _ in 0 ..< max(1, repetitions / batch) {
            let t0 = VolumesBenchmark.threadCPUSeconds()
            for _ in 0 ..< batch {
                work.pointer.update(from: spectrum.pointer, count: spectrum.count)
                plan.inverseDestroyingInput(work.pointer, real.pointer)
            }
            let t1 = VolumesBenchmark.threadCPUSeconds()
            for _ in 0 ..< batch { work.pointer.update(from: spectrum.pointer, count: spectrum.count) }
            let t2 = VolumesBenchmark.threadCPUSeconds()
            best = min(best, ((t1 - t0) - (t2 - t1)) / Double(batch))
        }
        return max(best, 1e-9)
    }

    /// Median seconds of one general Fourier-space rotation of a random d³ reference on this thread.
    public static func rotationSeconds(dim d: Int, padding: Int) -> Double {
        var rng = SeededRandom(seed: 7, streams: 0x5EED)
        var v = Volume(dim: d)
        for j in 0 ..< v.count { v.data[j] = Float(rng.nextGaussian()) }
        let rotator = FourierRotator(reference: v, padding: padding)
        let out = AlignedBuffer<Complex<Float>>(count: d * d * (d / 2 + 1))
        let a = EulerAngles(rot: 31, tilt: 47, psi: -113).matrix
        var times: [Double] = []
        for _ in 0 ..< 15 {
            let start = DispatchTime.now().uptimeNanoseconds
            rotator.rotate(a, maxRadius: Double(d) / 2, into: out.pointer)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9)
        }
        return times.sorted()[times.count / 2]
    }
}
