import Distributed
import Engine
import Formats
import Foundation
import Volumes

/// Everything `refine` reads before touching a volume: the image table (with `--doc` merged in), the
/// missing regions, and the references to load. Every rank builds the same value from the same files,
/// so a bad input is found, and reported once, before any work.
struct RefineInputs: Sendable {
    /// The `-i` rows that are enabled, with every original column plus those merged from `--doc`; the
    /// output docs are its table with the result columns updated.
    var metadata: ImageMetaData
    var imageTable: MetaDataTable { metadata.table }
    var images: [SubtomogramEntry] { metadata.entries }
    var regions: [MissingRegion]
    /// Index into `regions` of each `_missingRegionNumber` (empty without `--missing`).
    var regionIndexOfNumber: [Int: Int]
    /// `--ref` volumes (empty with `--nref`), and the class fractions of `--frac` or of the `--ref`
    /// list's `weight` column, if any.
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
        if o.missing != nil {
            for (row, entry) in metadata.entries.enumerated() {
                if let number = entry.missingRegion, regionLookup[number] == nil {
                    throw table.error(row: row, .indexOutOfRange, "_missingRegionNumber \(number) of image '\(entry.image)' "
                        + "has no definition in \(o.missing!) (defined: \(regionLookup.keys.sorted().map(String.init).joined(separator: ", ")))")
                }
            }
        }
        guard !metadata.entries.isEmpty else { throw ValidationFailure("\(o.input): no enabled images") }

        // The box size comes from the first image; every other image is checked when its rank reads it.
        let first = try metadata.resolvedImage(0)
        let info = try VolumeIO.dimensions(first.description)
        guard info.isCubic else {
            throw ValidationFailure("\(first.description): subtomograms must be cubic, this one is \(info.nx)x\(info.ny)x\(info.nz)")
        }
        if o.dim > info.nx {
            throw ValidationFailure("--dim \(o.dim) is larger than the input subtomograms (\(info.nx)³)")
        }
        let referenceList = try o.ref.map(ReferenceList.read)
        let refs = referenceList?.locators ?? []
        if let firstRef = refs.first {
            let r = try VolumeIO.dimensions(firstRef.description)
            guard r.nx == info.nx && r.ny == info.ny && r.nz == info.nz else {
                throw ValidationFailure("--ref \(firstRef.description) is \(r.nx)x\(r.ny)x\(r.nz), "
                    + "the input subtomograms are \(info.nx)³: references must have the size of the images")
            }
        }
        let mask = try o.mask.map { try readFocusMask($0, box: info.nx) }
        let fractions = try o.frac.map(ClassFractionsFile.read) ?? referenceList?.weights
        if let f = fractions, !refs.isEmpty, f.count != refs.count {
            throw ValidationFailure("\(o.frac ?? o.ref!): \(f.count) weights for \(refs.count) references")
        }
        return RefineInputs(metadata: metadata, regions: regions, regionIndexOfNumber: regionLookup,
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

    /// The 0-based missing region of image `i`; nil without `--missing`.
    func regionIndex(ofImage i: Int) -> Int? {
        metadata.entries[i].missingRegion.flatMap { regionIndexOfNumber[$0] }
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
