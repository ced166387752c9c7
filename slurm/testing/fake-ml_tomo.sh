#!/usr/bin/env bash
# fake-ml_tomo.sh — a stand-in for the ml_tomo executable that does no science. It lets the tests
# (and anyone trying slurm/scaling-study.sh on the local cluster) exercise the Slurm machinery:
# it writes the same kinds of files and JSON lines as a refinement, with timings that shrink with the
# number of ranks the way a perfectly parallel E-step would.
#
#   ML_TOMO_BIN=slurm/testing/fake-ml_tomo.sh slurm/scaling-study.sh --out /tmp/study
#
#   simulate DIR --particles N   writes DIR/images.sel, DIR/images.doc (N rows) and DIR/wedges.doc
#   doctor                       prints "rank R of N on HOST"
#   -i SEL --oroot ROOT [--iter K] [...]
#                                "refines": per iteration every rank sleeps FAKE_SECONDS_PER_IMAGE
#                                (0.01) × its share of the images; rank 0 writes
#                                ROOT_itNNNNNN_log.doc with _time* columns and prints one
#                                {"event":"iteration",…} JSON line
set -euo pipefail

rank=${SLURM_PROCID:-${OMPI_COMM_WORLD_RANK:-0}}
size=${SLURM_NTASKS:-${OMPI_COMM_WORLD_SIZE:-1}}
per_image=${FAKE_SECONDS_PER_IMAGE:-0.01}
now() { date +%s.%N; }

case ${1:-} in
    simulate)
        dir=$2; shift 2
        n=10
        while (($#)); do [[ $1 == --particles ]] && n=$2; shift; done
        mkdir -p "$dir"
        {
            echo "# XMIPP_STAR_1 *"; echo "data_"; echo "loop_"; echo " _image"; echo " _missingRegionNumber"
            for ((i = 1; i <= n; i++)); do printf ' %s/img%06d.mrc 1\n' "$dir" "$i"; done
        } >"$dir/images.sel"
        cp "$dir/images.sel" "$dir/images.doc"
        printf '# XMIPP_STAR_1 *\ndata_\nloop_\n _missingRegionType\n _tiltAngleMin\n _tiltAngleMax\n wedge_y -60 60\n' \
            >"$dir/wedges.doc"
        echo "fake simulate: $n images in $dir"
        ;;
    doctor)
        echo "rank $rank of $size on $(hostname)"
        ;;
    -*)
        sel="" oroot="" iters=3
        while (($#)); do
            case $1 in
                -i) sel=$2; shift 2 ;;
                --oroot) oroot=$2; shift 2 ;;
                --iter) iters=$2; shift 2 ;;
                *) shift ;;
            esac
        done
        [[ -r $sel && -n $oroot ]] || { echo "fake refine: need -i SEL and --oroot" >&2; exit 1; }
        n=$(grep -c '\.mrc' "$sel" || true)
        mine=$(( (n + size - 1 - rank) / size ))     # this rank's share, as an even block split
        for ((it = 1; it <= iters; it++)); do
            t0=$(now)
            sleep "$(awk -v m="$mine" -v p="$per_image" 'BEGIN { printf "%.3f", m * p }')"
            t1=$(now)
            sleep 0.02                                # "reduce"
            t2=$(now)
            if ((rank == 0)); then
                log=$(printf '%s_it%06d_log.doc' "$oroot" "$it")
                t3=$(now)
                estep=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
                reduce=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.4f", b - a }')
                printf '# XMIPP_STAR_1 *\ndata_\nloop_\n _iterationNumber\n _logLikelihood\n _timeEStepMax\n _timeEStepMin\n _timeReduce\n _timeMStep\n _timeWrite\n %d %.1f %s %s %s 0.0100 0.0050\n' \
                    "$it" "$((-1000 + it))" "$estep" "$estep" "$reduce" >"$log"
                printf '{"event":"iteration","iteration":%d,"images":%d,"ranks":%d,"timeEStepMax":%s,"timeReduce":%s}\n' \
                    "$it" "$n" "$size" "$estep" "$reduce"
            fi
        done
        if ((rank == 0)); then echo "fake refine: $iters iterations of $n images on $size ranks done"; fi
        ;;
    *)
        echo "fake-ml_tomo: unknown command '${1:-}'" >&2
        exit 64
        ;;
esac
