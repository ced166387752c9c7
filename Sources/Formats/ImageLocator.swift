import Foundation

/// An image reference from a metadata file: a path, optionally prefixed `N@` to address the N-th
/// (1-based) volume of an MRC, Spider or HDF5 stack.
public struct ImageLocator: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// 1-based index into a stack, nil for a whole file.
    public var index: Int?
    public var path: String

    public init(path: String, index: Int? = nil) {
        self.path = path
        self.index = index
    }

    /// Parses `path` or `N@path`. `context` (e.g. `images.doc:12`) is used in error messages.
    public init(parsing spec: String, context: String? = nil) throws {
        if let at = spec.firstIndex(of: "@") {
            let prefix = spec[..<at]
            let rest = String(spec[spec.index(after: at)...])
            guard !prefix.isEmpty, prefix.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(prefix) else {
                throw FormatError(.syntax, file: context ?? spec, "image '\(spec)': the part before '@' must be a 1-based stack index")
            }
            guard n >= 1 else {
                throw FormatError(.indexOutOfRange, file: context ?? spec, "image '\(spec)': stack indices start at 1")
            }
            guard !rest.isEmpty else { throw FormatError(.syntax, file: context ?? spec, "image '\(spec)' has no path after '@'") }
            self.init(path: rest, index: n)
        } else {
            guard !spec.isEmpty else { throw FormatError(.syntax, file: context ?? "<image>", "empty image path") }
            self.init(path: spec, index: nil)
        }
    }

    public var description: String { index.map { "\($0)@\(path)" } ?? path }

    /// Resolves a relative path: first against the current directory, then against the directory of the
    /// metadata file that named it. Throws `.notFound` listing every place searched.
    public func resolved(metadataFile: String?, context: String? = nil) throws -> ImageLocator {
        let fm = FileManager.default
        if path.hasPrefix("/") {
            if fm.fileExists(atPath: path) { return self }
            throw FormatError(.notFound, file: context ?? path, "image '\(description)' not found; searched: \(path)")
        }
        var searched: [String] = []
        let cwd = fm.currentDirectoryPath
        let inCwd = cwd + "/" + path
        searched.append(inCwd)
        if fm.fileExists(atPath: path) { return self }
        if let md = metadataFile {
            let dir = (md as NSString).deletingLastPathComponent
            let candidate = dir.isEmpty ? path : dir + "/" + path
            let absCandidate = candidate.hasPrefix("/") ? candidate : cwd + "/" + candidate
            if !searched.contains(absCandidate) { searched.append(absCandidate) }
            if fm.fileExists(atPath: candidate) { return ImageLocator(path: candidate, index: index) }
        }
        throw FormatError(.notFound, file: context ?? metadataFile ?? path,
                          "image '\(description)' not found; searched: \(searched.joined(separator: ", "))")
    }
}
