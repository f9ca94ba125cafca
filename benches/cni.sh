#!/usr/bin/env bash
# CNI benchmark: how long tweed-cni takes per ADD and per DEL, next to the reference
# plugins bridge + host-local (Debian's containernetworking-plugins), on the same node.
#
#   sudo benches/cni.sh
#
# Set-up: a node netns twcb-node with an underlay (a veth ul0, 192.168.251.1/24, and a
# default route via .254, so the daemon finds "the interface of the default route") runs
# `tweed daemon` (embedded store, --run-dir and --state-dir in a temp dir; it starts its
# own tweed-dataplane). 50 empty pod netns twcb-pod-1..50 are shared by both plugins.
# The reference is bridge (bridge twcb-br0, isGateway) with host-local IPAM (subnet
# 10.252.0.0/24, dataDir in the temp dir); it runs inside twcb-node, so its bridge and host
# veths are made there, never in the root netns.
#
# Measurement (benches/cni/measure.py, itself run inside twcb-node): each plugin command is
# one fresh process started as a container runtime starts it (only PATH and CNI_COMMAND,
# CNI_CONTAINERID, CNI_NETNS=/run/netns/twcb-pod-N, CNI_IFNAME=eth0, CNI_PATH,
# CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=twcb;K8S_POD_NAME=pod-N in the environment,
# the network configuration on stdin), timed from spawn to exit. A phase is 50 ADDs one
# after the other, then their 50 DELs. After one uncounted ADD/DEL each (the bridge plugin
# makes its bridge on its first ADD), rounds alternate: tweed then reference, reference
# then tweed, ..., so background load hits both alike. Every ADD must exit 0 and return an
# address in its subnet, every DEL exit 0; eth0 is checked in each pod after the ADDs and
# gone after the DELs (outside the timed part; polled for up to 10 s, since tweed deletes a
# tap after its DEL has answered). A failure stops the run: no figures.
# Output: median and p95 (nearest rank) over all ADDs and all DELs, as a Markdown table.
#
# Environment:
#   CNIB_PODS       pods per phase (default 50)
#   CNIB_ROUNDS     rounds per implementation (default 3)
#   CNIB_CNI_VERSION  cniVersion of both configurations (default 1.0.0, the newest both speak)
#   CNIB_NO_BUILD   set to skip `cargo build` (uses the existing binaries)
#   CNIB_BIN_DIR    where tweed, tweed-dataplane and tweed-cni are (default target/release)
#   CNIB_OUT        the JSON result with every sample (default target/cni-results.json)
#   CNIB_KEEP_LOGS  set to keep the temp dir (daemon log, plugin state) after the run
#
# Everything it creates is named twcb-* (netns, bridge) or lives in /tmp/twcb.XXXXXX, and is
# removed on exit, also on failure or Ctrl-C: attachments are DELed, the daemon and its
# dataplane stopped, the netns deleted. Only one instance runs at a time (a lock on this file);
# an instance that finds twcb-* namespaces left by a killed run removes them first.

set -euo pipefail

PODS=${CNIB_PODS:-50}
ROUNDS=${CNIB_ROUNDS:-3}
CNI_VERSION=${CNIB_CNI_VERSION:-1.0.0}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPERS=$ROOT/benches/cni
BIN_DIR=${CNIB_BIN_DIR:-$ROOT/target/release}
OUT=${CNIB_OUT:-$ROOT/target/cni-results.json}
TWEED=$BIN_DIR/tweed
TWEED_CNI=$BIN_DIR/tweed-cni
DATAPLANE=$BIN_DIR/tweed-dataplane
REF_CNI_PATH=/usr/lib/cni
P=twcb
NODE=$P-node
REF_BRIDGE=$P-br0
REF_SUBNET=10.252.0.0/24
UNDERLAY_IP=192.168.251.1
UNDERLAY_GW=192.168.251.254
START_TIMEOUT=30      # seconds for the daemon to answer with its dataplane up
STOP_GRACE=10         # seconds for the daemon to exit after SIGTERM

WORK=""
DAEMON_PID=""

die() { echo "cni-bench: error: $*" >&2; exit 1; }
log() { echo "cni-bench: $*" >&2; }

# ---------------------------------------------------------------- cleanup

alive() { kill -0 "$1" 2>/dev/null && [[ $(ps -o stat= -p "$1" 2>/dev/null) != Z* ]]; }

