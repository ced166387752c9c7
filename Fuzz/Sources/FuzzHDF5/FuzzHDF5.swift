import Formats
import FuzzSupport

/// libFuzzer entry: the HDF5 reference-stack reader as `--restart` uses it (with the particle state and
/// the per-class model datasets). libhdf5 itself is not instrumented; what is fuzzed is that every
/// answer it gives on a damaged file becomes a FormatError, never a crash or a huge allocation.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHDF5(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = ScratchFile.write(data, size, suffix: ".h5")
    _ = try? ReferenceStackFile.read(path, extraDatasetNames: ["particles/state", "model/per_class"])
    return 0
}
