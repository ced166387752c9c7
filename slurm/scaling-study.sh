#!/usr/bin/env bash
# scaling-study.sh — strong- and weak-scaling series of ml_tomo through slurm/ml_tomo.sbatch.
#
#   slurm/scaling-study.sh --out study1                        # 1 2 4 ranks, defaults below
#   slurm/scaling-study.sh --out s2 --ranks "1 2 4 8 16 32" --threads 4 --ranks-per-node 8 \
#       --particles 512 --particles-per-rank 64 --sbatch-args "--partition=compute --time=04:00:00"
#   slurm/scaling-study.sh --report-only s2                    # re-read the logs, rewrite table + plot
#
# Strong scaling: one data set of --particles images, refined with each rank count.
# Weak scaling:   --particles-per-rank × R images for R ranks (a data set per rank count).
# Data come from `ml_tomo simulate` (run here, on the submitting host); each refinement is one
# sbatch job of the template. When all jobs have ended, slurm/scaling_report.py reads every job's
# <oroot>_itNNNNNN_log.doc (all `_time*` columns) and the {"event":"iteration",…} JSON lines of its
# stdout, and writes <out>/scaling.csv, <out>/scaling.md and <out>/scaling.svg.
#
# Command templates (placeholders are replaced; the result is split on whitespace):
#   --simulate-cmd  default: "simulate {dir} --particles {n}"              ({dir} data dir, {n} images)
#   --refine-cmd    default: "-i {data}/images.sel --doc {data}/images.doc --oroot {oroot} --nref 2
#                             --missing {data}/wedges.doc --iter 3 --ang 20" ({data} data dir, {oroot})
# The template appends --thr $SLURM_CPUS_PER_TASK to the refinement. Each job runs in its data
# directory (relative particle paths in images.sel resolve there); its output and oroot are absolute.
#
# Other options:
#   --ranks "1 2 4"          rank counts (both series)              --threads T       cpus per rank (1)
#   --ranks-per-node N       at most N ranks per node (default: all ranks on one node)
#   --series strong,weak     which series to run                    --timeout S       wait at most S s (7200)
#   --sbatch-args "…"        extra sbatch options (partition, account, time, …)
#   --parallel               let the jobs run at the same time (default: one after the other, through
#                            --dependency=singleton, so they do not disturb each other's timings; on a
#                            real cluster --parallel with --sbatch-args --exclusive is faster and as fair)
#   --dry-run                print the commands, submit nothing
# Environment: ML_TOMO_BIN (the executable, default `ml_tomo` on PATH), SLURM_CONF as usual
# (for the local test cluster: eval "$(slurm/local-cluster.sh env)").
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TEMPLATE=$HERE/ml_tomo.sbatch
REPORT=$HERE/scaling_report.py

OUT="scaling-$(date +%Y%m%d-%H%M%S)"
RANKS="1 2 4"
THREADS=1
RANKS_PER_NODE=0
PARTICLES=64
PARTICLES_PER_RANK=16
SERIES="strong,weak"
TIMEOUT=7200
SBATCH_ARGS=""
SIMULATE_CMD="simulate {dir} --particles {n}"
REFINE_CMD="-i {data}/images.sel --doc {data}/images.doc --oroot {oroot} --nref 2 --missing {data}/wedges.doc --iter 3 --ang 20"
DRY_RUN=0
PARALLEL=0
REPORT_ONLY=""

die() { echo "scaling-study: ERROR: $*" >&2; exit 1; }
say() { echo "scaling-study: $*"; }

while (($#)); do
    case $1 in
        --out) OUT=$2; shift 2 ;;
        --ranks) RANKS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --ranks-per-node) RANKS_PER_NODE=$2; shift 2 ;;
        --particles) PARTICLES=$2; shift 2 ;;
        --particles-per-rank) PARTICLES_PER_RANK=$2; shift 2 ;;
        --series) SERIES=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --sbatch-args) SBATCH_ARGS=$2; shift 2 ;;
        --simulate-cmd) SIMULATE_CMD=$2; shift 2 ;;
        --refine-cmd) REFINE_CMD=$2; shift 2 ;;
        --dry-run) DRY_RUN=1; shift ;;
        --parallel) PARALLEL=1; shift ;;
        --report-only) REPORT_ONLY=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option '$1' (see --help)" ;;
    esac
