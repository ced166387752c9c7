#!/usr/bin/env python3
"""Projects ml_tomo's time per iteration and parallel efficiency on N nodes (standard library only).

time(P) = E-step work / (P x cores) x imbalance + Allreduce(payload, P) + M-step + rank-0 serial writes

The constants come from measurements on the development machine (see slurm/README.md); override them
with the options to project another cluster. A node is one MPI rank running `cores` threads.
"""
import argparse
import math


def payload_bytes(k, d):
    """The one Allreduce per iteration: 2 half-sets x K classes x (real d^3 image sums + half-complex
    wedge sums) plus a few scalars, in float64."""
    return 8 * (2 * k * (d ** 3 + d * d * (d // 2 + 1)) + k + 16)


def allreduce_seconds(nbytes, p, bandwidth, latency):
    """Ring allreduce: 2(P-1)/P of the payload crosses each link, 2 log2(P) latency steps."""
    if p == 1:
        return 0.0
    return 2 * (p - 1) / p * nbytes / bandwidth + 2 * math.log2(p) * latency


def iteration_seconds(n, d, k, p, a):
    per_triple = a.triple32 if d == 32 else a.triple64
    ranks_images = math.ceil(n / p)                       # the largest rank's block
    estep = ranks_images * a.orientations * k * per_triple / a.cores
    reduce = allreduce_seconds(payload_bytes(k, d), p, a.bandwidth, a.latency)
    mstep = k * (a.mstep32 if d == 32 else a.mstep64)
    writes = 0.0 if a.overlap_writes else n * a.write_row + k * (a.write_ref32 if d == 32 else a.write_ref64)
    return estep + reduce + mstep + writes


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cores", type=int, default=32, help="cores (threads) per node")
    ap.add_argument("--orientations", type=int, default=3888, help="orientations per image (--ang 15 exhaustive)")
    ap.add_argument("--triple32", type=float, default=60e-6, help="core-seconds per (image, orientation, class), d=32")
    ap.add_argument("--triple64", type=float, default=490e-6, help="core-seconds per triple, d=64")
    ap.add_argument("--mstep32", type=float, default=0.01, help="M-step seconds per class, d=32")
    ap.add_argument("--mstep64", type=float, default=0.08, help="M-step seconds per class, d=64")
    ap.add_argument("--write-row", type=float, default=7e-6, help="rank-0 seconds per doc row written")
    ap.add_argument("--write-ref32", type=float, default=0.005, help="rank-0 seconds per reference written (MRC+HDF5), d=32")
    ap.add_argument("--write-ref64", type=float, default=0.04, help="same, d=64")
    ap.add_argument("--bandwidth", type=float, default=10e9, help="network bytes/s per link (assumed)")
    ap.add_argument("--latency", type=float, default=5e-6, help="network latency per message, s (assumed)")
    ap.add_argument("--overlap-writes", action="store_true", help="rank 0 writes while the next E-step runs")
    ap.add_argument("--classes", type=int, default=3)
    a = ap.parse_args()

    nodes = [2 ** i for i in range(11)]
    print(f"K = {a.classes}, {a.orientations} orientations, {a.cores} cores per node, "
          f"writes {'overlapped' if a.overlap_writes else 'serial on rank 0'}\n")
    print("| N | d | " + " | ".join(f"{p} node{'s' if p > 1 else ''}" for p in nodes) + " |")
    print("|---|---|" + "---|" * len(nodes))
    for n in (10_000, 100_000):
        for d in (32, 64):
            t1 = iteration_seconds(n, d, a.classes, 1, a)
            cells = []
            for p in nodes:
                tp = iteration_seconds(n, d, a.classes, p, a)
                cells.append(f"{tp:.3g} s ({100 * t1 / (p * tp):.0f} %)")
            print(f"| {n:,} | {d} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
