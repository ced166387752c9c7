/// Command-line spellings the seed document promises but swift-argument-parser does not accept as is.
///
/// The seed's third example writes `-missing wedges.doc` and `-perturb`: Xmipp-era users spell long
/// options with one dash. Every token made of one dash and a multi-character name (`-missing`,
/// `-perturb`, `-oroot`, `-no_SMALLANGLE`) is rewritten to its double-dash form before parsing. Single
/// letters (`-i`, `-o`, `-v`, `-h`) and negative numbers (`-64`, `-0.5`, `-1e-3`) are left alone.
enum ArgumentNormalisation {
    static func normalise(_ arguments: [String]) -> [String] {
        var out: [String] = []
        out.reserveCapacity(arguments.count)
        var afterTerminator = false
        for token in arguments {
            if afterTerminator || token == "--" {
                afterTerminator = true
                out.append(token)
                continue
            }
            out.append(isSingleDashLongOption(token) ? "-" + token : token)
        }
        return out
    }

    static func isSingleDashLongOption(_ token: String) -> Bool {
        guard token.hasPrefix("-"), !token.hasPrefix("--") else { return false }
        let name = token.dropFirst().prefix { $0 != "=" }
        guard name.count >= 2, let first = name.first, first.isLetter else { return false }
        return name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    }
}
