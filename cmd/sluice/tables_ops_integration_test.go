package main

// Integration tests of replay and the dead-letter topic per configured
// table (--config, --table), on the two tables of newTablesEnv.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/consumer"
	"github.com/sluice-dev/sluice/schema"
)

// groupOffsets are the group's committed offsets on topic.
func (e *tablesEnv) groupOffsets(topic string) map[int32]int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	offs, err := e.adm.FetchOffsets(ctx, e.group)
	if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
		e.t.Fatalf("fetch offsets of %s: %v", e.group, err)
	}
	out := map[int32]int64{}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// endTotal is the sum of topic's end offsets: how many records it holds.
func (e *tablesEnv) endTotal(topic string) int64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ends, err := consumer.EndOffsets(ctx, e.adm, topic)
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	for _, o := range ends {
		n += o
	}
	return n
}

// consumeOnce runs consume --config until the group has committed every
// record of both tables, and returns its /metrics page.
func (e *tablesEnv) consumeOnce() string {
	e.t.Helper()
	addr := freeAddr(e.t)
	p := e.startRun("consume", "--config", e.path, "--batch-size", "4", "--linger", "100ms", "--metrics-addr", addr)
	if err := e.caughtUpAll(2 * time.Minute); err != nil {
		e.t.Fatalf("the group did not commit every record: %v\n%s", err, p.logs)
	}
	body := string(metricsBody(e.t, addr))
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(e.t, time.Minute); code != 0 && code != exitPartial {
		e.t.Fatalf("consume --config: exit %d\n%s", code, p.logs)
	}
	return body
}

