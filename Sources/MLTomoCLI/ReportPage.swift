import Foundation
import Formats
import Plot

/// The report's HTML, built with Plot (escaping and structure by the library, not by string
/// concatenation). Plots are inline SVG (SVGChart); images are PNG data URLs, so the file stands alone.
enum ReportPage {
    /// Reads the run `oroot` wrote and writes its report (atomically) to `path`, by default
    /// `<oroot>_report.html`. Returns the path written and what was read. This is what `ml_tomo report`
    /// runs, and what a refinement can call when it ends.
    @discardableResult
    static func write(oroot: String, to path: String? = nil) throws -> (path: String, history: RunHistory) {
        let history = try RunHistory.read(oroot: oroot)
        let out = path ?? oroot + "_report.html"
        try AtomicFile.write(html(history), to: out)
        return (out, history)
    }

    /// Particles shown per class in the angular distribution; beyond it every n-th (said in the title).
    static let maxDotsPerClass = 3000

    static func html(_ h: RunHistory) -> String {
        let its = h.iterations.filter { $0.number >= 1 }
        let shown = its.isEmpty ? h.iterations : its
        let x = shown.map { Double($0.number) }
        let iterationAxis = SVGChart.Axis(label: "iteration", integer: true)
        func single(_ name: String, _ values: [Double]) -> [SVGChart.Series] {
            [SVGChart.Series(name: name, points: zip(x, values).map { (x: $0, y: $1) })]
        }
        func perClass(_ value: @escaping (RunHistory.Iteration, Int) -> Double) -> [SVGChart.Series] {
            (0 ..< h.classCount).map { k in SVGChart.Series(name: "class \(k + 1)", points: shown.map { (Double($0.number), value($0, k)) }) }
        }
        var charts: [SVGChart] = [
            SVGChart(title: "Log-likelihood", x: iterationAxis, y: .init(label: "log L"),
                     series: single("log L", shown.map(\.logLikelihood))),
            SVGChart(title: "Class fractions", x: iterationAxis, y: .init(label: "fraction"),
                     series: perClass { $1 < $0.fractions.count ? $0.fractions[$1] : 0 }),
            SVGChart(title: "σ (noise)", x: iterationAxis, y: .init(label: "σ"),
                     series: single("σ", shown.map(\.sigmaNoise))),
            SVGChart(title: "σ offset", x: iterationAxis, y: .init(label: "pixels (working size)"),
                     series: single("σ offset", shown.map(\.sigmaOffset))),
            SVGChart(title: "Resolution (FSC 0.5 between half-sets)", x: iterationAxis, y: .init(label: "Å⁻¹"),
                     series: perClass { $1 < $0.resolutions.count ? $0.resolutions[$1] : 0 }),
        ]
        let d = Double(h.workingBox)
        charts.append(SVGChart(title: "FSC of iteration \(h.iterations.last?.number ?? 0)", x: .init(label: "frequency (Å⁻¹)"),
                               y: .init(label: "FSC"),
                               series: h.lastFSC.enumerated().map { k, curve in
                                   .init(name: "class \(k + 1)", points: curve.enumerated().map { (Double($0.offset + 1) / (d * h.voxelSize), $0.element) })
                               }, guides: [0.5, 0.143]))

        let page = HTML(
            .head(.title("ml_tomo report: \((h.oroot as NSString).lastPathComponent)"), .meta(.charset(.utf8)),
                  .style("""
                  body { font-family: sans-serif; margin: 2em; color: #222; }
                  .charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
                  .class { display: inline-block; margin-right: 2em; vertical-align: top; }
                  .figure { display: inline-block; margin: 0.3em; text-align: center; }
                  .figure p { margin: 0.2em; }
                  .figure img { width: 160px; height: 160px; image-rendering: pixelated; border: 1px solid #888; }
                  .strips { display: flex; flex-wrap: wrap; column-gap: 2.5em; }
                  .strip { overflow-x: auto; max-width: 100%; }
                  .strip table { border-collapse: collapse; }
                  .strip th { font-weight: normal; font-size: 12px; padding: 0 2px; }
                  .strip td { padding: 2px; }
                  .strip img { width: 64px; height: 64px; image-rendering: pixelated; display: block; }
                  svg text { font-size: 12px; }
                  """)),
            .body(
                .h1(.text("ml_tomo run \(h.oroot)")),
                .p(.text("\(h.iterations.count) iteration file(s) (\(h.iterations.first?.number ?? 0) … \(h.iterations.last?.number ?? 0)), "
                         + "\(h.classCount) class(es), working box \(h.workingBox), \(String(format: "%.3g", h.voxelSize)) Å per voxel.")),
                .h2(.text("Per iteration")),
                .div(.class("charts"), .group(charts.map { $0.node() })),
                .h2(.text("Angular distribution of iteration \(h.iterations.last?.number ?? 0)")),
                .p(.text("rot and tilt of each particle's pose (Xmipp angles, tilt folded into 0–180°), by class.")),
                angularDistribution(h),
                .h2(.text("Central sections of the final references")),
                .div(.class("sections"), .group(finalSections(h))),
                .h2(.text("Central sections per iteration")),
                .p(.text("Each section scaled from its own minimum (black) to maximum (white); iteration 0 holds the starting references.")),
                .div(.class("strips"), .group(sectionStrips(h)))
            )
        )
        return page.render(indentedBy: .spaces(1))
    }

