#!/usr/bin/env python3
"""Benchmarks `socwatch run` (issue: the daemon): file ingestion rate through the whole pipeline
with the shipped rules, UDP syslog rate without drops, append-to-incident latency, and RSS.

Usage: python3 benches/daemon_bench.py [--bin target/release/socwatch] [--auth /tmp/bench/auth-1000000.log]
Generate the auth.log first with ../shared/bench/gen_logs.py. Prints a markdown table.
Not a test: numbers depend on the machine; run it on a quiet one.
"""
import argparse, json, os, re, socket, subprocess, sys, tempfile, threading, time, urllib.request


def start(binary, root, config):
    path = os.path.join(root, "socwatch.toml")
    with open(path, "w") as f:
        f.write(config)
    proc = subprocess.Popen([binary, "--config", path, "run"], stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "socwatch running" in line:
            fields = dict(re.findall(r"(\w+)=(\S+)", line))
            # The API needs the token the daemon generates in its data folder on first start.
            token_file = os.path.join(root, "data", "api.token")
            deadline = time.monotonic() + 2
            while not os.path.exists(token_file) and time.monotonic() < deadline:
                time.sleep(0.01)
            # (A build from before the generated token answers without one.)
            TOKENS[fields["api"]] = open(token_file).read().strip() if os.path.exists(token_file) else ""
            # Keep draining its log so it never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, fields
    raise SystemExit("socwatch run did not start")


TOKENS = {}


def get(api, path):
    headers = {"Authorization": f"Bearer {TOKENS[api]}"} if TOKENS.get(api) else {}
    request = urllib.request.Request(f"http://{api}{path}", headers=headers)
    return urllib.request.urlopen(request, timeout=5).read()


def metrics(api):
    text = get(api, "/metrics").decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def lines_read(api, source_substring):
    """Lines read from the sources whose label contains `source_substring` (files: their path;
    syslog listeners: the configured listen address)."""
    return sum(v for k, v in metrics(api).items() if k.startswith("socwatch_lines_read_total") and source_substring in k)


def rss_peak_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return 0


def stop(proc):
    proc.terminate()
    proc.wait(timeout=60)


def base_config(root, extra):
    return f'[daemon]\ndata_dir = "{root}/data"\nlang = "en"\ntimezone = "UTC"\n{extra}\n[api]\nlisten = "127.0.0.1:0"\n'


def bench_files(binary, auth):
    with tempfile.TemporaryDirectory() as root:
        total = sum(1 for _ in open(auth, "rb"))
        os.symlink(os.path.abspath(auth), f"{root}/auth.log")
        cfg = base_config(root, f'[[source.file]]\npaths = ["{root}/auth.log"]\nstart_at = "beginning"\n')
        t0 = time.monotonic()
        proc, fields = start(binary, root, cfg)
        while lines_read(fields["api"], "auth.log") < total:
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        rss = rss_peak_kb(proc.pid)
        stop(proc)
        return total, elapsed, rss


def bench_udp(binary, rate, seconds):
    with tempfile.TemporaryDirectory() as root:
        cfg = base_config(root, '[[source.syslog]]\nlisten = "127.0.0.1:0"\nprotocol = "udp"\n')
        proc, fields = start(binary, root, cfg)
        host, port = fields["syslog"].split(":", 1)[1].rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        msgs = [f"<38>Nov 22 10:00:00 portal-01 sshd[811]: Failed password for root from 203.0.113.{i % 250 + 1} port 22 ssh2".encode() for i in range(1000)]
        sent = 0
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            target = int((time.monotonic() - t0) * rate)
            if sent >= target:
                # Caught up: sleep rather than spin. A spinning sender held one of the machine's
                # two cores for the whole run, so the daemon was measured on the other one alone.
                time.sleep(0.0005)
                continue
            while sent < target:
                sock.sendto(msgs[sent % 1000], (host, int(port)))
                sent += 1
        elapsed = time.monotonic() - t0
        deadline = time.monotonic() + 30
        label = "127.0.0.1:0"
        while lines_read(fields["api"], label) + metrics(fields["api"]).get("socwatch_syslog_dropped_total", 0) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        got = lines_read(fields["api"], label)
        dropped = metrics(fields["api"]).get("socwatch_syslog_dropped_total", 0)
        rss = rss_peak_kb(proc.pid)
        stop(proc)
        return sent, elapsed, got, dropped, rss


def bench_latency(binary, samples):
    with tempfile.TemporaryDirectory() as root:
        log = f"{root}/app.log"
        open(log, "w").close()
        rules = f"{root}/rules"
        os.mkdir(rules)
        with open(f"{rules}/r.yml", "w") as f:
            f.write("id: lat\ntitle: lat\nseverity: high\nmatch: {message: 'probe (?P<n>\\d+) from (?P<src_ip>\\S+)'}\nthreshold: {group_by: [src_ip]}\nsuppress: 3650d\n")
        cfg = f'[daemon]\ndata_dir = "{root}/data"\nrules = ["{rules}"]\ntimezone = "UTC"\n\n[[source.file]]\npaths = ["{log}"]\nstart_at = "beginning"\n\n[api]\nlisten = "127.0.0.1:0"\n'
        proc, fields = start(binary, root, cfg)
        api = fields["api"]
        times = []
        with open(log, "a") as f:
            for i in range(samples):
                t0 = time.monotonic()
                f.write(f"Nov 22 10:00:00 portal-01 app[1]: probe {i} from 203.0.113.5\n")
                f.flush()
                while True:
                    incidents = json.loads(get(api, "/api/v1/incidents"))
                    if incidents and incidents[0]["count"] >= i + 1:
                        break
                    if time.monotonic() - t0 > 10:
                        raise SystemExit(f"line {i} not in an incident after 10 s")
                    time.sleep(0.001)
                times.append(time.monotonic() - t0)
        stop(proc)
        times.sort()
        return times[len(times) // 2], times[int(len(times) * 0.99) - 1], times[-1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/socwatch")
    ap.add_argument("--auth", default="/tmp/bench/auth-1000000.log")
    a = ap.parse_args()
    if os.environ.get("ONLY_UDP"):
        for rate in (50_000, 100_000):
            sent, el, got, dropped, rss = bench_udp(a.bin, rate, 4)
            print(f"| UDP syslog offered at {rate:,}/s for 4 s | sent {sent:,} ({sent / el:,.0f}/s), stored {got:,.0f}, dropped {dropped:,.0f}, peak RSS {rss / 1024:.1f} MB |")
        return
    if os.environ.get("ONLY_LATENCY"):
        p50, p99, worst = bench_latency(a.bin, 200)
        print(f"| line appended → in an incident (200 samples) | p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms |")
        return
    total, elapsed, rss = bench_files(a.bin, a.auth)
    print("| measure | result |\n|---|---|")
    print(f"| file ingestion, shipped rules, {total:,} auth.log lines (start to all stored) | {elapsed:.2f} s, {total / elapsed:,.0f} lines/s, peak RSS {rss / 1024:.1f} MB |")
    for rate in (50_000, 100_000):
        sent, el, got, dropped, rss = bench_udp(a.bin, rate, 4)
        print(f"| UDP syslog offered at {rate:,}/s for 4 s | sent {sent:,} ({sent / el:,.0f}/s), stored {got:,.0f}, dropped {dropped:,.0f}, peak RSS {rss / 1024:.1f} MB |")
    p50, p99, worst = bench_latency(a.bin, 200)
    print(f"| line appended → in an incident (200 samples) | p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {worst * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
