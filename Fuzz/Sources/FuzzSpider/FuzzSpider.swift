import Formats
import FuzzSupport

/// libFuzzer entry: format detection and the Spider reader (volumes and stacks, either byte order).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSpider(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let path = ScratchFile.write(data, size, suffix: ".vol")
    _ = try? VolumeIO.dimensions(path)
    if let header = try? SpiderFile.readHeader(path) {
        for k in 1 ... max(1, min(header.volumeCount, 4)) { _ = try? SpiderFile.read(path, index: header.isStack ? k : nil) }
    }
    return 0
}
