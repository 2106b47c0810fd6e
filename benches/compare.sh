#!/usr/bin/env bash
# socwatch beside fail2ban-regex and grep on the same generated logs, in one run. Not run in CI (minutes).
#
#   benches/compare.sh                      # 1M-line auth.log and nginx log in a temp folder
#   OUT=/tmp/bench N=1000000 benches/compare.sh
#
# Needs: python3, cargo, fail2ban (Debian package: /usr/bin/fail2ban-regex), GNU time (/usr/bin/time),
# taskset (util-linux). Every tool runs pinned to one core (taskset -c $CORE) with TZ=UTC.
# Prints a markdown table, then socwatch's ssh-bruteforce detections scored against the generator's truth.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GEN_DIR=${GEN_DIR:-$REPO/../shared/bench}
[[ -f $GEN_DIR/gen_logs.py ]] || GEN_DIR=/work/shared/bench
N=${N:-1000000}
CORE=${CORE:-0}
OUT=${OUT:-$(mktemp -d)}
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
export TZ=UTC
mkdir -p "$OUT"

for tool in python3 cargo taskset /usr/bin/time fail2ban-regex sec rg; do
    command -v "$tool" >/dev/null || { echo "compare.sh: $tool is missing (apt-get install time fail2ban sec ripgrep util-linux)" >&2; exit 2; }
done

AUTH=$OUT/auth-$N.log
NGINX=$OUT/nginx-$N.log
if [[ ! -s $AUTH || ! -s $NGINX ]]; then
    echo "== generating $N-line auth.log and nginx log into $OUT" >&2
    python3 "$GEN_DIR/gen_logs.py" --auth-lines "$N" --nginx-lines "$N" --out "$OUT" >&2
fi

echo "== building socwatch (release) and writing the generated rule sets" >&2
(cd "$REPO" && cargo build --release --quiet)
BIN=$TARGET/release/socwatch
(cd "$REPO" && SOCWATCH_WRITE_RULES="$OUT/rules" cargo bench --quiet --bench matching >&2)

# Runs a command pinned to one core under GNU time; prints "wall_seconds max_rss_kb cpu_seconds".
# CPU seconds (user + sys) are what the run cost that core; on a busy machine wall time also counts
# the time the core spent on other processes.
measure() {
    local name=$1
    shift
    /usr/bin/time -v -o "$OUT/$name.time" taskset -c "$CORE" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err" || {
        local rc=$?
        # fail2ban-regex and grep exit non-zero for reasons that are not failures (no match: grep 1).
        [[ $rc -eq 1 ]] || { echo "compare.sh: $name failed ($rc), see $OUT/$name.err" >&2; exit 1; }
    }
    python3 - "$OUT/$name.time" <<'EOF'
import re, sys
text = open(sys.argv[1]).read()
wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
secs = 0.0
for part in wall.split(":"):
    secs = secs * 60 + float(part)
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
cpu = sum(float(re.search(p + r": (\S+)", text).group(1))
          for p in (r"User time \(seconds\)", r"System time \(seconds\)"))
print(f"{secs:.3f} {rss} {cpu:.3f}")
EOF
}

ROWS=()
STARTUP=()
F2B_SECS=""
row() { # name input lines rules secs rss cpu
    local name=$1 input=$2 lines=$3 rules=$4 secs=$5 rss=$6 cpu=$7
    ROWS+=("$name|$input|$lines|$rules|$secs|$rss|$cpu")
}

echo "== fail2ban-regex (stock sshd filter)" >&2
read -r secs rss cpu < <(measure fail2ban fail2ban-regex "$AUTH" /etc/fail2ban/filter.d/sshd.conf)
F2B_SECS=$secs
F2B_CPU=$cpu
F2B_MATCHED=$(grep -oE '^Lines: [0-9]+ lines, [0-9]+ ignored, [0-9]+ matched' "$OUT/fail2ban.out" | awk '{print $6}')
row "fail2ban-regex $(fail2ban-regex --version 2>/dev/null | head -1 | awk '{print $NF}') (stock sshd.conf)" auth.log "$N" "sshd filter" "$secs" "$rss" "$cpu"

