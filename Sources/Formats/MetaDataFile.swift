import Foundation

/// A STAR-syntax metadata file: Xmipp's `XMIPP_STAR_1` (sel/doc/xmd) or a RELION STAR file.
///
/// Holds the `data_` blocks in file order. Reading also accepts the legacy Xmipp 2 selfile
/// (`path 1` / `path -1` lines), which becomes one unnamed block with columns `image`, `enabled`.
public struct MetaDataFile: Equatable, Sendable {
    public var blocks: [MetaDataTable]
    /// The file read (nil when built in memory).
    public var path: String?

    public init(blocks: [MetaDataTable] = [], path: String? = nil) {
        self.blocks = blocks
        self.path = path
    }

    public init(_ table: MetaDataTable) { self.init(blocks: [table]) }

    /// The first block with this name.
    public func block(named name: String) -> MetaDataTable? { blocks.first { $0.name == name } }

    // MARK: Reading

    /// Reads a whole file. `spec` may be `block@file`, in which case only that block is kept.
    public static func read(_ spec: String, applyAliases: Bool = true) throws -> MetaDataFile {
        let (block, path) = splitBlockSpec(spec)
        var file = try parse(bytes: try FileBytes.read(path), path: path, applyAliases: applyAliases)
        if let block {
            guard let t = file.block(named: block) else { throw noSuchBlock(block, in: file, path: path) }
            file.blocks = [t]
        }
        return file
    }

    /// Reads one table: the block named in `block@file`, else the first block.
    public static func readTable(_ spec: String, applyAliases: Bool = true) throws -> MetaDataTable {
        let file = try read(spec, applyAliases: applyAliases)
        guard let first = file.blocks.first else {
            throw FormatError(.syntax, file: splitBlockSpec(spec).path, "the file holds no data_ block")
        }
        return first
    }

    /// Reads the block called `block` of the file at `path`.
    public static func read(path: String, block: String, applyAliases: Bool = true) throws -> MetaDataTable {
        let file = try parse(bytes: try FileBytes.read(path), path: path, applyAliases: applyAliases)
        guard let t = file.block(named: block) else { throw noSuchBlock(block, in: file, path: path) }
        return t
    }

    /// Splits `block@file` (Xmipp addressing). A spec whose full text names an existing file, or whose
    /// prefix contains a slash, is a plain path.
    public static func splitBlockSpec(_ spec: String) -> (block: String?, path: String) {
        guard let at = spec.firstIndex(of: "@") else { return (nil, spec) }
        let prefix = spec[..<at]
        if prefix.isEmpty || prefix.contains("/") || FileManager.default.fileExists(atPath: spec) { return (nil, spec) }
        return (String(prefix), String(spec[spec.index(after: at)...]))
    }

    static func noSuchBlock(_ block: String, in file: MetaDataFile, path: String) -> FormatError {
        FormatError(.missingLabel, file: path,
                    "no block data_\(block) (blocks: \(file.blocks.map { "data_" + $0.name }.joined(separator: ", ")))")
    }

    /// Parses STAR text (or a legacy selfile). `path` is used in error messages.
    public static func parse(text: String, path: String, applyAliases: Bool = true) throws -> MetaDataFile {
        try parse(bytes: Array(text.utf8), path: path, applyAliases: applyAliases)
    }

    public static func parse(bytes: [UInt8], path: String, applyAliases: Bool = true) throws -> MetaDataFile {
        var parser = StarParser(bytes: bytes, path: path)
        var file = MetaDataFile(blocks: try parser.parse(), path: path)
        if applyAliases {
            for b in file.blocks.indices {
                for label in file.blocks[b].labels {
                    let canon = MetaDataLabels.canonical(label)
                    if canon != label, !file.blocks[b].has(canon) {
                        try file.blocks[b].renameColumn(label, to: canon)
                        try StarParser.retype(&file.blocks[b], column: canon)
                    }
                }
            }
        }
        return file
    }

    // MARK: Writing

    /// Writes all blocks atomically (temporary file + rename), with the `# XMIPP_STAR_1 *` header.
    public func write(to path: String) throws {
        try AtomicFile.write(serialized(), to: path)
    }

