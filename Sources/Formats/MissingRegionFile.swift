import Volumes

/// The missing-region metadata (`--missing`, spec §3.2): one region per row, `_missingRegionType` one of
/// wedge_y, wedge_x, pyramid, cone, with the angle columns that type needs (degrees).
///
/// Region numbers: images name their region by `_missingRegionNumber`. The original addressed the rows of
/// this file by position and ignored the file's own `_missingRegionNumber` (spec §14.28); when the file
/// has that column its numbers are honoured, otherwise the rows are numbered 1, 2, ….
public struct MissingRegionFile: Sendable, Equatable {
    public var regions: [MissingRegion]
    /// Region number → index into `regions`.
    public var indexOfNumber: [Int: Int]

    public init(regions: [MissingRegion], indexOfNumber: [Int: Int]) {
        self.regions = regions
        self.indexOfNumber = indexOfNumber
    }

    /// The angle columns each type reads.
    static let columns: [(type: String, kind: MissingRegion.Kind, labels: [String])] = [
        ("wedge_y", .wedgeY, ["missingRegionThetaY0", "missingRegionThetaYF"]),
        ("wedge_x", .wedgeX, ["missingRegionThetaX0", "missingRegionThetaXF"]),
        ("pyramid", .pyramid, ["missingRegionThetaY0", "missingRegionThetaYF", "missingRegionThetaX0", "missingRegionThetaXF"]),
        ("cone", .cone, ["missingRegionThetaY0"]),
    ]

    /// Reads `spec` (`path` or `block@path`); every error names the file and line.
    public static func read(_ spec: String) throws -> MissingRegionFile {
        let table = try MetaDataFile.readTable(spec)
        guard !table.isEmpty else {
            throw FormatError(.missingLabel, file: MetaDataFile.splitBlockSpec(spec).path, "no missing-region definitions")
        }
        try table.require(["missingRegionType"])
        var regions: [MissingRegion] = []
        for row in 0 ..< table.rowCount {
            let type = try table.string("missingRegionType", row: row)
            guard let entry = columns.first(where: { $0.type == type }) else {
                throw table.error(row: row, .syntax, "unknown _missingRegionType '\(type)'; expected wedge_y, wedge_x, pyramid or cone")
            }
            var angle: [String: Double] = [:]
            for label in entry.labels {
                guard table.has(label) else {
                    throw table.error(row: row, .missingLabel, "missing region type '\(type)' needs column _\(label)")
                }
                angle[label] = try table.double(label, row: row)
            }
            do {
                regions.append(try MissingRegion(kind: entry.kind, thetaY0: angle["missingRegionThetaY0"] ?? 0,
                                                 thetaYF: angle["missingRegionThetaYF"] ?? 0,
                                                 thetaX0: angle["missingRegionThetaX0"] ?? 0,
                                                 thetaXF: angle["missingRegionThetaXF"] ?? 0))
            } catch {
                throw table.error(row: row, .syntax, "\(error)")
            }
        }
        guard table.has("missingRegionNumber") else {
            return MissingRegionFile(regions: regions, indexOfNumber: Dictionary(uniqueKeysWithValues: regions.indices.map { ($0 + 1, $0) }))
        }
        var lookup: [Int: Int] = [:]
        for row in 0 ..< table.rowCount {
            let number = try table.int("missingRegionNumber", row: row)
            if lookup[number] != nil { throw table.error(row: row, .syntax, "_missingRegionNumber \(number) is defined twice") }
            lookup[number] = row
        }
        return MissingRegionFile(regions: regions, indexOfNumber: lookup)
    }
}
