import Distributed
import Engine
import Formats
import Foundation
import Volumes

/// One input subtomogram as the metadata describes it (before any volume is read).
struct ImageEntry: Sendable {
    /// The `_image` value exactly as written in `-i` (the key `--doc` rows are matched by).
    var image: String
    /// 0-based missing-region index, nil without `--missing`.
    var region: Int?
    var angles: EulerAngles
    /// Original pixels.
    var shift: SIMD3<Double>
    /// 0-based input class, nil when the metadata has none.
    var classIndex: Int?
}

/// Everything `refine` reads before touching a volume: the image table (with `--doc` merged in), the
/// missing regions, and the references to load. Every rank builds the same value from the same files,
/// so a bad input is found, and reported once, before any work.
struct RefineInputs: Sendable {
    /// The `-i` rows that are enabled, with every original column plus those merged from `--doc`;
    /// the output docs are this table with the result columns updated.
    var imageTable: MetaDataTable
    var images: [ImageEntry]
    /// Path of the `-i` file (relative image paths are also looked up next to it).
    var imageMetadataPath: String?
    var regions: [MissingRegion]
    /// `--ref` volumes as locators (empty with `--nref`), and their `weight` column if any.
    var referenceLocators: [ImageLocator]
    var referenceWeights: [Double]?
    /// Side of the input subtomograms (from the first image's header).
    var originalDim: Int
    var voxelSizeFromHeader: Double?
    /// `--mask` at the input box size (checked: cubic, that size, values in [0, 1]).
    var focusMask: Volume?

    static func load(_ o: RefineOptions) throws -> RefineInputs {
        let metadata = try ImageMetaData.read(o.input, doc: o.doc)
        let table = metadata.table
        let missing = try o.missing.map(MissingRegionFile.read)
        let regions = missing?.regions ?? []
        let regionLookup = missing?.indexOfNumber ?? [:]
        if (o.dontAlign || o.dontRotate || o.onlyAverage) && !metadata.hasPoses {
            let mode = o.dontAlign ? "--dont_align" : (o.dontRotate ? "--dont_rotate" : "--only_average")
            throw ValidationFailure("\(mode) keeps the input orientations, but \(o.doc ?? o.input) lacks "
                + "some of the columns _angleRot _angleTilt _anglePsi _shiftX _shiftY _shiftZ")
        }
        if o.missing != nil && !table.has("missingRegionNumber") {
            throw ValidationFailure("\(o.doc ?? o.input): column _missingRegionNumber is required with --missing "
                + "(it says which row of \(o.missing!) describes each image's missing region)")
        }
        let images = try metadata.entries.enumerated().map { row, entry in
            var region: Int?
            if o.missing != nil, let number = entry.missingRegion {
                guard let index = regionLookup[number] else {
                    throw table.error(row: row, .indexOutOfRange, "_missingRegionNumber \(number) of image '\(entry.image)' "
                        + "has no definition in \(o.missing!) (defined: \(regionLookup.keys.sorted().map(String.init).joined(separator: ", ")))")
                }
                region = index
            }
            return ImageEntry(image: entry.image, region: region, angles: entry.angles, shift: entry.shift,
                              classIndex: entry.classNumber.flatMap { $0 >= 1 ? $0 - 1 : nil })
        }
        guard !images.isEmpty else { throw ValidationFailure("\(o.input): no enabled images") }

        // The box size comes from the first image; every other image is checked when its rank reads it.
        let first = try metadata.resolvedImage(0)
        let info = try VolumeIO.dimensions(first.description)
        guard info.isCubic else {
            throw ValidationFailure("\(first.description): subtomograms must be cubic, this one is \(info.nx)x\(info.ny)x\(info.nz)")
        }
        if o.dim > info.nx {
            throw ValidationFailure("--dim \(o.dim) is larger than the input subtomograms (\(info.nx)³)")
        }
        let (refs, weights) = try o.ref.map(readReferenceList) ?? ([], nil)
        if let firstRef = refs.first {
            let r = try VolumeIO.dimensions(firstRef.description)
            guard r.nx == info.nx && r.ny == info.ny && r.nz == info.nz else {
                throw ValidationFailure("--ref \(firstRef.description) is \(r.nx)x\(r.ny)x\(r.nz), "
                    + "the input subtomograms are \(info.nx)³: references must have the size of the images")
            }
        }
        let mask = try o.mask.map { try readFocusMask($0, box: info.nx) }
        let fractions = try o.frac.map(readFractions) ?? weights
        if let f = fractions, !refs.isEmpty, f.count != refs.count {
            throw ValidationFailure("\(o.frac ?? o.ref!): \(f.count) weights for \(refs.count) references")
        }
        return RefineInputs(imageTable: table, images: images, imageMetadataPath: metadata.path, regions: regions,
                            referenceLocators: refs, referenceWeights: fractions, originalDim: info.nx,
                            voxelSizeFromHeader: info.voxelSize, focusMask: mask)
    }

