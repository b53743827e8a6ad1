package consumer

import (
	"fmt"
	"math"
	"strconv"
	"testing"

	"github.com/sluice-dev/sluice/schema"
)

// TestIntegrationTableWriterLookup: once a batch has met existing rows,
// the next is looked up first, and only the upserts the statement would
// leave as they are stay out of it: the same content (NULLs, times, BIT,
// bytes, a DOUBLE, a transformed key), or an older version. A DOUBLE one
// ulp away, a change of case and a FLOAT (never compared by text) still
// reach the upsert, which applies or keeps them as it always has.
func TestIntegrationTableWriterLookup(t *testing.T) {
	e := newGWEnv(t)
	e.exec(`INSERT INTO ` + e.src + `.mixed (id, site, day, seq, name, amount, ratio, f, flags, raw, at, ts, dur, kind, tags, yr, note) VALUES
 (1, 'a1', '2024-01-15', 1, 'Ünïcode', -12.3400, 0.1, NULL, b'1000000001', X'00275C22FF0A', '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999', '-838:59:59.00', 'b', 'x,z', 2155, 'it''s a \\ back'),
 (2, 'a1', '2024-01-15', 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 'b2', '1999-12-31', -7, 'x', 99999999.9999, -1.5e-300, 2.5, b'0', X'', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000', '00:00:00.01', 'a', '', 1901, '')`)
	a, b, c := e.image(1), e.image(2), e.image(3)
	ratio, name := slicesIndex(e.table, "ratio"), slicesIndex(e.table, "name")

	res := e.write(e.change(schema.OpCreate, nil, a, 100), e.change(schema.OpCreate, nil, b, 101), e.change(schema.OpCreate, nil, c, 102))
	if res.Inserted != 3 {
		t.Fatalf("first load: got %s, want 3 inserted", countsOf(res))
	}
	// This batch meets existing rows, so the next ones are looked up.
	if res = e.write(e.change(schema.OpRead, nil, a, 103), e.change(schema.OpRead, nil, b, 104), e.change(schema.OpRead, nil, c, 105)); res.Unchanged != 3 {
		t.Fatalf("re-read: got %s, want 3 unchanged", countsOf(res))
	}

	t.Run("the same row is left out; a DOUBLE one ulp away and a change of case are written", func(t *testing.T) {
		before := e.target()
		skipped := e.w.look.skipped
		a2 := append([]schema.Value{}, a...) // a has no FLOAT: the look-up compares every column
		f, err := strconv.ParseFloat(string(a[ratio].B), 64)
		if err != nil {
			t.Fatal(err)
		}
		a2[ratio] = schema.Value{B: []byte(strconv.FormatFloat(math.Nextafter(f, 1), 'g', -1, 64))}
		res := e.write(e.change(schema.OpRead, nil, a2, 110), e.change(schema.OpRead, nil, b, 111), e.change(schema.OpRead, nil, c, 112))
		if res.Updated != 1 || res.Unchanged != 2 {
			t.Fatalf("got %s, want 1 updated, 2 unchanged", countsOf(res))
		}
		if n := e.w.look.skipped - skipped; n != 1 {
			t.Errorf("the look-up left out %d upserts, want 1 (the all-NULL row; c has a FLOAT)", n)
		}
		after := e.target()
		e.sameRow("ratio-changed row", after[0].vals, e.want(a2))
		if after[1].loadedAt != before[1].loadedAt || after[1].version != before[1].version {
			t.Errorf("unchanged row: loaded_at %s → %s, source_version %d → %d: want both kept",
				before[1].loadedAt, after[1].loadedAt, before[1].version.Int64, after[1].version.Int64)
		}
		a3 := append([]schema.Value{}, a2...)
		a3[name] = schema.Value{B: []byte("ÜNÏCODE")}
		if res = e.write(e.change(schema.OpRead, nil, a3, 113)); res.Updated != 1 {
			t.Fatalf("change of case: got %s, want 1 updated", countsOf(res))
		}
		e.sameRow("case-changed row", e.target()[0].vals, e.want(a3))
		a = a3
	})

	t.Run("an older change is left out, a FLOAT goes to the upsert", func(t *testing.T) {
		skipped := e.w.look.skipped
		old := append([]schema.Value{}, a...)
		old[name] = schema.Value{B: []byte("older")}
		// a (no FLOAT) the same, c (a FLOAT) the same: only c reaches the upsert.
		res := e.write(e.change(schema.OpRead, nil, old, 50), e.change(schema.OpRead, nil, b, 120), e.change(schema.OpRead, nil, c, 121))
		if res.Unchanged != 3 || res.Updated+res.Inserted != 0 {
			t.Fatalf("got %s, want 3 unchanged", countsOf(res))
		}
		if n := e.w.look.skipped - skipped; n != 2 {
			t.Errorf("the look-up left out %d upserts, want 2 (the older change and the all-NULL row)", n)
		}
		e.sameRow("row kept from the older change", e.target()[0].vals, e.want(a))
	})
}

