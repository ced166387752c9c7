import Foundation
import Testing

/// `ml_tomo report`: a self-contained page whose plots hold the run's numbers and whose images are the
/// references' central sections, checked by a reader that knows neither our code nor Plot (Python's
/// html.parser, zlib and base64); and the page as a browser draws it (headless Chromium).
@Suite struct ReportTests {
    /// A tiny PNG decoder (8-bit grey, RGB or RGBA, every filter type) for the page's images and
    /// Chromium's screenshots; shared by both scripts below.
    static let pngDecoder = """
    import struct, zlib, numpy as np
    def png(data):
        assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'not a PNG'
        pos, idat, size = 8, b'', None
        while pos < len(data):
            n, kind = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]
            assert zlib.crc32(kind + body) == struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])[0], 'CRC'
            if kind == b'IHDR':
                w, h, depth, colour, _, _, interlace = struct.unpack('>IIBBBBB', body)
                assert depth == 8 and interlace == 0 and colour in (0, 2, 6), (depth, colour, interlace)
                bpp = {0: 1, 2: 3, 6: 4}[colour]
            if kind == b'IDAT': idat += body
            pos += 12 + n
        raw = zlib.decompress(idat)
        stride = w * bpp
        out = np.zeros((h, stride), dtype=np.int64)
        prev = np.zeros(stride, dtype=np.int64)
        for r in range(h):
            f = raw[r * (stride + 1)]
            line = np.frombuffer(raw, dtype=np.uint8, count=stride, offset=r * (stride + 1) + 1).astype(np.int64)
            if f == 0: cur = line
            elif f == 1: cur = np.cumsum(line.reshape(w, bpp), axis=0).reshape(-1) % 256
            elif f == 2: cur = (line + prev) % 256
            else:
                cur, a = line.tolist(), [0] * bpp
                up = prev.tolist()
                for i in range(stride):
                    left = cur[i - bpp] if i >= bpp else 0
                    if f == 3: cur[i] = (cur[i] + (left + up[i]) // 2) % 256
                    else:
                        ul = up[i - bpp] if i >= bpp else 0
                        p = left + up[i] - ul; pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - ul)
                        cur[i] = (cur[i] + (left if pa <= pb and pa <= pc else up[i] if pb <= pc else ul)) % 256
                cur = np.array(cur, dtype=np.int64)
            out[r] = cur; prev = cur
        return out.reshape(h, w, bpp)[:, :, :3 if bpp >= 3 else 1].astype(np.uint8)
    """

