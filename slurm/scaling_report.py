#!/usr/bin/env python3
"""Table and plot of an ml_tomo scaling study (written by slurm/scaling-study.sh).

    python3 slurm/scaling_report.py STUDY_DIR

Reads STUDY_DIR/jobs.tsv (one row per job: series, ranks, threads, particles, jobid, dir, oroot,
stdout) and STUDY_DIR/states.tsv (jobid, state, exit, elapsed), then for every job:
  * every `<oroot>_itNNNNNN_log.doc` (XMIPP_STAR_1, loop or key-value form): all labels starting
    with `_time` are per-iteration timings in seconds (e.g. _timeEStepMax, _timeReduce, _timeMStep);
  * the JSON lines `{"event":"iteration", ...}` of the job's stdout (an `srun --label` prefix such as
    "0: " is ignored); numeric keys starting with "time" are timings, and a wall-clock key
    (seconds, wallSeconds, elapsed, iterationSeconds, duration) is the iteration's time.

Time per iteration of a job = median over its iterations, leaving out the first when there are
more (it pays for FFT plans and page faults). An iteration's time is, in order of preference: the
JSON wall-clock key, a `_timeIteration`/`_timeTotal`/`_timeWall` label, or the sum of the `_time*`
labels that are not Min/Mean/Avg variants (of X and XMax, only XMax counts). Jobs with no
timings at all fall back to the job's elapsed time from Slurm if it COMPLETED (marked in the
`source` column); failed jobs without timings get no time.

Parallel efficiency, against the job with the fewest ranks R0 of the same series:
  strong scaling (same data):        E(R) = T(R0)·R0 / (T(R)·R),   speedup S(R) = T(R0)/T(R)
  weak scaling (particles ∝ ranks):  E(R) = T(R0) / T(R)

Writes STUDY_DIR/scaling.csv, STUDY_DIR/scaling.md and STUDY_DIR/scaling.svg (plain SVG, no
plotting library needed). Standard library only.
"""

from __future__ import annotations

import csv
import glob
import json
import math
import os
import re
import statistics
import sys
from dataclasses import dataclass, field

WALL_KEYS = ("seconds", "wallSeconds", "wall_seconds", "elapsed", "elapsedSeconds", "iterationSeconds",
             "duration", "wall")
WALL_LABELS = ("timeIteration", "timeTotal", "timeWall", "timeIter")
ITERATION_KEYS = ("iteration", "iter", "it")


# ---------------------------------------------------------------------------------------------
# Reading

def parse_xmipp_star(path: str) -> list[dict[str, str]]:
    """Rows of an XMIPP_STAR_1 file (all data blocks; loop_ rows or one key-value row per block).
    Labels are returned without the leading underscore."""
    rows: list[dict[str, str]] = []
    labels: list[str] = []
    in_loop = False
    kv: dict[str, str] = {}

    def flush_kv() -> None:
        nonlocal kv
        if kv:
            rows.append(kv)
            kv = {}

    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("data_"):
                flush_kv()
                in_loop, labels = False, []
                continue
            if line == "loop_":
                flush_kv()
                in_loop, labels = True, []
                continue
            if line.startswith("_"):
                parts = line.split()
                if in_loop:   # column declaration, possibly followed by a comment such as "#1"
                    labels.append(parts[0][1:])
                elif len(parts) >= 2:
                    kv[parts[0][1:]] = parts[1]
                continue
            if in_loop and labels:
                values = line.split()
                if len(values) >= len(labels):
                    rows.append(dict(zip(labels, values)))
    flush_kv()
    return rows


def to_float(value) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass
class Iteration:
    number: int
    timings: dict[str, float] = field(default_factory=dict)   # label (no underscore) -> seconds
    wall: float | None = None                                 # explicit wall-clock time, if given

    def seconds(self) -> tuple[float | None, str]:
        if self.wall is not None:
            return self.wall, "json wall time"
        for label in WALL_LABELS:
            if label in self.timings:
                return self.timings[label], label
        parts = [k for k in self.timings
                 if not re.search(r"(Min|Mean|Avg|Average)$", k) and k + "Max" not in self.timings]
        if parts:
            return sum(self.timings[k] for k in parts), "sum of " + "+".join(sorted(parts))
        return None, ""


