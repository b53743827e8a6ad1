package main

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationTailConfigFollowsTables: `sluice tail --config` follows
// two configured tables of different shapes on one binlog stream, each into
// its own topic as generic change events: inserts, updates (one changing
// the key, carried as a delete and an insert), deletes, values of every
// kind, NULLs. Folding each topic's events by key gives exactly the source
// table, value for value, as the backfill would read it.
func TestIntegrationTailConfigFollowsTables(t *testing.T) {
	e := newITEnv(t)
	for _, stmt := range []string{
		"CREATE DATABASE " + e.src, "CREATE DATABASE " + e.dst,
		"CREATE TABLE " + e.src + `.readings (site CHAR(4) NOT NULL, probe SMALLINT UNSIGNED NOT NULL, at DATETIME(6) NOT NULL,
			value DECIMAL(65,30), big BIGINT UNSIGNED, f FLOAT, note TEXT, flags SET('a','b','😀'), kind ENUM('x','y'), raw VARBINARY(16),
			doc JSON, ts TIMESTAMP(3) NULL, n BIGINT UNSIGNED NOT NULL AUTO_INCREMENT, PRIMARY KEY (n), UNIQUE KEY site_probe_at (site, probe, at))`,
		"CREATE TABLE " + e.src + `.customers (id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL,
			phone VARCHAR(32), ssn CHAR(11), full_name VARCHAR(100) NOT NULL, signed_up DATETIME NOT NULL, UNIQUE KEY (email))`,
	} {
		if _, err := e.admin.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	text := fmt.Sprintf(`kafka:
  topic_prefix: %s
tables:
  - source: %s.readings
    target: %s.readings
    id: "n"
    window: at
    key: [site, probe, at]
  - source: %s.customers
    target: %s.customers
    window: signed_up
    columns:
      exclude: [ssn]
      rename: {full_name: name}
    transforms:
      email: [lower]
`, e.topic, e.src, e.dst, e.src, e.dst)
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	e.must("migrate", "--config", path)
	tl, tlogs := e.startTail("--config", path, "--from", "now", "--flush-interval", "20ms")

	exec := func(q string) {
		t.Helper()
		if _, err := e.admin.Exec(strings.ReplaceAll(q, "{src}", e.src)); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO {src}.readings (site, probe, at, value, big, f, note, flags, kind, raw, doc, ts) VALUES
		('AB01', 1, '2025-10-01 00:00:00.000001', 12345678901234567890.123456789012345678901234567890, 18446744073709551615, 3.1415927, 'naïve 😀', 'a,😀', 'y', X'00FF00', '{"k": [1, 2]}', '2025-10-01 01:02:03.456'),
		('AB01', 2, '2025-10-01 00:00:01', -0.000000000000000000000000000001, 0, -1.5e-38, NULL, '', NULL, '', 'null', NULL),
		('ZZ99', 65535, '2025-10-01 23:59:59.999999', NULL, NULL, NULL, '', NULL, 'x', NULL, NULL, '2038-01-19 03:14:07.999')`)
	exec(`INSERT INTO {src}.customers (email, phone, ssn, full_name, signed_up) VALUES
		('Ann@Example.com', '+33612345678', '123-45-6789', 'Ann Ó', '2025-10-01 08:00:00'),
		('bob@example.com', NULL, NULL, 'Bob', '2025-10-01 09:00:00')`)
	exec(`UPDATE {src}.readings SET note = 'changed', f = 2.5 WHERE probe = 1`)
	exec(`UPDATE {src}.readings SET probe = 3 WHERE probe = 2`) // a key change: a delete and an insert
	exec(`DELETE FROM {src}.readings WHERE site = 'ZZ99'`)
	exec(`UPDATE {src}.customers SET phone = '+1 555 0100', full_name = 'Robert' WHERE email = 'bob@example.com'`)
	exec(`DELETE FROM {src}.customers WHERE email = 'Ann@Example.com'`)
	exec(`INSERT INTO {src}.customers (email, phone, ssn, full_name, signed_up) VALUES ('cy@example.com', '1', '0', 'Cy', '2025-10-02 00:00:00')`)
	exec(`TRUNCATE TABLE {src}.customers`) // a truncate event, op t, with no key
	exec(`INSERT INTO {src}.customers (email, phone, ssn, full_name, signed_up) VALUES ('dee@example.com', NULL, NULL, 'Dee', '2025-10-03 00:00:00')`)

	// Wait until the tail has committed past the last change.
	want := map[string]int{"readings": 3 + 1 + 2 + 1, "customers": 2 + 1 + 1 + 1 + 1 + 1}
	tables, err := schema.ResolveAll(context.Background(), mustTables(t, path), e.admin, e.admin,
		schema.ResolveConfig{SourceDB: e.src, TargetDB: e.dst, TopicPrefix: e.topic})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for _, tb := range tables {
		for len(e.committedRecords(tb.Topic)) < want[tb.Source.Table] {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d events, want %d\n%s", tb.Topic, len(e.committedRecords(tb.Topic)), want[tb.Source.Table], tlogs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	stopProc(t, tl, tlogs)

	for _, tb := range tables {
		recs := e.committedRecords(tb.Topic)
		if len(recs) != want[tb.Source.Table] {
			t.Errorf("%s: %d events, want %d", tb.Topic, len(recs), want[tb.Source.Table])
		}
		got := map[string][]schema.Value{}
		ops := map[schema.Op]int{}
		// Events of different keys are in different partitions: fold them
		// in binlog order (version, then row), as the versions make the
		// consumer do.
		type parsed struct {
			c   schema.Change
			key []byte
		}
		var all []parsed
		for _, r := range recs {
			var c schema.Change
			if _, err := schema.ParseChange(nil, tb, r.Value, &c); err != nil {
				t.Fatalf("%s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
			}
			all = append(all, parsed{c: c, key: r.Key})
		}
		slices.SortStableFunc(all, func(a, b parsed) int {
			av, _ := a.c.Source.Version()
			bv, _ := b.c.Source.Version()
			if av != bv {
				return cmp.Compare(av, bv)
			}
			return cmp.Compare(a.c.Source.Row, b.c.Source.Row)
		})
		for _, p := range all {
			c, r := p.c, struct{ Key []byte }{p.key}
			ops[c.Op]++
			if c.Source.Snapshot != "false" || c.Source.File == "" || c.Source.DB != e.src || c.Source.Table != tb.Source.Table {
				t.Errorf("%s: source block %+v", tb.Topic, c.Source)
			}
			if c.Op == schema.OpTruncate {
				if r.Key != nil {
					t.Errorf("%s: a truncate with key %s, want none", tb.Topic, r.Key)
				}
				clear(got)
				continue
			}
			img := c.After
			if c.Op == schema.OpDelete {
				img = c.Before
			}
			key := keyOf(tb, img)
			if k, err := schema.AppendChangeKey(nil, tb, &c); err != nil || string(r.Key) != string(k) {
				t.Errorf("%s: record key %s, want %s (%v)", tb.Topic, p.key, k, err)
			}
			if c.Op == schema.OpDelete {
				delete(got, key)
				continue
			}
			got[key] = clone(c.After)
		}
		if tb.Source.Table == "customers" && ops[schema.OpTruncate] != 1 {
			t.Errorf("%s: %d truncate events, want 1 (ops %v)", tb.Topic, ops[schema.OpTruncate], ops)
		}
		wantRows := sourceRows(t, e.admin, tb)
		if len(got) != len(wantRows) {
			t.Errorf("%s: folding the events gives %d rows, the source has %d (ops %v)", tb.Topic, len(got), len(wantRows), ops)
		}
		for key, row := range wantRows {
			g, ok := got[key]
			if !ok {
				t.Errorf("%s: row %s is in the source, not in the events", tb.Topic, key)
				continue
			}
			for i, c := range tb.Columns {
				if g[i].Null != row[i].Null || string(g[i].B) != string(row[i].B) {
					t.Errorf("%s: row %s column %s: events say %q (null %v), the source %q (null %v)", tb.Topic, key, c.Source.Name, g[i].B, g[i].Null, row[i].B, row[i].Null)
				}
			}
		}
	}
}

func mustTables(t *testing.T, path string) []schema.TableSpec {
	t.Helper()
	cfg, err := loadConfig(path, os.LookupEnv)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.tables
}

func keyOf(tb *schema.Table, row []schema.Value) string {
	var parts []string
	for _, k := range tb.Key {
		parts = append(parts, string(row[k].B))
	}
	return strings.Join(parts, "|")
}

func clone(vals []schema.Value) []schema.Value {
	out := slices.Clone(vals)
	for i := range out {
		out[i].B = slices.Clone(out[i].B)
	}
	return out
}

// sourceRows reads a configured table's source as the backfill does
// (SelectExpr, AppendText), by key.
func sourceRows(t *testing.T, db *sql.DB, tb *schema.Table) map[string][]schema.Value {
	t.Helper()
	var exprs []string
	for _, c := range tb.Columns {
		x, err := schema.SelectExpr(c.Source)
		if err != nil {
			t.Fatal(err)
		}
		exprs = append(exprs, x)
	}
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "SET time_zone = '+00:00'"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.QueryContext(context.Background(), "SELECT "+strings.Join(exprs, ", ")+" FROM "+tb.Source.DB+"."+tb.Source.Table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]schema.Value{}
	raw := make([]sql.RawBytes, len(tb.Columns))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		vals := make([]schema.Value, len(raw))
		for i, c := range tb.Columns {
			var buf []byte
			if raw[i] == nil {
				vals[i] = schema.Value{Null: true}
				continue
			}
			if buf, vals[i], err = schema.AppendText(buf, c.Source, raw[i]); err != nil {
				t.Fatalf("%s: %v", c.Source.Name, err)
			}
		}
		out[keyOf(tb, vals)] = vals
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