    /// Plot geometry of the angular-distribution charts (SVGChart: margins left 84, right 12, top 28,
    /// bottom 44; width 360, height 220; rot −180…180 on x, tilt 0…180 on y).
    static let checker = pngDecoder + "\n" + """
    import sys, base64, html.parser, mrcfile, h5py, math, starfile

    class Page(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(); self.svgs = []; self.images = []; self.external = []; self.series = None
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == 'svg': self.svgs.append({'label': a.get('aria-label'), 'lines': [], 'dots': {}})
            if tag == 'polyline': self.svgs[-1]['lines'].append((a.get('data-series'), a['points'].split()))
            if tag == 'g' and 'data-series' in a: self.series = a['data-series']; self.svgs[-1]['dots'][self.series] = []
            if tag == 'circle': self.svgs[-1]['dots'][self.series].append((float(a['cx']), float(a['cy'])))
            if tag == 'img': self.images.append((a.get('data-section'), a['src']))
            for k in ('src', 'href'):
                if k in a and not a[k].startswith('data:'): self.external.append(a[k])

    oroot, iterations = sys.argv[1], int(sys.argv[2])
    p = Page(); p.feed(open(oroot + '_report.html').read())
    print('external', len(p.external))
    for s in p.svgs:
        print('svg', repr(s['label']), ' '.join(['%s:%d' % (name, len(pts)) for name, pts in s['lines']]
                                                + ['%s:dots%d' % (name, len(d)) for name, d in s['dots'].items()]))
    # The log-likelihood plot holds the run's values, in iteration order (y grows downwards in SVG).
    ll = [h5py.File('%s_it%06d.h5' % (oroot, i), 'r').attrs['log_likelihood'] for i in range(1, iterations + 1)]
    ys = [float(pt.split(',')[1]) for pt in p.svgs[0]['lines'][0][1]]
    print('llorder', all((ll[i] < ll[j]) == (ys[i] > ys[j]) for i in range(len(ll)) for j in range(len(ll)) if ll[i] != ll[j]))
    # The angular distribution: per class, the dots are the (rot, tilt) of the last doc's particles.
    doc = starfile.read('%s_it%06d.doc' % (oroot, iterations))
    rows = list(zip(doc['ref'], doc['angleRot'], doc['angleTilt']))
    for s in p.svgs:
        for name, dots in s['dots'].items():
            k = int(name.split()[1])
            want = []
            for ref, rot, tilt in rows:
                if int(ref) != k: continue
                r, t = math.radians(rot), math.radians(tilt)
                want.append((math.degrees(math.atan2(math.sin(t) * math.sin(r), math.sin(t) * math.cos(r))), math.degrees(math.acos(math.cos(t)))))
            got = [(-180 + (x - 84) / (360 - 96) * 360, (220 - 44 - y) / (220 - 72) * 180) for x, y in dots]
            err = max((min(min(abs(a - c), 360 - abs(a - c)) + abs(b - d) for c, d in got) for a, b in want), default=0)
            print('angles', k, len(want), len(got), '%.2f' % err)
    for name, src in p.images:
        img = png(base64.b64decode(src.split(',', 1)[1]))[:, :, 0]
        parts = name.split('-'); k, axis = int(parts[0][5:]), parts[1]
        path = '%s_ref%06d.mrc' % (oroot, k) if len(parts) == 2 else '%s_it%06d_ref%06d.mrc' % (oroot, int(parts[2][2:]), k)
        v = mrcfile.read(path).astype(np.float64)   # (z, y, x)
        c = v.shape[0] // 2
        sec = {'z': v[c, :, :], 'y': v[:, c, :], 'x': v[:, :, c]}[axis]
        want = np.clip(np.round((sec - sec.min()) * (255 / (sec.max() - sec.min()))), 0, 255)
        print('img', name, img.shape[0], img.shape[1], int(np.abs(img.astype(float) - want).max()))
    """

