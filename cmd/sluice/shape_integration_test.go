package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
)

// bgProc is a process the test runs in the background; exited is closed
// once it has ended (on its own, or by the test's cleanup).
type bgProc struct {
	cmd    *exec.Cmd
	logs   *bytes.Buffer
	exited chan struct{}
}

// startNoSource starts the binary as startProc does, but with no source
// DSN at all in its environment: what the shipped consume deployments give
// it (a DSN to a port nothing listens on would still be one given).
func (e *itEnv) startNoSource(args ...string) *bgProc {
	e.t.Helper()
	cmd := exec.Command(sluiceBin, args...)
	for _, kv := range append(e.env(), e.extraEnv...) {
		if !strings.HasPrefix(kv, "SLUICE_SOURCE_DSN=") && !strings.HasPrefix(kv, "SLUICE_SOURCE_DSN_FILE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	p := &bgProc{cmd: cmd, logs: &bytes.Buffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.exited })
	return p
}

// topicsCaughtUp waits up to d for the group to commit the end offsets of
// topics, failing at once if the consumer p exits.
func (e *itEnv) topicsCaughtUp(d time.Duration, p *bgProc, topics ...string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	go func() {
		select {
		case <-p.exited:
			cancel()
		case <-ctx.Done():
		}
	}()
	for _, topic := range topics {
		ends, err := consumer.EndOffsets(ctx, e.adm, topic)
		if err == nil {
			err = consumer.WaitCaughtUp(ctx, e.adm, e.group, topic, ends, 100*time.Millisecond)
		}
		select {
		case <-p.exited:
			e.t.Fatalf("the consumer exited (%v) before applying %s:\n%s", p.cmd.ProcessState, topic, p.logs)
		default:
		}
		if err != nil {
			e.t.Fatalf("topic %s: %v\nconsumer:\n%s", topic, err, p.logs)
		}
	}
}

// storedShape is the description of the source table db.table kept in the
// test's state topic, and how many records its key has there.
func (e *itEnv) storedShape(table string) (schema.SourceShape, int) {
	e.t.Helper()
	key := "shape/" + e.src + "." + table
	var sh schema.SourceShape
	n := 0
	for _, r := range e.committedRecords(e.topic + ".progress") {
		if string(r.Key) != key {
			continue
		}
		n++
		if err := json.Unmarshal(r.Value, &sh); err != nil {
			e.t.Fatalf("%s: %v\n%s", key, err, r.Value)
		}
	}
	return sh, n
}

// checkStoredShapes fails unless each table's stored description is what
// information_schema says, written once.
func (e *itEnv) checkStoredShapes(tables ...string) {
	e.t.Helper()
	for _, table := range tables {
		want, err := schema.InformationSchema(e.admin).Describe(context.Background(), schema.TableName{DB: e.src, Table: table})
		if err != nil {
			e.t.Fatal(err)
		}
		got, n := e.storedShape(table)
		if n != 1 || !reflect.DeepEqual(got, want) {
			e.t.Errorf("source %s.%s: %d stored descriptions, the last %+v; want 1, %+v", e.src, table, n, got, want)
		}
	}
}

// TestIntegrationConsumeConfigWithoutSource: `sluice consume --config`
// given only the target DSN resolves its tables (of many column types:
// DECIMAL(65,30), TIMESTAMP(3), DATETIME(6), unsigned BIGINT, BIT-free
// ENUM and SET, JSON…) from the descriptions the backfill stored, and
// applies every record: source and target then match.
func TestIntegrationConsumeConfigWithoutSource(t *testing.T) {
	e := newITEnv(t)
	path, spec := e.mixedSetup(300)
	e.must("migrate", "--config", path)
	e.must(append([]string{"backfill", "--config", path}, e.window()...)...)
	e.checkStoredShapes("mixed", "plain")

	p := e.startNoSource("consume", "--config", path, "--linger", "50ms")
	e.topicsCaughtUp(3*time.Minute, p, spec.Topic, e.topic+".plain")
	out := e.must(append([]string{"verify", "--config", path}, e.window()...)...)
	if n := strings.Count(out, "source and target match"); n != 2 {
		t.Fatalf("verify after consume without a source DSN: %d of 2 tables match\n%s\nconsumer:\n%s", n, out, p.logs)
	}
	if strings.Contains(p.logs.String(), "not described yet") {
		t.Errorf("the consumer waited for a description the backfill had stored:\n%s", p.logs)
	}
	// A second backfill finds the descriptions unchanged and writes none.
	e.must(append([]string{"backfill", "--config", path, "--table", "plain"}, e.window()...)...)
	e.checkStoredShapes("mixed", "plain")
}

// TestIntegrationConsumeWaitsForSourceDescription: a consumer without a
// source DSN started before any producer described its tables waits (it
// says so once, naming the table, the state topic and the key) and applies
// the records once a backfill has described them.
func TestIntegrationConsumeWaitsForSourceDescription(t *testing.T) {
	e := newITEnv(t)
	path, spec := e.mixedSetup(100)
	e.must("migrate", "--config", path)
	p := e.startNoSource("consume", "--config", path, "--linger", "50ms")
	key := "shape/" + e.src + ".mixed"
	waiting := func() int {
		n := 0
		for _, l := range strings.Split(p.logs.String(), "\n") {
			if strings.Contains(l, "not described yet") && strings.Contains(l, key) && strings.Contains(l, e.topic+".progress") {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(time.Minute)
	for waiting() == 0 {
		select {
		case <-p.exited:
			t.Fatalf("the consumer exited (%v) instead of waiting for %s:\n%s", p.cmd.ProcessState, key, p.logs)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer does not say it waits for %s:\n%s", key, p.logs)
		}
	}
	select { // a few polls: it keeps waiting, quietly
	case <-p.exited:
		t.Fatalf("the consumer exited (%v) while waiting for %s:\n%s", p.cmd.ProcessState, key, p.logs)
	case <-time.After(5 * time.Second):
	}
	e.must(append([]string{"backfill", "--config", path}, e.window()...)...)
	e.topicsCaughtUp(3*time.Minute, p, spec.Topic, e.topic+".plain")
	out := e.must(append([]string{"verify", "--config", path}, e.window()...)...)
	if n := strings.Count(out, "source and target match"); n != 2 {
		t.Fatalf("verify after the waiting consumer: %d of 2 tables match\n%s\nconsumer:\n%s", n, out, p.logs)
	}
	if n := waiting(); n != 1 {
		t.Errorf("the consumer said %d times that it waits for %s, want once:\n%s", n, key, p.logs)
	}
}

// TestIntegrationTailConfigDescribesSources: `sluice tail --config` stores
// its tables' descriptions before it follows the binlog, and a backfill
// of the same tables after it writes none again.
func TestIntegrationTailConfigDescribesSources(t *testing.T) {
	e := newITEnv(t)
	path, _ := e.mixedSetup(5)
	e.startTail("--config", path, "--from", "now", "--flush-interval", "20ms")
	e.checkStoredShapes("mixed", "plain")
	e.must(append([]string{"backfill", "--config", path}, e.window()...)...)
	e.checkStoredShapes("mixed", "plain")
}

// TestIntegrationFlagOnlyProducersDescribeBuiltinSource: the flag-only
// run and backfill store the
// built-in table's description, for a consumer given no source DSN; run
// again, they write none.
func TestIntegrationFlagOnlyProducersDescribeBuiltinSource(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	e.seed(50)
	e.must(append([]string{"run"}, e.window()...)...)
	e.checkStoredShapes("raw_records")
	e.must(append([]string{"backfill"}, e.window()...)...)
	e.checkStoredShapes("raw_records")
}

// TestIntegrationBuiltinConsumerResolvesWithoutSource: the flag-only
// consume, given the target DSN only (as the shipped k8s and ECS consume
// deployments run it), resolves the built-in table from the description a
// flag-only backfill stored, finds the database of raw_records (which the
// table names without one) there, the test's source database, not the
// default DSN's source_db, and applies the window.
func TestIntegrationBuiltinConsumerResolvesWithoutSource(t *testing.T) {
	e := newITEnv(t)
	e.must("migrate")
	e.seed(200)
	e.must(append([]string{"backfill"}, e.window()...)...)
	p := e.startNoSource("consume", "--linger", "50ms")
	e.topicsCaughtUp(2*time.Minute, p, e.topic)
	e.must(append([]string{"verify"}, e.window()...)...)
	if !strings.Contains(p.logs.String(), "the built-in IoT table") {
		t.Errorf("the consumer did not say it consumes the built-in table:\n%s", p.logs)
	}
}