    /// `--mask`: any volume format, the input box size, values in [0, 1] (1 = classify, 0 = ignore).
    static func readFocusMask(_ path: String, box: Int) throws -> Volume {
        let info = try VolumeIO.dimensions(path)
        guard info.isCubic, info.nx == box else {
            throw ValidationFailure("--mask \(path) is \(info.nx)x\(info.ny)x\(info.nz), the input subtomograms are \(box)³")
        }
        let mask = try VolumeIO.readCubic(path, box: box)
        guard let lo = mask.data.min(), let hi = mask.data.max(), lo >= 0, hi <= 1, lo.isFinite, hi.isFinite else {
            throw ValidationFailure("--mask \(path): values must lie in [0, 1] (1 = classify, 0 = ignore); found "
                + "\(mask.data.min() ?? .nan) … \(mask.data.max() ?? .nan)")
        }
        guard hi > 0 else { throw ValidationFailure("--mask \(path) is zero everywhere: nothing would be classified") }
        return mask
    }

    /// `--ref`: a volume or stack file (every volume one reference), or metadata listing volumes.
    static func readReferenceList(_ path: String) throws -> ([ImageLocator], [Double]?) {
        if !ImageMetaData.isMetadata(path) {
            let count = try VolumeIO.dimensions(path).count
            return ((1 ... count).map { count == 1 ? ImageLocator(path: path) : ImageLocator(path: path, index: $0) }, nil)
        }
        let table = try MetaDataFile.readTable(path).removingDisabledRows()
        try table.require(["image"])
        let metadataPath = MetaDataFile.splitBlockSpec(path).path
        var locators: [ImageLocator] = []
        var weights: [Double]? = table.has("weight") ? [] : nil
        for row in 0 ..< table.rowCount {
            let spec = try table.string("image", row: row)
            locators.append(try ImageLocator(parsing: spec, context: table.location(row: row))
                .resolved(metadataFile: metadataPath, context: table.location(row: row)))
            if weights != nil { weights!.append(try table.double("weight", row: row)) }
        }
        guard !locators.isEmpty else { throw ValidationFailure("--ref \(path): no references listed") }
        return (locators, weights)
    }

    /// `--frac`: one `weight` per reference (the original read this option and never used it, §14.26).
    static func readFractions(_ path: String) throws -> [Double] {
        let table = try MetaDataFile.readTable(path)
        try table.require(["weight"])
        return try (0 ..< table.rowCount).map { try table.double("weight", row: $0) }
    }
}

/// A problem with an input file that the user must fix (missing, unreadable, or inconsistent with the
/// options or the other inputs); printed as is, exit status 65 (`ExitStatus.input`).
struct ValidationFailure: Error, CustomStringConvertible, LocalizedError, ExitStatusProviding {
    let message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
    var errorDescription: String? { message }
    var exitStatus: ExitStatus { .input }

    /// Runs `read` (the reading of input files), so that whatever it throws, including a reader's own
    /// error, leaves as an input error with the same message.
    static func reading<T>(_ read: () throws -> T) throws -> T {
        do { return try read() } catch let error as any ExitStatusProviding { throw error } catch {
            throw ValidationFailure((error as? any LocalizedError)?.errorDescription ?? String(describing: error))
        }
    }
}
