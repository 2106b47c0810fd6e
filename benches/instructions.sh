#!/usr/bin/env bash
# The per-line instruction count of `socwatch scan` with the shipped rules, counted by callgrind (not
# timed, so a busy or different machine gives the same number), checked against the baseline kept in
# benches/instructions.baseline. CI runs it; it fails when the count grows by more than 10 %.
#
#   benches/instructions.sh            # check against the baseline
#   benches/instructions.sh --update   # write the new count as the baseline
#
# Per line = (instructions of a scan of the generator's 20,000-line auth.log - those of a scan of an
# empty file) / 20,000, so rule compilation and start-up (a fixed cost) are left out.
# Needs: valgrind, python3, cargo, ../shared/bench/gen_logs.py (GEN_DIR to override).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GEN_DIR=${GEN_DIR:-$REPO/../shared/bench}
BASELINE=$REPO/benches/instructions.baseline
LINES=20000
ALLOWED_GROWTH=1.10
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

(cd "$REPO" && cargo build --release --locked --quiet)
BIN=$TARGET/release/socwatch
python3 "$GEN_DIR/gen_logs.py" --auth-lines "$LINES" --nginx-lines 0 --seed 17 \
    --start 2026-11-01T00:00:00 --out "$WORK" >/dev/null
: >"$WORK/empty.log"

# Instructions of one scan: callgrind's total (`summary:` line of its output file). One job, so the
# count does not depend on the machine's cores.
count() {
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
        "$BIN" scan --jobs 1 --timezone UTC --json "$1" >/dev/null 2>"$WORK/valgrind.err" \
        || { cat "$WORK/valgrind.err" >&2; exit 1; }
    awk '/^summary:/ {print $2}' "$WORK/cg.out"
}
full=$(count "$WORK/auth-$LINES.log")
empty=$(count "$WORK/empty.log")
per_line=$(( (full - empty) / LINES ))
echo "socwatch scan, shipped rules: $per_line instructions per line ($full for $LINES lines, $empty fixed)"

if [[ ${1:-} == --update ]]; then
    echo "$per_line" >"$BASELINE"
    echo "baseline written: $BASELINE"
    exit 0
fi
baseline=$(cat "$BASELINE")
python3 - "$per_line" "$baseline" "$ALLOWED_GROWTH" <<'PY'
import sys
now, base, allowed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ratio = now / base
print(f"baseline {base} instructions per line: now {ratio:.3f}x")
if ratio > allowed:
    print(f"FAIL: the per-line instruction count grew by more than {allowed - 1:.0%}", file=sys.stderr)
    sys.exit(1)
PY
