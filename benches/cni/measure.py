#!/usr/bin/env python3
"""Timing for benches/cni.sh: CNI ADD and DEL, tweed-cni against bridge + host-local.

  measure.py run CONFIG.json
      runs the rounds, prints the Markdown table on stdout, writes the results JSON
  measure.py cleanup CONFIG.json
      DELs every attachment the state file still lists (idempotent; the script's trap)

Run it inside the node's netns (`ip netns exec NODE python3 measure.py ...`): the
plugins are started from there, as a runtime on that node would start them, so the
bridge plugin creates its bridge and host veths in the node's netns.

Each command is one fresh plugin process, started as a runtime starts it: an
environment with only PATH and the CNI_* variables, the network configuration on
stdin. The time is wall-clock from spawn to exit (time.perf_counter_ns around
subprocess.run), so it includes the process start, which every CNI plugin pays.

An ADD counts only if it exits 0 and returns an IPv4 address inside the expected
range; a DEL only if it exits 0; after each phase the pods' netns are checked
(outside the timed part): eth0 with that address after ADD, no eth0 after DEL. tweed
deletes a pod's tap after its DEL has answered, so the check after the DELs polls
until every eth0 is gone (at most GONE_TIMEOUT) and records how long after the last
DEL that was ("gone after", a coarse figure: one sweep over the pods takes a while).
Any failure stops the run with an error and no figures.
"""
import hashlib
import ipaddress
import json
import os
import platform
import statistics
import subprocess
import sys
import time

TIMEOUT = 60  # seconds one plugin run may take
GONE_TIMEOUT = 10  # seconds every eth0 may take to disappear after the last DEL


def log(msg):
    print(f"cni-bench: {msg}", file=sys.stderr, flush=True)


class Failure(Exception):
    pass


class Impl:
    """One plugin set-up: the binary, its configuration and what a good ADD returns."""

    def __init__(self, key, label, binary, conf, cni_path, subnet):
        self.key = key
        self.label = label
        self.binary = binary
        self.conf = json.dumps(conf).encode()
        self.cni_path = cni_path
        self.subnet = ipaddress.ip_network(subnet)


def impls(cfg):
    tweed = Impl(
        "tweed",
        "tweed-cni",
        cfg["tweed_cni"],
        {"cniVersion": cfg["cni_version"], "name": "tweed", "type": "tweed", "socket": cfg["socket"]},
        os.path.dirname(cfg["tweed_cni"]),
        cfg["tweed_cidr"],
    )
    ref = Impl(
        "reference",
        "bridge + host-local",
        os.path.join(cfg["ref_cni_path"], "bridge"),
        {
            "cniVersion": cfg["cni_version"],
            "name": cfg["ref_name"],
            "type": "bridge",
            "bridge": cfg["ref_bridge"],
            "isGateway": True,
            "ipMasq": False,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": cfg["ref_subnet"]}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": cfg["ref_data_dir"],
            },
        },
        cfg["ref_cni_path"],
        cfg["ref_subnet"],
    )
    return [tweed, ref]


def container_id(impl, tag, pod):
    """A 64-hex container id, as runtimes make them, distinct per attachment."""
    return hashlib.sha256(f"twcb/{impl.key}/{tag}/{pod}".encode()).hexdigest()


