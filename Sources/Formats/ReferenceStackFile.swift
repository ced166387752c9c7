import Volumes

/// The HDF5 model file ml_tomo writes every iteration (`<oroot>_itNNNNNN.h5`); layout in HDF5-LAYOUT.md.
///
/// Arrays are stored C-order with the slowest axis first, so for h5py `f['references'][k]` is a (z, y, x)
/// volume exactly like `mrcfile.open(...).data`.
public struct ReferenceStackFile: Equatable, Sendable {
    public static let formatName = "ml_tomo reference stack"
    public static let formatVersion: Int64 = 1

    /// K cubic references of side d.
    public var references: [Volume]
    /// Optional per-class sums of rotated missing-region masks, half-complex layout d×d×(d/2+1) (z, y, x).
    public var wedgeSums: [[Float]]?
    /// Optional per-class FSC curves, d/2 values: index q-1 holds shell q (q = 1…d/2).
    public var fsc: [[Double]]?
    public var iteration: Int
    public var voxelSize: Double
    public var classFractions: [Double]
    public var sigmaNoise: Double
    public var sigmaOffset: Double
    public var logLikelihood: Double
    /// Further scalar attributes on the root group (e.g. `pmax`, `regularisation`).
    public var extraAttributes: [String: Double]
    /// Further float64 datasets by path (e.g. `particles/angles`, the per-particle state a restart needs);
    /// parent groups are created as needed.
    public var extraDatasets: [String: ExtraDataset] = [:]

    /// A float64 array of any shape (C order, slowest axis first).
    public struct ExtraDataset: Equatable, Sendable {
        public var shape: [Int]
        public var values: [Double]
        public init(shape: [Int], values: [Double]) {
            precondition(shape.reduce(1, *) == values.count, "dataset shape \(shape) does not match \(values.count) values")
            self.shape = shape
            self.values = values
        }
    }

    public init(references: [Volume], wedgeSums: [[Float]]? = nil, fsc: [[Double]]? = nil, iteration: Int,
                voxelSize: Double, classFractions: [Double], sigmaNoise: Double, sigmaOffset: Double,
                logLikelihood: Double, extraAttributes: [String: Double] = [:]) {
        self.references = references
        self.wedgeSums = wedgeSums
        self.fsc = fsc
        self.iteration = iteration
        self.voxelSize = voxelSize
        self.classFractions = classFractions
        self.sigmaNoise = sigmaNoise
        self.sigmaOffset = sigmaOffset
        self.logLikelihood = logLikelihood
        self.extraAttributes = extraAttributes
    }

    public var classCount: Int { references.count }
    public var box: Int { references.first?.nx ?? 0 }

    static let knownAttributes: Set<String> = ["format", "format_version", "iteration", "voxel_size", "class_fractions",
                                               "sigma_noise", "sigma_offset", "log_likelihood", "class_count", "box_size"]

    /// Checks shapes: K ≥ 1 cubic references of one size; per-class arrays of the right length.
    public func validate(file: String) throws {
        guard let first = references.first else { throw FormatError(.boxMismatch, file: file, "no reference volumes") }
        let d = first.nx
        for (k, v) in references.enumerated() {
            try VolumeIO.checkBox(v, box: d, file: file, item: k + 1)
            try checkFinite(v.data, nx: v.nx, ny: v.ny, file: file, item: k + 1)
        }
        let K = references.count
        guard classFractions.count == K else {
            throw FormatError(.boxMismatch, file: file, "\(classFractions.count) class fractions for \(K) references")
        }
        if let w = wedgeSums {
            guard w.count == K, w.allSatisfy({ $0.count == d * d * (d / 2 + 1) }) else {
                throw FormatError(.boxMismatch, file: file, "wedge sums must be \(K) arrays of \(d)x\(d)x\(d / 2 + 1) values")
            }
        }
        if let f = fsc {
            guard f.count == K, f.allSatisfy({ $0.count == d / 2 }) else {
                throw FormatError(.boxMismatch, file: file, "FSC curves must be \(K) arrays of \(d / 2) values")
            }
        }
    }

