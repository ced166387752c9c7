/// A RELION 3.1 STAR file: `data_optics` (one row per optics group) and `data_particles`, labels `_rln*`.
///
/// RELION 3.0 files (a single block of particles, no optics) are read too: `optics` is then nil.
/// Other blocks are kept and written back after the two main ones.
public struct RelionStarFile: Equatable, Sendable {
    public var optics: MetaDataTable?
    public var particles: MetaDataTable
    public var otherBlocks: [MetaDataTable]
    public var path: String?

    public init(optics: MetaDataTable?, particles: MetaDataTable, otherBlocks: [MetaDataTable] = []) {
        self.optics = optics
        self.particles = particles
        self.otherBlocks = otherBlocks
        self.optics?.name = "optics"
        self.particles.name = "particles"
        self.path = nil
    }

    public static func read(_ path: String) throws -> RelionStarFile {
        let file = try MetaDataFile.read(path, applyAliases: false)
        return try interpret(file, path: path)
    }

    public static func parse(text: String, path: String) throws -> RelionStarFile {
        try interpret(try MetaDataFile.parse(text: text, path: path, applyAliases: false), path: path)
    }

    static func interpret(_ file: MetaDataFile, path: String) throws -> RelionStarFile {
        var out: RelionStarFile
        if let p = file.block(named: "particles") {
            out = RelionStarFile(optics: file.block(named: "optics"), particles: p,
                                 otherBlocks: file.blocks.filter { $0.name != "particles" && $0.name != "optics" })
        } else if file.blocks.count == 1, let only = file.blocks.first, only.labels.contains(where: { $0.hasPrefix("rln") }) {
            out = RelionStarFile(optics: nil, particles: only)     // RELION 3.0 style
            out.particles.name = only.name
        } else {
            throw FormatError(.missingLabel, file: path,
                              "not a RELION particle file: no data_particles block (blocks: \(file.blocks.map { "data_" + $0.name }.joined(separator: ", ")))")
        }
        out.path = path
        for t in [out.optics, out.particles].compactMap({ $0 }) {
            // `_mltomo…` labels are this program's own per-particle columns (see ParticleList).
            if let bad = t.labels.first(where: { !$0.hasPrefix("rln") && !$0.hasPrefix("mltomo") }) {
                throw FormatError(.unknownLabel, file: path, line: t.blockLine > 0 ? t.blockLine : nil,
                                  "label _\(bad) in block data_\(t.name) is not a RELION label (_rln...)")
            }
        }
        try out.validateOpticsGroups()
        return out
    }

    /// Every particle's `rlnOpticsGroup` must name a row of the optics table.
    public func validateOpticsGroups() throws {
        guard let optics, particles.has("rlnOpticsGroup") else { return }
        try optics.require(["rlnOpticsGroup"])
        var groups = Set<Int>()
        for r in 0..<optics.rowCount { groups.insert(try optics.int("rlnOpticsGroup", row: r)) }
        for r in 0..<particles.rowCount {
            let g = try particles.int("rlnOpticsGroup", row: r)
            if !groups.contains(g) {
                throw particles.error(row: r, .missingLabel, "particle in optics group \(g), which data_optics does not define (groups: \(groups.sorted()))")
            }
        }
    }

    /// The optics row of particle `row` (nil without an optics table or group column).
    public func opticsRow(ofParticle row: Int) throws -> Int? {
        guard let optics, particles.has("rlnOpticsGroup") else { return nil }
        let g = try particles.int("rlnOpticsGroup", row: row)
        for r in 0..<optics.rowCount where try optics.int("rlnOpticsGroup", row: r) == g { return r }
        throw particles.error(row: row, .missingLabel, "optics group \(g) is not defined in data_optics")
    }

    /// The file's bytes (RELION 3.1 layout: `# version 30001`, numbered labels).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        var blocks: [MetaDataTable] = []
        if let optics { blocks.append(optics) }
        blocks.append(particles)
        blocks.append(contentsOf: otherBlocks)
        for (i, var t) in blocks.enumerated() {
            if i > 0 { out.append(0x0A) }
            t.comment = "version 30001"
            t.layout = t.layout == .list && t.rowCount == 1 ? .list : .loop
            StarWriter.append(t, to: &out, labelSuffix: true)
        }
        return out
    }

    /// Writes atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(serialized(), to: path)
    }
}
