#!/usr/bin/env bash
# local-cluster.sh — a real, single-node Slurm on this machine (munge + slurmctld + slurmd), for the
# test suite and for anyone who wants to try slurm/ml_tomo.sbatch on a workstation before a cluster.
#
#   slurm/local-cluster.sh start    # install slurm-wlm + munge if missing, start, wait until the node is idle
#   slurm/local-cluster.sh status   # daemons, node state, queue; exit 0 only if the cluster answers
#   slurm/local-cluster.sh stop     # cancel jobs, stop the daemons this script started
#   slurm/local-cluster.sh env      # prints `export SLURM_CONF=…`: eval "$(slurm/local-cluster.sh env)"
#
# Everything Slurm writes (config, state, logs, pid files) lives under one directory that this script
# owns, ${ML_TOMO_SLURM_DIR:-/tmp/ml_tomo-slurm}; /etc/slurm is never touched. Client commands (sbatch,
# squeue, sinfo, scontrol, srun) find the cluster through SLURM_CONF=$ML_TOMO_SLURM_DIR/etc/slurm.conf,
# which `env` prints; sbatch passes it on to the job, so `srun` inside a job finds it too.
# Munge uses the system defaults (/etc/munge/munge.key, /run/munge): an already running munged is
# reused and left alone by `stop`; one this script starts is stopped by `stop`.
#
# Must run as root (slurmd launches jobs as their owner; apt-get installs the packages).
# Each start begins with an empty queue (slurmctld -c): the local cluster is disposable.
#
# Environment (all optional):
#   ML_TOMO_SLURM_DIR            where config/state/logs go             (/tmp/ml_tomo-slurm)
#   ML_TOMO_SLURM_CPUS           CPUs the node advertises (may exceed the real cores)   (8)
#   ML_TOMO_SLURM_CTLD_PORT      slurmctld port                          (6817)
#   ML_TOMO_SLURM_SLURMD_PORT    slurmd port                             (6818)
#   ML_TOMO_SLURM_START_TIMEOUT  seconds to wait for the node to become idle             (90)
set -euo pipefail

DIR=${ML_TOMO_SLURM_DIR:-/tmp/ml_tomo-slurm}
CONF=$DIR/etc/slurm.conf
CPUS=${ML_TOMO_SLURM_CPUS:-8}
CTLD_PORT=${ML_TOMO_SLURM_CTLD_PORT:-6817}
SLURMD_PORT=${ML_TOMO_SLURM_SLURMD_PORT:-6818}
START_TIMEOUT=${ML_TOMO_SLURM_START_TIMEOUT:-90}
NODE=localhost
PARTITION=local

MUNGE_KEY=/etc/munge/munge.key
MUNGE_RUN=/run/munge
MUNGE_PID=$MUNGE_RUN/munged.pid
MUNGE_LOG=/var/log/munge/munged.log
MUNGE_OURS=$DIR/run/munged.started-by-us   # holds the pid of a munged this script started

export SLURM_CONF=$CONF

for v in CPUS CTLD_PORT SLURMD_PORT START_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "local-cluster: ERROR: ML_TOMO_SLURM_$v='${!v}' is not a positive integer" >&2; exit 2; }
done

say()  { echo "local-cluster: $*"; }
fail() { echo "local-cluster: ERROR: $*" >&2; exit 1; }

# --- helpers ------------------------------------------------------------------------------------

# A daemon that exited but was not reaped yet (a zombie: its new parent may be a subreaper that is
# slow to wait, e.g. a test runner) still answers kill -0, so look at its state too.
pid_alive() {
    [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $state != Z ]]
}
pid_from()  { [[ -s $1 ]] && tr -dc '0-9' <"$1" || true; }

# Daemons inherit the caller's blocked-signal mask, and slurmd never unblocks SIGTERM: started from a
# thread that blocks signals (test runners, some IDEs and notebook kernels do), it would ignore `kill`.
# Start them with an empty mask and default signal handling when python3 is there to do it.
clean_exec() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_SETMASK, [])
for s in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
    else
        "$@"
    fi
}

