#!/usr/bin/env python3
"""Helpers for benches/e2e.sh: parse iperf3 -J output, print the table, write the JSON.

  report.py record RESULTS.jsonl TOPOLOGY METRIC IMPL IPERF.json [RC]
      appends one measurement (or the error) to RESULTS.jsonl and prints a one-line summary
  report.py extra RESULTS.jsonl TOPOLOGY IMPL KEY JSON_FILE
      attaches a JSON document (e.g. the dataplane's stats) to the results
  report.py table RESULTS.jsonl MACHINE.json CONFIG.json OUT.json
      prints the table (median over repeats) and writes OUT.json
"""
import glob
import json
import statistics
import sys

METRICS = {
    # metric name -> (kind, iperf3 -l, unit)
    "tcp 1 stream": "tcp",
    "tcp 4 streams": "tcp",
    "udp 64 B": "udp",
}


def parse_iperf(path, kind, length=64):
    with open(path) as f:
        text = f.read()
    if not text.strip():
        raise ValueError("iperf3 printed nothing (timed out or failed to start)")
    doc = json.loads(text)
    if doc.get("error"):
        raise ValueError("iperf3: " + doc["error"])
    end = doc["end"]
    if kind == "tcp":
        recv, sent = end["sum_received"], end["sum_sent"]
        return {
            "value": recv["bits_per_second"],
            "unit": "bit/s",
            "seconds": recv["seconds"],
            "bytes": recv["bytes"],
            "retransmits": sent.get("retransmits"),
        }
    # UDP: the server's count of what arrived (iperf3 reports it back to the client as sum_received).
    recv, sent = end["sum_received"], end["sum_sent"]
    received = recv["packets"] - recv["lost_packets"]
    if recv["bytes"] and received * length != recv["bytes"]:
        received = recv["bytes"] // length
    seconds = recv["seconds"] or sent["seconds"]
    return {
        "value": received / seconds,
        "unit": "packet/s",
        "seconds": seconds,
        "received_packets": received,
        "sent_packets": sent["packets"],
        "sent_pps": sent["packets"] / sent["seconds"] if sent["seconds"] else None,
        "lost_percent": 100.0 * (sent["packets"] - received) / sent["packets"] if sent["packets"] else None,
    }


def fmt(value, unit):
    if value is None:
        return "n/a"
    if unit == "bit/s":
        return f"{value / 1e9:.2f} Gbit/s" if value >= 1e9 else f"{value / 1e6:.0f} Mbit/s"
    if unit == "packet/s":
        return f"{value / 1e6:.2f} Mpps" if value >= 1e6 else f"{value / 1e3:.0f} kpps"
    return f"{value:g} {unit}"


def stats_delta(before_path, after_path):
    """What a dataplane counted during one run: the difference of two `stats` replies."""
    with open(before_path) as f:
        b = json.load(f)["ok"]
    with open(after_path) as f:
        a = json.load(f)["ok"]
    def diff(x, y):
        return {k: y[k] - x.get(k, 0) for k in y if isinstance(y[k], int) and y[k] - x.get(k, 0)}
    ports_b = {p["name"]: p for p in b["ports"]}
    return {
        "ports": {p["name"]: diff(ports_b.get(p["name"], {}), p) for p in a["ports"]},
        "workers": {w["id"]: diff(bw, w) for w, bw in zip(a["workers"], b["workers"])},
        "actions": diff(b["actions"], a["actions"]),
        "drops": diff(b["drops"], a["drops"]),
    }


def record(args):
    out, topology, metric, impl, path = args[:5]
    rc = int(args[5]) if len(args) > 5 else 0
    row = {"topology": topology, "metric": metric, "impl": impl, "file": path}
    try:
        row.update(parse_iperf(path, METRICS[metric]))
        if rc != 0:
            row["warning"] = f"iperf3 exited {rc}"
        print(f"  {topology:<10} {metric:<14} {impl:<7} {fmt(row['value'], row['unit'])}"
              + (f"  (sent {fmt(row['sent_pps'], 'packet/s')}, lost {row['lost_percent']:.0f}%)" if row["unit"] == "packet/s" else "")
              + (f"  (retransmits {row['retransmits']})" if row.get("retransmits") is not None else ""))
    except (OSError, ValueError, KeyError, ZeroDivisionError) as e:
        row["error"] = f"{e} (exit {rc})" if rc else str(e)
        print(f"  {topology:<10} {metric:<14} {impl:<7} FAILED: {row['error']}")
    for before in sorted(glob.glob(glob.escape(path) + ".*.before")):
        node = before[len(path) + 1 : -len(".before")]
        try:
            row.setdefault("dataplane", {})[node] = stats_delta(before, before[: -len(".before")] + ".after")
        except (OSError, ValueError, KeyError) as e:
            row.setdefault("dataplane", {})[node] = {"error": str(e)}
    if row.get("unit") == "packet/s" and row.get("dataplane"):
        parts = []
        for node, d in row["dataplane"].items():
            if "error" in d:
                continue
            for name, c in d["ports"].items():
                parts.append(f"{name} rx {c.get('rx_packets', 0)} tx {c.get('tx_packets', 0)}")
            if d["drops"]:
                parts.append(f"{node} drops {d['drops']}")
        print(f"  {'':<10} {'':<14} {'':<7} dataplane packets: " + ", ".join(parts))
    with open(out, "a") as f:
        f.write(json.dumps(row) + "\n")


