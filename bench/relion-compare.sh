#!/usr/bin/env bash
# RELION 3.1.3 beside ml_tomo on the same data: runs RELION's 3D classification of subtomograms on a
# data set written by `ml_tomo simulate` and scores it with `ml_tomo evaluate`.
#
#   bench/relion-compare.sh DATADIR OUTDIR [--K 2] [--iter 15] [--start average|truth60] [--np 3]
#                           [--ml_tomo PATH] [--angpix A] [--check-conversion] [-- extra relion_refine options]
#
# DATADIR   output directory of `ml_tomo simulate` (images.doc or images.sel, wedges.doc, particles,
#           truth.star, truth_ref000001.mrc).
# OUTDIR    created if needed; gets particles.star, the missing-region masks (wedge_NNN.mrc), the start
#           model, RELION's run_* files, relion.time, result.doc (RELION's last iteration as an Xmipp doc in
#           ml_tomo's convention), evaluate.txt and evaluate.json.
# --K       classes (default 2); --iter  iterations (default 15); --np  MPI ranks incl. RELION's master (3)
# --start   average: the unaligned average of all particles (OUTDIR/start_average.mrc; what a user without a
#           reference has); truth60: truth_ref000001.mrc low-pass filtered to 60 Å (OUTDIR/start_truth60.mrc).
# --ml_tomo the ml_tomo binary (default: $ML_TOMO_BIN, else ml_tomo on PATH).
# --angpix  pixel size in Å (default: the particles' MRC header, else truth.star's simulation block).
# --check-conversion  instead of refining, reconstruct (relion_reconstruct --3d_rot --ctf) from truth.star's
#           poses under the conversion used here and under the alternatives, and print each map's correlation
#           with truth_ref000001.mrc (only the "used" one should be ≈ 1).
#
# Progress goes to stderr; stdout's last line is one Markdown row
#   | RELION 3.1.3 (start: S) | K | class accuracy | ARI | fitted median angular error | wall time |
# where wall time is relion_refine_mpi's (also in OUTDIR/relion.time, seconds).
#
# Conventions (checked with --check-conversion; see the Python below):
# * Missing region: RELION reads a 3D rlnCtfImage as a full, centred d³ volume (Fourier origin at d/2 on each
#   axis) and multiplies the reference's projection by it. The mask is ml_tomo's MissingRegion.isMeasured
#   (1 = measured) on that grid, array axes (z, y, x) as mrcfile gives them; it matches where the power
#   spectrum of the simulated particles vanishes.
# * Poses: ml_tomo/Xmipp write E = E(rot, tilt, psi) with X(x) = Ref(E(x + s)). RELION's matrix A (same ZYZ
#   formula) maps the reference onto the particle, A = Eᵀ, i.e. RELION (rot, tilt, psi) = Xmipp (−psi, −tilt,
#   −rot); RELION's rlnOriginX/Y/ZAngst = s · pixel size (rlnOriginX/Y/Z, pre-3.1, = s in pixels).
#   Measured (40 particles, SNR 5, ±60° wedge_y, 17.32 Å/px): relion_reconstruct from truth.star's poses
#   correlates 0.998 (blob phantom) / 0.979 (ribosome) with the true map under this conversion, 0.924 / 0.847
#   with RELION angles = Xmipp angles, 0.847 / 0.755 with the origin's sign flipped (random poses: 0.85 / 0.76).
#
# Notes: RELION picks a time-based random seed, so repeated runs differ (add `-- --random_seed 1` to fix it).
# --healpix_order 1 samples 30° (15° after RELION's oversampling), so fitted errors of ~10–15° are its floor.
# The default simulate body (Gaussian blobs, no --phantom) has a near 3-fold pseudo-symmetry (120° about one
# axis) in which RELION can lock part of the particles; use --phantom (e.g. the ribosome) for comparisons.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }

