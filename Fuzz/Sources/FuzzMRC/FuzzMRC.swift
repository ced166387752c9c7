import Formats
import FuzzSupport

/// libFuzzer entry: format detection and the MRC reader (header, every volume of a stack) on arbitrary
/// bytes. A header that claims more voxels than the file holds must be refused before anything is
/// allocated (libFuzzer's -malloc_limit_mb catches an allocation that is not).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMRC(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = ScratchFile.write(data, size, suffix: ".mrc")
    _ = try? VolumeIO.dimensions(path)
    if let header = try? MRCFile.readHeader(path) {
        for k in 1 ... max(1, min(header.volumeCount, 4)) { _ = try? MRCFile.read(path, index: header.volumeCount > 1 ? k : nil) }
    }
    return 0
}
