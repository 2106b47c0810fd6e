#!/usr/bin/env python3
"""Benchmarks the cluster (issue 14) side by side with the single-node daemon, in one run, on one
auth.log with the shipped rules: lines per second from the file's first line to the last incident
change stored, for the single-node daemon, a cluster of one edge + 1 worker + a console, and the same
with 2 workers; and the edge's publish rate (matches acknowledged by the server per second).

Usage: python3 benches/cluster_bench.py [--bin target/release/socwatch] [--auth /tmp/bench/auth-200000.log]
       [--nats nats-server]
Generate the auth.log first with ../shared/bench/gen_logs.py. Prints a markdown table.
Not a test: numbers depend on the machine (all nodes and the NATS server share it here).
"""
import argparse, json, os, re, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon_bench import start, stop, get, lines_read  # noqa: E402


def nats_start(binary, store):
    proc = subprocess.Popen([binary, "-js", "-sd", store, "-a", "127.0.0.1", "-p", "-1"],
                            stderr=subprocess.PIPE, text=True)
    port = None
    for line in proc.stderr:
        m = re.search(r"Listening for client connections on [\d.]+:(\d+)", line)
        if m:
            port = int(m.group(1))
        if "Server is ready" in line:
            break
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    return proc, port


def status(api):
    return json.loads(get(api, "/api/v1/status"))


def stored_changes(api):
    cluster = status(api).get("cluster") or {}
    return cluster.get("published", 0)


def node(binary, root, role, name, port, source=None):
    os.makedirs(root, exist_ok=True)
    src = f'[[source.file]]\npaths = ["{source}"]\nstart_at = "beginning"\n\n' if source else ""
    config = (f'[daemon]\ndata_dir = "{root}/data"\nlang = "en"\n\n{src}'
              f'[api]\nlisten = "127.0.0.1:0"\n\n'
              f'[cluster]\nnats = "nats://127.0.0.1:{port}"\nrole = "{role}"\nnode = "{name}"\n')
    return start(binary, root, config)


def wait_until(done, timeout=600):
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.05)


def console_incidents(api):
    return json.loads(get(api, "/api/v1/incidents?limit=100000"))


def bench_cluster(binary, nats, auth, workers, want_incidents, want_count, lines):
    with tempfile.TemporaryDirectory() as root:
        server, port = nats_start(nats, f"{root}/js")
        procs = []
        try:
            console, cf = node(binary, f"{root}/console", "console", "console", port)
            procs.append(console)
            for n in range(workers):
                w, _ = node(binary, f"{root}/w{n}", "worker", f"w{n}", port)
                procs.append(w)
            # Let the workers take their partitions before the clock starts.
            time.sleep(12)
            t0 = time.monotonic()
            edge, ef = node(binary, f"{root}/edge", "edge", "e1", port, source=auth)
            procs.append(edge)
            wait_until(lambda: lines_read(ef["api"], auth) >= lines)
            edge_done = time.monotonic() - t0
            published = status(ef["api"])["cluster"]["published"]

            def complete():
                got = console_incidents(cf["api"])
                return len(got) == want_incidents and sum(i["count"] for i in got) == want_count
            wait_until(complete)
            total = time.monotonic() - t0
            return total, edge_done, published
        finally:
            for p in procs:
                stop(p)
            server.terminate()
            server.wait()


def bench_single(binary, auth, want_incidents, lines):
    with tempfile.TemporaryDirectory() as root:
        config = (f'[daemon]\ndata_dir = "{root}/data"\nlang = "en"\n\n'
                  f'[[source.file]]\npaths = ["{auth}"]\nstart_at = "beginning"\n\n'
                  f'[api]\nlisten = "127.0.0.1:0"\n')
        t0 = time.monotonic()
        proc, fields = start(binary, root, config)
        try:
            wait_until(lambda: lines_read(fields["api"], auth) >= lines)
            wait_until(lambda: len(console_incidents(fields["api"])) == want_incidents)
            return time.monotonic() - t0
        finally:
            stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/socwatch")
    ap.add_argument("--auth", default="/tmp/bench/auth-200000.log")
    ap.add_argument("--nats", default=os.environ.get("SOCWATCH_NATS_SERVER", "nats-server"))
    args = ap.parse_args()
    binary = os.path.abspath(args.bin)
    auth = os.path.abspath(args.auth)
    lines = sum(1 for _ in open(auth, "rb"))
    scan = subprocess.run([binary, "scan", "--json", auth], capture_output=True, text=True, check=True)
    incidents = json.loads(scan.stdout)
    want_count = sum(i["count"] for i in incidents)
    print(f"{lines} lines, {len(incidents)} incidents, {want_count} counted matches (scan)\n")
    single = bench_single(binary, auth, len(incidents), lines)
    rows = [("single node (`socwatch run`)", single, None, None)]
    for workers in (1, 2):
        total, edge_done, published = bench_cluster(binary, args.nats, auth, workers, len(incidents), want_count, lines)
        rows.append((f"cluster: 1 edge, {workers} worker{'s' if workers > 1 else ''}, 1 console",
                     total, edge_done, published))
    print("| run | file to last incident stored | lines/s | edge: all lines published | edge: matches/s |")
    print("|---|---|---|---|---|")
    for name, total, edge_done, published in rows:
        edge = f"{edge_done:.1f} s" if edge_done else "-"
        rate = f"{published / edge_done:,.0f}" if edge_done else "-"
        print(f"| {name} | {total:.1f} s | {lines / total:,.0f} | {edge} | {rate} |")


if __name__ == "__main__":
    main()