stop_daemon() { # SIGTERM (it removes its routes and stops its dataplane), then SIGKILL
    local i
    [[ -n $DAEMON_PID ]] || return 0
    if alive "$DAEMON_PID"; then
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        for ((i = 0; i < STOP_GRACE * 10; i++)); do alive "$DAEMON_PID" || break; sleep 0.1; done
        if alive "$DAEMON_PID"; then
            log "the daemon ignored SIGTERM for ${STOP_GRACE}s; killing it"
            kill -KILL "$DAEMON_PID" 2>/dev/null || true
        fi
    fi
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
}

del_netns() { # NAME: kill what still runs inside (our own netns only), then delete it
    local ns=$1 pid pids i
    for ((i = 0; i < 50; i++)); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [[ -n $pids ]] || break
        for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
        sleep 0.1
    done
    ip netns del "$ns" 2>/dev/null || true
}

ours() { ip netns list | awk '{print $1}' | grep "^$P-" || true; }

remove_all() { # every twcb-* netns, and any twcb-* link that ended up in the root netns
    local ns link
    for ns in $(ours | grep -v "^$NODE\$" || true); do del_netns "$ns"; done
    if ours | grep -qx "$NODE"; then del_netns "$NODE"; fi
    for link in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$P-" || true); do
        log "deleting link $link left in the root netns"
        ip link del "$link" 2>/dev/null || true
    done
}

cleanup() {
    local rc=$? left_ns left_pids left_links
    trap - EXIT INT TERM ERR
    set +eE
    # Pods first, through the plugins (DEL is idempotent for both), while the daemon runs.
    if [[ -n $WORK && -s $WORK/attached.json && $(cat "$WORK/attached.json") != "{}" ]]; then
        log "cleanup: DEL of the attachments still listed"
        timeout 300 ip netns exec "$NODE" python3 "$HELPERS/measure.py" cleanup "$WORK/config.json" \
            || log "cleanup: some DELs failed; deleting the namespaces removes their interfaces"
    fi
    stop_daemon
    remove_all
    if [[ -n $WORK && -d $WORK ]]; then
        if [[ -n ${CNIB_KEEP_LOGS:-} ]]; then log "temp dir kept: $WORK"; else rm -rf "$WORK"; fi
    fi
    # Prove it: nothing of ours is left.
    left_ns=$(ours)
    left_pids=""
    [[ -n $WORK ]] && left_pids=$(pgrep -f -- "$WORK/" | tr '\n' ' ' || true)   # daemon and dataplane name $WORK
    left_links=$(ip -o link show | awk -F': ' '{print $2}' | grep "^$P-" || true)
    if [[ -n $left_ns || -n $left_pids || -n $left_links ]]; then
        log "cleanup incomplete: netns [${left_ns//$'\n'/ }] pids [$left_pids] links [${left_links//$'\n'/ }]"
        [[ $rc == 0 ]] && rc=1
    fi
    exit "$rc"
}

# ---------------------------------------------------------------- checks and build

[[ $EUID -eq 0 ]] || die "needs root (network namespaces, taps, bridges): run it as sudo $0"
for tool in ip python3 timeout flock pgrep setsid; do
    command -v "$tool" >/dev/null || die "$tool not installed (iproute2, python3, coreutils, util-linux, procps)"
done
[[ $PODS =~ ^[0-9]+$ && $PODS -ge 1 && $PODS -le 200 ]] || die "CNIB_PODS=$PODS: use 1 to 200"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "CNIB_ROUNDS=$ROUNDS: use a number >= 1"

# One instance at a time: the names are fixed (twcb-*). The lock goes with the process.
exec 9<"${BASH_SOURCE[0]}"
flock -n 9 || die "another benches/cni.sh is running (it holds the lock on ${BASH_SOURCE[0]})"

trap cleanup EXIT
set -E
trap 'err_rc=$?; if [[ $BASH_SUBSHELL == 0 && $BASH_COMMAND != exit* && -z ${ERR_SEEN:-} ]]; then ERR_SEEN=1; log "failed (exit $err_rc) at line $LINENO: $BASH_COMMAND"; fi' ERR
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

if [[ -n $(ours) ]]; then
    log "removing namespaces left by an earlier run that was killed: $(ours | tr '\n' ' ')"
    remove_all
fi

if [[ ! -x $REF_CNI_PATH/bridge || ! -x $REF_CNI_PATH/host-local ]]; then
    log "installing containernetworking-plugins (the reference bridge and host-local)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        containernetworking-plugins || die "apt-get install containernetworking-plugins failed"
    [[ -x $REF_CNI_PATH/bridge && -x $REF_CNI_PATH/host-local ]] \
        || die "containernetworking-plugins did not install $REF_CNI_PATH/bridge and host-local"
fi