echo "== grep -c 'Failed password' (floor)" >&2
read -r secs rss cpu < <(measure grep grep -c 'Failed password' "$AUTH")
row "grep -c 'Failed password'" auth.log "$N" "one literal" "$secs" "$rss" "$cpu"

echo "== rg -c (floor: the full sshd failure regex)" >&2
read -r secs rss cpu < <(measure rg rg -c 'sshd\[[0-9]+\]: Failed password for (invalid user )?\S+ from \S+ port' "$AUTH")
row "rg -c (sshd failure regex) $(rg --version | head -1 | awk '{print $2}')" auth.log "$N" "one regex" "$secs" "$rss" "$cpu"

# SEC counts its windows on its own clock (time(2)), never on the time written in the line; a
# PerlFunc pattern keeps the 5-in-600-s window on log time itself, the same rule as the truth's.
cat >"$OUT/sec-bruteforce.conf" <<'SEC'
type=Single
ptype=PerlFunc
pattern=sub { if ($_[0] =~ /^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) \S+ sshd\[\d+\]: Failed password for (?:invalid user )?\S+ from (\S+) port/) { \
  my %mon = (Jan=>0,Feb=>1,Mar=>2,Apr=>3,May=>4,Jun=>5,Jul=>6,Aug=>7,Sep=>8,Oct=>9,Nov=>10,Dec=>11); \
  my $t = ((($mon{$1} * 31 + $2) * 24 + $3) * 60 + $4) * 60 + $5; my $q = ($main::bf{$6} ||= []); \
  push @$q, $t; shift @$q while @$q && $q->[0] <= $t - 600; \
  if (@$q >= 5 && !$main::flagged{$6}) { $main::flagged{$6} = 1; return $6; } } return 0; }
desc=bruteforce $1
action=write - $1
SEC
SEC_VERSION=$(sec --version | head -1 | awk '{print $NF}')
echo "== SEC $SEC_VERSION (one rule on log time)" >&2
read -r secs rss cpu < <(measure sec sec --conf="$OUT/sec-bruteforce.conf" --input="$AUTH" --fromstart --notail --log=/dev/null)
row "SEC $SEC_VERSION (one sshd rule on log time)" auth.log "$N" "one rule" "$secs" "$rss" "$cpu"

SHIPPED_COUNT=$("$BIN" rules list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
scan() { # name log rules...
    local name=$1 log=$2
    shift 2
    measure "$name" "$BIN" scan --timezone UTC --json "$@" "$log"
}
# The fixed cost of a run (start, compile the rules, exit) over an empty input, per rule set, so the
# per-line cost below is (CPU of the scan - CPU of the empty scan) / lines.
EMPTY=$OUT/empty.log
: >"$EMPTY"
echo "== socwatch startup (empty input)" >&2
for set in shipped shipped-2000 gen20 gen2000; do
    case $set in
        shipped) args=() ;;
        shipped-2000) args=(--rules "$REPO/rules" --rules "$OUT/rules/generated-2000") ;;
        gen20) args=(--rules "$OUT/rules/generated-20") ;;
        gen2000) args=(--rules "$OUT/rules/generated-2000") ;;
    esac
    read -r secs rss cpu < <(measure "startup-$set" "$BIN" scan --timezone UTC --json "${args[@]}" "$EMPTY")
    STARTUP+=("$set|$secs|$rss|$cpu")
done
echo "== socwatch scan" >&2
read -r secs rss cpu < <(scan socwatch-auth "$AUTH")
row "socwatch scan --json" auth.log "$N" "shipped ($SHIPPED_COUNT)" "$secs" "$rss" "$cpu"
# Every core: not pinned, so wall time is what counts here.
CORES=$(nproc)
for jobs in 1 "$CORES"; do
    read -r secs rss cpu < <(CORE=0-$((CORES - 1)) measure "socwatch-auth-jobs$jobs" "$BIN" scan --jobs "$jobs" --timezone UTC --json "$AUTH")
    row "socwatch scan --jobs $jobs (cores 0-$((CORES - 1)))" auth.log "$N" "shipped ($SHIPPED_COUNT)" "$secs" "$rss" "$cpu"
