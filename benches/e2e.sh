#!/usr/bin/env bash
# End-to-end benchmark: tweed's userspace dataplane against the kernel's own
# path, on real network namespaces, measured with iperf3 in the same run.
#
#   sudo benches/e2e.sh
#
# Topologies (each pair is set up side by side; every metric runs tweed, then
# the kernel reference, back to back, so background load hits both alike):
#   one node   tweed:  a node netns running tweed-dataplane, two pods attached with port_add
#              kernel: Calico-style: two pods on veths into a node netns (pod /32,
#                      gateway 169.254.1.1, proxy_arp on the host veth, /32 routes)
#   two nodes  tweed:  two node netns joined by a veth underlay (MTU 1500), a dataplane
#                      and a pod (MTU 1450) on each, peer_set both ways (VXLAN)
#              kernel: the same underlay; a kernel vxlan device per node, flannel-style
#                      onlink routes with static neighbour and fdb entries, Calico-style pods
# Metrics: TCP throughput with 1 and 4 streams, 64-byte UDP packets/s received by the
# server (iperf3 -u -l 64 -b 0).
#
# Environment:
#   E2E_SECONDS   seconds per iperf3 run (default 5)
#   E2E_OMIT      TCP warm-up seconds left out of the figure (default 1)
#   E2E_REPEAT    runs per (topology, metric, implementation); the median is shown (default 3)
#   E2E_WORKERS   tweed-dataplane --workers (default 2)
#   E2E_IO        tweed-dataplane --io: auto, uring or epoll (default: the dataplane's, auto)
#   E2E_TOPOLOGIES  "one two", "one" or "two" (default both)
#   E2E_NO_BUILD  set to skip `cargo build` (uses the existing binary)
#   E2E_BIN       the tweed-dataplane binary (default target/release/tweed-dataplane)
#   E2E_OUT       the JSON result (default target/e2e-results.json)
#   E2E_KEEP_LOGS set to keep the work directory (iperf3 JSON, dataplane logs) after the run
#   E2E_PERF      a directory: each tweed run of the first repeat is profiled there with
#                 `perf record -g` on the dataplanes (TOPOLOGY-METRIC.data; read with `perf report -i`)
#
# Everything the script creates (netns, links inside them, processes, /tmp/e2e-PID) is named
# with the prefix e2e-PID- and removed on exit, also on failure or Ctrl-C.

set -euo pipefail

SECS=${E2E_SECONDS:-5}
OMIT=${E2E_OMIT:-1}
REPEAT=${E2E_REPEAT:-3}
WORKERS=${E2E_WORKERS:-2}
IO=${E2E_IO:-auto}
TOPOLOGIES=${E2E_TOPOLOGIES:-one two}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS=$ROOT/benches/e2e
BIN=${E2E_BIN:-$ROOT/target/release/tweed-dataplane}
OUT=${E2E_OUT:-$ROOT/target/e2e-results.json}
P="e2e-$$"
WORK=/tmp/$P
RESULTS=$WORK/results.jsonl
POD_MTU=1450
UNDERLAY_MTU=1500
START_TIMEOUT=20      # seconds for a dataplane's API to answer
STOP_GRACE=5          # seconds for a process to exit after SIGTERM
IPERF_SLACK=30        # seconds an iperf3 client may take beyond its -t

PIDS=()               # every background process this script started

die() { echo "e2e: error: $*" >&2; exit 1; }
log() { echo "e2e: $*" >&2; }

# ---------------------------------------------------------------- cleanup

# untrack PID: forget a reaped child, so that cleanup never signals a reused pid
untrack() {
    local keep=() p
    for p in ${PIDS[@]+"${PIDS[@]}"}; do [[ $p == "$1" ]] || keep+=("$p"); done
    PIDS=(${keep[@]+"${keep[@]}"})
}

