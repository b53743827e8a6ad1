package main

// Integration tests of `sluice backfill --config`: a configured table of
// mixed types backfilled into its topic, read back and compared with the
// source value for value.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/backfill"
	"github.com/sluice-dev/sluice/schema"
)

// mixedDDL is the source table of the tests (the target has the same
// columns, keyed on (tenant, code)): every kind of value the text protocol
// carries, a TIMESTAMP(3) window column and a composite non-time key.
const mixedDDL = ` (
	id BIGINT UNSIGNED NOT NULL,
	tenant VARCHAR(32) NOT NULL,
	code INT NOT NULL,
	ts TIMESTAMP(3) NULL DEFAULT NULL,
	i8 TINYINT, u8 TINYINT UNSIGNED, i64 BIGINT, u64 BIGINT UNSIGNED,
	amount DECIMAL(65,30), f FLOAT, d DOUBLE,
	dt DATETIME(6), dday DATE,
	name VARCHAR(100) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
	bin VARBINARY(64),
	e ENUM('a','b','c'), st SET('x','y','z'),
	doc JSON`

// mixedRows writes n rows of every shape: ids from 0 (the inclusive chunk)
// with gaps, and one at the top of the unsigned range; timestamps before,
// inside and after the window, and NULL.
func (e *itEnv) mixedRows(n int) {
	e.t.Helper()
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + e.src + ".mixed VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		id := fmt.Sprint(i * 3) // gaps
		if i == n-1 {
			id = "18446744073709551615"
		}
		var ts string
		switch i % 10 {
		case 0:
			ts = "NULL"
		case 1:
			ts = "'2025-09-30 23:59:59.999'" // just before
		case 2:
			ts = "'2025-10-02 00:00:00.000'" // the exclusive end
		case 3:
			ts = "'2025-10-01 00:00:00.000'" // the inclusive start
		default:
			ts = fmt.Sprintf("'2025-10-01 %02d:%02d:%02d.%03d'", i%24, i%60, (i*7)%60, i%1000)
		}
		null := i%7 == 5 // a row of NULLs but its key and window
		vals := []string{
			id, fmt.Sprintf("'t%d'", i%4), fmt.Sprint(i - n/2), ts,
			fmt.Sprint(-128 + i%256), fmt.Sprint(i % 256), fmt.Sprint(int64(-9223372036854775808) + int64(i)), "18446744073709551615",
			fmt.Sprintf("'-12345678901234567890123456789012345.%030d'", i), fmt.Sprintf("%g", 3.14159274*float64(i+1)), fmt.Sprintf("%g", 1.0/float64(i+3)),
			fmt.Sprintf("'2025-10-01 12:34:56.%06d'", i*1001), fmt.Sprintf("'2025-%02d-%02d'", i%12+1, i%28+1),
			fmt.Sprintf("'🦄 naïve \"q\" \\\\ %d'", i), fmt.Sprintf("x'00ff00%02x00'", i%256),
			[]string{"'a'", "'b'", "'c'"}[i%3], []string{"''", "'x'", "'x,z'", "'x,y,z'"}[i%4],
			fmt.Sprintf(`'{"n": %d, "s": "é\\\\u0000", "a": [1, null, true]}'`, i),
		}
		if null {
			for j := 4; j < len(vals); j++ {
				vals[j] = "NULL"
			}
		}
		sb.WriteString("(" + strings.Join(vals, ",") + ")")
	}
	if _, err := e.admin.Exec(sb.String()); err != nil {
		e.t.Fatal(err)
	}
}

// mixedSetup creates the test's databases, the mixed table on both sides
// (plus a small table read whole), its rows and the configuration file.
func (e *itEnv) mixedSetup(rows int) (path string, spec schema.TableSpec) {
	e.t.Helper()
	for _, stmt := range []string{
		"CREATE DATABASE " + e.src, "CREATE DATABASE " + e.dst,
		"CREATE TABLE " + e.src + ".mixed" + mixedDDL + ", PRIMARY KEY (id), KEY (ts))",
		"CREATE TABLE " + e.dst + ".mixed" + mixedDDL + ", PRIMARY KEY (tenant, code))",
		"CREATE TABLE " + e.src + ".plain (id INT UNSIGNED NOT NULL PRIMARY KEY, v VARCHAR(10))",
		"CREATE TABLE " + e.dst + ".plain (id INT UNSIGNED NOT NULL PRIMARY KEY, v VARCHAR(10))",
		"INSERT INTO " + e.src + ".plain VALUES (1, 'one'), (2, NULL), (40, 'forty')",
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			e.t.Fatalf("%s: %v", stmt, err)
		}
	}
	e.mixedRows(rows)
	spec = schema.TableSpec{Source: e.src + ".mixed", Target: e.dst + ".mixed", ID: "id", Window: "ts",
		Key: []string{"tenant", "code"}, Topic: e.topic + ".mixed"}
	// The state topic is the default, <topic_prefix>.progress: the one
	// e.openState opens.
	yaml := fmt.Sprintf(`kafka:
  topic_prefix: %s
tables:
  - source: %s.mixed
    target: %s.mixed
    id: id
    window: ts
    key: [tenant, code]
    topic: %s.mixed
  - source: %s.plain
    target: %s.plain
    topic: %s.plain
`, e.topic, e.src, e.dst, e.topic, e.src, e.dst, e.topic)
	path = filepath.Join(e.t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path, spec
}