// TestIntegrationReplayAndDLQByTable: two configured tables consumed by one
// group; replay --table rewinds only one table's topic, and the next
// consume applies that table's records again and none of the other's
// (sluice_consumer_table_records_total by table). Then the dead letters of
// both: dlq inspect --table shows one table's, dlq redrive --table sends
// back one table's only, and the other table's re-drive still finds its
// own.
func TestIntegrationReplayAndDLQByTable(t *testing.T) {
	e := newTablesEnv(t)
	e.must("migrate", "--config", e.path)
	e.resolve()
	custName, readName := e.cust.Source.String(), e.read.Source.String()

	ann := map[string]string{"id": "1", "email": "ann@x.org", "full_name": "Ann", "signed_up": "2025-10-01 10:00:00", "seen": "2025-10-01 10:00:00.000"}
	bob := map[string]string{"id": "2", "email": "bob@x.org", "full_name": "Bob", "signed_up": "2025-10-01 11:00:00", "seen": "2025-10-01 11:00:00.000"}
	late := map[string]string{"id": "4", "email": "d@x.org", "full_name": "Dee", "signed_up": "2150-01-01 00:00:00", "seen": "2025-10-01 12:00:00.000"}
	r7 := map[string]string{"site": "PAR1", "probe": "7", "at": "2025-10-01 10:00:00.000001", "n": "1"}
	r8 := map[string]string{"site": "PAR1", "probe": "8", "at": "2025-10-01 10:00:00.000001", "n": "2"}
	e.produce(
		e.change(e.cust, schema.OpCreate, nil, ann),
		e.change(e.read, schema.OpCreate, nil, r7),
		e.change(e.cust, schema.OpCreate, nil, bob),
		e.change(e.read, schema.OpCreate, nil, r8),
		e.change(e.cust, schema.OpCreate, nil, late),                                                       // refused by the rule signed_up max: a dead letter of customers
		&kgo.Record{Topic: e.read.Topic, Key: []byte(`{"site":"x"}`), Value: []byte(`{"op":"c","after":`)}, // does not decode: one of readings
	)
	first := e.consumeOnce()
	for _, want := range []string{
		fmt.Sprintf(`sluice_consumer_table_records_total{table="%s.customers"} 3`, e.dst),
		fmt.Sprintf(`sluice_consumer_table_records_total{table="%s.readings"} 3`, e.dst),
	} {
		if !strings.Contains(first, want) {
			t.Fatalf("first consume: metrics lack %s", want)
		}
	}
	custBefore, readBefore := e.groupOffsets(e.cust.Topic), e.groupOffsets(e.read.Topic)

	// --to-offset names one topic's partitions: refused with two tables.
	if out, errOut, code := e.sluice("replay", "--config", e.path, "--to-offset", "0:0"); code != exitUsage || !strings.Contains(errOut, "name one table") {
		t.Errorf("replay --to-offset on two tables: exit %d, want %d saying to name one table\n%s%s", code, exitUsage, out, errOut)
	}
	if out, errOut, code := e.sluice("replay", "--config", e.path, "--table", e.src+".nope", "--to-earliest"); code != exitUsage || !strings.Contains(errOut, custName) {
		t.Errorf("replay --table of no configured table: exit %d, want %d listing the tables\n%s%s", code, exitUsage, out, errOut)
	}
	out := e.must("replay", "--config", e.path, "--table", custName, "--to-earliest", "--dry-run")
	if !strings.Contains(out, "on "+e.cust.Topic+" ") || strings.Contains(out, e.read.Topic) || !strings.Contains(out, "dry run") {
		t.Errorf("replay --table %s --dry-run: want the plan of %s only:\n%s", custName, e.cust.Topic, out)
	}
	if got := e.groupOffsets(e.cust.Topic); !maps.Equal(got, custBefore) {
		t.Errorf("the dry run moved %s: %v, was %v", e.cust.Topic, got, custBefore)
	}
	out = e.must("replay", "--config", e.path, "--table", custName, "--to-earliest")
	if !strings.Contains(out, "committed: group "+e.group) || !strings.Contains(out, e.cust.Topic) || strings.Contains(out, e.read.Topic) {
		t.Errorf("replay --table %s: want a commit on %s only:\n%s", custName, e.cust.Topic, out)
	}
	for p, o := range e.groupOffsets(e.cust.Topic) {
		if o != 0 {
			t.Errorf("after replay, %s/%d at %d, want 0", e.cust.Topic, p, o)
		}
	}
	if got := e.groupOffsets(e.read.Topic); !maps.Equal(got, readBefore) {
		t.Errorf("replay of %s moved %s: %v, was %v", custName, e.read.Topic, got, readBefore)
	}

	second := e.consumeOnce()
	for _, want := range []string{
		fmt.Sprintf(`sluice_consumer_table_records_total{table="%s.customers"} 3`, e.dst),
		fmt.Sprintf(`sluice_consumer_table_records_total{table="%s.readings"} 0`, e.dst),
	} {
		if !strings.Contains(second, want) {
			t.Errorf("consume after the replay of %s: metrics lack %s", custName, want)
		}
	}
	if got := e.groupOffsets(e.read.Topic); !maps.Equal(got, readBefore) {
		t.Errorf("%s after the second consume: %v, was %v", e.read.Topic, got, readBefore)
	}

	// The dead letters: customers' refused record twice (the replay
	// applied it again), readings' undecodable one once.
	lines := func(out string) []map[string]any {
		var recs []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l == "" {
				continue
			}
			var r map[string]any
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("dlq inspect line %q: %v", l, err)
			}
			recs = append(recs, r)
		}
		return recs
	}
	origin := func(r map[string]any) string {
		h, _ := r["headers"].(map[string]any)
		s, _ := h[schema.DLQHeaderTopic].(string)
		return s
	}
	all := lines(e.must("dlq", "inspect", "--config", e.path, "-n", "10", "--idle", "1s"))
	if len(all) != 3 {
		t.Errorf("dlq inspect --config: %d dead letters, want 3", len(all))
	}
	only := lines(e.must("dlq", "inspect", "--config", e.path, "--table", readName, "-n", "10", "--idle", "1s"))
	if len(only) != 1 || origin(only[0]) != e.read.Topic {
		t.Errorf("dlq inspect --table %s: %v, want the one dead letter of %s", readName, only, e.read.Topic)
	}

	custEnd, readEnd := e.endTotal(e.cust.Topic), e.endTotal(e.read.Topic)
	out = e.must("dlq", "redrive", "--config", e.path, "--table", readName)
	if !strings.Contains(out, "table "+readName+": 1 records") || !strings.Contains(out, "2 of other tables left") {
		t.Errorf("dlq redrive --table %s: want 1 record sent and 2 left:\n%s", readName, out)
	}
	if got := e.endTotal(e.read.Topic); got != readEnd+1 {
		t.Errorf("%s holds %d records after its re-drive, want %d", e.read.Topic, got, readEnd+1)
	}
	if got := e.endTotal(e.cust.Topic); got != custEnd {
		t.Errorf("the re-drive of %s sent to %s: %d records, want %d", readName, e.cust.Topic, got, custEnd)
	}
	// The other table's re-drive still finds its own (two dead letters of
	// one record: sent once), and readings' is not sent again.
	out, errOut, code := e.sluice("dlq", "redrive", "--config", e.path)
	if code != 0 || !strings.Contains(out, "table "+custName+": 1 records") || !strings.Contains(out, "1 duplicates") ||
		!strings.Contains(out, "table "+readName+": 0 records") {
		t.Errorf("dlq redrive --config after --table %s: exit %d, want customers' record sent once and none of readings:\n%s%s", readName, code, out, errOut)
	}
	if got := e.endTotal(e.cust.Topic); got != custEnd+1 {
		t.Errorf("%s holds %d records after its re-drive, want %d", e.cust.Topic, got, custEnd+1)
	}
	if got := e.endTotal(e.read.Topic); got != readEnd+1 {
		t.Errorf("%s holds %d records after the second re-drive, want %d", e.read.Topic, got, readEnd+1)
	}
}

