import Foundation
import Volumes

/// One subtomogram of the input image metadata (`-i`, with `--doc` merged; spec §3.1), values as written.
public struct SubtomogramEntry: Equatable, Sendable {
    /// `_image` exactly as written (the key `--doc` rows are matched by).
    public var image: String
    /// `image` parsed (`N@stack` allowed); resolve with `ImageMetaData.resolvedImage`.
    public var locator: ImageLocator
    /// 1-based missing-region number as written, nil when the column is absent.
    public var missingRegion: Int?
    /// Zero when the metadata has no pose columns.
    public var angles: EulerAngles
    /// Original pixels; zero when the metadata has no shift columns.
    public var shift: SIMD3<Double>
    /// 1-based class (`_ref`) as written, nil when the column is absent.
    public var classNumber: Int?

    /// The 0-based class, nil when the column is absent or the number is not a class (< 1).
    public var classIndex: Int? { classNumber.flatMap { $0 >= 1 ? $0 - 1 : nil } }
}

/// The input image metadata of `refine`, `convert` and `normalize` (spec §3.1): Xmipp metadata
/// (sel/doc/xmd, aliases such as `rot`, `Xoff`, `Wedge`, `Ref` canonicalised), a RELION particle STAR
/// file, or a volume or stack file (one row per volume). Disabled rows are dropped. `table` keeps every
/// column, so that the output docs carry them through unchanged.
public struct ImageMetaData: Sendable {
    public var table: MetaDataTable
    /// One per row of `table`.
    public var entries: [SubtomogramEntry]
    /// The metadata file (relative image paths are also looked up next to it); nil for a volume or stack.
    public var path: String?
    /// Whether every row has angles and shifts (all six columns are present).
    public var hasPoses: Bool

    static let angleLabels = ["angleRot", "angleTilt", "anglePsi"]
    static let shiftLabels = ["shiftX", "shiftY", "shiftZ"]

    /// Reads `spec` (`path` or `block@path`, or a volume/stack file) and merges the columns of `doc`
    /// (matched by `_image`; it must describe every enabled image). Errors name the file and line.
    public static func read(_ spec: String, doc: String? = nil) throws -> ImageMetaData {
        var table: MetaDataTable
        var path: String?
        if isMetadata(spec) {
            table = try (ParticleList.relionImageTable(spec) ?? MetaDataFile.readTable(spec)).removingDisabledRows()
            try table.require(["image"])
            path = MetaDataFile.splitBlockSpec(spec).path
        } else {
            let count = try VolumeIO.dimensions(spec).count
            table = MetaDataTable(name: "", labels: ["image"])
            for k in 1 ... count { table.appendRow([.string(count == 1 ? spec : "\(k)@\(spec)")]) }
        }
        if let doc { try merge(doc: doc, into: &table) }
        let hasAngles = angleLabels.allSatisfy(table.has), hasShifts = shiftLabels.allSatisfy(table.has)
        let hasRegion = table.has("missingRegionNumber"), hasClass = table.has("ref")
        var entries: [SubtomogramEntry] = []
        entries.reserveCapacity(table.rowCount)
        for row in 0 ..< table.rowCount {
            let image = try table.string("image", row: row)
            func finite(_ label: String) throws -> Double {
                let v = try table.double(label, row: row)
                guard v.isFinite else { throw table.error(row: row, .nonFinite, "_\(label) = \(v) is not a finite number") }
                return v
            }
            let angles = hasAngles
                ? EulerAngles(rot: try finite("angleRot"), tilt: try finite("angleTilt"), psi: try finite("anglePsi")) : .zero
            let shift = hasShifts ? SIMD3(try finite("shiftX"), try finite("shiftY"), try finite("shiftZ")) : .zero
            entries.append(SubtomogramEntry(
                image: image, locator: try ImageLocator(parsing: image, context: table.location(row: row)),
                missingRegion: hasRegion ? try table.int("missingRegionNumber", row: row) : nil,
                angles: angles, shift: shift, classNumber: hasClass ? try table.int("ref", row: row) : nil))
        }
        return ImageMetaData(table: table, entries: entries, path: path, hasPoses: hasAngles && hasShifts)
    }

    /// The image of entry `i`, looked up in the current directory, then next to the metadata file.
    public func resolvedImage(_ i: Int) throws -> ImageLocator {
        try entries[i].locator.resolved(metadataFile: path, context: table.location(row: i))
    }

    /// Copies every column of `doc` into `table`, matching rows by `_image`.
    static func merge(doc spec: String, into table: inout MetaDataTable) throws {
        let doc = try MetaDataFile.readTable(spec)
        try doc.require(["image"])
        var rowOf: [String: Int] = [:]
        for r in 0 ..< doc.rowCount { rowOf[try doc.string("image", row: r)] = r }
        let labels = doc.labels.filter { $0 != "image" && $0 != "enabled" }
        for row in 0 ..< table.rowCount {
            let image = try table.string("image", row: row)
            guard let source = rowOf[image] else {
                throw FormatError(.missingLabel, file: MetaDataFile.splitBlockSpec(spec).path,
                                  "the doc has no row for image '\(image)' (\(table.location(row: row))); "
                                  + "it must describe every enabled image of the input")
            }
            for label in labels { table.set(label, row: row, try doc.value(label, row: source)) }
        }
    }

    /// Whether `spec` names a metadata file (text: XMIPP_STAR, STAR or a legacy selfile) rather than a
    /// volume or stack; told from the content, so any extension works.
    public static func isMetadata(_ spec: String) -> Bool {
        let path = MetaDataFile.splitBlockSpec(spec).path
        guard let handle = FileHandle(forReadingAtPath: path) else { return true }  // let the reader report it
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 4096)) ?? Data()
        guard !head.contains(0), let text = String(data: head, encoding: .utf8) else { return false }
        return !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }
}