done
cmp -s "$OUT/socwatch-auth-jobs1.out" "$OUT/socwatch-auth-jobs$CORES.out" \
    && JOBS_SAME="identical" || JOBS_SAME="DIFFERENT"
read -r secs rss cpu < <(scan socwatch-auth-2000 "$AUTH" --rules "$REPO/rules" --rules "$OUT/rules/generated-2000")
row "socwatch scan --json" auth.log "$N" "shipped + 2,000 generated" "$secs" "$rss" "$cpu"
read -r secs rss cpu < <(scan socwatch-auth-gen20 "$AUTH" --rules "$OUT/rules/generated-20")
row "socwatch scan --json" auth.log "$N" "20 generated" "$secs" "$rss" "$cpu"
read -r secs rss cpu < <(scan socwatch-auth-gen2000 "$AUTH" --rules "$OUT/rules/generated-2000")
row "socwatch scan --json" auth.log "$N" "2,000 generated" "$secs" "$rss" "$cpu"
read -r secs rss cpu < <(scan socwatch-nginx "$NGINX")
row "socwatch scan --json" nginx.log "$N" "shipped ($SHIPPED_COUNT)" "$secs" "$rss" "$cpu"
read -r secs rss cpu < <(scan socwatch-nginx-2000 "$NGINX" --rules "$REPO/rules" --rules "$OUT/rules/generated-2000")
row "socwatch scan --json" nginx.log "$N" "shipped + 2,000 generated" "$secs" "$rss" "$cpu"

echo
echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), each tool pinned to core $CORE, TZ=UTC."
echo
echo "| tool | input | lines | rules | wall (s) | lines/s (wall) | CPU (s) | lines/s (CPU) | peak RSS (MB) | vs fail2ban-regex (wall) |"
echo "|---|---|---:|---|---:|---:|---:|---:|---:|---:|"
for r in "${ROWS[@]}"; do
    IFS='|' read -r name input lines rules secs rss cpu <<<"$r"
    python3 - "$name" "$input" "$lines" "$rules" "$secs" "$rss" "$cpu" "$F2B_SECS" <<'EOF'
import sys
name, inp, lines, rules, secs, rss, cpu, f2b = sys.argv[1:]
lines, secs, rss, cpu, f2b = int(lines), float(secs), int(rss), float(cpu), float(f2b)
rate = lines / secs if secs > 0 else float("inf")
crate = lines / cpu if cpu > 0 else float("inf")
ratio = f2b / secs if secs > 0 else float("inf")
print(f"| {name} | {inp} | {lines:,} | {rules} | {secs:.2f} | {rate:,.0f} | {cpu:.2f} | {crate:,.0f} | {rss/1024:.1f} | {ratio:.1f}x |")
EOF
done

echo
echo
echo "Fixed cost of a run (empty input: start, compile the rules, exit):"
echo
echo "| rules | wall (s) | CPU (s) | peak RSS (MB) |"
echo "|---|---:|---:|---:|"
for r in "${STARTUP[@]}"; do
    IFS='|' read -r set secs rss cpu <<<"$r"
    echo "| $set | $secs | $cpu | $(python3 -c "print(f'{$rss/1024:.1f}')") |"
done
echo
python3 - "$OUT" "$N" <<'EOF'
import re, sys
def cost(name):
    t = open(f"{sys.argv[1]}/{name}.time").read()
    return sum(float(re.search(p + r": (\S+)", t).group(1))
               for p in (r"User time \(seconds\)", r"System time \(seconds\)"))
