/// One value of a metadata table cell.
public enum MetaDataValue: Equatable, Hashable, Sendable, CustomStringConvertible {
    case int(Int)
    case real(Double)
    case string(String)

    /// The value as it would be written in a STAR file (strings unquoted).
    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .real(let v): return MetaDataValue.format(v)
        case .string(let s): return s
        }
    }

    /// Shortest text that parses back to exactly the same Double (Swift's and Python's float() agree).
    static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v < 0 ? "-inf" : "inf" }
        return v.description
    }

    var typeName: String {
        switch self {
        case .int: return "an integer"
        case .real: return "a real"
        case .string: return "a string"
        }
    }
}

/// The type a column is expected to hold.
public enum MetaDataType: String, Sendable {
    case int = "integer"
    case real = "real"
    case string = "string"
}

/// One `data_` block of a STAR / Xmipp metadata file: a table with named columns, in a stable order.
///
/// Labels are stored without the leading underscore (`image`, `rlnImageName`). Rows remember the line
/// they were read from, so every accessor error can name `file:line`.
public struct MetaDataTable: Equatable, Sendable {
    /// How a block is laid out on disk.
    public enum Layout: Sendable, Equatable {
        /// `loop_` followed by labels and one row per line.
        case loop
        /// Key/value pairs `_label value` (exactly one row); Xmipp calls it "row format".
        case list
    }

    /// Block name after `data_` (may be empty: `data_`).
    public var name: String
    public private(set) var labels: [String]
    public private(set) var rows: [[MetaDataValue]]
    public var layout: Layout
    /// Comment lines written before `data_` (without the leading `# `), e.g. the command line of a run.
    public var comment: String
    /// The file this table was read from (nil when built in memory).
    public var source: String?
    /// 1-based source line of each row (empty when built in memory).
    public private(set) var rowLines: [Int]
    /// Line of the `data_` header in the source (0 in memory).
    public var blockLine: Int

    private var index: [String: Int]

    public init(name: String = "", labels: [String] = [], layout: Layout = .loop, comment: String = "") {
        self.name = name
        self.labels = []
        self.rows = []
        self.layout = layout
        self.comment = comment
        self.source = nil
        self.rowLines = []
        self.blockLine = 0
        self.index = [:]
        for l in labels { addColumnLabel(l) }
    }

    public var rowCount: Int { rows.count }
    public var isEmpty: Bool { rows.isEmpty }

    public static func == (a: MetaDataTable, b: MetaDataTable) -> Bool {
        a.name == b.name && a.labels == b.labels && a.rows == b.rows && a.layout == b.layout && a.comment == b.comment
    }

    // MARK: Columns

    public func columnIndex(_ label: String) -> Int? { index[label] }
    public func has(_ label: String) -> Bool { index[label] != nil }

    /// Throws `.missingLabel` naming the file and block unless every label is present.
    public func require(_ required: [String]) throws {
        let missing = required.filter { index[$0] == nil }
        if !missing.isEmpty {
            throw FormatError(.missingLabel, file: sourceName, line: blockLine > 0 ? blockLine : nil,
                              "block '\(blockDescription)' lacks required label(s) \(missing.map { "_" + $0 }.joined(separator: ", ")); it has \(labels.map { "_" + $0 }.joined(separator: " "))")
        }
    }

    /// Adds a column filled with `fill` (no-op if present). New columns go to the end, keeping order stable.
    public mutating func addColumn(_ label: String, fill: MetaDataValue) {
        guard index[label] == nil else { return }
        addColumnLabel(label)
        for r in rows.indices { rows[r].append(fill) }
    }

    public mutating func removeColumn(_ label: String) {
        guard let c = index[label] else { return }
        labels.remove(at: c)
        for r in rows.indices { rows[r].remove(at: c) }
        rebuildIndex()
    }

    /// Renames a column (keeps its position). Throws if the new name already exists.
    public mutating func renameColumn(_ old: String, to new: String) throws {
        guard let c = index[old] else { throw unknownLabel(old) }
        if old == new { return }
        if index[new] != nil {
            throw FormatError(.syntax, file: sourceName, line: blockLine > 0 ? blockLine : nil, "block '\(blockDescription)' has both _\(old) and _\(new)")
        }
        labels[c] = new
        rebuildIndex()
    }

    private mutating func addColumnLabel(_ label: String) {
        index[label] = labels.count
        labels.append(label)
    }

    private mutating func rebuildIndex() {
        index = [:]
        for (i, l) in labels.enumerated() { index[l] = i }
    }

    // MARK: Rows

    /// Appends a row; `values` must have one value per label, in label order.
    public mutating func appendRow(_ values: [MetaDataValue], line: Int? = nil) {
        precondition(values.count == labels.count, "row has \(values.count) values for \(labels.count) labels")
        rows.append(values)
        if let line {
            if rowLines.count == rows.count - 1 { rowLines.append(line) }
        } else if !rowLines.isEmpty {
            rowLines.append(0)
        }
    }