DATA="" OUT="" K=2 ITER=15 START=average NP=3 ANGPIX="" CHECK=0
BIN=${ML_TOMO_BIN:-$(command -v ml_tomo || true)}
EXTRA=()
pos=()
while [ $# -gt 0 ]; do
  case "$1" in
    --K) K=$2; shift 2 ;;
    --iter) ITER=$2; shift 2 ;;
    --start) START=$2; shift 2 ;;
    --np) NP=$2; shift 2 ;;
    --ml_tomo|--ml-tomo) BIN=$2; shift 2 ;;
    --angpix) ANGPIX=$2; shift 2 ;;
    --check-conversion) CHECK=1; shift ;;
    -h|--help) usage 0 ;;
    --) shift; EXTRA=("$@"); break ;;
    -*) echo "relion-compare: unknown option $1" >&2; usage ;;
    *) pos+=("$1"); shift ;;
  esac
done
[ ${#pos[@]} -eq 2 ] || usage
DATA=$(cd "${pos[0]}" && pwd)
mkdir -p "${pos[1]}"
OUT=$(cd "${pos[1]}" && pwd)
case "$START" in average|truth60) ;; *) echo "relion-compare: --start must be average or truth60" >&2; exit 2 ;; esac
for tool in relion_refine_mpi relion_reconstruct mpirun python3; do
  command -v "$tool" >/dev/null || { echo "relion-compare: $tool not found" >&2; exit 1; }
done
if [ "$CHECK" = 0 ]; then
  [ -n "$BIN" ] && [ -x "$BIN" ] || { echo "relion-compare: no ml_tomo binary (give --ml_tomo PATH or set ML_TOMO_BIN)" >&2; exit 1; }
fi
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