    /// Renders the report in headless Chromium: once with a probe script (in a copy of the page) that
    /// records where each plot and image is laid out, once as a screenshot of the page itself at that
    /// size. Then looks at the pixels: each plot's box has ink and its series' colours, each image box
    /// shows the embedded section (sampled at the centre of every section pixel), the margins are blank.
    static let browserCheck = pngDecoder + "\n" + """
    import sys, os, base64, subprocess, html.parser
    chromium, report = sys.argv[1], os.path.abspath(sys.argv[2])
    work, WIDTH = os.path.dirname(report), 1200

    def chrome(args, height):
        r = subprocess.run([chromium, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
                            '--force-device-scale-factor=1', '--virtual-time-budget=3000',
                            '--user-data-dir=' + os.path.join(work, 'chromium-profile'),
                            '--window-size=%d,%d' % (WIDTH, height)] + args, capture_output=True, timeout=240)
        if r.returncode != 0: raise SystemExit('chromium failed (%d): %s' % (r.returncode, r.stderr.decode()[-3000:]))
        return r.stdout.decode()

    probe = report[:-5] + '_probe.html'
    page = open(report).read()
    assert page.count('</body>') == 1
    open(probe, 'w').write(page.replace('</body>', '''<script>
    for (const e of document.querySelectorAll('svg, img')) { const r = e.getBoundingClientRect();
      e.setAttribute('data-box', [r.left + scrollX + e.clientLeft, r.top + scrollY + e.clientTop, e.clientWidth, e.clientHeight].join(',')); }
    document.body.setAttribute('data-page', document.documentElement.scrollHeight);
    </script></body>'''))

    class Layout(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(); self.svgs = []; self.images = []; self.height = None
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            box = tuple(float(v) for v in a['data-box'].split(',')) if 'data-box' in a else None
            if tag == 'body': self.height = int(float(a['data-page']))
            if tag == 'svg': self.svgs.append((a['aria-label'], box, []))
            if tag == 'polyline': self.svgs[-1][2].append(a['stroke'])
            if tag == 'g' and 'fill' in a: self.svgs[-1][2].append(a['fill'])
            if tag == 'img': self.images.append((a['data-section'], box, a['src']))
    layout = Layout(); layout.feed(chrome(['--dump-dom', 'file://' + probe], 1000))
    height = layout.height
    shot = os.path.join(work, 'screenshot.png')
    chrome(['--screenshot=' + shot, 'file://' + report], height)
    s = png(open(shot, 'rb').read()).astype(np.int64)
    print('page', s.shape[1], s.shape[0], height)

    def crop(box):
        x, y, w, h = (int(round(v)) for v in box)
        return s[y:y + h, x:x + w]
    def ink(region):            # share of pixels that are not (near) white
        return float((region.min(axis=2) < 200).mean()) if region.size else 0.0
    for label, box, colours in layout.svgs:
        region = crop(box)
        counts = []
        for c in colours:
            rgb = np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)])
            counts.append(int((np.abs(region - rgb).sum(axis=2) < 60).sum()))
        print('svg\\t%s\\t%.4f\\t%s' % (label, ink(region), ' '.join(map(str, counts))))
    for name, box, src in layout.images:
        want = png(base64.b64decode(src.split(',', 1)[1]))[:, :, 0].astype(float)
        hh, ww = want.shape
        x, y, w, h = box
        got = np.array([[s[int(y + (i + 0.5) * h / hh), int(x + (j + 0.5) * w / ww)].mean() for j in range(ww)] for i in range(hh)])
        corr = float(np.corrcoef(got.ravel(), want.ravel())[0, 1]) if want.std() > 0 else 0.0
        print('img %s %.4f %d %.1f' % (name, corr, int(np.abs(got - want).max()), float(crop(box).std())))
    # Where nothing is drawn: the right margin of the whole page, and right of the last scatter plot.
    print('blank margin %.4f' % ink(s[:, WIDTH - 24:]))
    scatter = [box for label, box, _ in layout.svgs if label.startswith('Class ')]
    right = int(max(b[0] + b[2] for b in scatter)) + 16
    top, bottom = int(min(b[1] for b in scatter)), int(max(b[1] + b[3] for b in scatter))
    print('blank beside-angles %.4f %d' % (ink(s[top:bottom, right:WIDTH - 32]), max(0, WIDTH - 32 - right)))
    """

    /// A real 3-iteration, 2-class run on 12 particles of 16³ and its report (`run/x_report.html`).
    static func smallRun(_ ws: Workspace) async throws -> String {
        try await ws.simulate("data", particles: 12, size: 16, classes: 2, snr: 1)
        let run = try await ProcessRunner.mlTomo(
            ["-i", "images.sel", "--doc", "images.doc", "--missing", "wedges.doc", "--oroot", "run/x", "--nref", "2",
             "--ang", "30", "--iter", "3", "--thr", "1"], currentDirectory: ws.file("data"), timeout: 300)
        try #require(run.status == 0, "\(run)")
        let report = try await ProcessRunner.mlTomo(["report", "run/x"], currentDirectory: ws.file("data"))
        try #require(report.status == 0, "\(report)")
        return ws.file("data/run/x_report.html")
    }