stop_pid() { # PID: SIGTERM, a bounded wait, then SIGKILL; reaps and untracks it
    local pid=$1 i
    if ! kill -0 "$pid" 2>/dev/null; then wait "$pid" 2>/dev/null || true; untrack "$pid"; return 0; fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < STOP_GRACE * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # a child that exited stays a zombie (kill -0 succeeds) until reaped
        [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]] && break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null && [[ $(ps -o stat= -p "$pid" 2>/dev/null) != Z* ]]; then
        log "pid $pid ignored SIGTERM for ${STOP_GRACE}s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    untrack "$pid"
}

del_netns() { # NAME: stop whatever still runs inside (only our own netns), then delete it
    local ns=$1 pid
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
        kill -KILL "$pid" 2>/dev/null || true
    done
    ip netns del "$ns" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid ns
    trap - EXIT INT TERM ERR
    set +eE
    local all=(${PIDS[@]+"${PIDS[@]}"})
    for pid in ${all[@]+"${all[@]}"}; do stop_pid "$pid"; done
    for ns in $(ip netns list | awk '{print $1}' | grep "^$P-" || true); do del_netns "$ns"; done
    if [[ -d $WORK ]]; then
        if [[ -n ${E2E_KEEP_LOGS:-} ]]; then log "work directory kept: $WORK"; else rm -rf "$WORK"; fi
    fi
    # Prove it: nothing of ours is left.
    local left_ns left_pids=""
    left_ns=$(ip netns list | awk '{print $1}' | grep "^$P-" || true)
    left_pids=$(pgrep -f -- "$WORK/" | tr '\n' ' ' || true)   # our dataplanes name $WORK in their flags
    if [[ -n $left_ns || -n $left_pids ]]; then
        log "cleanup incomplete: netns [${left_ns//$'\n'/ }] pids [$left_pids]"
        [[ $rc == 0 ]] && rc=1
    fi
    exit "$rc"
}
trap cleanup EXIT
set -E
trap 'err_rc=$?; if [[ $BASH_SUBSHELL == 0 && $BASH_COMMAND != exit* && -z ${ERR_SEEN:-} ]]; then ERR_SEEN=1; log "failed (exit $err_rc) at line $LINENO: $BASH_COMMAND"; fi' ERR
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# ---------------------------------------------------------------- checks and build

[[ $EUID -eq 0 ]] || die "needs root (network namespaces, veths, taps): run it as sudo $0"
for tool in ip iperf3 python3 timeout; do
    command -v "$tool" >/dev/null || case $tool in
        ip) die "ip not installed: apt-get install iproute2" ;;
        iperf3) die "iperf3 not installed: apt-get install iperf3" ;;
        python3) die "python3 not installed: apt-get install python3" ;;
        *) die "$tool not installed: apt-get install coreutils" ;;
    esac
done
[[ $SECS =~ ^[0-9]+$ && $SECS -ge 1 ]] || die "E2E_SECONDS=$SECS: use a whole number of seconds >= 1"
[[ $OMIT =~ ^[0-9]+$ ]] || die "E2E_OMIT=$OMIT: use a whole number of seconds"
[[ $REPEAT =~ ^[0-9]+$ && $REPEAT -ge 1 ]] || die "E2E_REPEAT=$REPEAT: use a number >= 1"
for t in $TOPOLOGIES; do [[ $t == one || $t == two ]] || die "E2E_TOPOLOGIES: '$t' is neither 'one' nor 'two'"; done

if [[ -z ${E2E_NO_BUILD:-} ]]; then
    log "building: cargo build --release -p tweed-dataplane"
    build=(cargo build --release -p tweed-dataplane)
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        # build as the invoking user so target/ does not fill with root-owned files
        (cd "$ROOT" && sudo -u "$SUDO_USER" -H bash -lc "${build[*]}") \
            || die "cargo build failed (as $SUDO_USER); fix the build or set E2E_NO_BUILD=1"
    elif command -v cargo >/dev/null; then
        (cd "$ROOT" && "${build[@]}") || die "cargo build failed; fix the build or set E2E_NO_BUILD=1"
    else
        [[ -x $BIN ]] || die "cargo not found and $BIN does not exist: build it first (cargo build --release -p tweed-dataplane)"
        log "cargo not found; using the existing $BIN"
    fi
