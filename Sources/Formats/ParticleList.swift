import Foundation
import Volumes

/// One particle as every supported package can describe it, the pose in this program's convention.
public struct ParticleRecord: Equatable, Sendable {
    /// The subtomogram file (nil when the source format has no names and no pattern was given).
    public var image: String?
    public var pose: ParticlePose
    public var classNumber: Int?
    /// 1-based row of the `--missing` file.
    public var missingRegion: Int?
    /// Position in the tomogram (pixels).
    public var coordinate: SIMD3<Double>?
    public var tomogram: Int?

    public init(image: String?, pose: ParticlePose, classNumber: Int? = nil, missingRegion: Int? = nil,
                coordinate: SIMD3<Double>? = nil, tomogram: Int? = nil) {
        self.image = image
        self.pose = pose
        self.classNumber = classNumber
        self.missingRegion = missingRegion
        self.coordinate = coordinate
        self.tomogram = tomogram
    }
}

/// The particle metadata formats of the packages users move particles between.
public enum ParticleMetadataFormat: String, CaseIterable, Sendable {
    /// Xmipp XMIPP_STAR_1 sel/doc/xmd (this program's own input and output).
    case xmipp
    /// RELION 3.1+ STAR with an optics table (3.0 files are read too).
    case relion
    /// Dynamo `.tbl`.
    case dynamo
    /// TOM / AV3 motive list (`.em`).
    case tom

    /// The format a file name suggests: .doc .xmd .sel → xmipp, .star → relion, .tbl → dynamo, .em → tom.
    public static func guess(_ path: String) -> ParticleMetadataFormat? {
        switch (path as NSString).pathExtension.lowercased() {
        case "doc", "xmd", "sel": return .xmipp
        case "star": return .relion
        case "tbl": return .dynamo
        case "em": return .tom
        default: return nil
        }
    }
}

/// Particles with their poses, read from or written to any `ParticleMetadataFormat`.
///
/// Names: Dynamo and TOM identify particles by number (Dynamo's tag, TOM's row 4), not by file, so
/// reading them names particle n by `imagePattern` (`%d`, or `%0Nd` for N digits, replaced by n), and
/// writing them numbers the particles 1, 2, … in list order.
public struct ParticleList: Equatable, Sendable {
    public var particles: [ParticleRecord]
    /// Å per pixel, when the source records it (RELION's optics table, Dynamo's column 36).
    public var pixelSize: Double?
    /// Box size in pixels, when known (RELION's rlnImageSize).
    public var boxSize: Int?

    public init(particles: [ParticleRecord] = [], pixelSize: Double? = nil, boxSize: Int? = nil) {
        self.particles = particles
        self.pixelSize = pixelSize
        self.boxSize = boxSize
    }

    /// The default name of numbered particles: Dynamo's data folder layout.
    public static let defaultImagePattern = "particle_%06d.em"

    /// Label of the missing-region number in RELION files: RELION 3.1+ keeps unknown labels through its
    /// programs, and the `mltomo` prefix says whose it is.
    public static let relionMissingRegionLabel = "mltomoMissingRegionNumber"

    // MARK: Reading

    public static func read(_ path: String, format: ParticleMetadataFormat,
                            imagePattern: String = defaultImagePattern) throws -> ParticleList {
        switch format {
        case .xmipp: return try readXmipp(path)
        case .relion: return try readRelion(path)
        case .dynamo: return try readDynamo(path, imagePattern: imagePattern)
        case .tom: return try readTOM(path, imagePattern: imagePattern)
        }
    }

    static func readXmipp(_ path: String) throws -> ParticleList {
        let md = try ImageMetaData.read(path)
        let t = md.table
        guard !md.entries.isEmpty else {
            throw FormatError(.missingLabel, file: path, "no enabled images (rows with _enabled <= 0 are skipped)")
        }
        let hasCoordinates = t.has("xcoor") && t.has("ycoor") && t.has("zcoor")
        var out = ParticleList()
        for (row, e) in md.entries.enumerated() {
            if let m = e.missingRegion, m < 1 {
                throw t.error(row: row, .wrongType, "_missingRegionNumber = \(m); missing regions are numbered from 1")
            }
            let coordinate = hasCoordinates
                ? SIMD3(try t.double("xcoor", row: row), try t.double("ycoor", row: row), try t.double("zcoor", row: row)) : nil
            out.particles.append(ParticleRecord(
                image: e.locator.description, pose: ParticlePose(angles: e.angles, shift: e.shift),
                classNumber: e.classNumber, missingRegion: e.missingRegion, coordinate: coordinate))
        }
        if t.has("samplingRate") { out.pixelSize = try t.double("samplingRate", row: 0) }
        return out
    }