    /// How `writeBlock` treats an existing file.
    public enum WriteMode: Sendable {
        /// The file is replaced by this single block.
        case overwrite
        /// A block of the same name is replaced in place, otherwise the block is appended (Xmipp's append).
        case replaceOrAppend
    }

    /// Writes one block into `path` (atomically, the whole file is rewritten).
    public static func writeBlock(_ table: MetaDataTable, to path: String, mode: WriteMode = .overwrite) throws {
        var file = MetaDataFile()
        if mode == .replaceOrAppend, FileManager.default.fileExists(atPath: path) {
            file = try read(path, applyAliases: false)
        }
        if let i = file.blocks.firstIndex(where: { $0.name == table.name }) {
            file.blocks[i] = table
        } else {
            file.blocks.append(table)
        }
        try file.write(to: path)
    }

    /// The file's bytes as they are written.
    public func serialized(header: String = "# XMIPP_STAR_1 *") -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(blocks.reduce(256) { $0 + 64 + $1.rowCount * $1.labels.count * 12 })
        out.append(contentsOf: Array(header.utf8))
        out.append(0x0A)
        for (i, t) in blocks.enumerated() {
            if i > 0 { out.append(0x0A) }
            StarWriter.append(t, to: &out, labelSuffix: false)
        }
        return out
    }
}

/// Writes STAR blocks. Shared by the Xmipp and RELION writers.
enum StarWriter {
    /// Appends one block. `labelSuffix` numbers labels RELION-style (`_rlnX #1`) when set.
    static func append(_ t: MetaDataTable, to out: inout [UInt8], labelSuffix: Bool) {
        for line in t.comment.split(separator: "\n", omittingEmptySubsequences: false) {
            out.append(contentsOf: Array("# \(line)\n".utf8))
        }
        if t.comment.isEmpty { out.append(contentsOf: Array("#\n".utf8)) }
        out.append(contentsOf: Array("data_\(t.name)\n".utf8))
        if t.layout == .list && t.rowCount == 1 {
            let width = (t.labels.map(\.utf8.count).max() ?? 0) + 2
            for (c, l) in t.labels.enumerated() {
                out.append(0x20)
                out.append(0x5F)
                out.append(contentsOf: Array(l.utf8))
                for _ in 0..<(width - l.utf8.count) { out.append(0x20) }
                appendValue(t.rows[0][c], to: &out)
                out.append(0x0A)
            }
            return
        }
        out.append(contentsOf: Array("loop_\n".utf8))
        for (c, l) in t.labels.enumerated() {
            out.append(0x20)
            out.append(0x5F)
            out.append(contentsOf: Array(l.utf8))
            if labelSuffix { out.append(contentsOf: Array(" #\(c + 1)".utf8)) }
            out.append(0x0A)
        }
        for row in t.rows {
            for v in row {
                out.append(0x20)
                appendValue(v, to: &out)
            }
            out.append(0x0A)
        }
    }

    static func appendValue(_ v: MetaDataValue, to out: inout [UInt8]) {
        switch v {
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .real(let d): out.append(contentsOf: MetaDataValue.format(d).utf8)
        case .string(let s): appendString(s, to: &out)
        }
    }

    /// Strings that would not read back as one plain token are quoted.
    static func appendString(_ s: String, to out: inout [UInt8]) {
        if !needsQuotes(s) {
            out.append(contentsOf: s.utf8)
            return
        }
        let q: UInt8 = s.utf8.contains(0x27) ? 0x22 : 0x27   // ' unless the string holds one
        out.append(q)
        out.append(contentsOf: s.utf8)
        out.append(q)
    }

    static func needsQuotes(_ s: String) -> Bool {
        guard let first = s.utf8.first else { return true }
        if s.utf8.contains(where: { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) { return true }
        if [0x5F, 0x23, 0x27, 0x22, 0x24, 0x3B, 0x5B, 0x5D].contains(first) { return true }
        let lower = s.lowercased()
        for reserved in ["data_", "loop_", "save_", "stop_", "global_"] where lower.hasPrefix(reserved) { return true }
        return false
    }
}

/// Line-oriented STAR parser over bytes (fast enough for 10^5-row docs).
struct StarParser {
    let bytes: [UInt8]
    let path: String