fi
[[ -x $BIN ]] || die "$BIN does not exist or is not executable"
"$BIN" --help | grep -q -- '--no-host-port' || die "$BIN --help does not list --no-host-port: an unexpected binary"

mkdir -p "$WORK" "$(dirname "$OUT")"
: >"$RESULTS"

# ---------------------------------------------------------------- netns helpers

ns() { echo "$P-$1"; }                          # the full netns name of a short one
nsx() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }
mkns() {
    ip netns add "$P-$1"
    ip -n "$P-$1" link set lo up
}

# kernel_pod NODE POD IP HOSTIF: a Calico-style pod: veth eth0 in POD, HOSTIF in NODE
kernel_pod() {
    local node=$1 pod=$2 ip=$3 hostif=$4
    mkns "$pod"
    ip -n "$(ns "$node")" link add "$hostif" mtu "$POD_MTU" type veth peer name eth0 netns "$(ns "$pod")" mtu "$POD_MTU"
    ip -n "$(ns "$pod")" addr add "$ip/32" dev eth0
    ip -n "$(ns "$pod")" link set eth0 up
    ip -n "$(ns "$pod")" route add 169.254.1.1 dev eth0 scope link
    ip -n "$(ns "$pod")" route add default via 169.254.1.1 dev eth0
    nsx "$node" sysctl -qw "net.ipv4.conf.$hostif.proxy_arp=1" "net.ipv4.neigh.$hostif.proxy_delay=0"
    ip -n "$(ns "$node")" link set "$hostif" up
    ip -n "$(ns "$node")" route add "$ip/32" dev "$hostif"
}

# kernel_node NODE: a node netns that forwards. proxy_arp answers for 169.254.1.1 only if
# the node has a route to it through another device (a Calico host has its default
# route); an isolated netns has none, so point the gateway address at lo.
kernel_node() {
    mkns "$1"
    nsx "$1" sysctl -qw net.ipv4.ip_forward=1
    ip -n "$(ns "$1")" route add 169.254.1.1/32 dev lo
}

# underlay N1 N2: two node netns joined by veth ul0 <-> ul0, 192.168.77.1/24 and .2/24
underlay() {
    local n1=$1 n2=$2
    ip -n "$(ns "$n1")" link add ul0 mtu "$UNDERLAY_MTU" type veth peer name ul0 netns "$(ns "$n2")" mtu "$UNDERLAY_MTU"
    ip -n "$(ns "$n1")" addr add 192.168.77.1/24 dev ul0
    ip -n "$(ns "$n2")" addr add 192.168.77.2/24 dev ul0
    ip -n "$(ns "$n1")" link set ul0 up
    ip -n "$(ns "$n2")" link set ul0 up
}

# ---------------------------------------------------------------- tweed helpers

api() { python3 "$HELPERS/api.py" "$@"; }      # api SOCKET OP [ARGS_JSON] [--get PATH]

# start_dataplane NODE UNDERLAY_IP: runs tweed-dataplane in NODE, waits for its API
start_dataplane() {
    local node=$1 uip=$2 dir=$WORK/$1 pid i
    mkdir -p "$dir"
    # not through nsx: $! must be the dataplane itself (ip netns exec and env exec it)
    ip netns exec "$(ns "$node")" env RUST_LOG="${RUST_LOG:-info}" "$BIN" --socket "$dir/dp.sock" --state-dir "$dir" \
        --underlay-ip "$uip" --workers "$WORKERS" --io "$IO" --mtu "$POD_MTU" --no-host-port \
        </dev/null >"$dir/dataplane.log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    echo "$pid" >"$dir/pid"
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        if ! kill -0 "$pid" 2>/dev/null || [[ $(ps -o stat= -p "$pid" 2>/dev/null) == Z* ]]; then
            cat "$dir/dataplane.log" >&2
            die "tweed-dataplane in $(ns "$node") exited during start-up (log above)"
        fi
        if [[ -S $dir/dp.sock ]] && api "$dir/dp.sock" stats >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    cat "$dir/dataplane.log" >&2
    die "tweed-dataplane in $(ns "$node") did not answer on $dir/dp.sock within ${START_TIMEOUT}s (log above)"
}
sock() { echo "$WORK/$1/dp.sock"; }

