import Dispatch
import Numerics
import Volumes
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Timings of the Volumes kernels (for `ml_tomo bench`). Not a test: numbers depend on the machine.
///
/// Every timed loop works on buffers allocated before the clock starts (AlignedBuffer for FFTs, caller
/// buffers for the rotation and the shift), so what is timed is allocation-free by construction: the
/// kernels themselves (`FFTPlan.forwardUnnormalised`, `inverseDestroyingInput`, `FourierRotator.rotate`,
/// `applyGeometry(…, into:)`, `applyPhaseShift`) take pointers and allocate nothing.
public enum VolumesBenchmark {
    /// Single-thread figures use the thread's CPU time (robust on a shared machine); multi-thread figures
    /// use wall time.
    ///
    /// Keys (all times in microseconds per call):
    /// - `fft.r2c.<d>.1t`, `fft.c2r.<d>.1t` for d ∈ {32, 64, 128}: one thread.
    /// - `fft.r2c.<d>.<T>t`, `fft.c2r.<d>.<T>t`: wall time per transform per thread when T threads transform
    ///   different volumes with the same plan at once (equal to the 1-thread time if scaling is perfect);
    ///   `…speedup` = T · (1-thread time) / (T-thread time).
    /// - `rotate.fourier.<d>` (maxRadius d/2, a general rotation) and `rotate.fourier.<d>.ratioToC2R` for
    ///   d ∈ {32, 64} (the ratio from the two kernels timed in alternating batches, median over rounds); `rotate.fourier.<d>.identity` (grid-aligned: sequential table reads).
    /// - `rotate.real.32`: real-space trilinear rotation (spec §1.1) for comparison.
    /// - `shift.phase.32`: sub-voxel phase-ramp shift of a 32³ spectrum.
    public static func run(threads: Int = 2, minimumSeconds: Double = 0.15) -> [String: Double] {
        let threads = max(1, threads)
        var results: [String: Double] = [:]
        for d in [32, 64, 128] {
            let plan = FFTPlan.shared(dim: d)
            let reals = (0..<threads).map { _ in AlignedBuffer<Float>(count: plan.realCount) }
            let spectra = (0..<threads).map { _ in AlignedBuffer<Complex<Float>>(count: plan.complexCount) }
            var seed: UInt32 = 12345
            for r in reals {
                for i in 0..<r.count {
                    seed = seed &* 1_664_525 &+ 1_013_904_223
                    r[i] = Float(seed >> 8) / Float(1 << 24) - 0.5
                }
            }
            plan.forwardUnnormalised(reals[0].pointer, spectra[0].pointer)
            for s in spectra.dropFirst() { s.copy(from: UnsafeBufferPointer(spectra[0].buffer)) }

            let r2c1 = time(minimumSeconds) { plan.forwardUnnormalised(reals[0].pointer, spectra[0].pointer) }
            // c2r destroys its input, so every call first restores the spectrum from a pristine copy; the
            // copy alone is timed too and subtracted.
            let pristine = AlignedBuffer<Complex<Float>>(count: plan.complexCount)
            pristine.copy(from: UnsafeBufferPointer(spectra[0].buffer))
            let copyTime = time(minimumSeconds) { spectra[0].pointer.update(from: pristine.pointer, count: pristine.count) }
            let c2r1 = time(minimumSeconds) {
                spectra[0].pointer.update(from: pristine.pointer, count: pristine.count)
                plan.inverseDestroyingInput(spectra[0].pointer, reals[0].pointer)
            } - copyTime
            results["fft.r2c.\(d).1t"] = r2c1
            results["fft.c2r.\(d).1t"] = c2r1
            if threads > 1 {
                let r2cT = timeParallel(threads, minimumSeconds) { t in
                    plan.forwardUnnormalised(reals[t].pointer, spectra[t].pointer)
                }
                let c2rT = timeParallel(threads, minimumSeconds) { t in
                    spectra[t].pointer.update(from: pristine.pointer, count: pristine.count)
                    plan.inverseDestroyingInput(spectra[t].pointer, reals[t].pointer)
                } - copyTime
                results["fft.r2c.\(d).\(threads)t"] = r2cT
                results["fft.c2r.\(d).\(threads)t"] = c2rT
                results["fft.r2c.\(d).\(threads)t.speedup"] = Double(threads) * r2c1 / r2cT
                results["fft.c2r.\(d).\(threads)t.speedup"] = Double(threads) * c2r1 / c2rT
            }
        }

        for d in [32, 64] {
            let v = benchmarkPhantom(dim: d)
            let rotator = FourierRotator(reference: v)
            let out = AlignedBuffer<Complex<Float>>(count: d * d * (d / 2 + 1))
            let a = EulerAngles(rot: 31, tilt: 47, psi: -122).matrix
            results["rotate.fourier.\(d)"] = time(minimumSeconds) {
                rotator.rotate(a, maxRadius: Double(d) / 2, into: out.pointer)
            }
            results["rotate.fourier.\(d).identity"] = time(minimumSeconds) {
                rotator.rotate(.identity, maxRadius: Double(d) / 2, into: out.pointer)
            }
            // Rotation and c2r timed in alternating batches (the c2r's input restored from a pristine copy
            // each call, the copy timed alone and subtracted).
            let plan = FFTPlan.shared(dim: d)
            let pristine = AlignedBuffer<Complex<Float>>(count: plan.complexCount)
            let work = AlignedBuffer<Complex<Float>>(count: plan.complexCount)
            let real = AlignedBuffer<Float>(count: plan.realCount)
            v.data.withUnsafeBufferPointer { real.pointer.update(from: $0.baseAddress!, count: plan.realCount) }
            plan.forwardUnnormalised(real.pointer, pristine.pointer)
            results["rotate.fourier.\(d).ratioToC2R"] = pairedRatio(
                4 * minimumSeconds,
                { rotator.rotate(a, maxRadius: Double(d) / 2, into: out.pointer) },
                {
                    work.pointer.update(from: pristine.pointer, count: pristine.count)
                    plan.inverseDestroyingInput(work.pointer, real.pointer)
                },
                overheadOfB: { work.pointer.update(from: pristine.pointer, count: pristine.count) })
            if d == 32 {
                let realOut = AlignedBuffer<Float>(count: d * d * d)
                results["rotate.real.32"] = time(minimumSeconds) {
                    applyGeometry(v, matrix: a, outside: 0, into: realOut.pointer)
                }
                let t = SIMD3<Double>(0.3, -1.7, 2.25)
                results["shift.phase.32"] = time(minimumSeconds) {
                    applyPhaseShift(out.pointer, nx: d, ny: d, nz: d, by: t)
                }
            }
        }
        return results
    }