    static func readRelion(_ path: String) throws -> ParticleList {
        let star = try RelionStarFile.read(path)
        let p = star.particles
        try p.require(["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"])
        let inAngst = p.has("rlnOriginXAngst") || p.has("rlnOriginYAngst") || p.has("rlnOriginZAngst")
        if inAngst { try p.require(["rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst"]) }
        let inPixels = !inAngst && p.has("rlnOriginX")
        if inPixels { try p.require(["rlnOriginX", "rlnOriginY", "rlnOriginZ"]) }
        let hasCoordinates = p.has("rlnCoordinateX") && p.has("rlnCoordinateY") && p.has("rlnCoordinateZ")
        var out = ParticleList()
        var firstPixel: Double?
        for r in 0..<p.rowCount {
            let relionAngles = EulerAngles(rot: try p.double("rlnAngleRot", row: r), tilt: try p.double("rlnAngleTilt", row: r),
                                           psi: try p.double("rlnAnglePsi", row: r))
            let pixel = try star.pixelSize(ofParticle: r)
            if r == 0 { firstPixel = pixel }
            var origin = SIMD3<Double>.zero
            var scale = 1.0
            if inAngst {
                guard let pixel else {
                    throw p.error(row: r, .missingLabel,
                                  "origins are in Å (_rlnOriginXAngst) but no pixel size is known: data_optics needs _rlnImagePixelSize")
                }
                origin = SIMD3(try p.double("rlnOriginXAngst", row: r), try p.double("rlnOriginYAngst", row: r),
                               try p.double("rlnOriginZAngst", row: r))
                scale = pixel
            } else if inPixels {
                origin = SIMD3(try p.double("rlnOriginX", row: r), try p.double("rlnOriginY", row: r), try p.double("rlnOriginZ", row: r))
            }
            for v in [relionAngles.rot, relionAngles.tilt, relionAngles.psi, origin.x, origin.y, origin.z] where !v.isFinite {
                throw p.error(row: r, .nonFinite, "an angle or origin is \(v)")
            }
            let pose = RelionConvention.toXmipp(angles: relionAngles, originAngst: origin, pixelSize: scale)
            var region: Int?
            if p.has(relionMissingRegionLabel) {
                let m = try p.int(relionMissingRegionLabel, row: r)
                if m < 1 { throw p.error(row: r, .wrongType, "_\(relionMissingRegionLabel) = \(m); missing regions are numbered from 1") }
                region = m
            }
            out.particles.append(ParticleRecord(
                image: p.has("rlnImageName") ? try p.string("rlnImageName", row: r) : nil, pose: pose,
                classNumber: p.has("rlnClassNumber") ? try p.int("rlnClassNumber", row: r) : nil, missingRegion: region,
                coordinate: hasCoordinates ? SIMD3(try p.double("rlnCoordinateX", row: r), try p.double("rlnCoordinateY", row: r),
                                                   try p.double("rlnCoordinateZ", row: r)) : nil))
        }
        out.pixelSize = firstPixel
        if let optics = star.optics, optics.has("rlnImageSize"), optics.rowCount > 0 {
            out.boxSize = try optics.int("rlnImageSize", row: 0)
        }
        return out
    }

    static func readDynamo(_ path: String, imagePattern: String) throws -> ParticleList {
        let t = try DynamoTable.read(path)
        var out = ParticleList()
        for r in 0..<t.count {
            let tag = t[r, .tag]
            guard tag.rounded() == tag else {
                throw FormatError(.wrongType, file: path, line: t.rowLines[r], "column 1 (tag) is \(tag), not an integer")
            }
            let pose = DynamoConvention.toXmipp(tdrot: t[r, .tdrot], tilt: t[r, .tilt], narot: t[r, .narot],
                                                d: SIMD3(t[r, .dx], t[r, .dy], t[r, .dz]))
            out.particles.append(ParticleRecord(
                image: try ParticleList.name(imagePattern, Int(tag)), pose: pose, classNumber: Int(t[r, .classNumber]),
                coordinate: SIMD3(t[r, .x], t[r, .y], t[r, .z]), tomogram: Int(t[r, .tomo])))
            if t[r, .apix] > 0 && out.pixelSize == nil { out.pixelSize = t[r, .apix] }
        }
        return out
    }

    static func readTOM(_ path: String, imagePattern: String) throws -> ParticleList {
        let m = try TOMMotiveList.read(path)
        var out = ParticleList()
        for p in 0..<m.count {
            let pose = TOMMotiveConvention.toXmipp(
                phi: Double(m[p, .phi]), psi: Double(m[p, .psi]), theta: Double(m[p, .theta]),
                shift: SIMD3(Double(m[p, .shiftX]), Double(m[p, .shiftY]), Double(m[p, .shiftZ])))
            let number = Int(m[p, .particle].rounded())
            out.particles.append(ParticleRecord(
                image: try ParticleList.name(imagePattern, number > 0 ? number : p + 1), pose: pose,
                classNumber: Int(m[p, .classNumber].rounded()),
                coordinate: SIMD3(Double(m[p, .x]), Double(m[p, .y]), Double(m[p, .z])), tomogram: Int(m[p, .tomogram].rounded())))
        }
        return out
    }