# tweed_pod NODE POD IP: an empty netns attached with port_add
tweed_pod() {
    local node=$1 pod=$2 ip=$3
    mkns "$pod"
    api "$(sock "$node")" port_add \
        "{\"name\":\"e2e/$pod\",\"netns\":\"/run/netns/$(ns "$pod")\",\"ifname\":\"eth0\",\"ipv4\":\"$ip\",\"mtu\":$POD_MTU}" \
        >"$WORK/$node-port-$pod.json" || die "port_add $pod on $node failed (reply above)"
}

# diagnose_tweed "NODE..." SRC_POD DST_POD DST_IP [UNDERLAY_NODE]: what a broken path looks like
diagnose_tweed() {
    local nodes=$1 src=$2 dst=$3 dstip=$4 ulnode=${5:-} n tcpd=() pid
    echo "---- tweed diagnostics: $src -> $dstip ($dst) ----" >&2
    for n in $nodes; do
        echo "## $n: dump" >&2; api "$(sock "$n")" dump >&2 || true
        echo "## $n: stats" >&2; api "$(sock "$n")" stats >&2 || true
        [[ $n == "${nodes%% *}" ]] || continue   # trace from the node that owns the source pod
        echo "## $n: trace $src -> $dstip tcp" >&2
        api "$(sock "$n")" trace "{\"from\":{\"port\":\"e2e/$src\"},\"src\":\"$(nsx "$src" ip -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1)\",\"dst\":\"$dstip\",\"protocol\":\"tcp\",\"src_port\":40000,\"dst_port\":5201}" >&2 || true
    done
    for n in $nodes; do
        echo "## $n: log tail" >&2; tail -n 20 "$WORK/$n/dataplane.log" >&2 || true
    done
    if command -v tcpdump >/dev/null; then
        ip netns exec "$(ns "$src")" timeout 4 tcpdump -nni eth0 -c 20 >"$WORK/diag-src.txt" 2>&1 & tcpd+=($!)
        ip netns exec "$(ns "$dst")" timeout 4 tcpdump -nni eth0 -c 20 >"$WORK/diag-dst.txt" 2>&1 & tcpd+=($!)
        if [[ -n $ulnode ]]; then ip netns exec "$(ns "$ulnode")" timeout 4 tcpdump -nni ul0 -c 20 >"$WORK/diag-ul.txt" 2>&1 & tcpd+=($!); fi
        PIDS+=("${tcpd[@]}")
        sleep 1
        nsx "$src" ping -c 2 -W 1 "$dstip" >&2 || true
        for pid in "${tcpd[@]}"; do stop_pid "$pid"; done
        echo "## tcpdump $src eth0:" >&2; cat "$WORK/diag-src.txt" >&2
        echo "## tcpdump $dst eth0:" >&2; cat "$WORK/diag-dst.txt" >&2
        if [[ -n $ulnode ]]; then echo "## tcpdump $ulnode ul0:" >&2; cat "$WORK/diag-ul.txt" >&2; fi
    fi
    echo "---- end of diagnostics ----" >&2
}

# ---------------------------------------------------------------- measurement

# reachable SRC_POD DST_IP: a bounded ping
reachable() { nsx "$1" ping -c 3 -i 0.2 -W 2 -q "$2" >/dev/null 2>&1; }