    /// Writes atomically (temporary file + rename).
    public func write(to path: String) throws {
        try validate(file: path)
        let K = references.count, d = box
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        try HDF5File.write(path) { h5 in
            try h5.writeDataset("references", shape: [K, d, d, d], floats: references.flatMap(\.data))
            try h5.setAttribute("axes", string: "class, z, y, x", on: "references")
            try h5.setAttribute("units", string: "density (arbitrary units), voxel size in root attribute voxel_size", on: "references")
            if let w = wedgeSums {
                try h5.writeDataset("wedge_sums", shape: [K, d, d, d / 2 + 1], floats: w.flatMap { $0 })
                try h5.setAttribute("axes", string: "class, kz, ky, kx (FFTW half-complex order, DC at [0,0,0])", on: "wedge_sums")
            }
            if let f = fsc {
                try h5.writeDataset("fsc", shape: [K, d / 2], doubles: f.flatMap { $0 })
                try h5.setAttribute("axes", string: "class, shell q-1 for q = 1..d/2 (frequency q/(d*voxel_size) 1/A)", on: "fsc")
            }
            try h5.setAttribute("format", string: Self.formatName)
            try h5.setAttribute("format_version", int64: Self.formatVersion)
            try h5.setAttribute("iteration", int64: Int64(iteration))
            try h5.setAttribute("class_count", int64: Int64(K))
            try h5.setAttribute("box_size", int64: Int64(d))
            try h5.setAttribute("voxel_size", double: voxelSize)
            try h5.setAttribute("class_fractions", doubles: classFractions)
            try h5.setAttribute("sigma_noise", double: sigmaNoise)
            try h5.setAttribute("sigma_offset", double: sigmaOffset)
            try h5.setAttribute("log_likelihood", double: logLikelihood)
            var groups: Set<String> = []
            for (name, dataset) in extraDatasets.sorted(by: { $0.key < $1.key }) {
                let parts = name.split(separator: "/").map(String.init)
                for depth in 1 ..< max(parts.count, 1) {
                    let group = parts[0 ..< depth].joined(separator: "/")
                    if groups.insert(group).inserted && !h5.exists(group) { try h5.createGroup(group) }
                }
                try h5.writeDataset(name, shape: dataset.shape, doubles: dataset.values)
            }
            for (name, value) in extraAttributes.sorted(by: { $0.key < $1.key }) {
                if Self.knownAttributes.contains(name) {
                    throw FormatError(.syntax, file: path, "extra attribute '\(name)' clashes with a standard attribute")
                }
                try h5.setAttribute(name, double: value)
            }
        }
    }

    /// Reads the file; `extraDatasetNames` lists the further datasets to load (each must exist).
    public static func read(_ path: String, extraDatasetNames: [String] = []) throws -> ReferenceStackFile {
        HDF5File.lock.lock()
        defer { HDF5File.lock.unlock() }
        let h5 = try HDF5File.open(path)
        defer { h5.close() }
        let (shape, values) = try h5.readFloats("references")
        guard shape.count == 4, shape[0] >= 1, shape[1] >= 1, shape[1] == shape[2], shape[2] == shape[3] else {
            throw FormatError(.boxMismatch, file: path, "dataset 'references' has shape \(shape); expected K×d×d×d")
        }
        let K = shape[0], d = shape[1], n = d * d * d
        let refs = (0..<K).map { Volume(nx: d, ny: d, nz: d, data: Array(values[(n * $0)..<(n * ($0 + 1))])) }
        var wedges: [[Float]]?
        if h5.exists("wedge_sums") {
            let (ws, wv) = try h5.readFloats("wedge_sums")
            let m = d * d * (d / 2 + 1)
            guard ws == [K, d, d, d / 2 + 1] else {
                throw FormatError(.boxMismatch, file: path, "dataset 'wedge_sums' has shape \(ws); expected \([K, d, d, d / 2 + 1])")
            }
            wedges = (0..<K).map { Array(wv[(m * $0)..<(m * ($0 + 1))]) }
        }
        var fsc: [[Double]]?
        if h5.exists("fsc") {
            let (fs, fv) = try h5.readDoubles("fsc")
            guard fs == [K, d / 2] else {
                throw FormatError(.boxMismatch, file: path, "dataset 'fsc' has shape \(fs); expected \([K, d / 2])")
            }
            fsc = (0..<K).map { Array(fv[(d / 2 * $0)..<(d / 2 * ($0 + 1))]) }
        }
        var extra: [String: Double] = [:]
        for name in try h5.attributeNames() where !knownAttributes.contains(name) {
            if let v = try? h5.attributeDoubles(name), v.count == 1 { extra[name] = v[0] }
        }
        let base = ReferenceStackFile(
            references: refs, wedgeSums: wedges, fsc: fsc,
            iteration: Int(try h5.attributeInt64("iteration")),
            voxelSize: try h5.attributeDouble("voxel_size"),
            classFractions: try h5.attributeDoubles("class_fractions"),
            sigmaNoise: try h5.attributeDouble("sigma_noise"),
            sigmaOffset: try h5.attributeDouble("sigma_offset"),
            logLikelihood: try h5.attributeDouble("log_likelihood"),
            extraAttributes: extra)
        var withExtras = base
        for name in extraDatasetNames {
            guard h5.exists(name) else { throw FormatError(.missingLabel, file: path, "dataset '\(name)' is missing") }
            let (shape, values) = try h5.readDoubles(name)
            withExtras.extraDatasets[name] = ExtraDataset(shape: shape, values: values)
        }
        let file = withExtras
        try file.validate(file: path)
        return file
    }
}
