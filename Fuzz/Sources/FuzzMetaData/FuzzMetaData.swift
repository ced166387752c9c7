import Formats

/// libFuzzer entry: the XMIPP_STAR_1 / RELION STAR / plain sel and doc parser on arbitrary bytes. Any
/// FormatError is a correct answer; a crash, a hang or a runaway allocation is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMetaData(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let file = try? MetaDataFile.parse(bytes: bytes, path: "fuzz.doc") {
        // Touch every value the way the readers of the program do.
        for table in file.blocks {
            for row in 0 ..< table.rowCount {
                for label in table.labels {
                    _ = try? table.double(label, row: row)
                    _ = try? table.int(label, row: row)
                }
            }
        }
    }
    return 0
}