    /// One scatter plot per class: (rot, tilt) of the particles the last iteration put in it.
    static func angularDistribution(_ h: RunHistory) -> Node<HTML.BodyContext> {
        guard !h.lastOrientations.isEmpty else {
            return .p(.text("(no orientations: the last iteration's doc is missing or has no angles)"))
        }
        let charts = (0 ..< h.classCount).map { k -> Node<HTML.BodyContext> in
            let members = h.lastOrientations.filter { $0.classNumber == k + 1 }
            let stride = max(1, (members.count + maxDotsPerClass - 1) / maxDotsPerClass)
            let dots = Swift.stride(from: 0, to: members.count, by: stride).map { (members[$0].rot, members[$0].tilt) }
            let note = stride > 1 ? ", every \(stride)th shown" : ""
            return SVGChart(title: "Class \(k + 1): \(members.count) particle(s)\(note)",
                            x: .init(label: "rot (°)", range: -180 ... 180, step: 60),
                            y: .init(label: "tilt (°)", range: 0 ... 180, step: 30),
                            series: [.init(name: "class \(k + 1)", points: dots)], style: .dots, firstColour: k,
                            width: 360, height: 220).node()
        }
        return .div(.class("charts"), .group(charts))
    }

    static func image(_ plane: CentralSections.Plane, name: String, alt: String) -> Node<HTML.BodyContext> {
        .img(.src("data:image/png;base64," + plane.png().base64EncodedString()), .alt(alt),
             .attribute(named: "data-section", value: name))
    }

    /// Large x, y and z sections of each final reference (`data-section` = "class<k>-<normal>").
    static func finalSections(_ h: RunHistory) -> [Node<HTML.BodyContext>] {
        h.finalSections.enumerated().map { k, sections in
            .div(.class("class"),
                 .h3(.text("Class \(k + 1)")),
                 .group(sections.planes.map { plane in
                     .div(.class("figure"),
                          image(plane, name: "class\(k + 1)-\(plane.normal.rawValue)",
                                alt: "class \(k + 1), central section normal to \(plane.normal.rawValue)"),
                          .p(.text("\(plane.normal.rawValue) = centre")))
                 }))
        }
    }

    /// Per class a table: one row per section normal, one column per iteration (`data-section` =
    /// "class<k>-<normal>-it<n>").
    static func sectionStrips(_ h: RunHistory) -> [Node<HTML.BodyContext>] {
        (0 ..< h.classCount).map { k in
            .div(.class("strip"),
                 .h3(.text("Class \(k + 1)")),
                 .table(
                     .tr(.th(), .group(h.iterations.map { .th(.text("it \($0.number)")) })),
                     .group(CentralSections.Normal.allCases.enumerated().map { a, normal in
                         .tr(.th(.text(normal.rawValue)),
                             .group(h.iterations.map { it in
                                 guard k < it.sections.count else { return .td() }
                                 return .td(image(it.sections[k].planes[a], name: "class\(k + 1)-\(normal.rawValue)-it\(it.number)",
                                                  alt: "class \(k + 1), iteration \(it.number), section normal to \(normal.rawValue)"))
                             }))
                     })
                 ))
        }
    }
}