    /// Appends a row given as label → value. Labels absent from the table are added (earlier rows get
    /// `fill`, or "" for string values); cells not given get `fill`, or "" in columns that hold strings.
    public mutating func appendRow(_ values: [(String, MetaDataValue)], fill: MetaDataValue = .int(0)) {
        for (l, v) in values where index[l] == nil {
            if case .string = v { addColumn(l, fill: .string("")) } else { addColumn(l, fill: fill) }
        }
        var row = [MetaDataValue](repeating: fill, count: labels.count)
        if let previous = rows.last {
            for c in labels.indices { if case .string = previous[c] { row[c] = .string("") } }
        }
        for (l, v) in values { row[index[l]!] = v }
        appendRow(row)
    }

    /// Sets one cell; the column is added (filled with `fill` in other rows) if missing.
    public mutating func set(_ label: String, row: Int, _ value: MetaDataValue, fill: MetaDataValue = .int(0)) {
        if index[label] == nil { addColumn(label, fill: fill) }
        rows[row][index[label]!] = value
    }

    /// Keeps only the rows at `rowIndices` (in that order).
    public mutating func selectRows(_ rowIndices: [Int]) {
        rows = rowIndices.map { rows[$0] }
        if !rowLines.isEmpty { rowLines = rowIndices.map { rowLines[$0] } }
    }

    // MARK: Typed access

    public func value(_ label: String, row: Int) throws -> MetaDataValue {
        guard let c = index[label] else { throw unknownLabel(label) }
        return rows[row][c]
    }

    /// Integer cell. Reals with an integral value (`1.00`, as Xmipp sometimes writes) are accepted.
    public func int(_ label: String, row: Int) throws -> Int {
        let v = try value(label, row: row)
        switch v {
        case .int(let i): return i
        case .real(let d):
            if d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
        case .string(let s):
            if let i = MetaDataText.parseInt(s) { return i }
        }
        throw wrongType(label, row: row, v, expected: .int)
    }

    /// Real cell (integers are widened).
    public func double(_ label: String, row: Int) throws -> Double {
        let v = try value(label, row: row)
        switch v {
        case .int(let i): return Double(i)
        case .real(let d): return d
        case .string(let s):
            if let d = MetaDataText.parseDouble(s) { return d }
        }
        throw wrongType(label, row: row, v, expected: .real)
    }

    /// String cell; numbers are returned as written.
    public func string(_ label: String, row: Int) throws -> String {
        try value(label, row: row).description
    }

    /// The `file:line` of a row, for messages of callers that validate values themselves.
    public func location(row: Int) -> String {
        if let line = line(ofRow: row) { return "\(sourceName):\(line)" }
        return sourceName
    }

    public func line(ofRow row: Int) -> Int? {
        row < rowLines.count && rowLines[row] > 0 ? rowLines[row] : nil
    }

    /// An error about a row, positioned at its source line (for callers' own validation).
    public func error(row: Int, _ kind: FormatError.Kind, _ message: String) -> FormatError {
        FormatError(kind, file: sourceName, line: line(ofRow: row), message)
    }

    // MARK: enabled

    /// Indices of rows that are enabled: rows without an `enabled` column, or with `enabled > 0`
    /// (Xmipp drops rows with `enabled <= 0`).
    public func enabledRowIndices() throws -> [Int] {
        guard has("enabled") else { return Array(rows.indices) }
        var out: [Int] = []
        out.reserveCapacity(rows.count)
        for r in rows.indices where try int("enabled", row: r) > 0 { out.append(r) }
        return out
    }

    /// A copy without the disabled rows.
    public func removingDisabledRows() throws -> MetaDataTable {
        var t = self
        t.selectRows(try enabledRowIndices())
        return t
    }

    // MARK: Errors

    var sourceName: String { source ?? "<metadata in memory>" }
    var blockDescription: String { "data_\(name)" }

    func unknownLabel(_ label: String) -> FormatError {
        FormatError(.unknownLabel, file: sourceName, line: blockLine > 0 ? blockLine : nil,
                    "block '\(blockDescription)' has no label _\(label) (labels: \(labels.map { "_" + $0 }.joined(separator: " ")))")
    }

    func wrongType(_ label: String, row: Int, _ v: MetaDataValue, expected: MetaDataType) -> FormatError {
        FormatError(.wrongType, file: sourceName, line: line(ofRow: row),
                    "_\(label) = '\(v.description)' is \(v.typeName), expected \(expected == .int ? "an integer" : expected == .real ? "a real" : "a string")")
    }

    // Internal construction used by the parser (already-typed rows with line numbers).
    init(parsedName: String, labels: [String], rows: [[MetaDataValue]], rowLines: [Int], layout: Layout,
         comment: String, source: String, blockLine: Int) {
        self.init(name: parsedName, labels: labels, layout: layout, comment: comment)
        self.rows = rows
        self.rowLines = rowLines
        self.source = source
        self.blockLine = blockLine
    }
}

/// Numeric parsing shared by the text formats.
enum MetaDataText {
    static func parseInt(_ s: String) -> Int? {
        if let i = Int(s) { return i }
        if s.hasPrefix("+"), let i = Int(s.dropFirst()) { return i }
        return nil
    }

    static func parseDouble(_ s: String) -> Double? {
        if let d = Double(s) { return d }
        return nil
    }
}
