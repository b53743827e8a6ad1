# Sluice: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/sluice
STACK := deploy/local/stack.sh

# The demo seeds and runs one day: yesterday (UTC) unless DAY=YYYY-MM-DD.
DAY   ?= $(shell date -u -d yesterday +%F)
NEXT  := $(shell date -u -d "$(DAY) +1 day" +%F)
ROWS  ?= 1000000
OLD   ?= HEAD
PAIRS ?= 3

# What `sluice version` reports, and the image tag: git describe, e.g.
# v0.2.0-3-g2d4894e-dirty, or the commit when there is no tag.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# `make test` runs on its own stack (ports and data dir), so it never touches
# a demo stack that is up, nor any server the project did not start.
TEST_STACK_DIR   ?= $(CURDIR)/.sluice/test-stack
TEST_MYSQL_PORT  ?= 3308
TEST_KAFKA_PORT  ?= 9094
TEST_STACK := SLUICE_STACK_DIR=$(TEST_STACK_DIR) SLUICE_MYSQL_PORT=$(TEST_MYSQL_PORT) SLUICE_KAFKA_PORT=$(TEST_KAFKA_PORT) $(STACK)
# A second stack whose MariaDB takes TLS connections only and whose broker
# takes SASL_SSL only (SCRAM, PLAIN), for the security test.
TEST_TLS_STACK_DIR  ?= $(CURDIR)/.sluice/test-tls-stack
TEST_TLS_MYSQL_PORT ?= 3309
TEST_TLS_KAFKA_PORT ?= 9095
TEST_TLS_STACK := SLUICE_STACK_DIR=$(TEST_TLS_STACK_DIR) SLUICE_MYSQL_PORT=$(TEST_TLS_MYSQL_PORT) SLUICE_KAFKA_PORT=$(TEST_TLS_KAFKA_PORT) SLUICE_MYSQL_TLS=1 SLUICE_KAFKA_SECURE=1 $(STACK)

.PHONY: build up down status demo test unit lint bench clean

build:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/sluice

up:
	$(STACK) up

down:
	$(STACK) down

status:
	$(STACK) status

demo: build up
	@set -euo pipefail; eval "$$($(STACK) env)"; w=(--start-at "$(DAY) 00:00:00" --end-at "$(NEXT) 00:00:00"); \
	  echo "== migrate"; $(BIN) migrate; \
	  echo "== seed $(ROWS) rows for $(DAY)"; $(BIN) seed --rows $(ROWS) "$${w[@]}"; \
	  echo "== run the nightly job for $(DAY)"; $(BIN) run "$${w[@]}"; \
	  echo "== verify"; $(BIN) verify "$${w[@]}" | tail -n 4; \
	  deploy/local/next-steps.sh "$(DAY)" "$(NEXT)"

# Everything the tests need, installed if missing: the tools of the offline
# deploy checks (test-deps), the project's own MariaDB and Kafka-protocol
# broker (started, then stopped), gofmt, vet, the tests.
test: test-deps lint
	$(TEST_STACK) destroy >/dev/null
	$(TEST_TLS_STACK) destroy >/dev/null
	$(TEST_STACK) up
	$(TEST_TLS_STACK) up
	@set -o pipefail; eval "$$($(TEST_STACK) env)"; \
	  SLUICE_REQUIRE_INTEGRATION=1 SLUICE_TEST_MYSQL_DSN="sluice:sluice@tcp(127.0.0.1:$(TEST_MYSQL_PORT))/" \
	  SLUICE_TEST_BROKERS="127.0.0.1:$(TEST_KAFKA_PORT)" \
	  SLUICE_TEST_TLS_MYSQL_DSN="sluice:sluice@tcp(127.0.0.1:$(TEST_TLS_MYSQL_PORT))/" SLUICE_TEST_TLS_CA="$(TEST_TLS_STACK_DIR)/tls/ca.pem" \
	  SLUICE_TEST_TLS_BROKERS="127.0.0.1:$(TEST_TLS_KAFKA_PORT)" \
	  $(GO) test -count=1 -timeout 25m ./... ; status=$$?; \
	  $(TEST_STACK) destroy >/dev/null; $(TEST_TLS_STACK) destroy >/dev/null; exit $$status

