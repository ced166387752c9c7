import Foundation
import Testing

/// `ml_tomo report`: a self-contained page whose plots hold the run's numbers and whose images are the
/// references' central sections, checked by a reader that knows neither our code nor Plot (Python's
/// html.parser, zlib and base64).
@Suite struct ReportTests {
    static let checker = """
    import sys, base64, zlib, struct, html.parser, numpy as np, mrcfile, h5py

    class Page(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(); self.svgs = []; self.images = []; self.external = []
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == 'svg': self.svgs.append({'label': a.get('aria-label'), 'lines': []})
            if tag == 'polyline': self.svgs[-1]['lines'].append((a.get('data-series'), a['points'].split()))
            if tag == 'img': self.images.append((a.get('data-section'), a['src']))
            for k in ('src', 'href'):
                if k in a and not a[k].startswith('data:'): self.external.append(a[k])

    def png(data):
        assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n'
        pos, idat, size = 8, b'', None
        while pos < len(data):
            n, kind = struct.unpack('>I4s', data[pos:pos + 8]); body = data[pos + 8:pos + 8 + n]
            assert zlib.crc32(kind + body) == struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])[0], 'CRC'
            if kind == b'IHDR': size = struct.unpack('>II', body[:8]); assert body[8:10] == b'\\x08\\x00'
            if kind == b'IDAT': idat += body
            pos += 12 + n
        w, h = size
        raw = zlib.decompress(idat)
        rows = [raw[r * (w + 1):(r + 1) * (w + 1)] for r in range(h)]
        assert all(row[0] == 0 for row in rows)
        return np.array([list(row[1:]) for row in rows], dtype=np.uint8)

    oroot, iterations = sys.argv[1], int(sys.argv[2])
    p = Page(); p.feed(open(oroot + '_report.html').read())
    print('external', len(p.external))
    for s in p.svgs:
        print('svg', repr(s['label']), ' '.join('%s:%d' % (name, len(pts)) for name, pts in s['lines']))
    # The log-likelihood plot holds the run's values, in iteration order (y grows downwards in SVG).
    ll = [h5py.File('%s_it%06d.h5' % (oroot, i), 'r').attrs['log_likelihood'] for i in range(1, iterations + 1)]
    ys = [float(pt.split(',')[1]) for pt in p.svgs[0]['lines'][0][1]]
    print('llorder', all((ll[i] < ll[j]) == (ys[i] > ys[j]) for i in range(len(ll)) for j in range(len(ll)) if ll[i] != ll[j]))
    for name, src in p.images:
        img = png(base64.b64decode(src.split(',', 1)[1]))
        k, axis = name.split('-'); k = int(k[5:])
        v = mrcfile.read('%s_ref%06d.mrc' % (oroot, k)).astype(np.float64)   # (z, y, x)
        c = v.shape[0] // 2
        sec = {'z': v[c, :, :], 'y': v[:, c, :], 'x': v[:, :, c]}[axis]
        want = np.clip(np.round((sec - sec.min()) * (255 / (sec.max() - sec.min()))), 0, 255)
        print('img', name, img.shape[0], img.shape[1], int(np.abs(img.astype(float) - want).max()))
    """

    @Test func reportShowsTheRunsNumbersAndSections() async throws {
        let ws = try Workspace("report")
        try await ws.simulate("data", particles: 12, size: 16, classes: 2, snr: 1)
        let run = try await ProcessRunner.mlTomo(
            ["-i", "images.sel", "--doc", "images.doc", "--missing", "wedges.doc", "--oroot", "run/x", "--nref", "2",
             "--ang", "30", "--iter", "3", "--thr", "1"], currentDirectory: ws.file("data"), timeout: 300)
        try #require(run.status == 0, "\(run)")
        let report = try await ProcessRunner.mlTomo(["report", "run/x"], currentDirectory: ws.file("data"))
        try #require(report.status == 0, "\(report)")
        let check = try await ProcessRunner.run("/usr/bin/env", ["python3", "-c", Self.checker, "run/x", "3"],
                                                currentDirectory: ws.file("data"))
        try #require(check.status == 0, "\(check)")
        let lines = check.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains("external 0"), "the page must not load anything: \(check.stdout)")
        let svgs = lines.filter { $0.hasPrefix("svg ") }
        #expect(svgs.count == 6, "\(check.stdout)")
        // Iterations 1–3: three points per series; two classes; the FSC has d/2 = 8 shells per class.
        #expect(svgs.first?.hasSuffix("log L:3") == true, "\(svgs)")
        #expect(svgs.contains { $0.contains("Class fractions") && $0.contains("class 1:3 class 2:3") }, "\(svgs)")
        #expect(svgs.contains { $0.contains("FSC") && $0.contains("class 1:8 class 2:8") }, "\(svgs)")
        #expect(lines.contains("llorder True"), "\(check.stdout)")
        let images = lines.filter { $0.hasPrefix("img ") }
        #expect(images.count == 6, "3 sections × 2 classes: \(check.stdout)")
        for line in images {
            let f = line.split(separator: " ")
            #expect(f.count == 5 && f[2] == "16" && f[3] == "16" && (Int(f[4]) ?? 99) <= 1, "\(line)")
        }
    }
}