PY=$(cat <<'PYEOF'
import math, os, subprocess, sys, json
import numpy as np
import mrcfile


def read_star(path):
    """Xmipp or RELION STAR file -> {block name: [row dicts]}; labels lose the leading '_' (and RELION's '#n')."""
    blocks, name, labels, rows, mode, listrow = {}, None, [], [], None, {}

    def flush():
        if name is not None:
            blocks[name] = rows if mode == "loop" else ([dict(listrow)] if mode == "list" else [])

    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("data_"):
                flush()
                name, labels, rows, mode, listrow = line[5:], [], [], None, {}
            elif line.startswith("loop_"):
                mode = "loop"
            elif line.startswith("_"):
                parts = line.split()
                if mode == "loop":
                    labels.append(parts[0][1:])
                else:
                    mode = "list"
                    listrow[parts[0][1:]] = parts[1] if len(parts) > 1 else ""
            elif mode == "loop":
                rows.append(dict(zip(labels, line.split())))
    flush()
    return blocks


def first_loop(blocks, prefer=None):
    if prefer and prefer in blocks:
        return blocks[prefer]
    for rows in blocks.values():
        if rows:
            return rows
    raise SystemExit("relion-compare: no data rows")


def measured(kind, y0, yf, x0, xf, d):
    """ml_tomo's MissingRegion.isMeasured on a centred d³ grid, array [z, y, x], origin at d//2 (1 = measured)."""
    r = np.arange(d, dtype=float) - d // 2
    z, y, x = np.meshgrid(r, r, r, indexing="ij")
    d2r = math.pi / 180
    tg0y, tgfy = -math.tan(d2r * (-90 - yf)), -math.tan(d2r * (90 - y0))
    tg0x, tgfx = -math.tan(d2r * (-90 - xf)), -math.tan(d2r * (90 - x0))

    def wedge(u, tg0, tgf):
        l0, lf = tg0 * z, tgf * z
        return np.where(z >= 0, (u <= l0) | (u >= lf), (u <= lf) | (u >= l0))

    if kind == "wedge_y":
        m = wedge(x, tg0y, tgfy)
    elif kind == "wedge_x":
        m = wedge(y, tg0x, tgfx)
    elif kind == "pyramid":
        m = wedge(x, tg0y, tgfy) | wedge(y, tg0x, tgfx)
    elif kind == "cone":
        l = -math.tan(d2r * (90 - y0)) * z
        m = x * x + y * y >= l * l
    else:
        raise SystemExit(f"relion-compare: unknown missingRegionType {kind}")
    return m.astype(np.float32)


def euler_matrix(rot, tilt, psi):
    """Xmipp's and RELION's Euler_angles2matrix (ZYZ), degrees; identical to ml_tomo's EulerAngles.matrix."""
    a, b, g = (math.radians(v) for v in (rot, tilt, psi))
    ca, sa, cb, sb, cg, sg = math.cos(a), math.sin(a), math.cos(b), math.sin(b), math.cos(g), math.sin(g)
    return np.array([[cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb],
                     [-sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb],
                     [sb * ca, sb * sa, cb]])


def matrix_euler(m):
    """Angles of a rotation matrix with tilt in [0, 180]."""
    sb = math.hypot(m[2, 0], m[2, 1])
    if sb > 1e-9:
        return tuple(math.degrees(v) for v in (math.atan2(m[2, 1], m[2, 0]), math.atan2(sb, m[2, 2]),
                                                  math.atan2(m[1, 2], -m[0, 2])))
    if m[2, 2] > 0:
        return 0.0, 0.0, math.degrees(math.atan2(-m[1, 0], m[0, 0]))
    return 0.0, 180.0, math.degrees(math.atan2(m[1, 0], -m[0, 0]))


# The conversion (A = Eᵀ, origin = +s·pixel) and the alternatives --check-conversion compares it with.
def xmipp_to_relion(rot, tilt, psi, s, angpix, variant="used"):
    e = euler_matrix(rot, tilt, psi)
    a = e if variant.startswith("same") else e.T
    o = -s if variant.endswith("minus") else s
    return matrix_euler(a), o * angpix


def relion_to_xmipp(rot, tilt, psi, origin_angst, angpix):
    return matrix_euler(euler_matrix(rot, tilt, psi).T), origin_angst / angpix


def read_vol(path):
    with mrcfile.open(path, permissive=True) as m:
        return m.data.astype(np.float32).copy(), float(m.voxel_size.x)


def write_vol(path, v, angpix):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(np.ascontiguousarray(v, dtype=np.float32))
        m.voxel_size = angpix


def dataset(data):
    """[(image name as listed, absolute path, region number or 0)] from images.doc (else images.sel)."""
    src = os.path.join(data, "images.doc")
    if not os.path.exists(src):
        src = os.path.join(data, "images.sel")
    rows = first_loop(read_star(src))
    out = []
    for r in rows:
        if r.get("enabled", "1").strip() in ("-1", "0"):
            continue
        name = r["image"]
        path = name if os.path.isabs(name) else os.path.join(data, name)
        out.append((name, os.path.abspath(path), int(r.get("missingRegionNumber", "0"))))
    return out


def pixel_size(data, parts, given):
    if given:
        return float(given)
    p = parts[0][1]
    if p.endswith(".mrc") or p.endswith(".map"):
        a = round(read_vol(p)[1], 4)            # the header holds float32
        if a > 0 and a != 1.0:
            return a
    try:
        return float(read_star(os.path.join(data, "truth.star"))["simulation"][0]["pixelSize"])
    except Exception:
        pass
    sys.stderr.write("relion-compare: warning: pixel size not recorded, using 1 Å (give --angpix)\n")
    return 1.0


def mrc_particles(parts, out):
    """RELION reads MRC volumes; other formats (Spider .vol) are converted into OUTDIR/particles/."""
    res = []
    for name, path, reg in parts:
        if not (path.endswith(".mrc") or path.endswith(".map")):
            os.makedirs(os.path.join(out, "particles"), exist_ok=True)
            dst = os.path.join(out, "particles", os.path.splitext(os.path.basename(path))[0] + ".mrc")
            if not os.path.exists(dst):
                subprocess.run(["relion_image_handler", "--i", path, "--o", dst], check=True,
                               stdout=subprocess.DEVNULL)
            path = dst
        res.append((name, path, reg))
    return res


def masks(data, parts, box, angpix, out):
    """One mask file per distinct missing region: {region number: path}."""
    regions = {}
    wfile = os.path.join(data, "wedges.doc")
    if os.path.exists(wfile):
        for w in first_loop(read_star(wfile)):
            regions[int(w["missingRegionNumber"])] = w
    paths = {}
    for reg in sorted({p[2] for p in parts}):
        if reg == 0 or reg not in regions:
            if reg != 0:
                sys.stderr.write(f"relion-compare: warning: region {reg} not in wedges.doc; nothing missing\n")
            m, path = np.ones((box, box, box), np.float32), os.path.join(out, "wedge_none.mrc")
        else:
            w = regions[reg]
            m = measured(w["missingRegionType"], *(float(w.get(k, 0)) for k in
                         ("missingRegionThetaY0", "missingRegionThetaYF", "missingRegionThetaX0", "missingRegionThetaXF")), box)
            path = os.path.join(out, f"wedge_{reg:03d}.mrc")
        write_vol(path, m, angpix)
        paths[reg] = path
    return paths


def write_relion_star(path, rows, angpix, box, pose_labels=()):
    labels = ["ImageName", "CtfImage", "OpticsGroup"] + list(pose_labels)
    with open(path, "w") as f:
        f.write("\n# version 30001\n\ndata_optics\n\nloop_\n")
        for i, l in enumerate(["rlnOpticsGroupName", "rlnOpticsGroup", "rlnImagePixelSize", "rlnImageSize",
                               "rlnImageDimensionality", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast"]):
            f.write(f"_{l} #{i + 1}\n")
        f.write(f"opticsGroup1 1 {angpix:.6f} {box} 3 300.0 2.7 0.1\n\n\n# version 30001\n\ndata_particles\n\nloop_\n")
        for i, l in enumerate(labels):
            f.write(f"_rln{l} #{i + 1}\n")
        for r in rows:
            f.write(" ".join(f"{r[l]:.6f}" if isinstance(r[l], float) else str(r[l]) for l in labels) + "\n")
        f.write("\n")


def lowpass(v, angpix, res):
    """Low-pass to `res` Å with a raised-cosine edge two Fourier shells wide, centred on the cut-off."""
    d = v.shape[0]
    f = [np.fft.fftfreq(n) for n in v.shape]
    kz, ky, kx = np.meshgrid(*f, indexing="ij")
    k = np.sqrt(kx * kx + ky * ky + kz * kz) * d              # Fourier shell (pixels)
    kc = d * angpix / res
    w = np.clip((k - (kc - 1)) / 2, 0, 1)
    filt = 0.5 * (1 + np.cos(math.pi * w))
    return np.real(np.fft.ifftn(np.fft.fftn(v) * filt)).astype(np.float32)


def prepare(data, out, start, given_angpix):
    parts = dataset(data)
    if not parts:
        raise SystemExit("relion-compare: no particles in " + data)
    angpix = pixel_size(data, parts, given_angpix)
    parts = mrc_particles(parts, out)
    first = read_vol(parts[0][1])[0]
    box = first.shape[0]
    if first.shape != (box, box, box):
        raise SystemExit(f"relion-compare: particles must be cubic, got {first.shape}")
    mpath = masks(data, parts, box, angpix, out)
    rows = [dict(ImageName=p, CtfImage=mpath[reg], OpticsGroup=1) for _, p, reg in parts]
    write_relion_star(os.path.join(out, "particles.star"), rows, angpix, box)
    with open(os.path.join(out, "names.txt"), "w") as f:      # RELION image path -> name in images.doc
        for name, p, _ in parts:
            f.write(f"{p}\t{name}\n")
    if start == "average":
        avg = np.zeros((box, box, box), np.float64)
        for _, p, _ in parts:
            avg += read_vol(p)[0]
        ref = (avg / len(parts)).astype(np.float32)
    else:
        ref = lowpass(read_vol(os.path.join(data, "truth_ref000001.mrc"))[0], angpix, 60.0)
    ref_path = os.path.join(out, f"start_{start}.mrc")
    write_vol(ref_path, ref, angpix)
    print(f"{angpix} {box} {0.9 * box * angpix:.1f} {ref_path} {len(parts)} {len(mpath)}")


def last_data_star(out):
    its = sorted(f for f in os.listdir(out) if f.startswith("run_it") and f.endswith("_data.star"))
    if not its:
        raise SystemExit("relion-compare: RELION wrote no run_itNNN_data.star")
    return os.path.join(out, its[-1])


def convert(out, angpix):
    """RELION's last run_itNNN_data.star -> OUTDIR/result.doc (Xmipp doc in ml_tomo's pose convention)."""
    path = last_data_star(out)
    names = dict(l.rstrip("\n").split("\t") for l in open(os.path.join(out, "names.txt")))
    blocks = read_star(path)
    rows = first_loop(blocks, "particles")
    apix = angpix
    if "optics" in blocks and blocks["optics"] and "rlnImagePixelSize" in blocks["optics"][0]:
        apix = float(blocks["optics"][0]["rlnImagePixelSize"])
    doc = os.path.join(out, "result.doc")
    with open(doc, "w") as f:
        f.write(f"# XMIPP_STAR_1 *\n# RELION {os.path.basename(path)} in ml_tomo's convention\ndata_\nloop_\n")
        for l in ("image", "ref", "angleRot", "angleTilt", "anglePsi", "shiftX", "shiftY", "shiftZ"):
            f.write(f" _{l}\n")
        for r in rows:
            if "rlnOriginXAngst" in r:
                o = np.array([float(r.get(f"rlnOrigin{c}Angst", 0)) for c in "XYZ"])
            else:
                o = np.array([float(r.get(f"rlnOrigin{c}", 0)) for c in "XYZ"]) * apix
            ang, s = relion_to_xmipp(float(r["rlnAngleRot"]), float(r["rlnAngleTilt"]), float(r["rlnAnglePsi"]), o, apix)
            img = r["rlnImageName"]
            name = names.get(img, names.get(os.path.abspath(img), img))
            f.write(f" {name} {int(r.get('rlnClassNumber', 1))} {ang[0]:.4f} {ang[1]:.4f} {ang[2]:.4f} "
                    f"{s[0]:.4f} {s[1]:.4f} {s[2]:.4f}\n")
    it = os.path.basename(path)[len("run_"):-len("_data.star")]
    refs = []
    k = 1
    while os.path.exists(os.path.join(out, f"run_{it}_class{k:03d}.mrc")):
        refs.append(os.path.join(out, f"run_{it}_class{k:03d}.mrc"))
        k += 1
    print(doc + " " + " ".join(refs))


def check_conversion(data, out, given_angpix):
    """Reconstruct from truth.star's poses under each candidate conversion; print correlations with truth."""
    parts = dataset(data)
    angpix = pixel_size(data, parts, given_angpix)
    parts = mrc_particles(parts, out)
    box = read_vol(parts[0][1])[0].shape[0]
    mpath = masks(data, parts, box, angpix, out)
    by_name = {os.path.basename(n): (p, reg) for n, p, reg in parts}
    truth = read_star(os.path.join(data, "truth.star"))["particles"]
    ref = read_vol(os.path.join(data, "truth_ref000001.mrc"))[0].astype(np.float64).ravel()
    labels = ["AngleRot", "AngleTilt", "AnglePsi", "OriginXAngst", "OriginYAngst", "OriginZAngst"]
    for variant, what in (("used", "RELION angles of Eᵀ, origin = +s·px (the conversion used)"),
                          ("same_plus", "RELION angles = Xmipp angles, origin = +s·px"),
                          ("inv_minus", "RELION angles of Eᵀ, origin = −s·px"),
                          ("same_minus", "RELION angles = Xmipp angles, origin = −s·px")):
        rows = []
        for t in truth:
            if int(t["ref"]) != 1:
                continue
            p, reg = by_name[os.path.basename(t["image"])]
            s = np.array([float(t["shiftX"]), float(t["shiftY"]), float(t["shiftZ"])])
            ang, o = xmipp_to_relion(float(t["angleRot"]), float(t["angleTilt"]), float(t["anglePsi"]), s, angpix, variant)
            rows.append(dict(ImageName=p, CtfImage=mpath[reg], OpticsGroup=1, AngleRot=ang[0], AngleTilt=ang[1],
                             AnglePsi=ang[2], OriginXAngst=o[0], OriginYAngst=o[1], OriginZAngst=o[2]))
        star = os.path.join(out, f"check_{variant}.star")
        rec = os.path.join(out, f"check_{variant}.mrc")
        write_relion_star(star, rows, angpix, box, labels)
        with open(os.path.join(out, f"check_{variant}.log"), "w") as log:
            subprocess.run(["relion_reconstruct", "--i", star, "--o", rec, "--3d_rot", "--ctf"], check=True,
                           stdout=log, stderr=subprocess.STDOUT)
        c = np.corrcoef(ref, read_vol(rec)[0].astype(np.float64).ravel())[0, 1]
        print(f"correlation {c:.4f}  {what}  ({len(rows)} class-1 particles, {rec})")


def row(out, start, k, seconds):
    s = json.load(open(os.path.join(out, "evaluate.json")))
    print(f"| RELION 3.1.3 (start: {start}) | {k} | {s['accuracy']:.3f} | {s['adjustedRandIndex']:.3f} | "
          f"{s['angularErrorFitted']['median']:.1f}° | {float(seconds):.0f} s |")


cmd, args = sys.argv[1], sys.argv[2:]
{"prepare": prepare, "convert": convert, "check": check_conversion, "row": row}[cmd](*args)
PYEOF
)
py() { python3 -c "$PY" "$@"; }

if [ "$CHECK" = 1 ]; then
  py check "$DATA" "$OUT" "$ANGPIX"
  exit 0
fi

read -r APIX BOX DIAM REF NPART NMASK < <(py prepare "$DATA" "$OUT" "$START" "$ANGPIX")
echo "relion-compare: $NPART particles of ${BOX}³ at $APIX Å/px, $NMASK missing-region mask(s), start $REF," \
     "particle diameter $DIAM Å, K=$K, $ITER iterations, $NP ranks" >&2

rm -f "$OUT"/run_it*  # a stale iteration of an earlier run must not be scored
cmd=(mpirun -n "$NP" --oversubscribe --bind-to none relion_refine_mpi --i "$OUT/particles.star" --o "$OUT/run"
     --ref "$REF" --K "$K" --iter "$ITER" --tau2_fudge 4 --healpix_order 1 --offset_range 3 --offset_step 1.5
     --particle_diameter "$DIAM" --flatten_solvent --zero_mask --firstiter_cc --dont_combine_weights_via_disc
     --norm --scale --pad 2 --j 1 --ctf --ini_high 60 "${EXTRA[@]}")
echo "${cmd[*]}" > "$OUT/relion.cmd"
t0=$(date +%s.%N)
if ! "${cmd[@]}" > "$OUT/relion.out" 2> "$OUT/relion.err"; then
  echo "relion-compare: relion_refine_mpi failed; last lines of $OUT/relion.err and relion.out:" >&2
  tail -n 15 "$OUT/relion.err" "$OUT/relion.out" >&2
  exit 1
fi
t1=$(date +%s.%N)
WALL=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
echo "$WALL" > "$OUT/relion.time"
echo "relion-compare: relion_refine_mpi took $WALL s (wall)" >&2

read -r DOC REFS < <(py convert "$OUT" "$APIX")
# REFS: RELION's class maps of the last iteration, space-separated (OUTDIR must not contain spaces); they
# add the FSC against the true references. Should scoring them fail, score the metadata alone.
# shellcheck disable=SC2086
if ! "$BIN" evaluate --truth "$DATA" --doc "$DOC" ${REFS:+--refs $REFS} > "$OUT/evaluate.txt" 2> "$OUT/evaluate.err"; then
  echo "relion-compare: evaluate with --refs failed ($(tail -n 1 "$OUT/evaluate.err")); scoring without the maps" >&2
  REFS=""
  "$BIN" evaluate --truth "$DATA" --doc "$DOC" > "$OUT/evaluate.txt"
fi
# shellcheck disable=SC2086
"$BIN" evaluate --truth "$DATA" --doc "$DOC" ${REFS:+--refs $REFS} --json > "$OUT/evaluate.json" 2>> "$OUT/evaluate.err"
cat "$OUT/evaluate.txt" >&2
py row "$OUT" "$START" "$K" "$WALL"