done

if [[ -n $REPORT_ONLY ]]; then
    exec python3 "$REPORT" "$REPORT_ONLY"
fi

for r in $RANKS; do [[ $r =~ ^[1-9][0-9]*$ ]] || die "--ranks: '$r' is not a positive integer"; done
for v in THREADS PARTICLES PARTICLES_PER_RANK TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "--${v,,}: '${!v}' is not a positive integer"
done
[[ $RANKS_PER_NODE =~ ^[0-9]+$ ]] || die "--ranks-per-node: '$RANKS_PER_NODE' is not an integer"
[[ $SERIES =~ ^(strong|weak)(,(strong|weak))?$ ]] || die "--series must be strong, weak or strong,weak"

BIN=${ML_TOMO_BIN:-ml_tomo}
command -v "$BIN" >/dev/null 2>&1 || die "cannot find the ml_tomo executable '$BIN' (set ML_TOMO_BIN)"
BIN=$(command -v "$BIN")
export ML_TOMO_BIN=$BIN
command -v sbatch >/dev/null || die "sbatch not found (is Slurm installed? for the local cluster: slurm/local-cluster.sh start)"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# expand TEMPLATE key=value… : replaces {key} by value, prints the result.
expand() {
    local text=$1; shift
    local kv
    for kv in "$@"; do text=${text//\{${kv%%=*}\}/${kv#*=}}; done
    printf '%s' "$text"
}

run() {
    echo "+ $*" >&2
    ((DRY_RUN)) || "$@"
}

# Makes (once) a simulated data set of n images in $OUT/data/n<n>; prints its path.
dataset() {
    local n=$1 dir=$OUT/data/n$1
    if [[ ! -e $dir/.complete ]]; then
        local -a cmd
        read -r -a cmd <<<"$(expand "$SIMULATE_CMD" "dir=$dir" "n=$n")"
        mkdir -p "$dir"
        run "$BIN" "${cmd[@]}" </dev/null >"$OUT/data/n$n.log" 2>&1 ||
            { tail -n 20 "$OUT/data/n$n.log" >&2; die "simulation of $n images failed (log: $OUT/data/n$n.log)"; }
        ((DRY_RUN)) || touch "$dir/.complete"
    fi
    echo "$dir"
}

MANIFEST=$OUT/jobs.tsv
printf 'series\tranks\tthreads\tparticles\tjobid\tdir\toroot\tstdout\n' >"$MANIFEST"
{
    echo "# scaling study $(date -Is)"
    echo "ML_TOMO_BIN=$BIN"
    echo "ranks=$RANKS threads=$THREADS ranks_per_node=$RANKS_PER_NODE particles=$PARTICLES particles_per_rank=$PARTICLES_PER_RANK"
    echo "simulate: $SIMULATE_CMD"
    echo "refine:   $REFINE_CMD"
    echo "sbatch:   $SBATCH_ARGS"
    echo "parallel: $PARALLEL"
} >"$OUT/study.txt"

read -r -a extra_sbatch <<<"$SBATCH_ARGS"
# All jobs of a study share one name; with --dependency=singleton Slurm runs them one at a time.
JOB_NAME="ml_tomo-scaling-$(basename "$OUT")"
order=(--dependency=singleton)
((PARALLEL)) && order=()
jobids=()

submit() {
    local series=$1 ranks=$2 particles=$3 data=$4
    local dir=$OUT/$series/r$ranks
    local oroot=$dir/ml
    mkdir -p "$dir"
    local per_node=$ranks nodes=1
    if ((RANKS_PER_NODE > 0 && ranks > RANKS_PER_NODE)); then
        per_node=$RANKS_PER_NODE
        nodes=$(((ranks + RANKS_PER_NODE - 1) / RANKS_PER_NODE))
    fi
    local -a refine
    read -r -a refine <<<"$(expand "$REFINE_CMD" "data=$data" "oroot=$oroot")"
    local -a cmd=(sbatch --parsable --job-name="$JOB_NAME" "${order[@]}" --chdir="$data"
        --output="$dir/job-%j.out" --nodes="$nodes" --ntasks="$ranks" --ntasks-per-node="$per_node"
        --cpus-per-task="$THREADS" "${extra_sbatch[@]}" "$TEMPLATE" "${refine[@]}")
    local id=dryrun
    if ((DRY_RUN)); then
        echo "+ ${cmd[*]}" >&2
    else
        id=$("${cmd[@]}" </dev/null) || die "sbatch failed: ${cmd[*]}"
        id=${id%%;*}
        jobids+=("$id")
        say "$series r=$ranks particles=$particles: job $id"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$series" "$ranks" "$THREADS" "$particles" "$id" "$dir" \
        "$oroot" "$dir/job-$id.out" >>"$MANIFEST"
}

if [[ $SERIES == *strong* ]]; then
    data=$(dataset "$PARTICLES")
    for r in $RANKS; do submit strong "$r" "$PARTICLES" "$data"; done
fi
if [[ $SERIES == *weak* ]]; then
    for r in $RANKS; do
        n=$((PARTICLES_PER_RANK * r))
        data=$(dataset "$n")
        submit weak "$r" "$n" "$data"
    done
fi

((DRY_RUN)) && { say "dry run: nothing submitted"; exit 0; }

# Wait until no job of ours is pending or running.
say "waiting for ${#jobids[@]} jobs (at most $TIMEOUT s) ..."
deadline=$((SECONDS + TIMEOUT))
while :; do
    # Ask by the study's job name (asking by id fails once Slurm has forgotten a finished job); a
    # failing squeue (controller busy) counts as "still running" until the deadline.
    left=${#jobids[@]}
    if queued=$(timeout 30 squeue -h --name="$JOB_NAME" -o %i 2>/dev/null </dev/null); then
        left=0
        for id in "${jobids[@]}"; do grep -qx "$id" <<<"$queued" && left=$((left + 1)); done
    fi
    ((left == 0)) && break
    if ((SECONDS >= deadline)); then
        echo "scaling-study: $left jobs still queued or running after $TIMEOUT s; cancelling them" >&2
        scancel "${jobids[@]}" </dev/null || true
        break
    fi
    sleep 5
done

# Final state of every job: sacct where accounting exists, else scontrol (finished jobs stay
# visible there for MinJobAge).
STATES=$OUT/states.tsv
printf 'jobid\tstate\texit\telapsed\n' >"$STATES"
for id in "${jobids[@]}"; do
    line=$(timeout 30 sacct -n -P -X -j "$id" -o JobID,State,ExitCode,Elapsed 2>/dev/null </dev/null | head -n 1 || true)
    if [[ -n $line ]]; then
        IFS='|' read -r _ state exit elapsed <<<"$line"
    else
        info=$(timeout 30 scontrol show job -o "$id" 2>/dev/null </dev/null || true)
        state=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2 || true)
        exit=$(grep -o 'ExitCode=[0-9:]*' <<<"$info" | cut -d= -f2 || true)
        elapsed=$(grep -o 'RunTime=[0-9:-]*' <<<"$info" | cut -d= -f2 || true)
    fi
    printf '%s\t%s\t%s\t%s\n' "$id" "${state:-UNKNOWN}" "${exit:-?}" "${elapsed:-?}" >>"$STATES"
    [[ ${state:-} == COMPLETED ]] || echo "scaling-study: job $id ended ${state:-UNKNOWN} (exit ${exit:-?})" >&2
done

python3 "$REPORT" "$OUT"