// TestIntegrationTableWriterFullChunk: a batch of more rows than one upsert
// statement takes runs its full chunks as a prepared statement (values in
// the binary protocol) and the rest as text; both land byte for byte.
func TestIntegrationTableWriterFullChunk(t *testing.T) {
	e := newGWEnv(t)
	e.exec(`INSERT INTO ` + e.src + `.mixed (id, site, day, seq, name, amount, ratio, f, flags, raw, at, ts, dur, kind, tags, yr, note) VALUES
 (1, 'a1', '2024-01-15', 1, 'Ünïcode', -12.3400, 0.1, 3.1415927, b'1000000001', X'00275C22FF0A', '2024-02-29 23:59:59.123456', '2038-01-19 03:14:07.999', '-838:59:59.00', 'b', 'x,z', 2155, 'it''s a \\ back'),
 (2, 'a1', '2024-01-15', 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)`)
	a, b := e.image(1), e.image(2)
	seq := slicesIndex(e.table, "seq")
	n := e.w.upsert.perStmt + 3
	var recs []TableRecord
	var want [][]schema.Value
	for i := range n {
		img := append([]schema.Value{}, a...)
		if i%2 == 1 {
			img = append([]schema.Value{}, b...)
		}
		img[seq] = schema.Value{B: []byte(strconv.Itoa(i - n/2))}
		recs = append(recs, e.change(schema.OpCreate, nil, img, uint64(1000+i)))
		want = append(want, e.want(img))
	}
	if res := e.write(recs...); res.Inserted != n {
		t.Fatalf("got %s, want %d inserted", countsOf(res), n)
	}
	got := e.target()
	if len(got) != n {
		t.Fatalf("target has %d rows, want %d", len(got), n)
	}
	// Ordered by key: seq ascending, as written.
	for i := range n {
		e.sameRow(fmt.Sprintf("row %d", i), got[i].vals, want[i])
		if t.Failed() {
			break
		}
	}
}

// TestIntegrationTableWriterLookupJoin: the look-up as one join of the
// batch's keys (on MariaDB, whose plan reads the target by its key: the
// probe must find that) and as IN lists leave out exactly the unchanged
// upserts of a batch of many rows, each matched to its own upsert: a
// changed row among them is written, the others are not.
func TestIntegrationTableWriterLookupJoin(t *testing.T) {
	e := newGWEnv(t)
	if !e.w.look.join {
		t.Fatal("the look-up of the mixed table is not the join: the server's plan of it does not read the target by its key")
	}
	const n = 60
	e.exec(`INSERT INTO ` + e.src + `.mixed (id, site, day, seq, name, amount, note)
 SELECT seq, 'a1', '2024-01-15', seq, CONCAT('n', seq), seq / 4, REPEAT('x', seq) FROM ` + e.src + `.seq_1_to_60`)
	imgs := make([][]schema.Value, n)
	for i := range imgs {
		imgs[i] = e.image(i + 1)
	}
	batch := func(pos uint64, edit int) []TableRecord {
		var recs []TableRecord
		for i, img := range imgs {
			if i == edit {
				img = append([]schema.Value{}, img...)
				img[slicesIndex(e.table, "name")] = schema.Value{B: []byte("edited")}
				imgs[i] = img
			}
			recs = append(recs, e.change(schema.OpRead, nil, img, pos+uint64(i)))
		}
		return recs
	}
	if res := e.write(batch(1000, -1)...); res.Inserted != n {
		t.Fatalf("first load: got %s, want %d inserted", countsOf(res), n)
	}
	if res := e.write(batch(2000, -1)...); res.Unchanged != n { // meets the rows: the next batches are looked up
		t.Fatalf("re-read: got %s, want %d unchanged", countsOf(res), n)
	}
	for _, join := range []bool{true, false} {
		e.w.look.join = join
		edit := 17
		if !join {
			edit = 42
		}
		skipped := e.w.look.skipped
		res := e.write(batch(uint64(3000+1000*edit), edit)...)
		if res.Updated != 1 || res.Unchanged != n-1 {
			t.Fatalf("join %v: got %s, want 1 updated, %d unchanged", join, countsOf(res), n-1)
		}
		if got := e.w.look.skipped - skipped; got != n-1 {
			t.Errorf("join %v: the look-up left out %d upserts, want %d", join, got, n-1)
		}
		rows := e.target()
		if len(rows) != n {
			t.Fatalf("target has %d rows, want %d", len(rows), n)
		}
		for i := range rows { // ordered by key: seq 1 to 60
			e.sameRow(fmt.Sprintf("join %v: row %d", join, i+1), rows[i].vals, e.want(imgs[i]))
		}
	}
}
