import Foundation

/// The starting references of `refine --ref`: a volume or stack file (every volume one reference), or
/// metadata whose `_image` column lists the volumes (`N@stack` allowed; relative paths are also looked up
/// next to the metadata file), with an optional `_weight` column of class fractions. Disabled rows are
/// dropped.
public struct ReferenceList: Equatable, Sendable {
    /// The reference volumes, class 1 first.
    public var locators: [ImageLocator]
    /// The `_weight` column, one per reference; nil when the metadata has none (or for a volume file).
    public var weights: [Double]?

    public init(locators: [ImageLocator], weights: [Double]?) {
        self.locators = locators
        self.weights = weights
    }

    /// Reads `spec` (a volume or stack file, `path`, or `block@path`). Errors name the file and line.
    public static func read(_ spec: String) throws -> ReferenceList {
        if !ImageMetaData.isMetadata(spec) {
            let count = try VolumeIO.dimensions(spec).count
            return ReferenceList(locators: (1 ... count).map { count == 1 ? ImageLocator(path: spec) : ImageLocator(path: spec, index: $0) },
                                 weights: nil)
        }
        let table = try MetaDataFile.readTable(spec).removingDisabledRows()
        try table.require(["image"])
        let metadataPath = MetaDataFile.splitBlockSpec(spec).path
        var list = ReferenceList(locators: [], weights: table.has("weight") ? [] : nil)
        for row in 0 ..< table.rowCount {
            let context = table.location(row: row)
            list.locators.append(try ImageLocator(parsing: try table.string("image", row: row), context: context)
                .resolved(metadataFile: metadataPath, context: context))
            if list.weights != nil { list.weights!.append(try table.double("weight", row: row)) }
        }
        guard !list.locators.isEmpty else { throw FormatError(.missingLabel, file: metadataPath, "no references listed") }
        return list
    }
}

/// The expected class fractions of `refine --frac`: metadata with one `_weight` per reference, in class
/// order (the original read this option and never used it, spec §14.26).
public enum ClassFractionsFile {
    /// Reads `spec` (`path` or `block@path`). Errors name the file and line.
    public static func read(_ spec: String) throws -> [Double] {
        let table = try MetaDataFile.readTable(spec)
        try table.require(["weight"])
        return try (0 ..< table.rowCount).map { try table.double("weight", row: $0) }
    }
}