def extra(args):
    out, topology, impl, key, path = args
    try:
        with open(path) as f:
            doc = json.loads(f.read())
    except (OSError, ValueError) as e:
        doc = {"error": str(e)}
    with open(out, "a") as f:
        f.write(json.dumps({"extra": key, "topology": topology, "impl": impl, "doc": doc}) + "\n")


def table(args):
    results_path, machine_path, config_path, out_path = args
    rows, extras = [], []
    with open(results_path) as f:
        for line in f:
            r = json.loads(line)
            (extras if "extra" in r else rows).append(r)
    with open(machine_path) as f:
        machine = json.load(f)
    with open(config_path) as f:
        config = json.load(f)

    keys = []
    for r in rows:
        k = (r["topology"], r["metric"])
        if k not in keys:
            keys.append(k)

    results = []
    for topology, metric in keys:
        entry = {"topology": topology, "metric": metric}
        for impl in ("tweed", "kernel"):
            runs = [r for r in rows if (r["topology"], r["metric"], r["impl"]) == (topology, metric, impl)]
            good = [r["value"] for r in runs if "value" in r]
            entry[impl] = {
                "value": statistics.median(good) if good else None,
                "unit": next((r["unit"] for r in runs if "unit" in r), None),
                "runs": [{k: v for k, v in r.items() if k not in ("topology", "metric", "impl")} for r in runs],
            }
            errors = [r["error"] for r in runs if "error" in r]
            if errors:
                entry[impl]["errors"] = errors
        t, k = entry["tweed"]["value"], entry["kernel"]["value"]
        entry["ratio"] = t / k if t is not None and k else None
        results.append(entry)

    stats = {}
    for e in extras:
        stats.setdefault(e["topology"], {})[e["extra"]] = e["doc"]

    print()
    print(f"machine: {machine.get('nproc')} CPUs, {machine.get('cpu_model')}, kernel {machine.get('kernel')}, "
          f"load average at start {machine.get('loadavg_start')}")
    print(f"runs: {config.get('seconds')} s each (TCP: +{config.get('omit')} s omitted warm-up), "
          f"{config.get('repeat')} repeat(s), median shown; tweed --workers {config.get('workers')}")
    print()
    spread = config.get("repeat", 1) > 1
    print(f"{'topology':<17} {'metric':<15} {'tweed':<13} {'kernel':<13} {'ratio':<6}"
          + ("  runs min-max (tweed | kernel)" if spread else ""))
    for e in results:
        unit = e["tweed"]["unit"] or e["kernel"]["unit"]
        t = "FAILED" if e["tweed"]["value"] is None else fmt(e["tweed"]["value"], unit)
        k = "FAILED" if e["kernel"]["value"] is None else fmt(e["kernel"]["value"], unit)
        ratio = "n/a" if e["ratio"] is None else f"{e['ratio']:.2f}"
        line = f"{e['topology']:<17} {e['metric']:<15} {t:<13} {k:<13} {ratio:<6}"
        if spread:
            ranges = []
            for impl in ("tweed", "kernel"):
                vals = [r["value"] for r in e[impl]["runs"] if "value" in r]
                ranges.append(f"{fmt(min(vals), unit)}-{fmt(max(vals), unit)}" if vals else "n/a")
            line += "  " + " | ".join(ranges)
        print(line.rstrip())

    doc = {"machine": machine, "config": config, "results": results, "tweed_dataplane": stats}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"\nwritten: {out_path}")
    failed = [e for e in results if e["ratio"] is None]
    return 1 if failed else 0


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "record":
        record(args)
    elif cmd == "extra":
        extra(args)
    elif cmd == "table":
        sys.exit(table(args))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
