package main

import (
	"strings"
	"testing"
	"time"
)

// TestIntegrationBuiltinSourceStagesNeedNoTarget runs the built-in table's
// backfill and tail as the shipped deployments start them: with the source
// DSN only. Their target DSN here names a port nothing listens on, so a
// stage that connected to the target would fail. The records they produce
// are then applied by a consumer that has the target, and the window must
// match the source, the tail's changes included.
func TestIntegrationBuiltinSourceStagesNeedNoTarget(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	e.seed(300)
	noTarget := "SLUICE_TARGET_DSN=sluice:unused@tcp(127.0.0.1:1)/" + e.dst

	e.extraEnv = []string{noTarget}
	out := e.must(append([]string{"backfill"}, e.window()...)...)
	if !strings.Contains(out, "300 rows read, 300 produced") {
		t.Fatalf("backfill without a reachable target: want 300 rows read and produced, got:\n%s", out)
	}
	_, tlogs := e.startTail("--from", "now", "--flush-interval", "20ms")
	e.extraEnv = nil

	_, clogs := e.startProc("consume", "--linger", "50ms")
	e.srcExec("UPDATE {src}.raw_records SET message = CONCAT('tailed ', id) WHERE timestamp >= ? ORDER BY id LIMIT 5", e.startT)
	e.srcExec("DELETE FROM {src}.raw_records WHERE timestamp >= ? ORDER BY id DESC LIMIT 3", e.startT)
	e.waitSame(2*time.Minute, tlogs, clogs)
	if n := e.count("SELECT COUNT(*) FROM " + e.dst + ".records WHERE message LIKE 'TAILED %'"); n != 5 {
		t.Fatalf("%d target rows carry the tail's update, want 5\ntail:\n%s", n, tlogs)
	}
}