    @Test func reportShowsTheRunsNumbersAndSections() async throws {
        let ws = try Workspace("report")
        _ = try await Self.smallRun(ws)
        let check = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", Self.checker, "run/x", "3"],
                                                currentDirectory: ws.file("data"))
        try #require(check.status == 0, "\(check)")
        let lines = check.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("external 0"), "the page must not load anything: \(check.stdout)")
        let svgs = lines.filter { $0.hasPrefix("svg ") }
        #expect(svgs.count == 8, "6 plots per iteration and 2 angular distributions: \(check.stdout)")
        // Iterations 1–3: three points per series; two classes; the FSC has d/2 = 8 shells per class.
        #expect(svgs.first?.hasSuffix("log L:3") == true, "\(svgs)")
        #expect(svgs.contains { $0.contains("Class fractions") && $0.contains("class 1:3 class 2:3") }, "\(svgs)")
        #expect(svgs.contains { $0.contains("FSC") && $0.contains("class 1:8 class 2:8") }, "\(svgs)")
        #expect(lines.contains("llorder True"), "\(check.stdout)")
        // Every particle of the last iteration is a dot of its class's plot, at its (rot, tilt) to < 1°.
        let angles = lines.filter { $0.hasPrefix("angles ") }.map { $0.split(separator: " ") }
        #expect(angles.count == 2, "\(check.stdout)")
        #expect(angles.reduce(0) { $0 + (Int($1[2]) ?? 0) } == 12, "\(check.stdout)")
        for a in angles {
            #expect(a[2] == a[3] && (Double(a[4]) ?? 99) < 1, "class \(a[1]): \(a.joined(separator: " "))")
        }
        let images = lines.filter { $0.hasPrefix("img ") }
        #expect(images.count == 6 + 4 * 6, "3 sections × 2 classes, final and for iterations 0–3: \(check.stdout)")
        for it in 0 ... 3 {
            #expect(images.filter { $0.split(separator: " ")[1].hasSuffix("-it\(it)") }.count == 6, "iteration \(it): \(images)")
        }
        for line in images {
            let f = line.split(separator: " ")
            #expect(f.count == 5 && f[2] == "16" && f[3] == "16" && (Int(f[4]) ?? 99) <= 1, "\(line)")
        }
    }

    static let chromium = "/usr/bin/chromium"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: chromium),
                   "chromium is not installed (apt-get install chromium; make deps does it)"))
    func chromiumDrawsThePlotsAndSections() async throws {
        let ws = try Workspace("report-browser")
        let report = try await Self.smallRun(ws)
        let check = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", Self.browserCheck, Self.chromium, report],
                                                currentDirectory: ws.file("data"), timeout: 600)
        try #require(check.status == 0, "\(check)")
        let lines = check.stdout.split(separator: "\n").map(String.init)
        let page = try #require(lines.first { $0.hasPrefix("page ") }?.split(separator: " ").compactMap { Int($0) }, "\(check.stdout)")
        #expect(page.count == 3 && page[0] == 1200 && page[1] == page[2] && page[1] > 1000, "screenshot size: \(page)")
        let svgs = lines.filter { $0.hasPrefix("svg\t") }.map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        #expect(svgs.count == 8, "\(check.stdout)")
        for s in svgs {
            // Axes, ticks and labels put ink in every plot; each series' colour must be on screen.
            #expect((Double(s[2]) ?? 0) > 0.01, "plot '\(s[1])' is blank: \(s)")
            let counts = s[3].split(separator: " ").compactMap { Int($0) }
            #expect(!counts.isEmpty && counts.allSatisfy { $0 >= 15 }, "plot '\(s[1])': pixels of each series' colour \(counts)")
        }
        let images = lines.filter { $0.hasPrefix("img ") }.map { $0.split(separator: " ") }
        #expect(images.count == 30, "\(check.stdout)")
        for f in images {
            // The drawn image is the embedded section: correlation ≈ 1, grey levels within a few units.
            #expect((Double(f[2]) ?? 0) > 0.98 && (Int(f[3]) ?? 255) <= 8 && (Double(f[4]) ?? 0) > 5,
                    "image \(f[1]) as drawn: correlation \(f[2]), max difference \(f[3]), std \(f[4])")
        }
        #expect(lines.contains("blank margin 0.0000"), "\(check.stdout)")
        let beside = try #require(lines.first { $0.hasPrefix("blank beside-angles") }?.split(separator: " "), "\(check.stdout)")
        #expect(beside[2] == "0.0000" && (Int(beside[3]) ?? 0) > 100, "right of the angular distribution: \(beside)")
    }
}