    private struct Token { var start: Int; var end: Int; var quoted: Bool }

    private struct PendingBlock {
        var name: String
        var line: Int
        var comment: String
        var labels: [String] = []
        var isLoop = false
        var cells: [[String]] = []          // per row, raw text
        var rowLines: [Int] = []
        var quotedColumns: Set<Int> = []
        var listValues: [String] = []
        var listLines: [Int] = []
        var listQuoted: Set<Int> = []
    }

    init(bytes: [UInt8], path: String) {
        self.bytes = bytes
        self.path = path
    }

    mutating func parse() throws -> [MetaDataTable] {
        let lines = splitLines()
        // Legacy selfile: no STAR header and no data_ line anywhere.
        let isStar = lines.contains { r in
            let t = trimmedStart(r)
            return hasPrefix(t, "data_") || hasPrefix(t, "# XMIPP_STAR") || hasPrefix(t, "#XMIPP_STAR")
        }
        if !isStar { return [try parseSelfile(lines)] }

        var tables: [MetaDataTable] = []
        var current: PendingBlock?
        var pendingComment: [String] = []

        for (i, r) in lines.enumerated() {
            let lineNo = i + 1
            let t = trimmedStart(r)
            if t.lowerBound >= t.upperBound { continue }
            let first = bytes[t.lowerBound]
            if first == 0x23 { // '#'
                var text = string(t.lowerBound + 1, t.upperBound).trimmingCharacters(in: .whitespaces)
                if text.hasPrefix("XMIPP_STAR") { continue }
                if text.hasSuffix("\r") { text.removeLast() }
                if !text.isEmpty { pendingComment.append(text) }
                continue
            }
            if hasPrefix(t, "data_") {
                if let b = current { tables.append(try finish(b)) }
                let tokEnd = firstWhitespace(from: t.lowerBound, to: t.upperBound)
                current = PendingBlock(name: string(t.lowerBound + 5, tokEnd), line: lineNo,
                                       comment: pendingComment.joined(separator: "\n"))
                pendingComment = []
                continue
            }
            guard current != nil else {
                throw FormatError(.syntax, file: path, line: lineNo, "text before the first data_ block: '\(string(t.lowerBound, t.upperBound))'")
            }
            if hasPrefix(t, "loop_") {
                if current!.isLoop || !current!.listValues.isEmpty || !current!.labels.isEmpty {
                    throw FormatError(.syntax, file: path, line: lineNo, "a second loop_ in block data_\(current!.name) (one table per block)")
                }
                current!.isLoop = true
                continue
            }
            let tokens = try tokenize(t, line: lineNo)
            if first == 0x5F { // '_' label
                let label = string(tokens[0].start + 1, tokens[0].end)
                if label.isEmpty { throw FormatError(.syntax, file: path, line: lineNo, "empty label '_'") }
                if current!.labels.contains(label) {
                    throw FormatError(.syntax, file: path, line: lineNo, "label _\(label) appears twice in block data_\(current!.name)")
                }
                if current!.isLoop {
                    if !current!.cells.isEmpty {
                        throw FormatError(.syntax, file: path, line: lineNo, "label _\(label) after the rows of the loop in block data_\(current!.name)")
                    }
                    current!.labels.append(label)   // anything after the label (RELION's `#3`) is a comment
                } else {
                    guard tokens.count >= 2 else {
                        throw FormatError(.syntax, file: path, line: lineNo, "label _\(label) has no value")
                    }
                    if tokens.count > 2, bytes[tokens[2].start] != 0x23 {
                        throw FormatError(.syntax, file: path, line: lineNo, "label _\(label) has more than one value")
                    }
                    if tokens[1].quoted { current!.listQuoted.insert(current!.labels.count) }
                    current!.labels.append(label)
                    current!.listValues.append(string(tokens[1].start, tokens[1].end))
                    current!.listLines.append(lineNo)
                }
                continue
            }
            guard current!.isLoop else {
                throw FormatError(.syntax, file: path, line: lineNo, "value outside a loop_ in block data_\(current!.name): '\(string(t.lowerBound, t.upperBound))'")
            }
            guard !current!.labels.isEmpty else {
                throw FormatError(.syntax, file: path, line: lineNo, "row before any label in loop_ of block data_\(current!.name)")
            }
            var n = tokens.count
            if let k = tokens.firstIndex(where: { !$0.quoted && bytes[$0.start] == 0x23 }) { n = k }  // trailing comment
            if n != current!.labels.count {
                throw FormatError(.syntax, file: path, line: lineNo, "row has \(n) values but block data_\(current!.name) has \(current!.labels.count) labels")
            }
            var row: [String] = []
            row.reserveCapacity(n)
            for (c, tok) in tokens.prefix(n).enumerated() {
                row.append(string(tok.start, tok.end))
                if tok.quoted { current!.quotedColumns.insert(c) }
            }
            current!.cells.append(row)
            current!.rowLines.append(lineNo)
        }
        if let b = current { tables.append(try finish(b)) }
        return tables
    }

