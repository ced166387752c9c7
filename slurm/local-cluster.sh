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
#   ML_TOMO_SLURM_OWNER_PID      a process the cluster belongs to (a test run): a detached guard
#                                stops the cluster when that process is gone, however it ended
#                                (a failed or killed test must not leave daemons that block the ports)
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
OWNER_FILE=$DIR/run/owner                   # "<owner pid> <owner start time>" of ML_TOMO_SLURM_OWNER_PID
GUARD_PID=$DIR/run/guard.pid                # the guard that stops the cluster when its owner is gone
OWNER_PID=${ML_TOMO_SLURM_OWNER_PID:-}

export SLURM_CONF=$CONF

for v in CPUS CTLD_PORT SLURMD_PORT START_TIMEOUT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "local-cluster: ERROR: ML_TOMO_SLURM_$v='${!v}' is not a positive integer" >&2; exit 2; }
done
[[ -z $OWNER_PID || $OWNER_PID =~ ^[1-9][0-9]*$ ]] ||
    { echo "local-cluster: ERROR: ML_TOMO_SLURM_OWNER_PID='$OWNER_PID' is not a process id" >&2; exit 2; }

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

# Who listens on TCP port $1 of this machine ("slurmctld (pid 123, config /tmp/x/etc/slurm.conf)",
# or "an unknown process"); fails if nobody does. Never waits long: ss answers at once, and a connect
# attempt is bounded by `timeout`.
port_holder() {
    local port=$1 line pid name conf
    if command -v ss >/dev/null 2>&1; then
        line=$(timeout 5 ss -Hltnp "sport = :$port" 2>/dev/null | head -n 1) || line=""
        [[ -n $line ]] || return 1
        pid=$(grep -o 'pid=[0-9]*' <<<"$line" | head -n 1 | cut -d= -f2)
    else
        timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null || return 1
        pid=""
    fi
    if [[ -z $pid ]]; then
        echo "an unknown process"
        return 0
    fi
    name=$(cat "/proc/$pid/comm" 2>/dev/null || echo "?")
    # The config a slurmctld/slurmd was started with (-f FILE) tells which cluster directory it is.
    conf=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | awk 'prev == "-f" { print; exit } { prev = $0 }')
    echo "$name (pid $pid${conf:+, config $conf})"
}

# How to stop the cluster that `port_holder` described.
stop_hint() {
    local conf
    conf=$(grep -o 'config [^)]*' <<<"$1" | cut -d' ' -f2)
    if [[ $conf == */etc/slurm.conf ]]; then
        echo "ML_TOMO_SLURM_DIR=${conf%/etc/slurm.conf} $0 stop"
    else
        echo "kill the process named"
    fi
}

# "<pid> <start time>" of a live process (the start time tells a reused pid from the original), or nothing.
process_identity() {
    local start
    pid_alive "${1:-}" || return 0
    # Field 22 of /proc/PID/stat, counted after the command name (which may contain spaces).
    start=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }') || return 0
    [[ -n $start ]] && echo "$1 $start"
}

# Whether the owner recorded at start is gone (a killed test run); false when there is no owner.
owner_gone() {
    [[ -s $OWNER_FILE ]] || return 1
    local recorded pid
    recorded=$(cat "$OWNER_FILE")
    pid=${recorded%% *}
    [[ $(process_identity "$pid") != "$recorded" ]]
}

# Starts the guard: a detached process (own session, so a kill of the test's process group spares it)
# that waits for the owner to disappear, then stops the cluster with this script. It checks that the
# owner file is still the one it guards, so it never stops a cluster someone else started since.
start_guard() {
    [[ -n $OWNER_PID ]] || return 0
    local identity
    identity=$(process_identity "$OWNER_PID")
    [[ -n $identity ]] || fail "ML_TOMO_SLURM_OWNER_PID=$OWNER_PID: no such process"
    echo "$identity" >"$OWNER_FILE"
    ML_TOMO_SLURM_OWNER_PID= setsid "$(readlink -f "$0")" _guard "$identity" </dev/null >>"$DIR/log/guard.log" 2>&1 &
    echo $! >"$GUARD_PID"
}

# The guard's loop (`local-cluster.sh _guard "<pid> <start time>"`, started by start_guard).
cmd_guard() {
    local identity=$1
    while [[ $(cat "$OWNER_FILE" 2>/dev/null) == "$identity" ]]; do
        if [[ $(process_identity "${identity%% *}") != "$identity" ]]; then
            echo "$(date '+%F %T') owner ${identity%% *} is gone: stopping the cluster"
            ML_TOMO_SLURM_GUARD=1 cmd_stop
            return 0
        fi
        sleep 1
    done
}

stop_guard() {
    local pid
    pid=$(pid_from "$GUARD_PID")
    rm -f "$GUARD_PID" "$OWNER_FILE"
    # The guard itself runs `stop`: it must not kill itself halfway.
    [[ -n ${ML_TOMO_SLURM_GUARD:-} || -z $pid ]] && return 0
    # Only if that pid is still a guard (a stale pid file may name another process by now).
    if pid_alive "$pid" && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- ' _guard '; then
        kill -TERM "$pid" 2>/dev/null || true
    fi
}

# --- commands -----------------------------------------------------------------------------------

cmd_start() {
    ensure_root start
    mkdir -p "$DIR"/{etc,state/slurmctld,state/slurmd,run,log}
    if pid_alive "$(ctld_pid)" && pid_alive "$(slurmd_pid)"; then
        if owner_gone; then
            # Left by a test run that was killed before it could stop it (its guard was killed too):
            # its jobs may still hold the node, so start afresh.
            say "stopping the cluster left by process $(cut -d' ' -f1 "$OWNER_FILE"), which is gone"
        elif [[ -s $OWNER_FILE && -n $OWNER_PID && $(cut -d' ' -f1 "$OWNER_FILE") != "$OWNER_PID" ]]; then
            fail "the cluster in $DIR belongs to process $(cut -d' ' -f1 "$OWNER_FILE") (another test run, still running); wait for it to end, or use another ML_TOMO_SLURM_DIR and ports"
        elif [[ $(node_state) =~ ^(idle|mixed|allocated) ]]; then
            say "already running (SLURM_CONF=$CONF)"
            [[ -s $GUARD_PID ]] || start_guard
            return 0
        fi
    fi
    # Half-running from an earlier attempt: stop what is left and start afresh.
    stop_daemons quiet
    # A port already taken (another Slurm, another local cluster) would make our daemons fail while
    # the client commands happily talk to the other one: refuse at once, naming who holds it.
    local port holder
    for port in "$CTLD_PORT" "$SLURMD_PORT"; do
        if holder=$(port_holder "$port"); then
            fail "port $port is already in use by $holder. Stop that cluster ($(stop_hint "$holder")), or choose other ports with ML_TOMO_SLURM_CTLD_PORT / ML_TOMO_SLURM_SLURMD_PORT"
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
    start_guard
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
            # At most 20 s in all, however slowly a sick controller answers.
            local deadline=$((SECONDS + 20))
            while ((SECONDS < deadline)); do
                [[ -z $(timeout 5 squeue -h -o %i </dev/null 2>/dev/null || true) ]] && break
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
    stop_guard
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
    _guard) cmd_guard "${2:?}" ;;
    *) echo "usage: $0 start|stop|status|restart|env" >&2; exit 2 ;;
esac