# wait_listen POD: until iperf3's port listens (bounded)
wait_listen() {
    local pod=$1 i
    for ((i = 0; i < 100; i++)); do
        nsx "$pod" ss -Hltn 'sport = :5201' 2>/dev/null | grep -q . && return 0
        sleep 0.05
    done
    return 1
}

# run_iperf TOPOLOGY METRIC IMPL CLIENT_POD SERVER_POD SERVER_IP RUN
run_iperf() {
    local topo=$1 metric=$2 impl=$3 cli=$4 srv=$5 ip=$6 run=$7 args spid cpid rc=0 n
    local file="$WORK/iperf-${topo// /_}-${metric// /_}-$impl-$run.json"
    case $metric in
        "tcp 1 stream") args=(-t "$SECS" -O "$OMIT" -P 1) ;;
        "tcp 4 streams") args=(-t "$SECS" -O "$OMIT" -P 4) ;;
        "udp 64 B") args=(-t "$SECS" -u -l 64 -b 0) ;;
    esac
    # the dataplanes' counters around the run show where packets go
    if [[ $impl == tweed ]]; then
        for n in $TWEED_NODES; do api "$(sock "$n")" stats >"$file.$n.before" 2>/dev/null || true; done
    fi
    local ppid="" pids=()
    if [[ $impl == tweed && -n ${E2E_PERF:-} && $run == 1 ]]; then
        mkdir -p "$E2E_PERF"
        for n in $TWEED_NODES; do pids+=("$(cat "$WORK/$n/pid")"); done
        perf record -q -g -p "$(IFS=,; echo "${pids[*]}")" -o "$E2E_PERF/${topo// /_}-${metric// /_}.data" \
            -- sleep "$((SECS + OMIT))" >/dev/null 2>&1 &
        ppid=$!
        PIDS+=("$ppid")
    fi
    # a fresh one-off server per run: a stuck server can never spoil the next run
    ip netns exec "$(ns "$srv")" timeout $((SECS + OMIT + IPERF_SLACK)) iperf3 -s -1 -B "$ip" >"$file.server" 2>&1 &
    spid=$!
    PIDS+=("$spid")
    if ! wait_listen "$srv"; then
        echo "{\"error\":\"iperf3 server in $srv did not listen within 5 s\"}" >"$file"
        rc=1
    else
        # in the background and waited for, so that Ctrl-C is handled at once
        timeout $((SECS + OMIT + IPERF_SLACK)) ip netns exec "$(ns "$cli")" \
            iperf3 -c "$ip" --connect-timeout 5000 -J "${args[@]}" >"$file" 2>"$file.err" &
        cpid=$!
        PIDS+=("$cpid")
        wait "$cpid" || rc=$?
        untrack "$cpid"
    fi
    stop_pid "$spid"
    if [[ -n $ppid ]]; then wait "$ppid" || true; untrack "$ppid"; fi
    if [[ $impl == tweed ]]; then
        for n in $TWEED_NODES; do api "$(sock "$n")" stats >"$file.$n.after" 2>/dev/null || true; done
    fi
    python3 "$HELPERS/report.py" record "$RESULTS" "$topo" "$metric" "$impl" "$file" "$rc"
}

METRICS=("tcp 1 stream" "tcp 4 streams" "udp 64 B")

# measure TOPOLOGY TWEED_OK "tweed CLI SRV IP" "kernel CLI SRV IP"
measure() {
    local topo=$1 tweed_ok=$2 tw=($3) kn=($4) r metric
    for ((r = 1; r <= REPEAT; r++)); do
        for metric in "${METRICS[@]}"; do
            if [[ $tweed_ok == 1 ]]; then
                run_iperf "$topo" "$metric" tweed "${tw[0]}" "${tw[1]}" "${tw[2]}" "$r"
            else
                echo "{\"topology\":\"$topo\",\"metric\":\"$metric\",\"impl\":\"tweed\",\"error\":\"no connectivity (see diagnostics)\"}" >>"$RESULTS"
            fi
            run_iperf "$topo" "$metric" kernel "${kn[0]}" "${kn[1]}" "${kn[2]}" "$r"
        done
    done
}