    private func finish(_ b: PendingBlock) throws -> MetaDataTable {
        if b.isLoop {
            var columns: [[MetaDataValue]] = []
            for c in b.labels.indices {
                let raw = b.cells.map { $0[c] }
                columns.append(try Self.typeColumn(label: b.labels[c], raw: raw, quoted: b.quotedColumns.contains(c),
                                                   lines: b.rowLines, path: path))
            }
            var rows: [[MetaDataValue]] = []
            rows.reserveCapacity(b.cells.count)
            for r in b.cells.indices { rows.append(columns.map { $0[r] }) }
            return MetaDataTable(parsedName: b.name, labels: b.labels, rows: rows, rowLines: b.rowLines, layout: .loop,
                                 comment: b.comment, source: path, blockLine: b.line)
        }
        // Key/value block: one row; each value has its own line.
        var row: [MetaDataValue] = []
        for c in b.labels.indices {
            row.append(contentsOf: try Self.typeColumn(label: b.labels[c], raw: [b.listValues[c]], quoted: b.listQuoted.contains(c),
                                                       lines: [b.listLines[c]], path: path))
        }
        let rows: [[MetaDataValue]] = b.labels.isEmpty ? [] : [row]
        return MetaDataTable(parsedName: b.name, labels: b.labels, rows: rows, rowLines: b.labels.isEmpty ? [] : [b.listLines.first ?? b.line],
                             layout: .list, comment: b.comment, source: path, blockLine: b.line)
    }

    /// Converts raw texts of one column to typed values (known type, else inferred).
    static func typeColumn(label: String, raw: [String], quoted: Bool, lines: [Int], path: String) throws -> [MetaDataValue] {
        let known = MetaDataLabels.types[label] ?? MetaDataLabels.types[MetaDataLabels.canonical(label)]
        switch known {
        case .string?:
            return raw.map { .string($0) }
        case .int?:
            return try raw.enumerated().map { (r, s) in
                if let i = MetaDataText.parseInt(s) { return .int(i) }
                if let d = MetaDataText.parseDouble(s), d.rounded() == d, abs(d) < 9.0e15 { return .int(Int(d)) }
                throw FormatError(.wrongType, file: path, line: lines[r], "_\(label) = '\(s)' is not an integer")
            }
        case .real?:
            return try raw.enumerated().map { (r, s) in
                if let d = MetaDataText.parseDouble(s) { return .real(d) }
                throw FormatError(.wrongType, file: path, line: lines[r], "_\(label) = '\(s)' is not a number")
            }
        case nil:
            if quoted { return raw.map { .string($0) } }
            var ints: [MetaDataValue] = []
            ints.reserveCapacity(raw.count)
            var allInt = true
            for s in raw {
                guard let i = MetaDataText.parseInt(s) else { allInt = false; break }
                ints.append(.int(i))
            }
            if allInt { return ints }
            var reals: [MetaDataValue] = []
            reals.reserveCapacity(raw.count)
            for s in raw {
                guard let d = MetaDataText.parseDouble(s), !s.hasPrefix("0x"), !s.hasPrefix("-0x") else { return raw.map { .string($0) } }
                reals.append(.real(d))
            }
            return reals
        }
    }