// resolveSpec resolves spec as sluice does, through the test's connection
// (whose session is the backfill's: UTC, time_zone +00:00).
func (e *itEnv) resolveSpec(ctx context.Context, spec schema.TableSpec) *schema.Table {
	e.t.Helper()
	t, err := schema.Resolve(ctx, spec, e.admin, e.admin, schema.ResolveConfig{SourceDB: e.src, TargetDB: e.dst})
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

// sourceImages reads t's rows (those with where, with args) directly, as
// the backfill should: the SelectExpr list into RawBytes, then AppendText.
// It returns each row's values by the id's text.
func (e *itEnv) sourceImages(ctx context.Context, t *schema.Table, where string, args ...any) map[string][]schema.Value {
	e.t.Helper()
	exprs := make([]string, len(t.Columns))
	idAt := -1
	for i, c := range t.Columns {
		x, err := schema.SelectExpr(c.Source)
		if err != nil {
			e.t.Fatal(err)
		}
		exprs[i] = x
		if c.Source.Name == t.ID.Name {
			idAt = i
		}
	}
	if idAt < 0 {
		e.t.Fatalf("table %s: the id %s does not travel", t.Source, t.ID.Name)
	}
	rs, err := e.admin.QueryContext(ctx, "SELECT "+strings.Join(exprs, ", ")+" FROM "+t.Source.String()+" "+where, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	raw := make([]sql.RawBytes, len(exprs))
	dest := make([]any, len(raw))
	for i := range raw {
		dest[i] = &raw[i]
	}
	out := map[string][]schema.Value{}
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			e.t.Fatal(err)
		}
		var buf []byte // a row of its own
		vals := make([]schema.Value, len(raw))
		for i, c := range t.Columns {
			if buf, vals[i], err = schema.AppendText(buf, c.Source, raw[i]); err != nil {
				e.t.Fatal(err)
			}
		}
		out[string(vals[idAt].B)] = vals
	}
	if err := rs.Err(); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// checkTopic parses every record of t's topic with t and compares it with
// want (the source rows by id), value for value: each row exactly once,
// none other, keyed by t's key columns. skip are ids that must not be
// there (an earlier run produced them).
func (e *itEnv) checkTopic(ctx context.Context, t *schema.Table, want map[string][]schema.Value, skip func(id uint64) bool) {
	e.t.Helper()
	idAt := -1
	for i, c := range t.Columns {
		if c.Source.Name == t.ID.Name {
			idAt = i
		}
	}
	seen := map[string]int{}
	var c schema.Change
	for _, r := range e.committedRecords(t.Topic) {
		if _, err := schema.ParseChange(nil, t, r.Value, &c); err != nil {
			e.t.Fatalf("%s/%d@%d: %v\n%s", r.Topic, r.Partition, r.Offset, err, r.Value)
		}
		if c.Op != schema.OpRead || c.Before != nil || c.Source.Snapshot != "true" || c.Source.DB != t.Source.DB || c.Source.Table != t.Source.Table {
			e.t.Errorf("%s/%d@%d: op %q, before %v, source %+v", r.Topic, r.Partition, r.Offset, c.Op, c.Before, c.Source)
		}
		id := string(c.After[idAt].B)
		seen[id]++
		src, ok := want[id]
		if !ok {
			e.t.Errorf("%s/%d@%d: id %s is not a row of the window", r.Topic, r.Partition, r.Offset, id)
			continue
		}
		for i, v := range c.After {
			if v.Null != src[i].Null || !bytes.Equal(v.B, src[i].B) {
				e.t.Errorf("id %s column %s: topic %q (null %v), source %q (null %v)", id, t.Columns[i].Source.Name, v.B, v.Null, src[i].B, src[i].Null)
			}
		}
		var key map[string]json.RawMessage
		if err := json.Unmarshal(r.Key, &key); err != nil {
			e.t.Fatalf("id %s: key %s: %v", id, r.Key, err)
		}
		if len(key) != len(t.Key) {
			e.t.Errorf("id %s: key %s, want the columns %v", id, r.Key, t.Key)
		}
		for _, k := range t.Key {
			name := t.Columns[k].Source.Name
			var got string
			if err := json.Unmarshal(key[name], &got); err != nil { // a string column
				var n json.Number
				if err := json.Unmarshal(key[name], &n); err != nil {
					e.t.Fatalf("id %s: key %s: column %s: %v", id, r.Key, name, err)
				}
				got = n.String()
			}
			if got != string(src[k].B) {
				e.t.Errorf("id %s: key %s: column %s is %q, the row's %q", id, r.Key, name, got, src[k].B)
			}
		}
	}
	for id := range want {
		n, _ := strconv.ParseUint(id, 10, 64)
		switch {
		case skip != nil && skip(n):
			if seen[id] != 0 {
				e.t.Errorf("id %s: produced %d times, but an earlier run did it", id, seen[id])
			}
		case seen[id] != 1:
			e.t.Errorf("id %s: produced %d times, want once", id, seen[id])
		}
	}
}

// TestIntegrationBackfillConfigMixedTypes: `sluice backfill --config`
// produces every row of the window of a table of mixed types to its topic
// exactly once, byte for byte what the source holds, keyed on the
// configured key; and the table without a window column whole.
func TestIntegrationBackfillConfigMixedTypes(t *testing.T) {
	e := newITEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path, spec := e.mixedSetup(300)
	out := e.must(append([]string{"backfill", "--config", path, "--chunk-size", "17", "--readers", "3"}, e.window()...)...)
	t.Log(out)

	tbl := e.resolveSpec(ctx, spec)
	want := e.sourceImages(ctx, tbl, "WHERE ts >= ? AND ts < ?", e.startT, e.endT)
	if len(want) < 150 {
		t.Fatalf("only %d rows in the window: the test data is wrong", len(want))
	}
	if !strings.Contains(out, fmt.Sprintf("%d rows read, %d produced to %s", len(want), len(want), tbl.Topic)) {
		t.Errorf("output does not count %d rows to %s:\n%s", len(want), tbl.Topic, out)
	}
	e.checkTopic(ctx, tbl, want, nil)

	plain := e.resolveSpec(ctx, schema.TableSpec{Source: e.src + ".plain", Target: e.dst + ".plain", Topic: e.topic + ".plain"})
	e.checkTopic(ctx, plain, e.sourceImages(ctx, plain, ""), nil)
	if !strings.Contains(out, "(whole table): 3 rows read, 3 produced to "+plain.Topic) {
		t.Errorf("output does not count the whole plain table:\n%s", out)
	}

	// --table picks one table; the progress of the finished run was cleared,
	// so a second run reads the window again in full.
	out = e.must(append([]string{"backfill", "--config", path, "--table", "mixed"}, e.window()...)...)
	if !strings.Contains(out, "1 table(s)") || strings.Contains(out, "plain") {
		t.Errorf("--table mixed:\n%s", out)
	}
	if n := len(e.committedRecords(tbl.Topic)); n != 2*len(want) {
		t.Errorf("after a second run: %d records in %s, want %d", n, tbl.Topic, 2*len(want))
	}

	// --table naming no configured table is a usage error.
	if _, errOut, code := e.sluice("backfill", "--config", path, "--table", "nope"); code != exitUsage || !strings.Contains(errOut, "--table nope: not a table of") {
		t.Errorf("--table nope: exit %d\n%s", code, errOut)
	}
}

// TestIntegrationBackfillConfigResumes: the progress an interrupted run
// saved under the table's key is skipped by the next run, which produces
// the rest exactly once and then clears it.
func TestIntegrationBackfillConfigResumes(t *testing.T) {
	e := newITEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	path, spec := e.mixedSetup(200)
	tbl := e.resolveSpec(ctx, spec)
	st := e.openState(ctx)
	cp := &backfill.StateCheckpoints{KV: st, Key: backfill.TableProgressKey(tbl, e.startT, e.endT), RunID: "earlier", Log: slog.New(slog.DiscardHandler)}
	done := []backfill.Range{{Lo: 0, Hi: 150}, {Lo: 301, Hi: 420}}
	if err := cp.Save(ctx, done); err != nil {
		t.Fatal(err)
	}
	out := e.must(append([]string{"backfill", "--config", path, "--table", e.src + ".mixed", "--chunk-size", "10"}, e.window()...)...)
	if !strings.Contains(out, "resumed:") {
		t.Errorf("the run did not say it resumed:\n%s", out)
	}
	want := e.sourceImages(ctx, tbl, "WHERE ts >= ? AND ts < ?", e.startT, e.endT)
	skipped := func(id uint64) bool {
		for _, r := range done {
			if id >= r.Lo && id <= r.Hi {
				return true
			}
		}
		return false
	}
	var left int
	for id := range want {
		if n, _ := strconv.ParseUint(id, 10, 64); !skipped(n) {
			left++
		}
	}
	if left == len(want) || left == 0 {
		t.Fatalf("%d of %d rows outside the saved ranges: the test data is wrong", left, len(want))
	}
	e.checkTopic(ctx, tbl, want, skipped)
	if _, found, err := st.Get(ctx, cp.Key); err != nil || found {
		t.Errorf("progress %s after the run: found %v, %v; want it cleared", cp.Key, found, err)
	}
}