    /// `pattern` with its `%d` / `%0Nd` replaced by `n`.
    public static func name(_ pattern: String, _ n: Int) throws -> String {
        guard let percent = pattern.firstIndex(of: "%") else {
            throw FormatError(.syntax, file: "--image-pattern", "'\(pattern)' has no %d (or %06d) for the particle number")
        }
        var i = pattern.index(after: percent)
        var digits = ""
        while i < pattern.endIndex, pattern[i].isNumber { digits.append(pattern[i]); i = pattern.index(after: i) }
        guard i < pattern.endIndex, pattern[i] == "d" else {
            throw FormatError(.syntax, file: "--image-pattern", "'\(pattern)': only %d or %0Nd is understood")
        }
        var number = String(abs(n))
        if let width = Int(digits), number.count < width { number = String(repeating: "0", count: width - number.count) + number }
        if n < 0 { number = "-" + number }
        return String(pattern[..<percent]) + number + String(pattern[pattern.index(after: i)...])
    }

    // MARK: Writing

    public func write(to path: String, format: ParticleMetadataFormat) throws {
        switch format {
        case .xmipp: try MetaDataFile(xmippTable()).write(to: path)
        case .relion: try relionStar(file: path).write(to: path)
        case .dynamo: try dynamoTable().write(to: path)
        case .tom: try tomMotiveList().write(to: path)
        }
    }

    public func xmippTable() -> MetaDataTable {
        var t = MetaDataTable(name: "", labels: ["image", "angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ"])
        if particles.contains(where: { $0.classNumber != nil }) { t.addColumn("ref", fill: .int(0)) }
        if particles.contains(where: { $0.missingRegion != nil }) { t.addColumn("missingRegionNumber", fill: .int(1)) }
        if particles.contains(where: { $0.coordinate != nil }) {
            for l in ["xcoor", "ycoor", "zcoor"] { t.addColumn(l, fill: .real(0)) }
        }
        // Xmipp's own label for Å per pixel, so that a doc → STAR conversion needs no --angpix.
        if let pixelSize { t.addColumn("samplingRate", fill: .real(pixelSize)) }
        for (i, p) in particles.enumerated() {
            var row: [MetaDataValue] = [.string(p.image ?? (try? ParticleList.name(Self.defaultImagePattern, i + 1)) ?? ""),
                                        .real(p.pose.angles.rot), .real(p.pose.angles.tilt), .real(p.pose.angles.psi),
                                        .real(p.pose.shift.x), .real(p.pose.shift.y), .real(p.pose.shift.z)]
            if t.has("ref") { row.append(.int(p.classNumber ?? 0)) }
            if t.has("missingRegionNumber") { row.append(.int(p.missingRegion ?? 1)) }
            if t.has("xcoor") {
                let c = p.coordinate ?? .zero
                row += [.real(c.x), .real(c.y), .real(c.z)]
            }
            if let pixelSize { row.append(.real(pixelSize)) }
            t.appendRow(row)
        }
        return t
    }