    /// Re-types a column after an alias was renamed to a known label.
    static func retype(_ t: inout MetaDataTable, column: String) throws {
        guard MetaDataLabels.types[column] != nil, let c = t.columnIndex(column) else { return }
        let raw = t.rows.map { $0[c].description }
        let lines = t.rows.indices.map { t.line(ofRow: $0) ?? 0 }
        let typed = try typeColumn(label: column, raw: raw, quoted: false, lines: lines, path: t.sourceName)
        for r in t.rows.indices { t.set(column, row: r, typed[r]) }
    }

    // MARK: Legacy selfile

    private func parseSelfile(_ lines: [Range<Int>]) throws -> MetaDataTable {
        var t = MetaDataTable(name: "", labels: ["image", "enabled"])
        for (i, r) in lines.enumerated() {
            let tr = trimmedStart(r)
            if tr.lowerBound >= tr.upperBound || bytes[tr.lowerBound] == 0x23 { continue }
            let tokens = try tokenize(tr, line: i + 1)
            guard tokens.count <= 2 else {
                throw FormatError(.syntax, file: path, line: i + 1, "not a metadata file: expected '# XMIPP_STAR_1 *' and data_ blocks, or selfile lines 'path 1'")
            }
            let image = string(tokens[0].start, tokens[0].end)
            var enabled = 1
            if tokens.count == 2 {
                let s = string(tokens[1].start, tokens[1].end)
                guard let e = MetaDataText.parseInt(s) else {
                    throw FormatError(.wrongType, file: path, line: i + 1, "selfile flag '\(s)' is not an integer (1 enabled, -1 disabled)")
                }
                enabled = e
            }
            t.appendRow([.string(image), .int(enabled)], line: i + 1)
        }
        t.source = path
        return t
    }

    // MARK: Bytes

    private func splitLines() -> [Range<Int>] {
        var out: [Range<Int>] = []
        var start = 0
        let n = bytes.count
        bytes.withUnsafeBufferPointer { p in
            var i = 0
            while i < n {
                if p[i] == 0x0A {
                    var e = i
                    if e > start && p[e - 1] == 0x0D { e -= 1 }
                    out.append(start..<e)
                    start = i + 1
                }
                i += 1
            }
        }
        if start < n {
            var e = n
            if bytes[e - 1] == 0x0D { e -= 1 }
            out.append(start..<e)
        }
        return out
    }

    private func trimmedStart(_ r: Range<Int>) -> Range<Int> {
        var a = r.lowerBound
        var b = r.upperBound
        while a < b && isSpace(bytes[a]) { a += 1 }
        while b > a && isSpace(bytes[b - 1]) { b -= 1 }
        return a..<b
    }

    @inline(__always) private func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0B || c == 0x0C }

    private func hasPrefix(_ r: Range<Int>, _ p: String) -> Bool {
        let u = Array(p.utf8)
        guard r.count >= u.count else { return false }
        for k in 0..<u.count where bytes[r.lowerBound + k] != u[k] { return false }
        return true
    }

    private func firstWhitespace(from a: Int, to b: Int) -> Int {
        var i = a
        while i < b && !isSpace(bytes[i]) { i += 1 }
        return i
    }

    private func string(_ a: Int, _ b: Int) -> String {
        guard a < b else { return "" }
        return bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[a..<b]), as: UTF8.self) }
    }

    /// Splits a line into tokens. A quoted token starts with ' or " and ends at the same quote followed by
    /// whitespace or end of line (STAR rule, so `'it's'` is one token).
    private func tokenize(_ r: Range<Int>, line: Int) throws -> [Token] {
        var out: [Token] = []
        var i = r.lowerBound
        let end = r.upperBound
        while i < end {
            while i < end && isSpace(bytes[i]) { i += 1 }
            if i >= end { break }
            let c = bytes[i]
            if c == 0x27 || c == 0x22 {
                var j = i + 1
                var closed = false
                while j < end {
                    if bytes[j] == c && (j + 1 == end || isSpace(bytes[j + 1])) { closed = true; break }
                    j += 1
                }
                if !closed { throw FormatError(.syntax, file: path, line: line, "unterminated quoted string") }
                out.append(Token(start: i + 1, end: j, quoted: true))
                i = j + 1
            } else {
                let j = firstWhitespace(from: i, to: end)
                out.append(Token(start: i, end: j, quoted: false))
                i = j
            }
        }
        return out
    }
}