// TestIntegrationTailEventsByTable: tail --config counts its events by
// source table and op (sluice_tail_events_total{table,op}), each table's
// on its own series.
func TestIntegrationTailEventsByTable(t *testing.T) {
	e := newITEnv(t)
	for _, stmt := range []string{
		"CREATE DATABASE " + e.src, "CREATE DATABASE " + e.dst,
		"CREATE TABLE " + e.src + ".a (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10) NOT NULL, at DATETIME NOT NULL)",
		"CREATE TABLE " + e.src + ".b (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, v VARCHAR(10) NOT NULL, at DATETIME NOT NULL)",
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf("kafka:\n  topic_prefix: %s\ntables:\n  - source: %[2]s.a\n    target: %[3]s.a\n    window: at\n  - source: %[2]s.b\n    target: %[3]s.b\n    window: at\n",
		e.topic, e.src, e.dst)
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("migrate", "--config", path)
	addr := freeAddr(t)
	tl, tlogs := e.startTail("--config", path, "--from", "now", "--flush-interval", "20ms", "--metrics-addr", addr)
	for _, q := range []string{
		"INSERT INTO {src}.a (v, at) VALUES ('1', '2025-10-01'), ('2', '2025-10-01'), ('3', '2025-10-01')",
		"UPDATE {src}.a SET v = 'x' WHERE id = 1",
		"INSERT INTO {src}.b (v, at) VALUES ('1', '2025-10-01')",
		"DELETE FROM {src}.b",
	} {
		if _, err := e.admin.Exec(strings.ReplaceAll(q, "{src}", e.src)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	want := []string{
		fmt.Sprintf(`sluice_tail_events_total{op="c",table="%s.a"} 3`, e.src),
		fmt.Sprintf(`sluice_tail_events_total{op="u",table="%s.a"} 1`, e.src),
		fmt.Sprintf(`sluice_tail_events_total{op="d",table="%s.a"} 0`, e.src),
		fmt.Sprintf(`sluice_tail_events_total{op="c",table="%s.b"} 1`, e.src),
		fmt.Sprintf(`sluice_tail_events_total{op="d",table="%s.b"} 1`, e.src),
		fmt.Sprintf(`sluice_tail_events_total{op="u",table="%s.b"} 0`, e.src),
	}
	// The counters move when the Kafka transaction commits: wait for the
	// last one (a minute at most), then check every series.
	var body string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		body = string(metricsBody(t, addr))
		if strings.Contains(body, want[4]) || time.Now().After(deadline) {
			break
		}
	}
	stopProc(t, tl, tlogs)
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("tail metrics lack %s", w)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}