# stats_after TOPOLOGY NODE...: records each dataplane's stats in the results
stats_after() {
    local topo=$1 n; shift
    for n in "$@"; do
        api "$(sock "$n")" stats >"$WORK/$n-stats.json" 2>&1 || true
        python3 "$HELPERS/report.py" extra "$RESULTS" "$topo" tweed "stats $n" "$WORK/$n-stats.json"
        python3 - "$WORK/$n-stats.json" "$n" <<'PY' >&2 || true
import json, sys
ok = json.load(open(sys.argv[1]))["ok"]
drops = {k: v for k, v in ok.get("drops", {}).items() if v}
print(f"e2e: {sys.argv[2]} dataplane: actions {ok.get('actions')}, drops {drops or 'none'}")
PY
    done
}

# teardown NETNS_SHORT...: stops the dataplanes of these nodes and deletes the netns
teardown() {
    local n
    for n in "$@"; do
        if [[ -f $WORK/$n/pid ]]; then stop_pid "$(cat "$WORK/$n/pid")"; fi
    done
    for n in "$@"; do del_netns "$(ns "$n")"; done
}

# ---------------------------------------------------------------- the machine

python3 - "$WORK/machine.json" "$BIN" "$ROOT" <<'PY'
import json, os, platform, subprocess, sys
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
def run(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None
json.dump({
    "nproc": os.cpu_count(),
    "cpu_model": model,
    "kernel": platform.release(),
    "loadavg_start": " ".join(open("/proc/loadavg").read().split()[:3]),
    "iperf3": (run("iperf3", "--version") or "").splitlines()[0:1],
    "tweed_git": run("git", "-C", sys.argv[3], "describe", "--always", "--dirty"),
    "binary": sys.argv[2],
}, open(sys.argv[1], "w"))
PY
python3 - "$WORK/config.json" <<PY
import json, sys
json.dump({"seconds": $SECS, "omit": $OMIT, "repeat": $REPEAT, "workers": $WORKERS,
           "pod_mtu": $POD_MTU, "underlay_mtu": $UNDERLAY_MTU, "topologies": "$TOPOLOGIES".split()},
          open(sys.argv[1], "w"))
PY
log "prefix $P, $(nproc) CPUs, $(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["cpu_model"])' "$WORK/machine.json"), load $(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------- one node

if [[ " $TOPOLOGIES " == *" one "* ]]; then
    log "one node: setting up"
    # kernel reference
    kernel_node k1n
    kernel_pod k1n k1a 10.244.1.2 cali-a
    kernel_pod k1n k1b 10.244.1.3 cali-b
    # tweed
    mkns t1n
    start_dataplane t1n 0.0.0.0     # no underlay needed; the node netns has nothing else in it
    tweed_pod t1n t1a 10.244.1.2
    tweed_pod t1n t1b 10.244.1.3

    reachable k1a 10.244.1.3 || die "one node, kernel reference: k1a cannot ping 10.244.1.3 (a setup bug in this script)"
    tweed_ok=1
    if ! reachable t1a 10.244.1.3; then
        log "one node, tweed: t1a cannot ping 10.244.1.3"
        diagnose_tweed t1n t1a t1b 10.244.1.3
        tweed_ok=0
    fi
    log "one node: measuring (${SECS}s per run)"
    TWEED_NODES="t1n"
    measure "one node" "$tweed_ok" "t1a t1b 10.244.1.3" "k1a k1b 10.244.1.3"
    stats_after "one node" t1n
    teardown t1n t1a t1b k1n k1a k1b
fi

# ---------------------------------------------------------------- two nodes

if [[ " $TOPOLOGIES " == *" two "* ]]; then
    log "two nodes: setting up"
    # kernel reference: flannel-style vxlan between the nodes, Calico-style pods
    kernel_node k2n1
    kernel_node k2n2
    underlay k2n1 k2n2
    declare -A KIP=([k2n1]=192.168.77.1 [k2n2]=192.168.77.2)
    declare -A KMAC=([k2n1]=02:e2:e2:00:00:01 [k2n2]=02:e2:e2:00:00:02)
    declare -A KNET=([k2n1]=10.244.1 [k2n2]=10.244.2)
    for n in k2n1 k2n2; do
        o=$([[ $n == k2n1 ]] && echo k2n2 || echo k2n1)
        ip -n "$(ns "$n")" link add vx0 type vxlan id 1 dstport 4789 local "${KIP[$n]}" dev ul0 nolearning
        ip -n "$(ns "$n")" link set vx0 address "${KMAC[$n]}" mtu "$POD_MTU" up
        ip -n "$(ns "$n")" addr add "${KNET[$n]}.0/32" dev vx0
        ip -n "$(ns "$n")" neigh add "${KNET[$o]}.0" lladdr "${KMAC[$o]}" dev vx0 nud permanent
        nsx "$n" bridge fdb append "${KMAC[$o]}" dev vx0 dst "${KIP[$o]}" self permanent
        ip -n "$(ns "$n")" route add "${KNET[$o]}.0/24" via "${KNET[$o]}.0" dev vx0 onlink
    done
    kernel_pod k2n1 k2a 10.244.1.2 cali-a
    kernel_pod k2n2 k2b 10.244.2.2 cali-b

    # tweed: a dataplane per node, peers both ways
    mkns t2n1
    mkns t2n2
    underlay t2n1 t2n2
    start_dataplane t2n1 192.168.77.1
    start_dataplane t2n2 192.168.77.2
    tweed_pod t2n1 t2a 10.244.1.2
    tweed_pod t2n2 t2b 10.244.2.2
    vtep1=$(api "$(sock t2n1)" dump --get node.vtep_mac) || die "dump on t2n1 failed"
    vtep2=$(api "$(sock t2n2)" dump --get node.vtep_mac) || die "dump on t2n2 failed"
    api "$(sock t2n1)" peer_set "{\"name\":\"node2\",\"subnets\":[\"10.244.2.0/24\"],\"underlay_ip\":\"192.168.77.2\",\"vtep_mac\":\"$vtep2\",\"backend\":\"vxlan\"}" >/dev/null \
        || die "peer_set node2 on t2n1 failed (reply above)"
    api "$(sock t2n2)" peer_set "{\"name\":\"node1\",\"subnets\":[\"10.244.1.0/24\"],\"underlay_ip\":\"192.168.77.1\",\"vtep_mac\":\"$vtep1\",\"backend\":\"vxlan\"}" >/dev/null \
        || die "peer_set node1 on t2n2 failed (reply above)"
    log "two nodes: tweed VTEP MACs $vtep1 / $vtep2"

    reachable k2a 10.244.2.2 || die "two nodes, kernel reference: k2a cannot ping 10.244.2.2 (a setup bug in this script)"
    tweed_ok=1
    if ! reachable t2a 10.244.2.2; then
        log "two nodes, tweed: t2a cannot ping 10.244.2.2"
        diagnose_tweed "t2n1 t2n2" t2a t2b 10.244.2.2 t2n1
        tweed_ok=0
    fi
    log "two nodes: measuring (${SECS}s per run)"
    TWEED_NODES="t2n1 t2n2"
    measure "two nodes" "$tweed_ok" "t2a t2b 10.244.2.2" "k2a k2b 10.244.2.2"
    stats_after "two nodes" t2n1 t2n2
    teardown t2n1 t2n2 t2a t2b k2n1 k2n2 k2a k2b
fi

# ---------------------------------------------------------------- report

if ! python3 "$HELPERS/report.py" table "$RESULTS" "$WORK/machine.json" "$WORK/config.json" "$OUT"; then
    die "some measurements failed (FAILED above; the reasons are in $OUT)"
fi