def plugin(impl, command, cid, netns, pod_name):
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": cid,
        "CNI_NETNS": netns,
        "CNI_IFNAME": "eth0",
        "CNI_PATH": impl.cni_path,
        "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=twcb;K8S_POD_NAME={pod_name};"
        f"K8S_POD_INFRA_CONTAINER_ID={cid}",
    }
    start = time.perf_counter_ns()
    try:
        out = subprocess.run(
            [impl.binary], env=env, input=impl.conf, capture_output=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise Failure(f"{impl.label} {command} {pod_name}: no answer within {TIMEOUT}s")
    elapsed = (time.perf_counter_ns() - start) / 1e6
    return elapsed, out


def show(out):
    return (
        f"exit {out.returncode}; stdout: {out.stdout.decode(errors='replace').strip()!r}; "
        f"stderr: {out.stderr.decode(errors='replace').strip()[-2000:]!r}"
    )


def check_add(impl, pod_name, out):
    if out.returncode != 0:
        raise Failure(f"{impl.label} ADD {pod_name} failed: {show(out)}")
    try:
        result = json.loads(out.stdout)
        ip = ipaddress.ip_interface(result["ips"][0]["address"]).ip
    except (ValueError, KeyError, IndexError, TypeError) as e:
        raise Failure(f"{impl.label} ADD {pod_name}: no IP in the result ({e!r}): {show(out)}")
    if ip.version != 4 or ip not in impl.subnet:
        raise Failure(f"{impl.label} ADD {pod_name}: {ip} is outside {impl.subnet}: {show(out)}")
    return ip


def eth0_addrs(netns_name):
    """IPv4 addresses on eth0 in the netns, or None when there is no eth0."""
    out = subprocess.run(
        ["ip", "-n", netns_name, "-j", "addr", "show", "dev", "eth0"],
        capture_output=True,
        timeout=TIMEOUT,
    )
    if out.returncode != 0:
        return None
    links = json.loads(out.stdout or b"[]")
    if not links:
        return None
    return {a["local"] for a in links[0].get("addr_info", []) if a.get("family") == "inet"}


class State:
    """The attachments that may exist: written before each ADD, cleared after its DEL,
    so the script's trap can DEL whatever a failed or interrupted run left."""

    def __init__(self, path):
        self.path = path
        self.live = {}
        if os.path.exists(path):
            with open(path) as f:
                self.live = json.load(f)

    def _save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.live, f)
        os.replace(tmp, self.path)

    def add(self, impl, cid, pod):
        self.live[cid] = {"impl": impl.key, "pod": pod}
        self._save()

    def remove(self, cid):
        self.live.pop(cid, None)
        self._save()


def phase(cfg, impl, state, tag, results):
    """50 ADDs, then 50 DELs, each timed; checked outside the timed part."""
    pods = range(1, cfg["pods"] + 1)
    netns = {i: f"{cfg['prefix']}-pod-{i}" for i in pods}
    ips = {}
    adds, dels = [], []
    for i in pods:
        cid = container_id(impl, tag, i)
        state.add(impl, cid, i)
        ms, out = plugin(impl, "ADD", cid, f"/run/netns/{netns[i]}", f"pod-{i}")
        ips[i] = check_add(impl, f"pod-{i}", out)
        adds.append(ms)
    if len(set(ips.values())) != len(ips):
        raise Failure(f"{impl.label}: two pods got the same address: {ips}")
    for i in pods:
        found = eth0_addrs(netns[i])
        if found is None or str(ips[i]) not in found:
            raise Failure(f"{impl.label}: after ADD, eth0 in {netns[i]} has {found}, not {ips[i]}")
    for i in pods:
        cid = container_id(impl, tag, i)
        ms, out = plugin(impl, "DEL", cid, f"/run/netns/{netns[i]}", f"pod-{i}")
        if out.returncode != 0:
            raise Failure(f"{impl.label} DEL pod-{i} failed: {show(out)}")
        state.remove(cid)
        dels.append(ms)
    last_del = time.perf_counter_ns()
    left = list(pods)
    while left:
        left = [i for i in left if eth0_addrs(netns[i]) is not None]
        if left and time.perf_counter_ns() - last_del > GONE_TIMEOUT * 1e9:
            still = ", ".join(netns[i] for i in left)
            raise Failure(f"{impl.label}: {GONE_TIMEOUT}s after the last DEL, eth0 is still in {still}")
        if left:
            time.sleep(0.01)
    gone_ms = (time.perf_counter_ns() - last_del) / 1e6
    if results is not None:
        results[impl.key]["ADD"].extend(adds)
        results[impl.key]["DEL"].extend(dels)
        results[impl.key]["gone_after"].append(gone_ms)
        log(
            f"{tag}: {impl.label:<20} ADD median {statistics.median(adds):6.2f} ms, "
            f"DEL median {statistics.median(dels):6.2f} ms, every eth0 gone {gone_ms:4.0f} ms "
            "after the last DEL"
        )