print("Whole-run CPU ratio (fixed cost included, auth.log): 2,000 vs 20 generated rules "
      f"{cost('socwatch-auth-gen2000') / cost('socwatch-auth-gen20'):.2f}x; "
      f"shipped + 2,000 vs shipped {cost('socwatch-auth-2000') / cost('socwatch-auth'):.2f}x; "
      f"on nginx.log shipped + 2,000 vs shipped {cost('socwatch-nginx-2000') / cost('socwatch-nginx'):.2f}x.")
print(f"socwatch vs fail2ban-regex in CPU time: {cost('fail2ban') / cost('socwatch-auth'):.1f}x")
n = int(sys.argv[2])
def per_line(scan, startup):
    return (cost(scan) - cost(startup)) / n * 1e9
pairs = [("auth, shipped", "socwatch-auth", "startup-shipped"),
         ("auth, shipped + 2,000", "socwatch-auth-2000", "startup-shipped-2000"),
         ("auth, 20 generated", "socwatch-auth-gen20", "startup-gen20"),
         ("auth, 2,000 generated", "socwatch-auth-gen2000", "startup-gen2000"),
         ("nginx, shipped", "socwatch-nginx", "startup-shipped"),
         ("nginx, shipped + 2,000", "socwatch-nginx-2000", "startup-shipped-2000")]
ns = {label: per_line(s, e) for label, s, e in pairs}
print("Per-line CPU cost without the fixed cost: " + "; ".join(f"{k} {v:.0f} ns ({1e9 / v:,.0f} lines/s)" for k, v in ns.items()))
print(f"  2,000 vs 20 generated: {ns['auth, 2,000 generated'] / ns['auth, 20 generated']:.2f}x; "
      f"shipped + 2,000 vs shipped: auth {ns['auth, shipped + 2,000'] / ns['auth, shipped']:.2f}x, "
      f"nginx {ns['nginx, shipped + 2,000'] / ns['nginx, shipped']:.2f}x")
EOF
echo "--jobs 1 and --jobs $CORES incidents: $JOBS_SAME."
echo "fail2ban-regex matched $F2B_MATCHED lines; grep counted $(cat "$OUT/grep.out") 'Failed password' lines."

echo
echo "== detection quality (ssh-bruteforce incidents' src_ip vs the generator's truth)"
python3 - "$OUT/socwatch-auth.out" "$OUT/flagged.txt" <<'EOF'
import json, sys
incidents = json.load(open(sys.argv[1]))
ips = sorted({i["group"].get("src_ip") for i in incidents if i["rule_id"] == "ssh-bruteforce"} - {None})
open(sys.argv[2], "w").write("".join(ip + "\n" for ip in ips))
by_rule = {}
for i in incidents:
    by_rule[i["rule_id"]] = by_rule.get(i["rule_id"], 0) + 1
print("incidents by rule:", ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items())))
print(f"ssh-bruteforce flagged {len(ips)} addresses")
EOF
python3 "$GEN_DIR/score.py" "$OUT/auth-$N.truth.json" "$OUT/flagged.txt"
echo "SEC's rule on the same truth:"
sort -u "$OUT/sec.out" >"$OUT/flagged-sec.txt"
python3 "$GEN_DIR/score.py" "$OUT/auth-$N.truth.json" "$OUT/flagged-sec.txt"
echo
echo "== detection quality on nginx (src_ip of every web-* incident vs the generator's truth)"
python3 - "$OUT/socwatch-nginx.out" "$OUT/flagged-nginx.txt" <<'EOF'
import json, sys
incidents = json.load(open(sys.argv[1]))
web = [i for i in incidents if i["rule_id"].startswith("web-")]
ips = sorted({i["group"].get("src_ip") for i in web} - {None})
open(sys.argv[2], "w").write("".join(ip + "\n" for ip in ips))
by_rule = {}
for i in incidents:
    by_rule[i["rule_id"]] = by_rule.get(i["rule_id"], 0) + 1
print("incidents by rule:", ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items())))
EOF
python3 "$GEN_DIR/score.py" "$OUT/nginx-$N.truth.json" "$OUT/flagged-nginx.txt"
echo
echo "Outputs kept in $OUT"
