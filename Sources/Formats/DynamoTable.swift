import Foundation

/// A Dynamo table (`.tbl`): one particle per line, whitespace-separated numbers, columns numbered from 1
/// as in Dynamo's `dthelp` (4–6 dx dy dz, 7–9 tdrot tilt narot, 13–17 the missing wedge, 20 tomogram,
/// 22 class, 24–26 x y z, 36 pixel size). Lines may have any number of columns ≥ 9; absent ones read 0.
public struct DynamoTable: Equatable, Sendable {
    /// Column numbers (1-based) used here.
    public enum Column: Int, Sendable {
        case tag = 1, aligned = 2, averaged = 3, dx = 4, dy = 5, dz = 6, tdrot = 7, tilt = 8, narot = 9, cc = 10
        case ftype = 13, ymintilt = 14, ymaxtilt = 15, xmintilt = 16, xmaxtilt = 17
        case tomo = 20, reg = 21, classNumber = 22, x = 24, y = 25, z = 26, apix = 36
    }

    /// Columns written by `serialized()`: Dynamo's standard 35, or 36 when a pixel size is set.
    public static let standardColumns = 35

    public var rows: [[Double]]
    /// 1-based line of each row in the file read (empty in memory).
    public var rowLines: [Int]
    public var path: String?

    public init(rows: [[Double]] = []) {
        self.rows = rows
        self.rowLines = []
        self.path = nil
    }

    public var count: Int { rows.count }

    public subscript(row: Int, column: Column) -> Double {
        get { column.rawValue <= rows[row].count ? rows[row][column.rawValue - 1] : 0 }
        set {
            if rows[row].count < column.rawValue {
                rows[row] += [Double](repeating: 0, count: column.rawValue - rows[row].count)
            }
            rows[row][column.rawValue - 1] = newValue
        }
    }

    /// A new row of `standardColumns` zeros with the tag and Dynamo's "aligned" and "averaged" flags set.
    public mutating func appendRow(tag: Int) {
        var r = [Double](repeating: 0, count: Self.standardColumns)
        r[0] = Double(tag)
        r[1] = 1
        r[2] = 1
        rows.append(r)
    }

    public static func read(_ path: String) throws -> DynamoTable {
        let bytes = try FileBytes.read(path)
        return try parse(text: String(decoding: bytes, as: UTF8.self), path: path)
    }

    public static func parse(text: String, path: String) throws -> DynamoTable {
        var t = DynamoTable()
        t.path = path
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count >= Column.narot.rawValue else {
                throw FormatError(.syntax, file: path, line: i + 1,
                                  "a Dynamo table row needs at least 9 columns (tag … narot), this one has \(fields.count)")
            }
            var row: [Double] = []
            row.reserveCapacity(fields.count)
            for (c, f) in fields.enumerated() {
                guard let v = Double(f) else {
                    throw FormatError(.wrongType, file: path, line: i + 1, "column \(c + 1) is '\(f)', not a number")
                }
                guard v.isFinite else {
                    throw FormatError(.nonFinite, file: path, line: i + 1, "column \(c + 1) is \(f)")
                }
                row.append(v)
            }
            t.rows.append(row)
            t.rowLines.append(i + 1)
        }
        if t.rows.isEmpty { throw FormatError(.syntax, file: path, "the Dynamo table has no particle rows") }
        return t
    }

    /// `file:line` of a row, for messages.
    public func location(row: Int) -> String {
        let file = path ?? "<Dynamo table in memory>"
        return row < rowLines.count ? "\(file):\(rowLines[row])" : file
    }

    /// One line per particle; integers without a decimal point, reals as the shortest round-trip text.
    public func serialized() -> String {
        var out = ""
        for r in rows {
            out += r.map { $0.rounded() == $0 && abs($0) < 1e15 ? String(Int($0)) : $0.description }.joined(separator: " ")
            out += "\n"
        }
        return out
    }

    public func write(to path: String) throws {
        try AtomicFile.write(serialized(), to: path)
    }
}