    /// CPU time of the calling thread in seconds (other processes on a shared machine do not count).
    public static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// Smallest mean thread-CPU time per call (µs) over several batches that together last `seconds`.
    private static func time(_ seconds: Double, _ body: () -> Void) -> Double {
        body()
        var calls = 1
        var best = Double.infinity
        var spent = 0.0
        while spent < seconds {
            let start = threadCPUSeconds()
            for _ in 0..<calls { body() }
            let elapsed = threadCPUSeconds() - start
            spent += elapsed
            best = min(best, elapsed / Double(calls))
            if elapsed < seconds / 10 { calls *= 2 }
        }
        return best * 1e6
    }

    /// Median over rounds of time(a) / (time(b) − time(overheadOfB)), each round timing one batch of
    /// each in turn: two kernels measured side by side, so a machine whose speed drifts between
    /// seconds (a shared VM) moves both the same way.
    private static func pairedRatio(_ seconds: Double, _ a: () -> Void, _ b: () -> Void, overheadOfB: () -> Void) -> Double {
        func batch(_ calls: Int, _ body: () -> Void) -> Double {
            let start = threadCPUSeconds()
            for _ in 0..<calls { body() }
            return (threadCPUSeconds() - start) / Double(calls)
        }
        a(); b(); overheadOfB()
        var calls = 1
        while Double(calls) * batch(calls, b) < 0.005 { calls *= 2 }  // batches of ≥ 5 ms
        var ratios: [Double] = []
        var spent = 0.0
        while spent < seconds || ratios.count < 5 {
            let ta = batch(calls, a), tb = batch(calls, b), to = batch(calls, overheadOfB)
            spent += Double(calls) * (ta + tb + to)
            ratios.append(ta / max(tb - to, 1e-12))
        }
        return ratios.sorted()[ratios.count / 2]
    }

    /// Wall time per call (µs) when `threads` threads each run `body(threadIndex)` the same number of
    /// times concurrently.
    private static func timeParallel(_ threads: Int, _ seconds: Double, _ body: @Sendable @escaping (Int) -> Void) -> Double {
        DispatchQueue.concurrentPerform(iterations: threads) { body($0) }
        var calls = 1
        var best = Double.infinity
        var spent = 0.0
        while spent < seconds {
            let n = calls
            let start = DispatchTime.now().uptimeNanoseconds
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                for _ in 0..<n { body(t) }
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
            spent += elapsed
            best = min(best, elapsed / Double(calls))
            if elapsed < seconds / 10 { calls *= 2 }
        }
        return best * 1e6
    }

    /// A few Gaussian blobs inside the sphere (deterministic).
    private static func benchmarkPhantom(dim d: Int) -> Volume {
        var v = Volume(dim: d)
        let c = d / 2
        let blobs: [(SIMD3<Double>, Double)] = [(SIMD3(3, -2, 1), 2.5), (SIMD3(-5, 4, 2), 2.0), (SIMD3(1, 6, -4), 3.0)]
        let scale = Double(d) / 32
        for z in 0..<d {
            for y in 0..<d {
                for x in 0..<d {
                    let r = SIMD3(Double(x - c), Double(y - c), Double(z - c))
                    var s = 0.0
                    for (p, sigma) in blobs {
                        let dl = r - p * scale
                        s += Double.exp(-(dl * dl).sum() / (2 * sigma * sigma * scale * scale))
                    }
                    v[x, y, z] = Float(s)
                }
            }
        }
        return v
    }
}
