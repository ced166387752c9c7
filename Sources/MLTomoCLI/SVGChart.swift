import Foundation
import Plot

/// The report's plots as inline SVG elements (Plot nodes): line charts per iteration and scatter plots of
/// orientations, with axes, round ticks and a legend. Each chart carries `aria-label` = its title, and
/// each series `data-series` = its name, so that readers (and the tests) can find them.
struct SVGChart {
    /// One named set of points, drawn as a polyline (line chart) or as dots (scatter).
    struct Series {
        var name: String
        var points: [(x: Double, y: Double)]
    }

    struct Axis {
        var label: String
        /// Fixed range; nil: the data's range widened to round ticks.
        var range: ClosedRange<Double>? = nil
        /// Fixed tick step; nil: about five round steps (1, 2 or 5 × 10ⁿ).
        var step: Double? = nil
        /// Ticks on whole numbers only (iterations).
        var integer = false
    }

    enum Style { case lines, dots }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    var title: String
    var x: Axis
    var y: Axis
    var series: [Series]
    var style = Style.lines
    /// Horizontal dashed lines (the FSC thresholds).
    var guides: [Double] = []
    /// Colour index of the first series (a per-class scatter keeps its class's colour).
    var firstColour = 0
    var width = 430.0
    var height = 260.0

    func node() -> Node<HTML.BodyContext> {
        let left = 84.0, right = 12.0, top = 28.0, bottom = 44.0
        let points = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let (x0, x1, xt) = Self.scale(x, points.map(\.x), guides: [])
        let (y0, y1, yt) = Self.scale(y, points.map(\.y), guides: guides)
        func px(_ v: Double) -> Double { left + (v - x0) / (x1 - x0) * (width - left - right) }
        func py(_ v: Double) -> Double { height - bottom - (v - y0) / (y1 - y0) * (height - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var nodes: [Node<HTML.BodyContext>] = [
            Self.element("text", ["x": f(width / 2), "y": "16", "text-anchor": "middle", "font-weight": "bold"], text: title),
            Self.element("line", ["x1": f(left), "y1": f(height - bottom), "x2": f(width - right), "y2": f(height - bottom), "stroke": "#444"]),
            Self.element("line", ["x1": f(left), "y1": f(top), "x2": f(left), "y2": f(height - bottom), "stroke": "#444"]),
            Self.element("text", ["x": f((left + width - right) / 2), "y": f(height - 8), "text-anchor": "middle"], text: x.label),
            Self.element("text", ["x": "12", "y": f((top + height - bottom) / 2), "text-anchor": "middle",
                                  "transform": "rotate(-90 12 \(f((top + height - bottom) / 2)))"], text: y.label),
        ]
        for t in xt {
            nodes.append(Self.element("line", ["x1": f(px(t)), "y1": f(height - bottom), "x2": f(px(t)), "y2": f(height - bottom + 4), "stroke": "#444"]))
            nodes.append(Self.element("text", ["x": f(px(t)), "y": f(height - bottom + 16), "text-anchor": "middle"], text: Self.label(t)))
        }
        for t in yt {
            nodes.append(Self.element("line", ["x1": f(left - 4), "y1": f(py(t)), "x2": f(width - right), "y2": f(py(t)), "stroke": "#ddd"]))
            nodes.append(Self.element("text", ["x": f(left - 6), "y": f(py(t) + 4), "text-anchor": "end"], text: Self.label(t)))
        }
        for g in guides {
            nodes.append(Self.element("line", ["x1": f(left), "y1": f(py(g)), "x2": f(width - right), "y2": f(py(g)),
                                               "stroke": "#999", "stroke-dasharray": "4 3"]))
        }
        for (i, s) in series.enumerated() {
            let colour = Self.palette[(firstColour + i) % Self.palette.count]
            let shown = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            switch style {
            case .lines:
                let pts = shown.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                nodes.append(Self.element("polyline", ["points": pts, "fill": "none", "stroke": colour, "stroke-width": "2",
                                                       "data-series": s.name]))
            case .dots:
                nodes.append(.element(named: "g", nodes: [.attribute(named: "fill", value: colour),
                                                          .attribute(named: "data-series", value: s.name)]
                        + shown.map { Self.element("circle", ["cx": f(px($0.x)), "cy": f(py($0.y)), "r": "3"]) }))
            }
            if series.count > 1 {
                let ly = top + 4 + Double(i) * 14
                nodes.append(Self.element("line", ["x1": f(width - right - 80), "y1": f(ly), "x2": f(width - right - 64), "y2": f(ly),
                                                   "stroke": colour, "stroke-width": "2"]))
                nodes.append(Self.element("text", ["x": f(width - right - 60), "y": f(ly + 4)], text: s.name))
            }
        }
        return .element(named: "svg", nodes: [
            .attribute(named: "xmlns", value: "http://www.w3.org/2000/svg"),
            .attribute(named: "width", value: f(width)), .attribute(named: "height", value: f(height)),
            .attribute(named: "viewBox", value: "0 0 \(f(width)) \(f(height))"),
            .attribute(named: "role", value: "img"), .attribute(named: "aria-label", value: title),
        ] + nodes)
    }

    /// The drawn range and the ticks of one axis.
    static func scale(_ axis: Axis, _ values: [Double], guides: [Double]) -> (Double, Double, [Double]) {
        if let r = axis.range {
            return (r.lowerBound, r.upperBound, ticks(r.lowerBound, r.upperBound, step: axis.step, integer: axis.integer))
        }
        var lo = values.min() ?? 0, hi = values.max() ?? 1
        for g in guides { lo = min(lo, g); hi = max(hi, g) }
        if hi <= lo { let pad = axis.integer ? 0.5 : max(abs(lo) * 0.05, 1e-6); lo -= pad; hi += pad }
        let t = ticks(lo, hi, step: axis.step, integer: axis.integer)
        return (min(lo, t.first ?? lo), max(hi, t.last ?? hi), t)
    }

    /// Tick values covering [a, b]: multiples of `step`, or about five round steps (1, 2 or 5 × 10ⁿ, at
    /// least 1 when `integer`).
    static func ticks(_ a: Double, _ b: Double, step given: Double? = nil, integer: Bool = false) -> [Double] {
        let span = b - a
        guard span > 0, span.isFinite else { return [a] }
        var step = given ?? {
            let raw = span / 5
            let mag = pow(10, floor(log10(raw)))
            return [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        }()
        if integer { step = max(1, step.rounded()) }
        var out: [Double] = []
        var t = (a / step).rounded(.up) * step
        if given == nil { t = floor(a / step) * step }
        while t <= b + step * (given == nil ? 0.5 : 1e-9) && out.count < 14 {
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

    static func element(_ name: String, _ attributes: [String: String], text: String? = nil) -> Node<HTML.BodyContext> {
        var nodes: [Node<HTML.BodyContext>] = attributes.sorted { $0.key < $1.key }.map { .attribute(named: $0.key, value: $0.value) }
        if let text { nodes.append(.text(text)) }
        return .element(named: name, nodes: nodes)
    }
}
