import Foundation
import Formats
import Plot
import Volumes

/// The report's HTML, built with Plot (escaping and structure by the library, not by string
/// concatenation). Plots are inline SVG drawn here; images are PNG data URLs, so the file stands alone.
enum ReportPage {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    static func html(_ h: RunHistory) -> String {
        let its = h.iterations.filter { $0.number >= 1 }
        let shown = its.isEmpty ? h.iterations : its
        let x = shown.map { Double($0.number) }
        var charts: [Node<HTML.BodyContext>] = []
        charts.append(chart(title: "Log-likelihood", xLabel: "iteration", yLabel: "log L",
                            series: [("log L", Array(zip(x, shown.map(\.logLikelihood))))]))
        charts.append(chart(title: "Class fractions", xLabel: "iteration", yLabel: "fraction",
                            series: (0 ..< h.classCount).map { k in
                                ("class \(k + 1)", Array(zip(x, shown.map { k < $0.fractions.count ? $0.fractions[k] : 0 })))
                            }))
        charts.append(chart(title: "σ (noise)", xLabel: "iteration", yLabel: "σ", series: [("σ", Array(zip(x, shown.map(\.sigmaNoise))))]))
        charts.append(chart(title: "σ offset", xLabel: "iteration", yLabel: "pixels (working size)",
                            series: [("σ offset", Array(zip(x, shown.map(\.sigmaOffset))))]))
        charts.append(chart(title: "Resolution (FSC 0.5 between half-sets)", xLabel: "iteration", yLabel: "Å⁻¹",
                            series: (0 ..< h.classCount).map { k in
                                ("class \(k + 1)", Array(zip(x, shown.map { k < $0.resolutions.count ? $0.resolutions[k] : 0 })))
                            }))
        let d = Double(h.workingBox)
        charts.append(chart(title: "FSC of iteration \(h.iterations.last?.number ?? 0)", xLabel: "frequency (Å⁻¹)", yLabel: "FSC",
                            series: h.lastFSC.enumerated().map { k, curve in
                                ("class \(k + 1)", curve.enumerated().map { (Double($0.offset + 1) / (d * h.voxelSize), $0.element) })
                            }, guides: [0.5, 0.143]))

        let sections: [Node<HTML.BodyContext>] = h.references.enumerated().map { k, v in
            .div(.class("class"),
                 .h3(.text("Class \(k + 1)")),
                 .group(["z", "y", "x"].map { axis in
                     .div(.class("figure"), .img(.src("data:image/png;base64," + centralSection(v, normal: axis).base64EncodedString()),
                                  .alt("class \(k + 1), central section normal to \(axis)"),
                                  .attribute(named: "data-section", value: "class\(k + 1)-\(axis)")),
                             .p(.text("\(axis) = centre")))
                 }))
        }

        let page = HTML(
            .head(.title("ml_tomo report: \((h.oroot as NSString).lastPathComponent)"), .meta(.charset(.utf8)),
                  .style("""
                  body { font-family: sans-serif; margin: 2em; color: #222; }
                  .charts { display: flex; flex-wrap: wrap; gap: 1.5em; }
                  .class { display: inline-block; margin-right: 2em; }
                  .figure { display: inline-block; margin: 0.3em; text-align: center; }
                  .figure p { margin: 0.2em; }
                  .figure img { width: 160px; height: 160px; image-rendering: pixelated; border: 1px solid #888; }
                  svg text { font-size: 12px; }
                  """)),
            .body(
                .h1(.text("ml_tomo run \(h.oroot)")),
                .p(.text("\(h.iterations.count) iteration file(s) (0 … \(h.iterations.last?.number ?? 0)), \(h.classCount) class(es), "
                         + "working box \(h.workingBox), \(String(format: "%.3g", h.voxelSize)) Å per voxel.")),
                .h2(.text("Per iteration")),
                .div(.class("charts"), .group(charts)),
                .h2(.text("Central sections of the final references")),
                .div(.class("sections"), .group(sections))
            )
        )
        return page.render(indentedBy: .spaces(1))
    }

    // MARK: SVG line charts

