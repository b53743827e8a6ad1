#!/usr/bin/env bash
# Printed at the end of `make demo`: where to look next. Reads the stack's
# SLUICE_* environment (deploy/local/stack.sh env).
set -euo pipefail
day=$1 next=$2
dsn=${SLUICE_TARGET_DSN:-sluice:sluice@tcp(127.0.0.1:3307)/target_db}
port=3307
if [[ $dsn =~ :([0-9]+)\) ]]; then port=${BASH_REMATCH[1]}; fi
cat <<TXT

== Done. Where to look next
  Target rows:     mariadb --no-defaults -h127.0.0.1 -P$port -usluice -psluice target_db \\
                     -e "SELECT device_type, event_type, timestamp, message, source_id, loaded_at FROM records LIMIT 5"
  The topic:       bin/sluice peek -n 3      (first records, with partition, offset, key and value)
  Metrics:         while a command runs (e.g. bin/sluice consume), http://127.0.0.1:9464/metrics
  Verify again:    bin/sluice verify --start-at "$day 00:00:00" --end-at "$next 00:00:00"
  Re-run (safe):   bin/sluice run --start-at "$day 00:00:00" --end-at "$next 00:00:00"
  Near real time:  bin/sluice tail & bin/sluice consume --metrics-addr 127.0.0.1:9465 &
                   then insert, update or delete in source_db.raw_records and watch target_db.records
  Stop the stack:  make down     (data kept in .sluice/stack; deploy/local/stack.sh destroy removes it)
TXT
