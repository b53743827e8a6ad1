#!/usr/bin/env bash
# bench/pairs.sh: `make bench-pairs`. The side-by-side comparison the team
# keeps a change on: the sluice binary of commit OLD and the working tree's,
# alternating (old, new, old, new, …) PAIRS times in one invocation on the
# same stack, each run of cmd/sluice-bench measuring its own ceiling, so
# every ratio is taken against the server's speed at that moment. It prints
# each run's ratios to the ceiling and the mean per binary.
#
#   OLD=b76699e PAIRS=3 ROWS=1000000 make bench-pairs
#   BENCH_FLAGS="--table mixed" make bench-pairs      # flags for sluice-bench
#
# Environment: OLD (commit, default HEAD), PAIRS (3), ROWS (1000000),
# BENCH_FLAGS, and the stack's SLUICE_SOURCE_DSN / SLUICE_BROKERS (make sets
# them from deploy/local/stack.sh env).
set -euo pipefail
OLD=${OLD:-HEAD}
PAIRS=${PAIRS:-3}
ROWS=${ROWS:-1000000}
out=${BENCH_RESULTS:-bench/results}/pairs-$(date -u +%Y%m%dT%H%M%SZ)
bins=.sluice/bench-pairs
mkdir -p "$out/old" "$out/new" "$bins"

src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
git archive "$OLD" | tar -x -C "$src"
(cd "$src" && go build -trimpath -o "$OLDPWD/$bins/old" ./cmd/sluice)
go build -trimpath -o "$bins/new" ./cmd/sluice
echo "bench-pairs: old = $(git rev-parse --short "$OLD"), new = working tree ($(git describe --always --dirty)); $PAIRS pairs of $ROWS rows; results in $out"

for i in $(seq 1 "$PAIRS"); do
  for b in old new; do
    echo "== pair $i: $b"
    go run ./cmd/sluice-bench --mysql-dsn "${SLUICE_SOURCE_DSN%source_db}" --brokers "$SLUICE_BROKERS" \
      --rows "$ROWS" --sluice "$bins/$b" --results "$out/$b" --purge-binlogs ${BENCH_FLAGS:-} 2>"$out/$b/pair-$i.log" | tail -n 12
  done
done

# Every run's ratio to the ceiling per stage, then the mean per binary.
for b in old new; do
  jq -r --arg b "$b" '.results[] | select(.ratio != null and .ratio != 0) | "\($b)\t\(.stage)\t\(.ratio)\t\(.peak_rss_mib // 0)"' "$out/$b"/2*.json
done | awk -F'\t' '
  { k = $2 "\t" $1; sum[k] += $3; n[k]++; rss[k] = ($4 > rss[k] ? $4 : rss[k]); list[k] = list[k] sprintf(" %.2f", $3); stages[$2] = 1 }
  END {
    printf "%-16s %-4s %-28s %6s %9s\n", "stage", "bin", "ratio to the ceiling, each run", "mean", "peak RSS"
    for (s in stages) for (b = 0; b < 2; b++) { bin = b ? "new" : "old"; k = s "\t" bin
      if (n[k]) printf "%-16s %-4s %-28s %6.2f %6.0f MiB\n", s, bin, list[k], sum[k] / n[k], rss[k] }
  }' | tee "$out/summary.txt"