    /// A line chart: one polyline per series, axes with about five round ticks, optional horizontal
    /// guide lines (the FSC thresholds).
    static func chart(title: String, xLabel: String, yLabel: String, series: [(String, [(Double, Double)])],
                      guides: [Double] = []) -> Node<HTML.BodyContext> {
        let width = 430.0, height = 260.0, left = 76.0, right = 12.0, top = 28.0, bottom = 44.0
        let points = series.flatMap(\.1).filter { $0.0.isFinite && $0.1.isFinite }
        var (x0, x1) = (points.map(\.0).min() ?? 0, points.map(\.0).max() ?? 1)
        var (y0, y1) = (points.map(\.1).min() ?? 0, points.map(\.1).max() ?? 1)
        for g in guides { y0 = min(y0, g); y1 = max(y1, g) }
        if x1 <= x0 { x0 -= 0.5; x1 += 0.5 }
        if y1 <= y0 { let pad = max(abs(y0) * 0.05, 1e-6); y0 -= pad; y1 += pad }
        let xt = ticks(x0, x1), yt = ticks(y0, y1)
        x0 = min(x0, xt.first ?? x0); x1 = max(x1, xt.last ?? x1)
        y0 = min(y0, yt.first ?? y0); y1 = max(y1, yt.last ?? y1)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var nodes: [Node<HTML.BodyContext>] = [
            svgElement("text", ["x": f(width / 2), "y": "16", "text-anchor": "middle", "font-weight": "bold"], text: title),
            svgElement("line", ["x1": f(left), "y1": f(height - bottom), "x2": f(width - right), "y2": f(height - bottom), "stroke": "#444"]),
            svgElement("line", ["x1": f(left), "y1": f(top), "x2": f(left), "y2": f(height - bottom), "stroke": "#444"]),
            svgElement("text", ["x": f((left + width - right) / 2), "y": f(height - 8), "text-anchor": "middle"], text: xLabel),
            svgElement("text", ["x": "12", "y": f((top + height - bottom) / 2), "text-anchor": "middle",
                                "transform": "rotate(-90 12 \(f((top + height - bottom) / 2)))"], text: yLabel),
        ]
        for t in xt {
            nodes.append(svgElement("line", ["x1": f(px(t)), "y1": f(height - bottom), "x2": f(px(t)), "y2": f(height - bottom + 4), "stroke": "#444"]))
            nodes.append(svgElement("text", ["x": f(px(t)), "y": f(height - bottom + 16), "text-anchor": "middle"], text: label(t)))
        }
        for t in yt {
            nodes.append(svgElement("line", ["x1": f(left - 4), "y1": f(py(t)), "x2": f(width - right), "y2": f(py(t)), "stroke": "#ddd"]))
            nodes.append(svgElement("text", ["x": f(left - 6), "y": f(py(t) + 4), "text-anchor": "end"], text: label(t)))
        }
        for g in guides {
            nodes.append(svgElement("line", ["x1": f(left), "y1": f(py(g)), "x2": f(width - right), "y2": f(py(g)),
                                             "stroke": "#999", "stroke-dasharray": "4 3"]))
        }
        for (i, (name, data)) in series.enumerated() {
            let color = palette[i % palette.count]
            let pts = data.filter { $0.0.isFinite && $0.1.isFinite }.map { "\(f(px($0.0))),\(f(py($0.1)))" }.joined(separator: " ")
            nodes.append(svgElement("polyline", ["points": pts, "fill": "none", "stroke": color, "stroke-width": "2",
                                                 "data-series": name]))
            if series.count > 1 {
                let ly = top + 4 + Double(i) * 14
                nodes.append(svgElement("line", ["x1": f(width - right - 80), "y1": f(ly), "x2": f(width - right - 64), "y2": f(ly),
                                                 "stroke": color, "stroke-width": "2"]))
                nodes.append(svgElement("text", ["x": f(width - right - 60), "y": f(ly + 4)], text: name))
            }
        }
        return .element(named: "svg", nodes: [
            .attribute(named: "xmlns", value: "http://www.w3.org/2000/svg"),
            .attribute(named: "width", value: f(width)), .attribute(named: "height", value: f(height)),
            .attribute(named: "viewBox", value: "0 0 \(f(width)) \(f(height))"),
            .attribute(named: "role", value: "img"), .attribute(named: "aria-label", value: title),
        ] + nodes)
    }

    static func svgElement(_ name: String, _ attributes: [String: String], text: String? = nil) -> Node<HTML.BodyContext> {
        var nodes: [Node<HTML.BodyContext>] = attributes.sorted { $0.key < $1.key }.map { .attribute(named: $0.key, value: $0.value) }
        if let text { nodes.append(.text(text)) }
        return .element(named: name, nodes: nodes)
    }

    /// About five round tick values covering [a, b] (steps of 1, 2 or 5 × 10ⁿ).
    static func ticks(_ a: Double, _ b: Double) -> [Double] {
        let span = b - a
        guard span > 0, span.isFinite else { return [a] }
        let raw = span / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var out: [Double] = []
        var t = floor(a / step) * step
        while t <= b + step * 0.5 && out.count < 12 {
            out.append(t)
            t += step
        }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        return a >= 1e5 || a < 1e-3 ? String(format: "%.2e", v) : String(format: "%.4g", v)
    }

    // MARK: Sections

    /// The central section through the volume normal to `normal` ("z": the xy plane at z = d/2), scaled
    /// from its minimum (black) to its maximum (white), as a PNG with y (or z) growing downwards.
    static func centralSection(_ v: Volume, normal: String) -> Data {
        let (w, hgt): (Int, Int)
        let value: (Int, Int) -> Float
        switch normal {
        case "z": (w, hgt) = (v.nx, v.ny); value = { v[$0, $1, v.nz / 2] }
        case "y": (w, hgt) = (v.nx, v.nz); value = { v[$0, v.ny / 2, $1] }
        default: (w, hgt) = (v.ny, v.nz); value = { v[v.nx / 2, $0, $1] }
        }
        var values = [Float](repeating: 0, count: w * hgt)
        for r in 0 ..< hgt { for c in 0 ..< w { values[r * w + c] = value(c, r) } }
        let lo = values.min() ?? 0, hi = values.max() ?? 1
        let scale = hi > lo ? 255 / (hi - lo) : 0
        let pixels = values.map { UInt8(max(0, min(255, (($0 - lo) * scale).rounded()))) }
        return Data(PNGFile.greyscale(width: w, height: hgt, pixels: pixels))
    }
}
