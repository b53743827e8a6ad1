package schema_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationChangeIoTCompat resolves the IoT table of
// deploy/sluice.example.yaml against tables `sluice migrate` created, reads
// rows of raw_records (NULLs included) both ways, as the text the generic
// path carries and as the fixed path's schema.Row, and checks that the
// generic codec writes the fixed codec's record for every op: byte for
// byte with every column travelling, and without the id member alone for
// the example (which drops id). Each codec reads the other's record.
func TestIntegrationChangeIoTCompat(t *testing.T) {
	e := newResolveEnv(t)
	ctx := context.Background()
	e.exec(t, `
INSERT INTO {src}.raw_records (date, timestamp, device_type, event_type, message, created_at, updated_at) VALUES
 ('2025-10-02', '2025-10-02 23:59:59', 'meter-1', 'status "q" \\ é', 'ünïcode 😀 text', '2025-10-02 10:00:00', NULL),
 ('1000-01-01', '1969-12-31 23:59:59', 'meter-2', 'close', NULL, NULL, NULL),
 ('9999-12-31', '9999-12-31 23:59:59', 'meter-3', 'tab\there', '', '2038-01-19 03:14:07', '1970-01-01 00:00:01');`)

	all := e.iotSpec()
	all.Columns, all.Transforms, all.Target = schema.ColumnsSpec{}, nil, e.dst+".records"
	full, err := schema.Resolve(ctx, all, e.db, e.db, e.rc)
	if err != nil {
		t.Fatal(err)
	}
	example, err := schema.Resolve(ctx, e.iotSpec(), e.db, e.db, e.rc)
	if err != nil {
		t.Fatal(err)
	}

	// the rows, read both ways
	rows, err := e.db.QueryContext(ctx, "SELECT id, date, timestamp, device_type, event_type, message, created_at, updated_at FROM "+e.src+".raw_records ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var typed []schema.Row
	for rows.Next() {
		var r schema.Row
		if err := rows.Scan(&r.ID, &r.Date, &r.Timestamp, &r.DeviceType, &r.EventType, &r.Message, &r.CreatedAt, &r.UpdatedAt); err != nil {
			t.Fatal(err)
		}
		typed = append(typed, r)
	}
	if err := rows.Err(); err != nil || len(typed) != 4 {
		t.Fatalf("%d rows: %v", len(typed), err)
	}
	texts := readTexts(t, e.db, full, "SELECT * FROM "+e.src+".raw_records ORDER BY id")

	src := schema.Source{Connector: "sluice", Name: "sluice", TsMs: 1759371303000, Snapshot: "false", DB: e.src, Table: "raw_records",
		ServerID: 1, GTID: "0-1-9", File: "mysql-bin.000004", Pos: 777, Row: 1, Epoch: 2}
	for i := range typed {
		for _, op := range []schema.Op{schema.OpRead, schema.OpCreate, schema.OpUpdate, schema.OpDelete} {
			ev := schema.Event{Op: op, Source: src, TsMs: 1759371303001}
			ch := schema.Change{Op: op, Source: src, TsMs: 1759371303001}
			prev := (i + len(typed) - 1) % len(typed)
			switch op {
			case schema.OpUpdate:
				ev.Before, ev.After = &typed[prev], &typed[i]
				ch.Before, ch.After = texts[prev], texts[i]
			case schema.OpDelete:
				ev.Before, ch.Before = &typed[i], texts[i]
			default:
				ev.After, ch.After = &typed[i], texts[i]
			}
			fixed := schema.AppendEvent(nil, &ev)
			got, err := schema.AppendChange(nil, full, &ch)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, fixed) {
				t.Fatalf("row %d op %s:\ngeneric %s\nfixed   %s", i, op, got, fixed)
			}
			key, err := schema.AppendChangeKey(nil, full, &ch)
			if err != nil || !bytes.Equal(key, schema.AppendKey(nil, ev.Key())) {
				t.Fatalf("row %d op %s key: %s vs %s (%v)", i, op, key, schema.AppendKey(nil, ev.Key()), err)
			}
			var back schema.Change
			if _, err := schema.ParseChange(nil, full, fixed, &back); err != nil {
				t.Fatal(err)
			}
			if again, err := schema.AppendChange(nil, full, &back); err != nil || !bytes.Equal(again, fixed) {
				t.Fatalf("row %d op %s: the generic decoder reads the fixed record as something else (%v)", i, op, err)
			}

			// the example drops id: the record lacks that member only
			ex := schema.Change{Op: op, Source: src, TsMs: ch.TsMs}
			if ch.Before != nil {
				ex.Before = ch.Before[1:]
			}
			if ch.After != nil {
				ex.After = ch.After[1:]
			}
			got, err = schema.AppendChange(nil, example, &ex)
			if err != nil {
				t.Fatal(err)
			}
			if want := dropID(fixed); string(got) != want {
				t.Fatalf("row %d op %s, id dropped:\ngeneric %s\nwant    %s", i, op, got, want)
			}
			// and it reads the fixed record, id and all
			var pc schema.Change
			if _, err := schema.ParseChange(nil, example, fixed, &pc); err != nil {
				t.Fatal(err)
			}
			again, err := schema.AppendChange(nil, example, &pc)
			if err != nil || !bytes.Equal(again, got) {
				t.Fatalf("row %d op %s: parsed and re-encoded %s (%v)", i, op, again, err)
			}
			// the target row: message upper-cased
			if img := pc.Image(); img != nil {
				out := make([]schema.Value, len(example.Columns))
				if _, err := example.TargetRow(nil, img, out); err != nil {
					t.Fatal(err)
				}
				if m := img[4]; !m.Null && string(out[4].B) != strings.ToUpper(string(m.B)) {
					t.Fatalf("message %q → %q", m.B, out[4].B)
				}
			}
		}
	}

	// a record of another table is refused, naming both
	other := *full
	other.Source.Table = "records"
	var pc schema.Change
	_, err = schema.ParseChange(nil, &other, schema.AppendEvent(nil, &schema.Event{Op: schema.OpCreate, After: &typed[0], Source: src}), &pc)
	if !errors.Is(err, schema.ErrMalformed) || !strings.Contains(err.Error(), e.src+".raw_records, not of table "+e.src+".records") {
		t.Fatalf("got %v", err)
	}
}

// dropID removes the first "id" member of each row image of a fixed record.
func dropID(rec []byte) string {
	s := string(rec)
	for _, img := range []string{`"before":{`, `"after":{`} {
		if i := strings.Index(s, img+`"id":`); i >= 0 {
			j := i + len(img)
			k := strings.IndexByte(s[j:], ',')
			s = s[:j] + s[j+k+1:]
		}
	}
	return s
}

// readTexts reads query's rows as the backfill does: text values of tb's
// source columns, by AppendText.
func readTexts(t *testing.T, db *sql.DB, tb *schema.Table, query string) [][]schema.Value {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]schema.Value
	for rows.Next() {
		raw := make([]sql.RawBytes, len(tb.Columns))
		ptrs := make([]any, len(raw))
		for i := range raw {
			ptrs[i] = &raw[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var buf []byte
		vals := make([]schema.Value, len(raw))
		for i, c := range tb.Columns {
			if buf, vals[i], err = schema.AppendText(buf, c.Source, raw[i]); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, vals)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
