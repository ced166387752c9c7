#!/usr/bin/env bash
# Accuracy suite: simulate data with known truth, run a reference-free refinement exactly as a user
# would (seed-style command line, 2 ranks), score it with `ml_tomo evaluate`, and print one Markdown
# row per case. Cases come from the environment so that a run can be small or the whole matrix:
#
#   SNRS="1 0.3 0.1 0.05 0.03 0.01"  COUNTS="200 400"  RADII="7 4.5"  CLASSES=2
#   ITER=10  ANG=15  EXTRA=--classic  bench/accuracy.sh > bench/results/accuracy.md   (EXTRA: more options)
#
# RELION=1 adds RELION 3.1.3's result on the same data (bench/relion-compare.sh: 15 iterations, 3 ranks,
# started from the unaligned average, the only start a reference-free user has) as the last columns.
# PHANTOM=blobs uses simulate's analytic body (classes differ by a domain) instead of the ribosome.
#
# Data: the 80S ribosome map (EMD-3883, 64³ at 8.66 Å/px) from the zarr-particle-tools source
# distribution on PyPI, Fourier-resized to 32³ (17.32 Å/px); classes 2…K lack a sphere of radius r
# at a dense place DISTANCE × box from the centre (default 0.25: a subunit or factor at the periphery); ±60° wedge_y;
# shifts σ = 1.5 px. `RIBOSOME=/path/map.mrc` skips the download.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ML_TOMO_BIN:-$(swift build -c release -Xswiftc -target-cpu -Xswiftc haswell -Xcc -march=x86-64-v3 --show-bin-path)/ml_tomo}
WORK=${WORK:-$(mktemp -d /tmp/ml_tomo-accuracy.XXXXXX)}
SNRS=${SNRS:-"0.05"}; COUNTS=${COUNTS:-"200"}; RADII=${RADII:-"7"}; CLASSES=${CLASSES:-2}
ITER=${ITER:-10}; ANG=${ANG:-15}; RANKS=${RANKS:-2}; SEED=${SEED:-7}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

[ "${PHANTOM:-ribosome}" = blobs ] || RIBOSOME=${RIBOSOME:-$(bash bench/fetch-ribosome.sh)}

header="| K | N | SNR | sphere r (px) | accuracy | ARI | fitted median angular error | smallest class | s/iteration | extra options |"
rule="|---|---|---|---|---|---|---|---|---|---|"
if [ "${RELION:-0}" = 1 ]; then
  header="$header RELION accuracy | RELION ARI | RELION fitted median | RELION s/iteration |"; rule="$rule---|---|---|---|"
fi
echo "$header"; echo "$rule"
for r in $RADII; do for n in $COUNTS; do for snr in $SNRS; do
  data="$WORK/k${CLASSES}-n$n-snr$snr-r$r"
  rm -rf "$data"
  body=()
  [ "${PHANTOM:-ribosome}" = blobs ] || body=(--phantom "$RIBOSOME" --remove-sphere "$r" --sphere-distance "${DISTANCE:-0.25}")
  "$BIN" simulate "$data" "${body[@]}" --particles "$n" \
      --size 32 --classes "$CLASSES" --snr "$snr" --missing wedge_y --tilt-range 60 --shift-sigma 1.5 \
      --seed "$SEED" --pixel-size 17.32 > "$data.simulate.log" 2>&1
  start=$(date +%s.%N)
  (cd "$data" && mpirun -np "$RANKS" --bind-to none "$BIN" -i images.sel --doc images.doc --missing wedges.doc \
      --nref "$CLASSES" --ang "$ANG" --iter "$ITER" --oroot run/ml --pixel_size 17.32 ${EXTRA:-} \
      > run.out 2> run.err)
  end=$(date +%s.%N)
  "$BIN" evaluate --truth "$data" --doc "$data/run/ml.doc" --json > "$data.score.json"
  row=$(python3 - "$data.score.json" "$CLASSES" "$n" "$snr" "$r" "$start" "$end" "$ITER" "${EXTRA:-}" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
k, n, snr, r, start, end, iters, extra = sys.argv[2:10]
counts = [sum(row) for row in s["confusion"]] if s.get("confusion") else []
smallest = min(counts) / float(n) if counts else 0
per_iter = (float(end) - float(start)) / int(iters)
print(f"| {k} | {n} | {snr} | {r} | {s['accuracy']:.3f} | {s['adjustedRandIndex']:.3f} | "
      f"{s['angularErrorFitted']['median']:.1f}° | {smallest:.2f} | {per_iter:.1f} | {extra} |")
EOF
)
  if [ "${RELION:-0}" = 1 ]; then
    # relion-compare's last stdout line: | RELION 3.1.3 (start: S) | K | accuracy | ARI | fitted median | wall s |
    rel=$(ML_TOMO_BIN="$BIN" bash bench/relion-compare.sh "$data" "$data-relion" --K "$CLASSES" 2> "$data-relion.log" | tail -1)
    row="$row$(echo "$rel" | awk -F'|' '{w=$7; gsub(/[^0-9.]/,"",w); printf " %s | %s | %s | %.1f |", $4, $5, $6, w/15}')"
  fi
  echo "$row"
done; done; done
