package schema

import (
	"errors"
	"testing"
)

// FuzzParseChange checks that ParseChange never panics on any record, for
// the IoT table and a table of every type; that every error wraps
// ErrMalformed; and that whatever it accepts encodes again (AppendChange)
// and reads back to the same change: what the consumer applies is what it
// decoded.
func FuzzParseChange(f *testing.F) {
	for _, e := range compatEvents() {
		f.Add(AppendEvent(nil, e))
	}
	tb := typesTable()
	row := make([]Value, len(tb.Columns))
	for i := range row {
		row[i] = Null
	}
	if b, err := AppendChange(nil, tb, &Change{Op: OpUpdate, Before: row, After: row,
		Source: Source{DB: "db", Table: "types", Snapshot: "false"}}); err == nil {
		f.Add(b)
	} else {
		f.Fatal(err)
	}
	f.Add([]byte(`{"schema":{"type":"struct"},"payload":{"before":null,"after":{"date":20362,"timestamp":1759287466000,"device_type":"m","event_type":"o","message":null,"created_at":"2025-10-01T02:57:46Z","updated_at":null},` +
		`"source":{"version":"2.7.0.Final","connector":"mysql","snapshot":true,"db":"source_db","table":"raw_records","gtid":null},"transaction":null,"op":"c","ts_ms":1}}`))
	f.Add([]byte(`{"before":null,"after":null,"source":{"db":"db","table":"types"},"op":"t"}`))
	f.Add([]byte(`{"payload":null}`))
	f.Add([]byte(`{"op":"c","op":"c"}`))
	f.Add([]byte(`[[[[{"a":"\u00`))
	f.Add([]byte(`null`))

	tables := []*Table{iotTable(), typesTable()}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tb := range tables {
			var c Change
			buf, err := ParseChange(nil, tb, b, &c)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("ParseChange(%q): error %q does not wrap ErrMalformed", b, err)
				}
				continue
			}
			_ = buf
			b2, err := AppendChange(nil, tb, &c)
			if err != nil {
				t.Fatalf("AppendChange of the change parsed from %q: %v", b, err)
			}
			var c2 Change
			if _, err := ParseChange(nil, tb, b2, &c2); err != nil {
				t.Fatalf("ParseChange(%q) accepted %q but not its re-encoding %q: %v", b, b, b2, err)
			}
			if c.Op != c2.Op || c.TsMs != c2.TsMs || c.Source != c2.Source {
				t.Fatalf("re-encoding %q as %q changed the envelope", b, b2)
			}
			if d := valuesDiff(c.Before, c2.Before); d != "" {
				t.Fatalf("re-encoding %q as %q changed before: %s", b, b2, d)
			}
			if d := valuesDiff(c.After, c2.After); d != "" {
				t.Fatalf("re-encoding %q as %q changed after: %s", b, b2, d)
			}
		}
	})
}