# Runs a client command with a time limit, so a dead controller never hangs us.
client() { timeout 10 "$@" </dev/null; }

log_tails() {
    local f files=("$DIR/log/slurmctld.log" "$DIR/log/slurmd.log" "$DIR/log/slurmctld.stderr" "$DIR/log/slurmd.stderr")
    # munged's log only matters when munge itself does not work.
    munge_works || files+=("$MUNGE_LOG" "$DIR/log/munged.stderr")
    for f in "${files[@]}"; do
        if [[ -s $f ]]; then
            echo "----- last lines of $f -----" >&2
            tail -n 25 "$f" >&2
        fi
    done
}

ensure_root() {
    [[ $(id -u) -eq 0 ]] || fail "must run as root (slurmd and munged need it; apt-get installs packages). Try: sudo $0 $*"
}

# Installs slurm-wlm (slurmctld, slurmd, client commands, the pmix MPI plugin) and munge when missing.
ensure_packages() {
    local need=()
    command -v slurmctld >/dev/null || need+=(slurmctld)
    command -v slurmd    >/dev/null || need+=(slurmd)
    command -v sbatch    >/dev/null || need+=(slurm-client)
    command -v munged    >/dev/null || need+=(munge)
    command -v munge     >/dev/null || need+=(munge)
    dpkg-query -W -f='${Status}' slurm-wlm 2>/dev/null | grep -q "install ok installed" || need+=(slurm-wlm)
    (( ${#need[@]} == 0 )) && return 0
    command -v apt-get >/dev/null || fail "Slurm/munge missing (${need[*]}) and no apt-get to install them"
    say "installing slurm-wlm munge (missing: ${need[*]}) ..."
    # The packages' maintainer scripts try to start system services; with no init system that
    # fails harmlessly, and we start our own daemons below in any case.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >"$DIR/log/apt.log" 2>&1 ||
        { tail -n 30 "$DIR/log/apt.log" >&2; fail "apt-get install slurm-wlm munge failed (log: $DIR/log/apt.log)"; }
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
        fail "slurm-wlm/munge installed but slurmctld/slurmd/munged not on PATH"
}

munge_works() { timeout 5 munge -n </dev/null 2>/dev/null | timeout 5 unmunge >/dev/null 2>&1; }

ensure_munge() {
    if munge_works; then
        say "munge: using the running munged"
        return 0
    fi
    id munge >/dev/null 2>&1 || fail "user 'munge' does not exist (is the munge package installed correctly?)"
    install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge
    install -d -o munge -g munge -m 0755 "$MUNGE_RUN"
    install -d -o munge -g munge -m 0700 /var/log/munge
    if [[ ! -s $MUNGE_KEY ]]; then
        say "munge: creating $MUNGE_KEY"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1 count=1024 status=none
        fi
    fi
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
    # A stale pid file from a killed munged makes the new one refuse to start.
    local old; old=$(pid_from "$MUNGE_PID")
    if [[ -n $old ]] && ! pid_alive "$old"; then rm -f "$MUNGE_PID"; fi
    rm -f "$MUNGE_RUN/munge.socket.2.lock" 2>/dev/null || true
    clean_exec runuser -u munge -- /usr/sbin/munged </dev/null >"$DIR/log/munged.stderr" 2>&1 ||
        { log_tails; fail "munged did not start"; }
    local i
    for ((i = 0; i < 50; i++)); do
        munge_works && break
        sleep 0.2
    done
    munge_works || { log_tails; fail "munged started but munge -n | unmunge fails"; }
    pid_from "$MUNGE_PID" >"$MUNGE_OURS"
    say "munge: started munged (pid $(cat "$MUNGE_OURS"))"
}

write_config() {
    local mem_mb
    mem_mb=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)
    cat >"$CONF" <<EOF
# Written by slurm/local-cluster.sh — a single-node test cluster. Regenerated on every start.
ClusterName=mltomo-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge

StateSaveLocation=$DIR/state/slurmctld
SlurmdSpoolDir=$DIR/state/slurmd
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups here (containers, CI): plain process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# The node may advertise more CPUs than the machine has (oversubscription for tests).
SlurmdParameters=config_overrides
ReturnToService=2
# Keep finished jobs visible to 'scontrol show job' for an hour (there is no accounting database).
MinJobAge=3600
KillWait=10
InactiveLimit=0
SlurmdTimeout=120
# No mail on a test node (silences "Configured MailProg is invalid").
MailProg=/bin/true

NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$mem_mb State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

ctld_pid()   { pid_from "$DIR/run/slurmctld.pid"; }
slurmd_pid() { pid_from "$DIR/run/slurmd.pid"; }

node_state() { client sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n 1 || true; }

# --- commands -----------------------------------------------------------------------------------

cmd_start() {
    ensure_root start
    mkdir -p "$DIR"/{etc,state/slurmctld,state/slurmd,run,log}
    if pid_alive "$(ctld_pid)" && pid_alive "$(slurmd_pid)" && [[ $(node_state) =~ ^(idle|mixed|allocated) ]]; then
        say "already running (SLURM_CONF=$CONF)"
        return 0
    fi
    # Half-running from an earlier attempt: stop what is left and start afresh.
    stop_daemons quiet
    # A port already taken (another Slurm, another local cluster) would make our daemons fail while
    # the client commands happily talk to the other one.
    local port
    for port in "$CTLD_PORT" "$SLURMD_PORT"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            fail "port $port is already in use (another Slurm running?). Stop it, or choose other ports with ML_TOMO_SLURM_CTLD_PORT / ML_TOMO_SLURM_SLURMD_PORT"
        fi
    done
    local t0=$SECONDS
    ensure_packages
    ensure_munge
    write_config
    : >"$DIR/log/slurmctld.log"
    # Job-step state left by a killed slurmd would be "recovered" into the new cluster: drop it
    # (slurmctld -c below likewise starts with no jobs).
    find "$DIR/state/slurmd" -mindepth 1 -delete 2>/dev/null || true
    : >"$DIR/log/slurmd.log"

    # Daemons get /dev/null and log files as stdio, so they never hold a caller's pipe open.
    clean_exec slurmctld -c -i -f "$CONF" </dev/null >"$DIR/log/slurmctld.stderr" 2>&1 ||
        { log_tails; fail "slurmctld did not start"; }
    clean_exec slurmd -N "$NODE" -f "$CONF" </dev/null >"$DIR/log/slurmd.stderr" 2>&1 ||
        { log_tails; fail "slurmd did not start"; }

    local state="" deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        state=$(node_state)
        [[ $state == idle ]] && break
        # A daemon that died will not come back: stop waiting.
        if [[ -s $DIR/run/slurmctld.pid ]] && ! pid_alive "$(ctld_pid)"; then break; fi
        if [[ -s $DIR/run/slurmd.pid ]] && ! pid_alive "$(slurmd_pid)"; then break; fi
        sleep 0.5
    done
    # The node must be idle *and* it must be our daemons that answered.
    if [[ $state == idle ]] && ! { pid_alive "$(ctld_pid)" && pid_alive "$(slurmd_pid)"; }; then
        state="idle, but reported by daemons that are not ours"
    fi
    if [[ $state != idle ]]; then
        echo "local-cluster: node '$NODE' is '${state:-not answering}' after $((SECONDS - t0)) s" >&2
        pid_alive "$(ctld_pid)"   || echo "local-cluster: slurmctld is not running" >&2
        pid_alive "$(slurmd_pid)" || echo "local-cluster: slurmd is not running" >&2
        client scontrol show node "$NODE" >&2 2>&1 || true
        log_tails
        stop_daemons quiet
        fail "the local Slurm cluster did not start"
    fi
    say "node $NODE idle, $CPUS CPUs, partition '$PARTITION' (started in $((SECONDS - t0)) s)"
    say "for client commands: export SLURM_CONF=$CONF"
}

# Sends TERM to a pid, waits up to 10 s, then KILL. Only if the pid is still the daemon we started
# (a pid from a stale pid file may belong to an unrelated process by now).
terminate() {
    local pid=$1 name=$2 i
    pid_alive "$pid" || return 0
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null) != "$name" ]]; then
        echo "local-cluster: pid $pid is no longer $name; leaving it alone" >&2
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.2
    done
    echo "local-cluster: $name (pid $pid) ignored SIGTERM; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

stop_daemons() {
    local quiet=${1:-}
    local cp dp
    cp=$(ctld_pid); dp=$(slurmd_pid)
    if pid_alive "$cp" && pid_alive "$dp"; then
        # Cancel jobs first so their steps end cleanly instead of outliving slurmd.
        local jobs
        jobs=$(client squeue -h -o %i 2>/dev/null || true)
        if [[ -n $jobs ]]; then
            [[ -n $quiet ]] || say "cancelling jobs: $(echo $jobs)"
            client scancel $jobs 2>/dev/null || true
            local i
            for ((i = 0; i < 40; i++)); do
                [[ -z $(client squeue -h -o %i 2>/dev/null || true) ]] && break
                sleep 0.5
            done
        fi
    fi
    # `scontrol shutdown` asks slurmctld to stop every slurmd and then itself (by RPC, not signals).
    if pid_alive "$cp"; then
        client scontrol shutdown >/dev/null 2>&1 || true
        local j
        for ((j = 0; j < 50; j++)); do
            pid_alive "$cp" || pid_alive "$dp" || break
            sleep 0.2
        done
    fi
    terminate "$dp" slurmd
    terminate "$cp" slurmctld
    rm -f "$DIR/run/slurmd.pid" "$DIR/run/slurmctld.pid"
    if [[ -s $MUNGE_OURS ]]; then
        terminate "$(pid_from "$MUNGE_OURS")" munged
        rm -f "$MUNGE_OURS"
    fi
}

cmd_stop() {
    ensure_root stop
    local t0=$SECONDS
    if [[ ! -d $DIR/run ]]; then
        say "not running (no $DIR/run)"
        return 0
    fi
    stop_daemons
    say "stopped ($((SECONDS - t0)) s)"
}

cmd_status() {
    local ok=0 cp dp
    cp=$(ctld_pid); dp=$(slurmd_pid)
    echo "SLURM_CONF=$CONF"
    if pid_alive "$cp"; then echo "slurmctld: running (pid $cp)"; else echo "slurmctld: not running"; ok=3; fi
    if pid_alive "$dp"; then echo "slurmd:    running (pid $dp)"; else echo "slurmd:    not running"; ok=3; fi
    if munge_works; then
        if [[ -s $MUNGE_OURS ]]; then echo "munged:    running (started by this script, pid $(cat "$MUNGE_OURS"))"
        else echo "munged:    running (not started by this script)"; fi
    else
        echo "munged:    not answering"; ok=3
    fi
    if ((ok == 0)); then
        client sinfo -N -l 2>&1 || ok=3
        client squeue 2>&1 || ok=3
        command -v srun >/dev/null && echo "srun --mpi=list: $(client srun --mpi=list 2>&1 | tr '\n' ' ')"
    fi
    return $ok
}

case ${1:-} in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    status) cmd_status ;;
    env)    echo "export SLURM_CONF=$CONF" ;;
    restart) cmd_stop; cmd_start ;;
    *) echo "usage: $0 start|stop|status|restart|env" >&2; exit 2 ;;
esac
