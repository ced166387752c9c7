/// One subtomogram of the input image metadata (`-i` / `--doc`, spec §3.1), values as written.
public struct SubtomogramEntry: Equatable, Sendable {
    /// The image as written in the file (`N@stack` allowed); resolve with `ImageMetaData.resolvedImage`.
    public var image: ImageLocator
    /// Index of the row in `ImageMetaData.table` (disabled rows already removed).
    public var row: Int
    /// 1-based missing-region number, nil when the column is absent.
    public var missingRegion: Int?
    public var rot: Double
    public var tilt: Double
    public var psi: Double
    public var shiftX: Double
    public var shiftY: Double
    public var shiftZ: Double
    /// 1-based class, nil when the column is absent.
    public var ref: Int?
}

/// The input image metadata of a refinement (spec §3.1): enabled rows only, angle and shift columns
/// created (zero-filled, with a warning) when absent, aliases (`rot`, `Xoff`, `Wedge`, `Ref`…) canonicalised.
/// `table` keeps every other column so the output doc can carry them through unchanged.
public struct ImageMetaData: Sendable {
    public var table: MetaDataTable
    public var entries: [SubtomogramEntry]
    /// Human-readable notes (e.g. columns that were missing and zero-filled).
    public var warnings: [String]
    /// The metadata file (relative image paths are also looked up next to it).
    public var path: String

    static let zeroFilled = ["angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ"]

    /// Reads `path` (or `block@path`). With `requireMissingRegion` the `missingRegionNumber` column must exist.
    public static func read(_ spec: String, requireMissingRegion: Bool = false) throws -> ImageMetaData {
        var table = try MetaDataFile.readTable(spec)
        let path = MetaDataFile.splitBlockSpec(spec).path
        try table.require(["image"])
        if requireMissingRegion { try table.require(["missingRegionNumber"]) }
        table = try table.removingDisabledRows()
        if table.rowCount == 0 {
            throw FormatError(.missingLabel, file: path, "no enabled images (rows with _enabled <= 0 are skipped)")
        }
        var warnings: [String] = []
        for label in zeroFilled where !table.has(label) {
            table.addColumn(label, fill: .real(0))
            warnings.append("\(path): column _\(label) is missing; filled with 0")
        }
        var entries: [SubtomogramEntry] = []
        entries.reserveCapacity(table.rowCount)
        let hasRegion = table.has("missingRegionNumber"), hasRef = table.has("ref")
        for r in 0..<table.rowCount {
            let image = try ImageLocator(parsing: try table.string("image", row: r), context: table.location(row: r))
            var region: Int?
            if hasRegion {
                let m = try table.int("missingRegionNumber", row: r)
                if m < 1 { throw table.error(row: r, .wrongType, "_missingRegionNumber = \(m); missing regions are numbered from 1") }
                region = m
            }
            for label in zeroFilled {
                let v = try table.double(label, row: r)
                if !v.isFinite { throw table.error(row: r, .nonFinite, "_\(label) = \(v) is not a finite number") }
            }
            entries.append(SubtomogramEntry(
                image: image, row: r, missingRegion: region,
                rot: try table.double("angleRot", row: r), tilt: try table.double("angleTilt", row: r),
                psi: try table.double("anglePsi", row: r), shiftX: try table.double("shiftX", row: r),
                shiftY: try table.double("shiftY", row: r), shiftZ: try table.double("shiftZ", row: r),
                ref: hasRef ? try table.int("ref", row: r) : nil))
        }
        return ImageMetaData(table: table, entries: entries, warnings: warnings, path: path)
    }

    /// The image of entry `i`, looked up in the current directory, then next to the metadata file.
    public func resolvedImage(_ i: Int) throws -> ImageLocator {
        try entries[i].image.resolved(metadataFile: path, context: table.location(row: entries[i].row))
    }

    /// Throws at the offending line unless every missing-region number is within 1...count.
    public func validateMissingRegions(count: Int, missingFile: String) throws {
        for e in entries {
            if let m = e.missingRegion, !(1...max(count, 1)).contains(m) || count == 0 {
                throw table.error(row: e.row, .indexOutOfRange, "_missingRegionNumber = \(m) but \(missingFile) defines \(count) region(s)")
            }
        }
    }
}

/// One missing region of the `--missing` metadata (spec §3.2). Angles in degrees; unused ones are 0.
public struct MissingRegionEntry: Equatable, Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case wedgeY = "wedge_y"
        case wedgeX = "wedge_x"
        case pyramid
        case cone
    }
    public var kind: Kind
    public var thetaY0: Double
    public var thetaYF: Double
    public var thetaX0: Double
    public var thetaXF: Double

    public init(kind: Kind, thetaY0: Double = 0, thetaYF: Double = 0, thetaX0: Double = 0, thetaXF: Double = 0) {
        self.kind = kind
        self.thetaY0 = thetaY0
        self.thetaYF = thetaYF
        self.thetaX0 = thetaX0
        self.thetaXF = thetaXF
    }

    /// Columns each region type needs.
    public var requiredLabels: [String] {
        switch kind {
        case .wedgeY: return ["missingRegionThetaY0", "missingRegionThetaYF"]
        case .wedgeX: return ["missingRegionThetaX0", "missingRegionThetaXF"]
        case .pyramid: return ["missingRegionThetaY0", "missingRegionThetaYF", "missingRegionThetaX0", "missingRegionThetaXF"]
        case .cone: return ["missingRegionThetaY0"]
        }
    }
}

public enum MissingRegionMetaData {
    /// Reads the regions in row order: row 1 is region 1 (the file's `missingRegionNumber` is not consulted,
    /// as in the original).
    public static func read(_ spec: String) throws -> [MissingRegionEntry] {
        let table = try MetaDataFile.readTable(spec)
        let path = MetaDataFile.splitBlockSpec(spec).path
        try table.require(["missingRegionType"])
        if table.rowCount == 0 { throw FormatError(.missingLabel, file: path, "no missing regions defined") }
        var out: [MissingRegionEntry] = []
        for r in 0..<table.rowCount {
            let name = try table.string("missingRegionType", row: r)
            guard let kind = MissingRegionEntry.Kind(rawValue: name) else {
                throw table.error(row: r, .wrongType,
                                  "unknown _missingRegionType '\(name)' (expected \(MissingRegionEntry.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            var e = MissingRegionEntry(kind: kind)
            for label in e.requiredLabels where !table.has(label) {
                throw table.error(row: r, .missingLabel, "a \(name) region needs _\(label), which the file lacks")
            }
            func angle(_ label: String) throws -> Double {
                guard table.has(label) else { return 0 }
                let v = try table.double(label, row: r)
                guard v.isFinite else { throw table.error(row: r, .nonFinite, "_\(label) = \(v)") }
                return v
            }
            if e.requiredLabels.contains("missingRegionThetaY0") { e.thetaY0 = try angle("missingRegionThetaY0") }
            if e.requiredLabels.contains("missingRegionThetaYF") { e.thetaYF = try angle("missingRegionThetaYF") }
            if e.requiredLabels.contains("missingRegionThetaX0") { e.thetaX0 = try angle("missingRegionThetaX0") }
            if e.requiredLabels.contains("missingRegionThetaXF") { e.thetaXF = try angle("missingRegionThetaXF") }
            out.append(e)
        }
        return out
    }
}