# The tools the offline deploy checks need (deploy/*_test.go): docker-compose
# and promtool, from Debian's docker-compose and prometheus packages,
# installed when missing and we are root. Otherwise it says what to install,
# and under `make test` the checks fail naming the missing tool. The
# prometheus package may start its server: any prometheus process that was
# not running before the install, and only such a process, is stopped.
.PHONY: test-deps image
test-deps:
	@need=""; \
	command -v docker-compose >/dev/null || need="$$need docker-compose"; \
	command -v promtool >/dev/null || need="$$need prometheus"; \
	if [ -z "$$need" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "make test-deps: missing Debian packages:$$need (run: sudo apt-get install --no-install-recommends$$need)"; exit 0; \
	fi; \
	before=" $$(pgrep -d ' ' -x prometheus || true) "; \
	echo "make test-deps: installing$$need"; \
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$need || exit 1; \
	for pid in $$(pgrep -x prometheus || true); do \
	  case "$$before" in *" $$pid "*) ;; *) \
	    echo "make test-deps: stopping the prometheus server (pid $$pid) that the package install started"; kill "$$pid";; \
	  esac; \
	done

# The container image sluice:$(VERSION) (deploy/Dockerfile), where a Docker
# engine answers; elsewhere it says so and fails, having built nothing.
image:
	@if docker info >/dev/null 2>&1; then \
	  echo "docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t sluice:$(VERSION) ."; \
	  docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t sluice:$(VERSION) . ; \
	else \
	  echo "make image: no Docker engine here ('docker info' failed), so no image was built."; \
	  echo "  Where Docker runs: docker build -f deploy/Dockerfile --build-arg VERSION=$(VERSION) -t sluice:$(VERSION) ."; \
	  exit 1; \
	fi

# Unit tests only: no servers needed.
unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

# The throughput benchmark on the local stack (cmd/sluice-bench): seed ROWS
# rows (ROWS=5000000 make bench), then the server's own INSERT … SELECT
# ceiling, sluice run and re-run, and each stage alone. Table on stdout, JSON
# in $(BENCH_RESULTS). PROFILE=1 adds pprof profiles of every Sluice stage.
# SLUICE_* variables reach the sluice processes: SLUICE_CONSUMERS=4 make bench.
# TABLE=mixed measures `sluice run --config` on a 21-column table of mixed
# types; TABLE=iot-config the IoT table through the fixed path and through
# run --config (deploy/sluice.example.yaml's table) side by side.
# LAYOUT=earlier creates the IoT source, ceiling and targets with the earlier
# job's DDL (cmd/sluice-bench/earlier.sql: utf8mb4_unicode_ci, and the index
# idx_device_event_time repeating the unique key), for TABLE=iot or iot-config.
BENCH_RESULTS ?= bench/results
TABLE         ?= iot
LAYOUT        ?= default
BENCH_FLAGS   ?=
bench: build up
	@set -euo pipefail; eval "$$($(STACK) env)"; \
	  $(GO) run ./cmd/sluice-bench --mysql-dsn "$${SLUICE_SOURCE_DSN%source_db}" --brokers "$$SLUICE_BROKERS" \
	  --rows $(ROWS) --table $(TABLE) --layout $(LAYOUT) --sluice $(BIN) --results $(BENCH_RESULTS) $(if $(filter-out 0 false no,$(PROFILE)),--profile) --purge-binlogs $(BENCH_FLAGS)
	@echo "Go micro-benchmarks (A vs B pairs, no servers): make bench-go"

# Old and new binaries alternating on one stack (bench/pairs.sh): the
# comparison a speed change is kept on. OLD=<commit> (default HEAD) against
# the working tree, PAIRS (3) pairs of ROWS rows; BENCH_FLAGS go to sluice-bench.
.PHONY: bench-pairs
bench-pairs: up
	@set -euo pipefail; eval "$$($(STACK) env)"; OLD=$(OLD) PAIRS=$(PAIRS) ROWS=$(ROWS) BENCH_RESULTS=$(BENCH_RESULTS) BENCH_FLAGS="$(BENCH_FLAGS)" bench/pairs.sh

# The tail benchmark: p50/p99 from source commit to target commit at
# TAIL_RATE inserts/s with `sluice tail` and `sluice consume` (two members)
# running, every row observed by its source id, then the events/s the tail
# alone streams from a binlog backlog. It fails when a committed row is not
# seen in the target, or when p99 is above TAIL_P99_AIM (0: no aim).
TAIL_RATE ?= 2000
TAIL_DURATION ?= 30s
TAIL_P99_AIM ?= 1s
.PHONY: bench-tail
bench-tail: build up
	@set -euo pipefail; eval "$$($(STACK) env)"; \
	  $(GO) run ./cmd/sluice-bench --mysql-dsn "$${SLUICE_SOURCE_DSN%source_db}" --brokers "$$SLUICE_BROKERS" \
	  --sluice $(BIN) --results $(BENCH_RESULTS) --tail-rate $(TAIL_RATE) --tail-duration $(TAIL_DURATION) --tail-p99-aim $(TAIL_P99_AIM) $(BENCH_FLAGS)

.PHONY: bench-go
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
