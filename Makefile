# Sluice: the two commands a newcomer runs are `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin/sluice
STACK := deploy/local/stack.sh

# The demo seeds and runs one day: yesterday (UTC) unless DAY=YYYY-MM-DD.
DAY   ?= $(shell date -u -d yesterday +%F)
NEXT  := $(shell date -u -d "$(DAY) +1 day" +%F)
ROWS  ?= 1000000

# `make test` runs on its own stack (ports and data dir), so it never touches
# a demo stack that is up, nor any server the project did not start.
TEST_STACK_DIR   ?= $(CURDIR)/.sluice/test-stack
TEST_MYSQL_PORT  ?= 3308
TEST_KAFKA_PORT  ?= 9094
TEST_STACK := SLUICE_STACK_DIR=$(TEST_STACK_DIR) SLUICE_MYSQL_PORT=$(TEST_MYSQL_PORT) SLUICE_KAFKA_PORT=$(TEST_KAFKA_PORT) $(STACK)

.PHONY: build up down status demo test unit lint bench clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/sluice

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

# Everything the tests need, installed if missing: the project's own MariaDB
# and Kafka-protocol broker (started, then stopped), gofmt, vet, the tests.
test: lint
	$(TEST_STACK) destroy >/dev/null
	$(TEST_STACK) up
	@set -o pipefail; eval "$$($(TEST_STACK) env)"; \
	  SLUICE_REQUIRE_INTEGRATION=1 SLUICE_TEST_MYSQL_DSN="sluice:sluice@tcp(127.0.0.1:$(TEST_MYSQL_PORT))/" \
	  SLUICE_TEST_BROKERS="127.0.0.1:$(TEST_KAFKA_PORT)" \
	  $(GO) test -count=1 -timeout 25m ./... ; status=$$?; \
	  $(TEST_STACK) destroy >/dev/null; exit $$status

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
BENCH_RESULTS ?= bench/results
BENCH_FLAGS   ?=
bench: build up
	$(GO) run ./cmd/sluice-bench --rows $(ROWS) --sluice $(BIN) --results $(BENCH_RESULTS) $(if $(filter-out 0 false no,$(PROFILE)),--profile) $(BENCH_FLAGS)
	@echo "Go micro-benchmarks (A vs B pairs, no servers): make bench-go"

.PHONY: bench-go
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