    /// RELION 3.1 layout: one optics group (3D images, the pixel size), then the particles.
    public func relionStar(file: String = "<output>") throws -> RelionStarFile {
        guard let pixelSize, pixelSize > 0, pixelSize.isFinite else {
            throw FormatError(.missingLabel, file: file,
                              "RELION needs the pixel size (origins are in Å): give --angpix")
        }
        // RELION 3.1 refuses an optics table without voltage, Cs and amplitude contrast, even for 3D images
        // whose CTF comes from rlnCtfImage (where they are not used): nominal values are written.
        var optics = MetaDataTable(name: "optics", labels: ["rlnOpticsGroupName", "rlnOpticsGroup", "rlnImagePixelSize",
                                                            "rlnImageDimensionality", "rlnVoltage", "rlnSphericalAberration",
                                                            "rlnAmplitudeContrast"])
        var row: [MetaDataValue] = [.string("opticsGroup1"), .int(1), .real(pixelSize), .int(3), .real(300), .real(2.7), .real(0.1)]
        if let boxSize {
            optics.addColumn("rlnImageSize", fill: .int(0))
            row.append(.int(boxSize))
        }
        optics.appendRow(row)
        var t = MetaDataTable(name: "particles", labels: ["rlnImageName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi",
                                                          "rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginZAngst", "rlnOpticsGroup"])
        let withClass = particles.contains { $0.classNumber != nil }
        let withRegion = particles.contains { $0.missingRegion != nil }
        let withCoordinates = particles.contains { $0.coordinate != nil }
        if withClass { t.addColumn("rlnClassNumber", fill: .int(1)) }
        if withCoordinates { for l in ["rlnCoordinateX", "rlnCoordinateY", "rlnCoordinateZ"] { t.addColumn(l, fill: .real(0)) } }
        if withRegion { t.addColumn(Self.relionMissingRegionLabel, fill: .int(1)) }
        for (i, p) in particles.enumerated() {
            let r = RelionConvention.fromXmipp(p.pose, pixelSize: pixelSize)
            let image = try p.image ?? ParticleList.name(Self.defaultImagePattern, i + 1)
            var row: [MetaDataValue] = [.string(image),
                                        .real(r.angles.rot), .real(r.angles.tilt), .real(r.angles.psi),
                                        .real(r.originAngst.x), .real(r.originAngst.y), .real(r.originAngst.z), .int(1)]
            // RELION numbers classes from 1; class 0 ("none") becomes 1.
            if withClass { row.append(.int(max(p.classNumber ?? 1, 1))) }
            if withCoordinates {
                let c = p.coordinate ?? .zero
                row += [.real(c.x), .real(c.y), .real(c.z)]
            }
            if withRegion { row.append(.int(p.missingRegion ?? 1)) }
            t.appendRow(row)
        }
        return RelionStarFile(optics: optics, particles: t)
    }

    public func dynamoTable() -> DynamoTable {
        var t = DynamoTable()
        for (i, p) in particles.enumerated() {
            t.appendRow(tag: i + 1)
            let d = DynamoConvention.fromXmipp(p.pose)
            t[i, .dx] = d.d.x
            t[i, .dy] = d.d.y
            t[i, .dz] = d.d.z
            t[i, .tdrot] = d.tdrot
            t[i, .tilt] = d.tilt
            t[i, .narot] = d.narot
            t[i, .classNumber] = Double(p.classNumber ?? 0)
            t[i, .tomo] = Double(p.tomogram ?? 0)
            if let c = p.coordinate {
                t[i, .x] = c.x
                t[i, .y] = c.y
                t[i, .z] = c.z
            }
            if let pixelSize { t[i, .apix] = pixelSize }
        }
        return t
    }

    public func tomMotiveList() -> TOMMotiveList {
        var m = TOMMotiveList()
        for (i, p) in particles.enumerated() {
            m.appendParticle()
            let t = TOMMotiveConvention.fromXmipp(p.pose)
            m[i, .particle] = Float(i + 1)
            m[i, .tomogram] = Float(p.tomogram ?? 0)
            m[i, .shiftX] = Float(t.shift.x)
            m[i, .shiftY] = Float(t.shift.y)
            m[i, .shiftZ] = Float(t.shift.z)
            m[i, .phi] = Float(t.phi)
            m[i, .psi] = Float(t.psi)
            m[i, .theta] = Float(t.theta)
            m[i, .classNumber] = Float(p.classNumber ?? 0)
            if let c = p.coordinate {
                m[i, .x] = Float(c.x)
                m[i, .y] = Float(c.y)
                m[i, .z] = Float(c.z)
            }
        }
        return m
    }
}

extension RelionStarFile {
    /// Å per pixel of particle `row`: its optics group's `rlnImagePixelSize` (RELION 3.1+), else the
    /// particle's own `rlnImagePixelSize` / `rlnPixelSize` (3.0 files), else nil.
    public func pixelSize(ofParticle row: Int) throws -> Double? {
        if let optics, let o = try opticsRow(ofParticle: row) ?? (optics.rowCount == 1 ? 0 : nil),
           optics.has("rlnImagePixelSize") {
            return try optics.double("rlnImagePixelSize", row: o)
        }
        for label in ["rlnImagePixelSize", "rlnPixelSize"] where particles.has(label) {
            return try particles.double(label, row: row)
        }
        return nil
    }
}

extension ParticleList {
    /// `-i particles.star`: a RELION 3.1/4/5 particle file as the image table of a refinement (`_image`,
    /// angles and shifts in our convention, `_ref` from `_rlnClassNumber`, `_missingRegionNumber` from
    /// `_mltomoMissingRegionNumber`). nil when `path` is not a `.star` file with RELION particles.
    public static func relionImageTable(_ path: String) throws -> MetaDataTable? {
        guard (path as NSString).pathExtension.lowercased() == "star" else { return nil }
        let file = try MetaDataFile.read(path, applyAliases: false)
        guard file.blocks.contains(where: { $0.has("rlnImageName") }) else { return nil }
        let list = try readRelion(path)
        var table = list.xmippTable()
        table.source = path
        return table
    }
}
