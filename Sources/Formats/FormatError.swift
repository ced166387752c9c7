/// Errors raised by every reader and writer of the Formats module.
///
/// Each error names the file it concerns and, for text formats, the 1-based line, so a user can open the
/// file at the right place. `kind` lets callers (and tests) react to the category without parsing text.
public struct FormatError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Kind: String, Sendable {
        case notFound          // a path that exists nowhere (the message lists the places searched)
        case io                // open/read/write/rename failed
        case syntax            // malformed text (metadata/STAR)
        case missingLabel      // a required column/label is absent
        case unknownLabel      // a label that is not known (or not present) was asked for
        case wrongType         // a value of the wrong type in a typed column
        case truncated         // a binary file shorter than its header says
        case badMagic          // not the format it claims to be
        case badHeader         // inconsistent or unsupported header fields
        case boxMismatch       // non-cubic or mismatched box sizes
        case nonFinite         // NaN or Inf voxels
        case indexOutOfRange   // `N@stack` with N outside the stack
        case hdf5              // a negative return code from libhdf5
    }

    public let kind: Kind
    public let file: String
    /// 1-based line for text formats, nil for binary formats.
    public let line: Int?
    public let message: String

    public init(_ kind: Kind, file: String, line: Int? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}

extension FormatError: CustomDebugStringConvertible {
    public var debugDescription: String { "FormatError.\(kind.rawValue)(\(description))" }
}
