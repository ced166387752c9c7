import Foundation

extension EvaluationReport {
    /// The human-readable table printed by `ml_tomo evaluate`.
    public func formattedText() -> String {
        func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
        func summary(_ s: ErrorSummary, _ unit: String) -> String {
            "median \(f(s.median))\(unit)  mean \(f(s.mean))\(unit)  rms \(f(s.rms))\(unit)  max \(f(s.max))\(unit)"
        }
        var lines: [String] = []
        lines.append("Particles: \(particles)   true classes: \(trueClasses)   estimated classes: \(estimatedClasses)")
        lines.append("Class accuracy (best label matching): \(f(accuracy, 4))   adjusted Rand index: \(f(adjustedRandIndex, 4))")
        let map = matching.enumerated().map { "\($0.offset + 1)→\($0.element == 0 ? "-" : String($0.element))" }
        lines.append("Label matching (estimated→true): " + map.joined(separator: "  "))
        lines.append("Confusion (rows estimated, columns true):")
        lines.append("        " + (1...max(1, trueClasses)).map { String(format: "%7d", $0) }.joined())
        for (e, row) in confusion.enumerated() {
            lines.append(String(format: "  %4d  ", e + 1) + row.map { String(format: "%7d", $0) }.joined())
        }
        lines.append("Angular error, no frame fit:   " + summary(angularErrorRaw, "°"))
        lines.append("Angular error, fitted frame:   " + summary(angularErrorFitted, "°"))
        lines.append("Shift error, no frame fit:     " + summary(shiftErrorRaw, " px"))
        lines.append("Shift error, fitted frame:     " + summary(shiftErrorFitted, " px"))
        lines.append("Per estimated class (frame G as rot/tilt/psi, g in px; A_true = G·A_est, t_est = t_true − A_trueᵀg):")
        lines.append("  class  true   n  agree  G(rot,tilt,psi)            g(x,y,z)              ang.med  shift.med")
        for c in classes {
            let g = c.frameAngles.map { String(format: "%7.1f", $0) }.joined(separator: " ")
            let t = c.frameTranslation.map { String(format: "%6.2f", $0) }.joined(separator: " ")
            let trueName = c.trueClass.map(String.init) ?? "-"
            let padded = String(repeating: " ", count: max(0, 4 - trueName.count)) + trueName
            lines.append(String(format: "  %5d  ", c.estimatedClass) + padded
                         + String(format: " %4d  %5d  ", c.particles, c.agreeing)
                         + "\(g)   \(t)   " + String(format: "%6.2f°  %6.2f px", c.angularErrorFitted.median,
                                                          c.shiftErrorFitted.median))
        }
        if !references.isEmpty {
            lines.append("Reference FSC against the true reference (after frame rotation and shift search):")
            for r in references {
                var s = "  ref \(r.estimatedClass) (\(r.file)) vs true class \(r.trueClass): "
                s += "FSC 0.5 at \(f(r.resolution05, 4))/px"
                if let a = r.resolution05Angstrom { s += " (\(f(a, 1)) Å)" }
                s += ", FSC 0.143 at \(f(r.resolution0143, 4))/px"
                if let a = r.resolution0143Angstrom { s += " (\(f(a, 1)) Å)" }
                s += ", shift (\(r.alignmentShift.map { f($0) }.joined(separator: ", ")))"
                lines.append(s)
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Pretty-printed JSON with sorted keys.
    public func jsonText() throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try enc.encode(self), as: UTF8.self)
    }
}