if [[ -z ${CNIB_NO_BUILD:-} ]]; then
    build=(cargo build --release -p tweed-cmd -p tweed-cni -p tweed-dataplane)
    log "building: ${build[*]}"
    if [[ -n ${SUDO_USER:-} && $SUDO_USER != root ]]; then
        # as the invoking user, so target/ does not fill with root-owned files
        (cd "$ROOT" && sudo -u "$SUDO_USER" -H bash -lc "${build[*]}") 9<&- \
            || die "cargo build failed (as $SUDO_USER); fix the build or set CNIB_NO_BUILD=1"
    elif command -v cargo >/dev/null; then
        (cd "$ROOT" && "${build[@]}") 9<&- || die "cargo build failed; fix the build or set CNIB_NO_BUILD=1"
    else
        log "cargo not found; using the existing binaries in $BIN_DIR"
    fi
fi
for bin in "$TWEED" "$TWEED_CNI" "$DATAPLANE"; do
    [[ -x $bin ]] || die "$bin does not exist or is not executable (build: cargo build --release)"
done

WORK=$(mktemp -d /tmp/$P.XXXXXX)
mkdir -p "$WORK/run" "$WORK/state" "$WORK/host-local" "$(dirname "$OUT")"
log "$(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), temp dir $WORK"

# ---------------------------------------------------------------- the node and its daemon

ip netns add "$NODE"
ip -n "$NODE" link set lo up
# a veth whose peer stays in the node too (no dummy driver needed): enough for an address and a route
ip -n "$NODE" link add ul0 type veth peer name ul0-peer
ip -n "$NODE" addr add "$UNDERLAY_IP/24" dev ul0
ip -n "$NODE" link set ul0-peer up
ip -n "$NODE" link set ul0 up
ip -n "$NODE" route add default via "$UNDERLAY_GW" dev ul0

# Not through a function or a subshell: $! must be the daemon itself (setsid and ip netns exec
# exec it). Its own session keeps a Ctrl-C away from it, so the trap can still DEL through it.
setsid ip netns exec "$NODE" "$TWEED" daemon --node-name "$NODE" --run-dir "$WORK/run" --state-dir "$WORK/state" \
    </dev/null >"$WORK/daemon.log" 2>&1 9<&- &
DAEMON_PID=$!

status_json() { "$TWEED" --run-dir "$WORK/run" status -o json 2>/dev/null; }
ready=""
for ((i = 0; i < START_TIMEOUT * 10; i++)); do
    alive "$DAEMON_PID" || { cat "$WORK/daemon.log" >&2; die "tweed daemon exited during start-up (log above)"; }
    if status_json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["dataplane"]["up"] else 1)' 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done
[[ -n $ready ]] || { cat "$WORK/daemon.log" >&2; die "tweed daemon did not answer with its dataplane up within ${START_TIMEOUT}s (log above)"; }
TWEED_SUBNET=$(status_json | python3 -c 'import json,sys; print(next(s for s in json.load(sys.stdin)["node"]["subnets"] if ":" not in s))')
log "tweed daemon up (pid $DAEMON_PID), node subnet $TWEED_SUBNET"

# ---------------------------------------------------------------- pods and measurement

for ((i = 1; i <= PODS; i++)); do
    ip netns add "$P-pod-$i"
    ip -n "$P-pod-$i" link set lo up
done

python3 - "$WORK/config.json" <<PY
import json, sys
json.dump({
    "prefix": "$P", "pods": $PODS, "rounds": $ROUNDS, "cni_version": "$CNI_VERSION",
    "tweed_cni": "$TWEED_CNI", "socket": "$WORK/run/control.sock", "tweed_cidr": "$TWEED_SUBNET",
    "ref_cni_path": "$REF_CNI_PATH", "ref_name": "$P-ref", "ref_bridge": "$REF_BRIDGE",
    "ref_subnet": "$REF_SUBNET", "ref_data_dir": "$WORK/host-local",
    "state_file": "$WORK/attached.json", "out": "$OUT",
    "load_start": " ".join(open("/proc/loadavg").read().split()[:3]),
}, open(sys.argv[1], "w"))
PY

log "measuring: $PODS pods, $ROUNDS rounds each, interleaved"
ip netns exec "$NODE" python3 "$HELPERS/measure.py" run "$WORK/config.json" 9<&- \
    || die "the measurement failed (see above); no figures"

# tweed must hold nothing after the DELs.
left=$("$TWEED" --run-dir "$WORK/run" pods -o json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d if isinstance(d, list) else d.get("pods", [])))')
[[ $left == 0 ]] || die "tweed still lists $left pods after every DEL"