def iteration_from_filename(path: str) -> int | None:
    m = re.search(r"_it(\d+)_log\.doc$", path)
    return int(m.group(1)) if m else None


def read_job_iterations(oroot: str, stdout_path: str) -> dict[int, Iteration]:
    iterations: dict[int, Iteration] = {}

    def get(n: int) -> Iteration:
        return iterations.setdefault(n, Iteration(n))

    for path in sorted(glob.glob(glob.escape(oroot) + "_it*_log.doc")):
        file_iteration = iteration_from_filename(path)
        for row in parse_xmipp_star(path):
            number = None
            for key in ("iterationNumber", "iteration", "iter"):
                if key in row and to_float(row[key]) is not None:
                    number = int(float(row[key]))
            if number is None:
                number = file_iteration
            if number is None:
                continue
            timings = {k: v for k, v in ((k, to_float(v)) for k, v in row.items() if k.startswith("time"))
                       if v is not None}
            if timings:
                get(number).timings.update(timings)

    if stdout_path and os.path.exists(stdout_path):
        with open(stdout_path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                line = re.sub(r"^\s*\d+:\s*", "", raw.strip())   # srun --label prefix
                if not line.startswith("{"):
                    continue
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(event, dict) or event.get("event") != "iteration":
                    continue
                number = next((int(event[k]) for k in ITERATION_KEYS
                               if isinstance(event.get(k), (int, float))), None)
                if number is None:
                    continue
                it = get(number)
                for k, v in event.items():
                    x = to_float(v) if not isinstance(v, bool) else None
                    if x is None:
                        continue
                    if k in WALL_KEYS and it.wall is None:
                        it.wall = x
                    elif k.startswith("time") or k.startswith("_time"):
                        # Log-doc values win when both exist (same quantity, file is authoritative).
                        it.timings.setdefault(k.lstrip("_"), x)
    return iterations


def elapsed_seconds(text: str) -> float | None:
    """Slurm elapsed time [D-]HH:MM:SS (or MM:SS) in seconds."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)(?:\.\d+)?", text or "")
    if not m:
        return None
    d, h, mi, s = (int(g) if g else 0 for g in m.groups())
    return ((d * 24 + h) * 60 + mi) * 60 + s


# ---------------------------------------------------------------------------------------------
# Analysis

@dataclass
class JobResult:
    series: str
    ranks: int
    threads: int
    particles: int
    jobid: str
    state: str
    iterations_seen: int
    time_per_iteration: float | None
    source: str
    breakdown: dict[str, float]
    speedup: float | None = None
    efficiency: float | None = None


def summarise_job(row: dict[str, str], state: dict[str, str]) -> JobResult:
    iterations = read_job_iterations(row["oroot"], row["stdout"])
    numbered = sorted(n for n, it in iterations.items() if it.seconds()[0] is not None and n >= 1) or \
        sorted(n for n, it in iterations.items() if it.seconds()[0] is not None)
    used = numbered[1:] if len(numbered) > 1 else numbered
    times = [iterations[n].seconds()[0] for n in used]
    sources = {iterations[n].seconds()[1] for n in used}
    labels = sorted({k for n in used for k in iterations[n].timings})
    breakdown = {}
    for label in labels:
        values = [iterations[n].timings[label] for n in used if label in iterations[n].timings]
        if values:
            breakdown[label] = statistics.median(values)
    if times:
        t, source = statistics.median(times), "; ".join(sorted(sources))
    elif state.get("state") == "COMPLETED":
        elapsed = elapsed_seconds(state.get("elapsed", ""))
        t, source = elapsed, ("job elapsed (no iteration timings)" if elapsed is not None else "none")
    else:
        # A failed job's elapsed time says nothing about scaling (a checkpointed one has timings).
        t, source = None, "none (job " + state.get("state", "state unknown") + ")"
    return JobResult(series=row["series"], ranks=int(row["ranks"]), threads=int(row["threads"]),
                     particles=int(row["particles"]), jobid=row["jobid"], state=state.get("state", "?"),
                     iterations_seen=len(numbered), time_per_iteration=t, source=source, breakdown=breakdown)


def add_efficiency(results: list[JobResult]) -> None:
    for series in {r.series for r in results}:
        jobs = sorted((r for r in results if r.series == series and r.time_per_iteration), key=lambda r: r.ranks)
        if not jobs:
            continue
        base = jobs[0]
        for r in jobs:
            r.speedup = base.time_per_iteration / r.time_per_iteration
            if series == "weak":
                r.efficiency = base.time_per_iteration / r.time_per_iteration
            else:
                r.efficiency = base.time_per_iteration * base.ranks / (r.time_per_iteration * r.ranks)


def read_tsv(path: str) -> list[dict[str, str]]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t"))


# ---------------------------------------------------------------------------------------------
# Output

def fmt(x: float | None, digits: int = 3) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def write_tables(results: list[JobResult], study: str) -> list[str]:
    labels = sorted({k for r in results for k in r.breakdown})
    head = ["series", "ranks", "threads", "particles", "jobid", "state", "iterations",
            "time_per_iteration_s", "speedup", "efficiency"] + [f"{k}_s" for k in labels] + ["source"]
    rows = []
    for r in results:
        rows.append([r.series, r.ranks, r.threads, r.particles, r.jobid, r.state, r.iterations_seen,
                     fmt(r.time_per_iteration, 4), fmt(r.speedup), fmt(r.efficiency)]
                    + [fmt(r.breakdown.get(k), 4) for k in labels] + [r.source])
    with open(os.path.join(study, "scaling.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(head)
        w.writerows(rows)
    md = ["# ml_tomo scaling study", "",
          "Time per iteration: median over iterations (the first left out when there are several).",
          "Efficiency: strong T(R0)·R0/(T(R)·R), weak T(R0)/T(R), against the fewest ranks R0.", "",
          "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    md += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    with open(os.path.join(study, "scaling.md"), "w", encoding="utf-8") as f:
        f.write("\n".join(md) + "\n")
    return md


COLORS = {"strong": "#1f77b4", "weak": "#d62728"}
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d"]


def esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Panel:
    """One plot area: log2 x axis over rank counts, linear or log10 y axis."""

    def __init__(self, x0, y0, w, h, ranks, ymin, ymax, ylog, title, ylabel):
        self.x0, self.y0, self.w, self.h = x0, y0, w, h
        self.rmin, self.rmax = min(ranks), max(ranks)
        self.ylog = ylog
        if ylog:
            self.ymin, self.ymax = nice_125(ymin, down=True), nice_125(ymax, down=False)
        else:
            self.ymin, self.ymax = ymin, ymax
        self.ranks, self.title, self.ylabel = sorted(set(ranks)), title, ylabel

    def px(self, r: float) -> float:
        if self.rmax == self.rmin:
            return self.x0 + self.w / 2
        f = (math.log2(r) - math.log2(self.rmin)) / (math.log2(self.rmax) - math.log2(self.rmin))
        return self.x0 + 20 + f * (self.w - 40)

    def py(self, y: float) -> float:
        if self.ylog:
            f = (math.log10(max(y, 1e-12)) - math.log10(self.ymin)) / (math.log10(self.ymax) - math.log10(self.ymin))
        else:
            f = (y - self.ymin) / (self.ymax - self.ymin)
        return self.y0 + self.h - f * self.h

    def frame(self) -> list[str]:
        out = [f'<rect x="{self.x0}" y="{self.y0}" width="{self.w}" height="{self.h}" fill="none" stroke="#333"/>',
               f'<text x="{self.x0 + self.w / 2}" y="{self.y0 - 10}" text-anchor="middle" font-weight="bold">'
               f'{esc(self.title)}</text>',
               f'<text x="{self.x0 + self.w / 2}" y="{self.y0 + self.h + 38}" text-anchor="middle">MPI ranks</text>',
               f'<text transform="translate({self.x0 - 48},{self.y0 + self.h / 2}) rotate(-90)" '
               f'text-anchor="middle">{esc(self.ylabel)}</text>']
        for r in self.ranks:
            x = self.px(r)
            out.append(f'<line x1="{x:.1f}" y1="{self.y0 + self.h}" x2="{x:.1f}" y2="{self.y0 + self.h + 5}" stroke="#333"/>')
            out.append(f'<text x="{x:.1f}" y="{self.y0 + self.h + 19}" text-anchor="middle">{r}</text>')
        for y in self.yticks():
            py = self.py(y)
            out.append(f'<line x1="{self.x0}" y1="{py:.1f}" x2="{self.x0 + self.w}" y2="{py:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{self.x0 - 6}" y="{py + 4:.1f}" text-anchor="end">{y:g}</text>')
        return out

    def yticks(self) -> list[float]:
        if self.ylog:
            ticks, e = [], math.floor(math.log10(self.ymin))
            while 10 ** e <= self.ymax * 1.0001:
                for m in (1, 2, 5):
                    v = m * 10 ** e
                    if self.ymin <= v <= self.ymax * 1.0001:
                        ticks.append(float(f"{v:.6g}"))
                e += 1
            return ticks
        step = nice_step((self.ymax - self.ymin) / 5)
        return [round(self.ymin + i * step, 10) for i in range(int((self.ymax - self.ymin) / step + 1e-9) + 1)]

    def polyline(self, points, color, dashed=False, markers=True) -> list[str]:
        pts = " ".join(f"{self.px(r):.1f},{self.py(y):.1f}" for r, y in points)
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        out = [f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"{dash}/>']
        if markers:
            out += [f'<circle cx="{self.px(r):.1f}" cy="{self.py(y):.1f}" r="4" fill="{color}"/>' for r, y in points]
        return out


def nice_125(x: float, down: bool) -> float:
    """The nearest value of the form {1,2,5}·10^k below (down) or above x."""
    e = math.floor(math.log10(x))
    candidates = [m * 10 ** k for k in (e - 1, e, e + 1) for m in (1, 2, 5)]
    return max(c for c in candidates if c <= x * 1.0001) if down else min(c for c in candidates if c >= x * 0.9999)


def nice_step(raw: float) -> float:
    if raw <= 0:
        return 1.0
    e = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * e >= raw:
            return m * e
    return 10 * e


def write_svg(results: list[JobResult], study: str) -> None:
    timed = [r for r in results if r.time_per_iteration]
    width, height = 1260, 470
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>']
    if not timed:
        out.append('<text x="40" y="60" font-size="16">No timings found: see scaling.md and the job outputs.</text>')
    else:
        ranks = [r.ranks for r in timed]
        times = [r.time_per_iteration for r in timed]
        # Panel 1: time per iteration (log-log) with the ideal strong-scaling line.
        # The y range also holds the ideal strong-scaling line T(R0)·R0/R.
        lows = list(times)
        for series in ("strong",):
            jobs = sorted((r for r in timed if r.series == series), key=lambda r: r.ranks)
            if jobs:
                lows.append(jobs[0].time_per_iteration * jobs[0].ranks / jobs[-1].ranks)
        p1 = Panel(80, 50, 330, 330, ranks, min(lows) / 1.2, max(times) * 1.5, True,
                   "Time per iteration", "seconds")
        out += p1.frame()
        legend = []
        for series in ("strong", "weak"):
            jobs = sorted((r for r in timed if r.series == series), key=lambda r: r.ranks)
            if not jobs:
                continue
            out += p1.polyline([(r.ranks, r.time_per_iteration) for r in jobs], COLORS[series])
            base = jobs[0]
            ideal = [(r.ranks, base.time_per_iteration * (base.ranks / r.ranks if series == "strong" else 1))
                     for r in jobs]
            out += p1.polyline(ideal, COLORS[series], dashed=True, markers=False)
            legend.append((series, COLORS[series]))
        for i, (series, color) in enumerate(legend):
            y = 70 + 18 * i
            out.append(f'<line x1="{p1.x0 + p1.w - 130}" y1="{y}" x2="{p1.x0 + p1.w - 105}" y2="{y}" '
                       f'stroke="{color}" stroke-width="2"/>')
            out.append(f'<text x="{p1.x0 + p1.w - 100}" y="{y + 4}">{series} (dashed: ideal)</text>')

        # Panel 2: parallel efficiency.
        effs = [r.efficiency for r in timed if r.efficiency is not None]
        p2 = Panel(500, 50, 330, 330, ranks, 0.0, max(1.2, max(effs, default=1) * 1.1), False,
                   "Parallel efficiency", "efficiency")
        out += p2.frame()
        out += p2.polyline([(min(ranks), 1.0), (max(ranks), 1.0)], "#999", dashed=True, markers=False)
        for series in ("strong", "weak"):
            jobs = sorted((r for r in timed if r.series == series and r.efficiency is not None), key=lambda r: r.ranks)
            if jobs:
                out += p2.polyline([(r.ranks, r.efficiency) for r in jobs], COLORS[series])

        # Panel 3: breakdown of the strong series (stacked bars of the per-phase timings).
        strong = sorted((r for r in timed if r.series == "strong" and r.breakdown), key=lambda r: r.ranks)
        phases = [k for k in sorted({k for r in strong for k in r.breakdown})
                  if not re.search(r"(Min|Mean|Avg|Average)$", k) and k not in WALL_LABELS
                  and not any(k + "Max" == other for r in strong for other in r.breakdown)]
        x0, y0, w, h = 920, 50, 300, 330
        out.append(f'<text x="{x0 + w / 2}" y="{y0 - 10}" text-anchor="middle" font-weight="bold">'
                   f'Strong scaling: time per phase</text>')
        if strong and phases:
            top = max(sum(r.breakdown.get(k, 0) for k in phases) for r in strong) * 1.1 or 1
            step = nice_step(top / 5)
            out.append(f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#333"/>')
            for i in range(int(top / step) + 1):
                py = y0 + h - i * step / top * h
                out.append(f'<line x1="{x0}" y1="{py:.1f}" x2="{x0 + w}" y2="{py:.1f}" stroke="#ddd"/>')
                out.append(f'<text x="{x0 - 6}" y="{py + 4:.1f}" text-anchor="end">{i * step:g}</text>')
            bw = w / len(strong)
            for j, r in enumerate(strong):
                acc = 0.0
                for c, k in enumerate(phases):
                    v = r.breakdown.get(k, 0.0)
                    y_top = y0 + h - (acc + v) / top * h
                    out.append(f'<rect x="{x0 + j * bw + bw * 0.2:.1f}" y="{y_top:.1f}" width="{bw * 0.6:.1f}" '
                               f'height="{v / top * h:.1f}" fill="{PALETTE[c % len(PALETTE)]}"/>')
                    acc += v
                out.append(f'<text x="{x0 + j * bw + bw / 2:.1f}" y="{y0 + h + 19}" text-anchor="middle">{r.ranks}</text>')
            out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 38}" text-anchor="middle">MPI ranks (seconds per iteration)</text>')
            for c, k in enumerate(phases):
                lx, ly = x0 + (c % 2) * 150, y0 + h + 56 + (c // 2) * 16
                out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{PALETTE[c % len(PALETTE)]}"/>')
                out.append(f'<text x="{lx + 14}" y="{ly}">{esc(k)}</text>')
        else:
            out.append(f'<text x="{x0 + 10}" y="{y0 + 40}">no per-phase _time* labels found</text>')
    out.append("</svg>")
    with open(os.path.join(study, "scaling.svg"), "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 2
    study = argv[1]
    jobs = read_tsv(os.path.join(study, "jobs.tsv"))
    if not jobs:
        print(f"scaling_report: {study}/jobs.tsv has no jobs", file=sys.stderr)
        return 1
    states = {row["jobid"]: row for row in read_tsv(os.path.join(study, "states.tsv"))}
    results = [summarise_job(row, states.get(row["jobid"], {})) for row in jobs]
    add_efficiency(results)
    md = write_tables(results, study)
    write_svg(results, study)
    print("\n".join(md))
    print(f"\nscaling_report: wrote {study}/scaling.csv, scaling.md, scaling.svg")
    missing = [r for r in results if r.time_per_iteration is None]
    for r in missing:
        print(f"scaling_report: no timings for {r.series} r={r.ranks} (job {r.jobid}, {r.state})", file=sys.stderr)
    return 1 if len(missing) == len(results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