def p95(samples):
    """Nearest-rank 95th percentile."""
    s = sorted(samples)
    return s[max(0, -(-95 * len(s) // 100) - 1)]


def run(cfg):
    tweed, ref = impls(cfg)
    state = State(cfg["state_file"])
    results = {i.key: {"ADD": [], "DEL": [], "gone_after": []} for i in (tweed, ref)}
    # One uncounted ADD/DEL round trip each: the bridge plugin creates its bridge on the
    # first ADD, and both binaries come into the page cache.
    for impl in (tweed, ref):
        warm = dict(cfg, pods=1)
        phase(warm, impl, state, "warm-up", None)
    for r in range(1, cfg["rounds"] + 1):
        order = (tweed, ref) if r % 2 else (ref, tweed)
        for impl in order:
            phase(cfg, impl, state, f"round {r}", results)

    rows = []
    for cmd in ("ADD", "DEL"):
        t, f = results["tweed"][cmd], results["reference"][cmd]
        rows.append(
            {
                "command": cmd,
                "n": len(t),
                "tweed_median_ms": statistics.median(t),
                "tweed_p95_ms": p95(t),
                "reference_median_ms": statistics.median(f),
                "reference_p95_ms": p95(f),
            }
        )
    print(
        f"CNI {cfg['cni_version']}, {cfg['pods']} pods x {cfg['rounds']} rounds "
        f"(interleaved), {os.cpu_count()} CPUs, load at start {cfg['load_start']}\n"
    )
    print("| command | tweed median | tweed p95 | bridge + host-local median | bridge + host-local p95 "
          "| tweed / reference (median) | tweed / reference (p95) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['command']} (n = {row['n']} each) | {row['tweed_median_ms']:.2f} ms "
            f"| {row['tweed_p95_ms']:.2f} ms | {row['reference_median_ms']:.2f} ms "
            f"| {row['reference_p95_ms']:.2f} ms "
            f"| {row['tweed_median_ms'] / row['reference_median_ms']:.2f} "
            f"| {row['tweed_p95_ms'] / row['reference_p95_ms']:.2f} |"
        )
    gone = {k: max(results[k]["gone_after"]) for k in ("tweed", "reference")}
    print(
        f"\nEvery eth0 gone after the last DEL of a phase within {gone['tweed']:.0f} ms (tweed), "
        f"{gone['reference']:.0f} ms (bridge + host-local), worst of {cfg['rounds']} rounds."
    )
    with open(cfg["out"], "w") as f:
        json.dump(
            {
                "config": {k: cfg[k] for k in ("pods", "rounds", "cni_version", "tweed_cidr", "ref_subnet")},
                "machine": {
                    "nproc": os.cpu_count(),
                    "kernel": platform.release(),
                    "load_start": cfg["load_start"],
                    "load_end": " ".join(open("/proc/loadavg").read().split()[:3]),
                },
                "summary": rows,
                "samples_ms": results,
            },
            f,
            indent=1,
        )
    log(f"results written to {cfg['out']}")


def cleanup(cfg):
    state = State(cfg["state_file"])
    by_key = {i.key: i for i in impls(cfg)}
    for cid, what in list(state.live.items()):
        impl = by_key[what["impl"]]
        pod = what["pod"]
        try:
            _, out = plugin(impl, "DEL", cid, f"/run/netns/{cfg['prefix']}-pod-{pod}", f"pod-{pod}")
            if out.returncode == 0:
                state.remove(cid)
            else:
                log(f"cleanup: {impl.label} DEL pod-{pod}: {show(out)}")
        except Failure as e:
            log(f"cleanup: {e}")
    return 0 if not state.live else 1


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("run", "cleanup"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2]) as f:
        cfg = json.load(f)
    if sys.argv[1] == "cleanup":
        return cleanup(cfg)
    try:
        run(cfg)
    except Failure as e:
        log(f"error: {e}")
        return 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
